/**
 * Style indicators of a corpus, for judging writing-style tuning without a
 * judge model: sentence-length distribution, punctuation usage, lexical
 * variety and frequent n-grams. Comparable profiles are turned into one
 * distance by `style-distance.ts`.
 *
 * Definitions (CJK aware):
 * - **Sentences**: a text is split after every run of the terminators
 *   `。！？!?` and after `.`/`…` when followed by whitespace or the end of the
 *   text (so `3.14` and `e.g.x` stay whole); closing quotes and brackets
 *   (`」』”’"')）]】》`) that follow a terminator stay with its sentence. Line
 *   breaks also end a sentence. Empty pieces (only spaces/punctuation) are dropped.
 * - **Units** (lexical tokens): after lowercasing and removing punctuation and
 *   symbols (`\p{P}`, `\p{S}`), each CJK character (Han, Hiragana, Katakana)
 *   is one unit and each whitespace-separated Latin word/number is one unit.
 *   A sentence's **length** is its number of units: characters for Chinese,
 *   words for English, both for mixed text.
 * - **Punctuation marks**: every `\p{P}` character. Full-width and half-width
 *   forms are kept apart (`，` vs `,`): the difference is a style signal.
 */
import { assertArg } from './errors.js';
import { collapseWhitespace, isCjkChar, splitCjkAware } from './normalize.js';

export interface Histogram {
  /** Lower bin edges; bin i is [edges[i], edges[i+1]), the last bin is open-ended. */
  edges: number[];
  counts: number[];
  /** counts normalised to sum 1 (all zeros when there are no sentences). */
  probs: number[];
}

export interface SentenceLengthStats {
  mean: number;
  /** Median (mean of the two middle values for an even count). */
  median: number;
  /** 90th percentile, linear interpolation (numpy.percentile's default). */
  p90: number;
  min: number;
  max: number;
  /** Population standard deviation. */
  std: number;
  histogram: Histogram;
}

/** Ratios in [0, 1] compared by the L1 part of the style distance. */
export interface StyleRatios {
  /** Type-token ratio over all units (length dependent; see `mattr`). */
  typeTokenRatio: number;
  /** Moving-average TTR over windows of `mattrWindow` units (length robust). */
  mattr: number;
  /** Punctuation marks / (units + punctuation marks). */
  punctuationDensity: number;
  /** Share of sentences ending in a question mark (? or ？). */
  questionRate: number;
  /** Share of sentences ending in an exclamation mark (! or ！). */
  exclamationRate: number;
  /** Share of units that are CJK characters. */
  cjkShare: number;
}

export interface NgramCount {
  ngram: string;
  count: number;
}

export interface StyleProfile {
  texts: number;
  sentences: number;
  units: number;
  sentenceLength: SentenceLengthStats;
  /** Count of each punctuation mark. */
  punctuationCounts: Record<string, number>;
  /** Share of each punctuation mark among all marks (sums to 1, or empty). */
  punctuationDistribution: Record<string, number>;
  ratios: StyleRatios;
  /** Most frequent n-grams of units (never across sentences), count desc then text asc. */
  topNgrams: NgramCount[];
}

export interface StyleProfileOptions {
  /**
   * Lower edges of the sentence-length histogram bins, ascending, starting at
   * 0 or 1. Default `[1, 5, 10, 15, 20, 25, 30, 40, 50, 70, 100]`. Compare only
   * profiles built with the same edges.
   */
  histogramEdges?: readonly number[];
  /** n for `topNgrams`. Default 2. */
  ngramN?: number;
  /** How many n-grams to keep. Default 20. */
  topK?: number;
  /** Window for MATTR. Default 100. */
  mattrWindow?: number;
}

export const DEFAULT_HISTOGRAM_EDGES: readonly number[] = [1, 5, 10, 15, 20, 25, 30, 40, 50, 70, 100];

const CLOSERS = '」』”’"\'\\)）\\]】》〉';
const SENTENCE_RE = new RegExp(
  `[^\\n]*?(?:[。！？!?]+[${CLOSERS}]*|[.…]+[${CLOSERS}]*(?=\\s|$)|(?=\\n)|$)`,
  'gu',
);
const PUNCT_RE = /\p{P}/u;
const STRIP_RE = /[\p{P}\p{S}]/gu;
const TRAILING_CLOSERS_RE = new RegExp(`[${CLOSERS}\\s]+$`, 'u');

/** Split a text into sentences (see the module comment). */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(SENTENCE_RE)) {
    const s = collapseWhitespace(m[0]);
    if (s && sentenceUnits(s).length > 0) out.push(s);
    if (m[0] === '' && m.index === text.length) break;
  }
  return out;
}

/** Lexical units of a text: CJK characters and Latin words, lowercased, no punctuation. */
export function sentenceUnits(text: string): string[] {
  return splitCjkAware(text.toLowerCase().replace(STRIP_RE, ' '));
}

/** Percentile with linear interpolation between closest ranks (numpy default). */
export function percentile(sorted: readonly number[], q: number): number {
  assertArg(q >= 0 && q <= 100, 'percentile q must be in [0, 100]');
  if (sorted.length === 0) return 0;
  const pos = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Histogram over lower bin edges; values below the first edge go to bin 0. */
export function histogram(values: readonly number[], edges: readonly number[]): Histogram {
  assertArg(edges.length > 0, 'histogram edges must not be empty');
  for (let i = 1; i < edges.length; i++) assertArg(edges[i]! > edges[i - 1]!, 'histogram edges must be strictly ascending');
  const counts = new Array<number>(edges.length).fill(0);
  for (const v of values) {
    let b = 0;
    while (b + 1 < edges.length && v >= edges[b + 1]!) b++;
    counts[b]!++;
  }
  const n = values.length;
  return { edges: [...edges], counts, probs: counts.map((c) => (n ? c / n : 0)) };
}

/** Moving-average type-token ratio (Covington & McFall 2010). Equals TTR when shorter than the window. */
export function movingAverageTtr(units: readonly string[], window: number): number {
  if (units.length === 0) return 0;
  if (units.length <= window) return new Set(units).size / units.length;
  const counts = new Map<string, number>();
  for (let i = 0; i < window; i++) counts.set(units[i]!, (counts.get(units[i]!) ?? 0) + 1);
  let sum = counts.size;
  for (let i = window; i < units.length; i++) {
    const out = units[i - window]!;
    const c = counts.get(out)! - 1;
    if (c === 0) counts.delete(out);
    else counts.set(out, c);
    counts.set(units[i]!, (counts.get(units[i]!) ?? 0) + 1);
    sum += counts.size;
  }
  return sum / (units.length - window + 1) / window;
}

function joinNgram(tokens: readonly string[]): string {
  let s = tokens[0]!;
  for (let i = 1; i < tokens.length; i++) {
    const glue = isCjkChar(tokens[i - 1]!) && isCjkChar(tokens[i]!) ? '' : ' ';
    s += glue + tokens[i]!;
  }
  return s;
}

/** Build the style profile of a corpus (one or many texts). */
export function styleProfile(texts: string | readonly string[], options: StyleProfileOptions = {}): StyleProfile {
  const list = typeof texts === 'string' ? [texts] : texts;
  const edges = options.histogramEdges ?? DEFAULT_HISTOGRAM_EDGES;
  const n = options.ngramN ?? 2;
  const topK = options.topK ?? 20;
  const window = options.mattrWindow ?? 100;
  assertArg(Number.isInteger(n) && n >= 1, 'ngramN must be a positive integer');
  assertArg(Number.isInteger(window) && window >= 1, 'mattrWindow must be a positive integer');

  const lengths: number[] = [];
  const allUnits: string[] = [];
  const punct: Record<string, number> = {};
  const ngrams = new Map<string, number>();
  let punctTotal = 0;
  let questions = 0;
  let exclamations = 0;
  let cjkUnits = 0;

  for (const text of list) {
    assertArg(typeof text === 'string', 'styleProfile expects strings');
    for (const ch of text) {
      if (PUNCT_RE.test(ch)) {
        punct[ch] = (punct[ch] ?? 0) + 1;
        punctTotal++;
      }
    }
    for (const sentence of splitSentences(text)) {
      const units = sentenceUnits(sentence);
      lengths.push(units.length);
      for (const u of units) {
        allUnits.push(u);
        if (isCjkChar(u)) cjkUnits++;
      }
      const end = sentence.replace(TRAILING_CLOSERS_RE, '');
      if (/[?？]$/u.test(end)) questions++;
      else if (/[!！]$/u.test(end)) exclamations++;
      for (let i = 0; i + n <= units.length; i++) {
        const key = joinNgram(units.slice(i, i + n));
        ngrams.set(key, (ngrams.get(key) ?? 0) + 1);
      }
    }
  }

  const sorted = [...lengths].sort((a, b) => a - b);
  const count = sorted.length;
  const mean = count ? sorted.reduce((s, x) => s + x, 0) / count : 0;
  const variance = count ? sorted.reduce((s, x) => s + (x - mean) ** 2, 0) / count : 0;
  const punctuationDistribution: Record<string, number> = {};
  for (const [k, v] of Object.entries(punct)) punctuationDistribution[k] = v / punctTotal;
  const topNgrams = [...ngrams.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, topK)
    .map(([ngram, c]) => ({ ngram, count: c }));

  return {
    texts: list.length,
    sentences: count,
    units: allUnits.length,
    sentenceLength: {
      mean,
      median: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      min: count ? sorted[0]! : 0,
      max: count ? sorted[count - 1]! : 0,
      std: Math.sqrt(variance),
      histogram: histogram(lengths, edges),
    },
    punctuationCounts: punct,
    punctuationDistribution,
    ratios: {
      typeTokenRatio: allUnits.length ? new Set(allUnits).size / allUnits.length : 0,
      mattr: movingAverageTtr(allUnits, window),
      punctuationDensity: punctTotal + allUnits.length ? punctTotal / (punctTotal + allUnits.length) : 0,
      questionRate: count ? questions / count : 0,
      exclamationRate: count ? exclamations / count : 0,
      cjkShare: allUnits.length ? cjkUnits / allUnits.length : 0,
    },
    topNgrams,
  };
}
