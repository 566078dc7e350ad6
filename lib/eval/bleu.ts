/**
 * BLEU (Papineni et al., 2002), a faithful port of sacrebleu 2.x
 * (`sacrebleu/metrics/bleu.py`): same tokenisers (`13a` default, `zh`, `char`,
 * `none`), same n-gram clipping over multiple references (per-n-gram maximum
 * count over references), same closest reference length (ties go to the
 * shorter reference), same brevity penalty, same smoothing methods
 * (`exp` default = NIST/mteval smoothing, `floor`, `add-k`, `none`) and the
 * same `effective_order` rule. Scores are on sacrebleu's 0-100 scale.
 *
 * References use sacrebleu's layout: `references[k][i]` is the k-th reference
 * of segment i (one array per reference *stream*). A `null`/`undefined` entry
 * means "segment i has no k-th reference".
 */
import { LorafitEvalError, assertArg } from './errors.js';
import { bleuTokenizer, pyRstrip, type BleuTokenizerName } from './bleu-tokenizers.js';
import { splitPyWhitespace } from './normalize.js';

export type BleuSmoothMethod = 'exp' | 'floor' | 'add-k' | 'none';

export interface BleuOptions {
  /** Tokeniser, default `'13a'`; use `'zh'` for Chinese. */
  tokenize?: BleuTokenizerName;
  /** Lowercase before tokenising. Default false. */
  lowercase?: boolean;
  /** Smoothing method. Default `'exp'` (sacrebleu's default). */
  smoothMethod?: BleuSmoothMethod;
  /** Value for `floor` (default 0.1) and `add-k` (default 1). */
  smoothValue?: number;
  /** Maximum n-gram order. Default 4. */
  maxNgramOrder?: number;
  /**
   * Stop at the highest n-gram order with any hypothesis n-grams (sacrebleu
   * `effective_order`). Default false for corpus BLEU, true for sentence BLEU.
   */
  effectiveOrder?: boolean;
}

export interface BleuResult {
  /** BLEU on a 0-100 scale. */
  score: number;
  /** Matched n-grams per order (after add-k smoothing, as sacrebleu reports). */
  counts: number[];
  /** Hypothesis n-grams per order. */
  totals: number[];
  /** Per-order precisions in percent. */
  precisions: number[];
  /** Brevity penalty. */
  bp: number;
  sysLen: number;
  refLen: number;
  /** sysLen / refLen (0 when refLen is 0). */
  ratio: number;
  /** e.g. `nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp` (sacrebleu's minus the version). */
  signature: string;
}

const SMOOTH_DEFAULTS: Record<BleuSmoothMethod, number | undefined> = {
  none: undefined,
  floor: 0.1,
  'add-k': 1,
  exp: undefined,
};

/** sacrebleu `my_log`: log with log(0) floored to -9999999999. */
function myLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/** Sufficient statistics of a segment or corpus: [hypLen, refLen, ...correct, ...total]. */
export type BleuStats = number[];

/**
 * sacrebleu `BLEU.compute_bleu`: BLEU from sufficient statistics.
 * `correct` and `total` are copied, not mutated.
 */
export function computeBleu(
  correctIn: readonly number[],
  totalIn: readonly number[],
  sysLen: number,
  refLen: number,
  options: Pick<BleuOptions, 'smoothMethod' | 'smoothValue' | 'effectiveOrder' | 'maxNgramOrder'> = {},
): Omit<BleuResult, 'signature'> {
  const method = options.smoothMethod ?? 'exp';
  assertArg(method in SMOOTH_DEFAULTS, `unknown BLEU smoothMethod '${method}'`);
  const smoothValue = options.smoothValue ?? SMOOTH_DEFAULTS[method] ?? 0;
  const maxOrder = options.maxNgramOrder ?? 4;
  const correct = [...correctIn];
  const total = [...totalIn];
  let bp = 1;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0;
  const precisions = new Array<number>(maxOrder).fill(0);
  const ratio = refLen ? sysLen / refLen : 0;
  const base = { counts: correct, totals: total, precisions, bp, sysLen, refLen, ratio };
  if (!correct.some((c) => c !== 0)) return { score: 0, ...base };

  let smoothMteval = 1;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (method === 'add-k' && n > 1) {
      correct[n - 1]! += smoothValue;
      total[n - 1]! += smoothValue;
    }
    if (total[n - 1] === 0) break;
    if (options.effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      if (method === 'exp') {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]!);
      } else if (method === 'floor') {
        precisions[n - 1] = (100 * smoothValue) / total[n - 1]!;
      }
    } else {
      precisions[n - 1] = (100 * correct[n - 1]!) / total[n - 1]!;
    }
  }
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) logSum += myLog(precisions[i]!);
  return { score: bp * Math.exp(logSum / effOrder), ...base };
}

function ngramCounts(tokens: readonly string[], maxOrder: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      // Tokens never contain spaces, so a space-joined key is unambiguous; the
      // order is recovered from the key's number of spaces.
      const key = tokens.slice(i, i + n).join(' ');
      m.set(key, (m.get(key) ?? 0) + 1);
    }
  }
  return m;
}

function closestRefLen(hypLen: number, refLens: readonly number[]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const r of refLens) {
    const diff = Math.abs(hypLen - r);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = r;
    } else if (diff === closestDiff && r < closestLen) {
      closestLen = r;
    }
  }
  return closestLen;
}

class BleuScorer {
  private readonly tok: (line: string) => string;
  private readonly maxOrder: number;

  constructor(private readonly options: BleuOptions) {
    this.tok = bleuTokenizer(options.tokenize ?? '13a');
    assertArg(this.tok !== undefined, `unknown BLEU tokenizer '${options.tokenize}'; use 13a, zh, char or none`);
    this.maxOrder = options.maxNgramOrder ?? 4;
    assertArg(Number.isInteger(this.maxOrder) && this.maxOrder >= 1, 'maxNgramOrder must be a positive integer');
  }

  private preprocess(s: string): string[] {
    const lc = this.options.lowercase ? s.toLowerCase() : s;
    return splitPyWhitespace(this.tok(pyRstrip(lc)));
  }

  segmentStats(hypothesis: string, refs: readonly string[]): BleuStats {
    const refNgrams = new Map<string, number>();
    const refLens: number[] = [];
    for (const r of refs) {
      const toks = this.preprocess(r);
      refLens.push(toks.length);
      for (const [k, c] of ngramCounts(toks, this.maxOrder)) {
        if ((refNgrams.get(k) ?? 0) < c) refNgrams.set(k, c);
      }
    }
    const hypToks = this.preprocess(hypothesis);
    const correct = new Array<number>(this.maxOrder).fill(0);
    const total = new Array<number>(this.maxOrder).fill(0);
    for (const [k, c] of ngramCounts(hypToks, this.maxOrder)) {
      let n = 0;
      for (let i = 0; i < k.length; i++) if (k.charCodeAt(i) === 32) n++;
      total[n]! += c;
      const rc = refNgrams.get(k);
      if (rc !== undefined) correct[n]! += Math.min(c, rc);
    }
    return [hypToks.length, closestRefLen(hypToks.length, refLens), ...correct, ...total];
  }

  score(stats: BleuStats, nrefs: number): BleuResult {
    const o = this.maxOrder;
    const r = computeBleu(stats.slice(2, 2 + o), stats.slice(2 + o), stats[0]!, stats[1]!, {
      ...this.options,
      maxNgramOrder: o,
    });
    const method = this.options.smoothMethod ?? 'exp';
    const def = SMOOTH_DEFAULTS[method];
    const smooth = def === undefined ? method : `${method}[${(this.options.smoothValue ?? def).toFixed(2)}]`;
    const signature =
      `nrefs:${nrefs < 0 ? 'var' : nrefs}|case:${this.options.lowercase ? 'lc' : 'mixed'}` +
      `|eff:${this.options.effectiveOrder ? 'yes' : 'no'}|tok:${this.options.tokenize ?? '13a'}|smooth:${smooth}`;
    return { ...r, signature };
  }
}

/**
 * Corpus-level BLEU, as `sacrebleu.corpus_bleu(hypotheses, references)`.
 * `references[k][i]` is reference k of segment i (sacrebleu's stream layout).
 */
export function corpusBleu(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null | undefined)[])[],
  options: BleuOptions = {},
): BleuResult {
  assertArg(Array.isArray(references) && references.length > 0, 'corpusBleu: at least one reference stream is required');
  for (const [k, stream] of references.entries()) {
    if (stream.length !== hypotheses.length) {
      throw new LorafitEvalError(
        'E_EVAL_LENGTH',
        `corpusBleu: reference stream ${k} has ${stream.length} segments but there are ${hypotheses.length} hypotheses ` +
          `(references[k][i] is reference k of segment i)`,
      );
    }
  }
  const scorer = new BleuScorer(options);
  const o = options.maxNgramOrder ?? 4;
  const sum = new Array<number>(2 + 2 * o).fill(0);
  const nrefsSeen = new Set<number>();
  hypotheses.forEach((hyp, i) => {
    const refs = references.map((s) => s[i]).filter((r): r is string => r !== null && r !== undefined);
    nrefsSeen.add(refs.length);
    const st = scorer.segmentStats(hyp, refs);
    for (let j = 0; j < sum.length; j++) sum[j]! += st[j]!;
  });
  return scorer.score(sum, nrefsSeen.size === 1 ? [...nrefsSeen][0]! : -1);
}

/**
 * Sentence-level BLEU, as `sacrebleu.sentence_bleu(hypothesis, references)`:
 * same defaults as corpus BLEU except `effectiveOrder` defaults to true.
 */
export function sentenceBleu(
  hypothesis: string,
  references: string | readonly string[],
  options: BleuOptions = {},
): BleuResult {
  const refs = typeof references === 'string' ? [references] : references;
  assertArg(refs.length > 0, 'sentenceBleu: at least one reference is required');
  const opts = { ...options, effectiveOrder: options.effectiveOrder ?? true };
  const scorer = new BleuScorer(opts);
  return scorer.score(scorer.segmentStats(hypothesis, refs), refs.length);
}

/**
 * sacrebleu's one-line summary, e.g.
 * `BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)`.
 */
export function formatBleu(r: BleuResult): string {
  const prec = r.precisions.map((p) => p.toFixed(1)).join('/');
  return (
    `BLEU = ${r.score.toFixed(2)} ${prec} (BP = ${r.bp.toFixed(3)} ratio = ${r.ratio.toFixed(3)} ` +
    `hyp_len = ${r.sysLen} ref_len = ${r.refLen})`
  );
}
