/**
 * Perplexity from streamed per-batch negative log-likelihood sums.
 *
 * The native model reports, per evaluation batch, the *sum* of the token-level
 * negative log-likelihoods (natural log, over the tokens that count, i.e. the
 * labels that are not -100) and the number of such tokens. Corpus perplexity
 * is then `exp(Σ sumNll / Σ tokens)`: a token-weighted mean, **not** the mean
 * of per-batch perplexities (which over-weights short batches).
 *
 * Sums use Neumaier compensated summation, so millions of batches lose no
 * precision.
 */
import { LorafitEvalError } from './errors.js';

/** One batch as reported by the model: summed NLL (nats) and token count. */
export interface NllBatch {
  /** Sum over counted tokens of -ln p(token), in nats. */
  sumNll: number;
  /** Number of counted tokens (non-negative integer). */
  tokens: number;
}

export interface PerplexityResult {
  /** Mean negative log-likelihood per token, in nats (= cross-entropy loss). */
  meanNll: number;
  /** exp(meanNll). */
  perplexity: number;
  /** Mean NLL in bits per token (meanNll / ln 2). */
  bitsPerToken: number;
  /** Total counted tokens. */
  tokens: number;
  /** Total NLL in nats. */
  sumNll: number;
  /** Number of batches added. */
  batches: number;
}

/** Neumaier (improved Kahan) running sum. */
class CompensatedSum {
  private sum = 0;
  private c = 0;
  add(x: number): void {
    const t = this.sum + x;
    if (Math.abs(this.sum) >= Math.abs(x)) this.c += this.sum - t + x;
    else this.c += x - t + this.sum;
    this.sum = t;
  }
  get value(): number {
    return this.sum + this.c;
  }
}

/** Accumulates `NllBatch`es and reports mean NLL and perplexity. */
export class PerplexityAccumulator {
  private readonly nll = new CompensatedSum();
  private tokenCount = 0;
  private batchCount = 0;

  /** Adds one batch. Throws `E_PPL_INPUT` on NaN/negative values or fractional token counts. */
  add(batch: NllBatch): this {
    const { sumNll, tokens } = batch ?? ({} as NllBatch);
    const where = `batch ${this.batchCount}`;
    if (typeof sumNll !== 'number' || !Number.isFinite(sumNll) || sumNll < 0) {
      throw new LorafitEvalError('E_PPL_INPUT', `${where}: sumNll must be a finite number >= 0 (got ${String(sumNll)})`);
    }
    if (typeof tokens !== 'number' || !Number.isInteger(tokens) || tokens < 0) {
      throw new LorafitEvalError('E_PPL_INPUT', `${where}: tokens must be a non-negative integer (got ${String(tokens)})`);
    }
    if (tokens === 0 && sumNll !== 0) {
      throw new LorafitEvalError('E_PPL_INPUT', `${where}: sumNll is ${sumNll} but tokens is 0`);
    }
    this.nll.add(sumNll);
    this.tokenCount += tokens;
    this.batchCount++;
    return this;
  }

  /** Adds every batch of a (sync or async) iterable, e.g. the model's eval stream. */
  async addAll(batches: Iterable<NllBatch> | AsyncIterable<NllBatch>): Promise<this> {
    for await (const b of batches) this.add(b);
    return this;
  }

  /** Folds another accumulator (e.g. from another eval shard) into this one. */
  merge(other: PerplexityAccumulator): this {
    this.nll.add(other.nll.value);
    this.tokenCount += other.tokenCount;
    this.batchCount += other.batchCount;
    return this;
  }

  get tokens(): number {
    return this.tokenCount;
  }

  get batches(): number {
    return this.batchCount;
  }

  /** True once at least one token was counted. */
  get hasTokens(): boolean {
    return this.tokenCount > 0;
  }

  /** The result so far. Throws `E_PPL_INPUT` while no token has been counted. */
  result(): PerplexityResult {
    if (this.tokenCount === 0) {
      throw new LorafitEvalError('E_PPL_INPUT', `perplexity is undefined: no tokens counted in ${this.batchCount} batches`);
    }
    const sumNll = this.nll.value;
    const meanNll = sumNll / this.tokenCount;
    return {
      meanNll,
      perplexity: Math.exp(meanNll),
      bitsPerToken: meanNll / Math.LN2,
      tokens: this.tokenCount,
      sumNll,
      batches: this.batchCount,
    };
  }
}

/** Perplexity of a finite list of batches. */
export function perplexityFromBatches(batches: Iterable<NllBatch>): PerplexityResult {
  const acc = new PerplexityAccumulator();
  for (const b of batches) acc.add(b);
  return acc.result();
}

/** Perplexity from per-token NLLs (nats), e.g. for a single sequence. */
export function perplexityFromTokenNlls(nlls: ArrayLike<number>): PerplexityResult {
  const s = new CompensatedSum();
  for (let i = 0; i < nlls.length; i++) s.add(nlls[i]!);
  return new PerplexityAccumulator().add({ sumNll: s.value, tokens: nlls.length }).result();
}
