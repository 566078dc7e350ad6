/**
 * Exact match and token-level F1 against one or more reference answers, as in
 * the SQuAD evaluation scripts, with CJK-aware tokenisation.
 *
 * Normalisation (see `normalize.ts`): lowercase; remove ASCII punctuation
 * (Python `string.punctuation`) and Unicode punctuation `\p{P}`; remove the
 * articles a/an/the as whole words; collapse whitespace. Tokens are
 * whitespace-separated words, except that each CJK character (Han, Hiragana,
 * Katakana) is its own token.
 *
 * With several references the score is the maximum over references (SQuAD's
 * `metric_max_over_ground_truths`). Scores are fractions in [0, 1]; SQuAD
 * reports them multiplied by 100.
 *
 * Empty answers follow SQuAD v2.0: if either side has no tokens after
 * normalisation, F1 is 1 when both are empty and 0 otherwise.
 */
import { LorafitEvalError, assertArg } from './errors.js';
import { answerTokens, normalizeAnswer, type NormalizeAnswerOptions } from './normalize.js';

export type F1EmOptions = NormalizeAnswerOptions;

function refList(references: string | readonly string[]): readonly string[] {
  const refs = typeof references === 'string' ? [references] : references;
  assertArg(Array.isArray(refs) && refs.length > 0, 'at least one reference answer is required');
  for (const r of refs) assertArg(typeof r === 'string', 'reference answers must be strings');
  return refs;
}

/** Count multiset intersection size of two token lists. */
function commonCount(a: readonly string[], b: readonly string[]): number {
  const counts = new Map<string, number>();
  for (const t of b) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of a) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  return same;
}

/** F1 of two token lists (SQuAD `f1_score` with v2.0 empty handling). */
export function f1FromTokens(prediction: readonly string[], reference: readonly string[]): number {
  if (prediction.length === 0 || reference.length === 0) {
    return prediction.length === reference.length ? 1 : 0;
  }
  const same = commonCount(prediction, reference);
  if (same === 0) return 0;
  const precision = same / prediction.length;
  const recall = same / reference.length;
  return (2 * precision * recall) / (precision + recall);
}

/** 1 if the normalised prediction equals some normalised reference, else 0. */
export function exactMatch(
  prediction: string,
  references: string | readonly string[],
  options: F1EmOptions = {},
): 0 | 1 {
  assertArg(typeof prediction === 'string', 'prediction must be a string');
  const p = normalizeAnswer(prediction, options);
  return refList(references).some((r) => normalizeAnswer(r, options) === p) ? 1 : 0;
}

/** Token-level F1 in [0, 1]; maximum over the references. */
export function tokenF1(
  prediction: string,
  references: string | readonly string[],
  options: F1EmOptions = {},
): number {
  assertArg(typeof prediction === 'string', 'prediction must be a string');
  const p = answerTokens(prediction, options);
  let best = 0;
  for (const r of refList(references)) best = Math.max(best, f1FromTokens(p, answerTokens(r, options)));
  return best;
}

export interface F1EmResult {
  /** Mean exact match in [0, 1]. */
  exactMatch: number;
  /** Mean token F1 in [0, 1]. */
  f1: number;
  /** Number of scored examples. */
  count: number;
  /** Per-example scores, in input order. */
  perExample: { exactMatch: 0 | 1; f1: number }[];
}

/**
 * Mean exact match and F1 over a dataset. `references[i]` holds the accepted
 * answers of example i (a string or an array of strings).
 */
export function f1EmCorpus(
  predictions: readonly string[],
  references: readonly (string | readonly string[])[],
  options: F1EmOptions = {},
): F1EmResult {
  if (predictions.length !== references.length) {
    throw new LorafitEvalError(
      'E_EVAL_LENGTH',
      `f1EmCorpus: ${predictions.length} predictions but ${references.length} reference sets`,
    );
  }
  const perExample = predictions.map((p, i) => ({
    exactMatch: exactMatch(p, references[i]!, options),
    f1: tokenF1(p, references[i]!, options),
  }));
  const n = perExample.length;
  const mean = (f: (x: { exactMatch: number; f1: number }) => number) =>
    n === 0 ? 0 : perExample.reduce((s, x) => s + f(x), 0) / n;
  return { exactMatch: mean((x) => x.exactMatch), f1: mean((x) => x.f1), count: n, perExample };
}
