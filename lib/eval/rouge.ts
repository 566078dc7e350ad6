/**
 * ROUGE-N and ROUGE-L (precision, recall, F-measure), a port of Google's
 * `rouge-score` package (`rouge_score/rouge_scorer.py`, v0.1.2) without
 * stemming.
 *
 * Default tokeniser (`'default'`, as `rouge_score/tokenize.py`): lowercase,
 * replace every run of characters outside `[a-z0-9]` by a space, split, keep
 * only `[a-z0-9]+` tokens. Note that this drops all non-ASCII text, so Chinese
 * scores 0 with it: use `tokenizer: 'zh-char'`, which keeps every CJK
 * character (Han, Hiragana, Katakana) as a token of its own plus lowercase
 * `[a-z0-9]+` runs, and drops everything else (punctuation, spaces). This is
 * the usual "character-level ROUGE" for Chinese summarisation (e.g. LCSTS).
 *
 * Multiple references: like `RougeScorer.score_multi`, for each ROUGE type the
 * reference giving the highest F-measure is used (first one on ties).
 */
import { LorafitEvalError, assertArg } from './errors.js';
import { isCjkChar } from './normalize.js';

export type RougeType = 'rouge1' | 'rouge2' | 'rougeL' | `rouge${number}`;

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export type RougeTokenizer = 'default' | 'zh-char' | ((text: string) => string[]);

export interface RougeOptions {
  /** ROUGE types to compute. Default `['rouge1', 'rouge2', 'rougeL']`. */
  rougeTypes?: readonly RougeType[];
  /** Tokeniser; default `'default'` (rouge-score's, ASCII only). */
  tokenizer?: RougeTokenizer;
}

const DEFAULT_TYPES: readonly RougeType[] = ['rouge1', 'rouge2', 'rougeL'];

/** rouge-score's default tokeniser (no stemming). */
export function rougeDefaultTokenize(text: string): string[] {
  const s = text.toLowerCase().replace(/[^a-z0-9]+/g, ' ');
  return s.split(/\s+/).filter((t) => /^[a-z0-9]+$/.test(t));
}

/** Character-level tokeniser for Chinese/Japanese: CJK chars + `[a-z0-9]+` runs. */
export function rougeZhCharTokenize(text: string): string[] {
  const out: string[] = [];
  let run = '';
  for (const ch of text.toLowerCase()) {
    if (/[a-z0-9]/.test(ch)) {
      run += ch;
      continue;
    }
    if (run) out.push(run);
    run = '';
    if (isCjkChar(ch)) out.push(ch);
  }
  if (run) out.push(run);
  return out;
}

function resolveTokenizer(t: RougeTokenizer | undefined): (text: string) => string[] {
  if (t === undefined || t === 'default') return rougeDefaultTokenize;
  if (t === 'zh-char') return rougeZhCharTokenize;
  assertArg(typeof t === 'function', `unknown ROUGE tokenizer ${String(t)}; use 'default', 'zh-char' or a function`);
  return t;
}

/** F-measure as `rouge_score.scoring.fmeasure`. */
export function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    // \u0001 cannot occur inside a token produced by the tokenisers above.
    const key = tokens.slice(i, i + n).join('\u0001');
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  return m;
}

/** ROUGE-N from token lists (`_score_ngrams`). */
export function rougeNFromTokens(target: readonly string[], prediction: readonly string[], n: number): RougeScore {
  const t = ngramCounts(target, n);
  const p = ngramCounts(prediction, n);
  let inter = 0;
  let tTotal = 0;
  let pTotal = 0;
  for (const [k, c] of t) {
    inter += Math.min(c, p.get(k) ?? 0);
    tTotal += c;
  }
  for (const c of p.values()) pTotal += c;
  const precision = inter / Math.max(pTotal, 1);
  const recall = inter / Math.max(tTotal, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** Length of the longest common subsequence (O(n·m) time, O(m) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** ROUGE-L from token lists (`_score_lcs`). */
export function rougeLFromTokens(target: readonly string[], prediction: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const l = lcsLength(target, prediction);
  const precision = l / prediction.length;
  const recall = l / target.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

function scoreOne(
  targetTokens: readonly string[],
  predTokens: readonly string[],
  type: RougeType,
): RougeScore {
  if (type === 'rougeL') return rougeLFromTokens(targetTokens, predTokens);
  const m = /^rouge([0-9])$/.exec(type);
  if (!m || Number(m[1]) <= 0) {
    throw new LorafitEvalError('E_EVAL_ARG', `invalid ROUGE type '${type}'; use rouge1..rouge9 or rougeL`);
  }
  return rougeNFromTokens(targetTokens, predTokens, Number(m[1]));
}

/**
 * ROUGE scores of one prediction against one or more references
 * (rouge-score `score` / `score_multi`). Note the argument order: prediction
 * first, as everywhere in this module.
 */
export function rouge(
  prediction: string,
  references: string | readonly string[],
  options: RougeOptions = {},
): Record<string, RougeScore> {
  const refs = typeof references === 'string' ? [references] : references;
  assertArg(refs.length > 0, 'rouge: at least one reference is required');
  const tok = resolveTokenizer(options.tokenizer);
  const types = options.rougeTypes ?? DEFAULT_TYPES;
  const predTokens = tok(prediction);
  const refTokens = refs.map((r) => tok(r));
  const out: Record<string, RougeScore> = {};
  for (const type of types) {
    let best: RougeScore | undefined;
    for (const rt of refTokens) {
      const s = scoreOne(rt, predTokens, type);
      if (!best || s.fmeasure > best.fmeasure) best = s;
    }
    out[type] = best!;
  }
  return out;
}

export interface RougeCorpusResult {
  /** Mean precision/recall/F-measure over examples, per ROUGE type. */
  mean: Record<string, RougeScore>;
  perExample: Record<string, RougeScore>[];
}

/** Mean ROUGE over a dataset (`references[i]`: one string or several). */
export function rougeCorpus(
  predictions: readonly string[],
  references: readonly (string | readonly string[])[],
  options: RougeOptions = {},
): RougeCorpusResult {
  if (predictions.length !== references.length) {
    throw new LorafitEvalError(
      'E_EVAL_LENGTH',
      `rougeCorpus: ${predictions.length} predictions but ${references.length} reference sets`,
    );
  }
  const types = options.rougeTypes ?? DEFAULT_TYPES;
  const perExample = predictions.map((p, i) => rouge(p, references[i]!, options));
  const mean: Record<string, RougeScore> = {};
  const n = Math.max(perExample.length, 1);
  for (const t of types) {
    const acc = { precision: 0, recall: 0, fmeasure: 0 };
    for (const e of perExample) {
      acc.precision += e[t]!.precision;
      acc.recall += e[t]!.recall;
      acc.fmeasure += e[t]!.fmeasure;
    }
    mean[t] = { precision: acc.precision / n, recall: acc.recall / n, fmeasure: acc.fmeasure / n };
  }
  return { mean, perExample };
}
