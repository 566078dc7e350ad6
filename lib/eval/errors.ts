/**
 * Errors thrown by the evaluation module.
 *
 * Every error carries a stable, machine-readable `code` so callers can branch
 * on it without parsing messages. Messages are written for a person to act on. It is a
 * LorafitError (the library's one error root).
 */
import { LorafitError } from '../errors.js';

/** Stable error codes of `lib/eval`. */
export type LorafitEvalErrorCode =
  /** An argument has the wrong type, shape or range. */
  | 'E_EVAL_ARG'
  /** Hypotheses and references (or two parallel arrays) differ in length. */
  | 'E_EVAL_LENGTH'
  /** The judge endpoint answered with a non-retryable HTTP status, or retries ran out. */
  | 'E_JUDGE_HTTP'
  /** A judge request exceeded its per-request timeout, or was aborted. */
  | 'E_JUDGE_TIMEOUT'
  /** No base URL (or no API key where one is required) was configured for the judge. */
  | 'E_JUDGE_CONFIG'
  /** A blind A/B file (or its key) is malformed; the message names the line. */
  | 'E_AB_FILE'
  /** Perplexity accumulator fed with invalid values. */
  | 'E_PPL_INPUT';

export class LorafitEvalError extends LorafitError {
  declare readonly code: LorafitEvalErrorCode;
  /** HTTP status for `E_JUDGE_HTTP` errors caused by an HTTP answer. */
  readonly status?: number;

  constructor(code: LorafitEvalErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LorafitEvalError';
    if (options?.status !== undefined) this.status = options.status;
  }
}

/** Throws `E_EVAL_ARG` unless `cond` holds. */
export function assertArg(cond: unknown, message: string): asserts cond {
  if (!cond) throw new LorafitEvalError('E_EVAL_ARG', message);
}
