/**
 * Judge scores reported beside a negative and a positive control, so a score
 * can be read on the judge's actual range rather than in the abstract:
 *
 * - **negative control**: plain text that is *not* in the style (neutral prose,
 *   or the base model's answers); a good judge scores it low;
 * - **positive control**: true samples of the style that are *not* among the
 *   rubric's examples; a good judge scores them high.
 *
 * `relativeToControls` places the candidates' mean on the segment between the
 * two control means (0 = like plain text, 1 = like the real thing). When the
 * positive control does not score above the negative one the judge cannot
 * tell the style apart, and the relative score is `null`.
 */
import { LorafitEvalError, assertArg } from './errors.js';
import type { JudgeBatchResult, JudgeClient } from './judge.js';
import type { StyleRubric } from './judge-prompt.js';

export interface JudgeControlsInput {
  /** Texts to rate (e.g. the tuned model's outputs). */
  candidates: readonly string[];
  /** Plain texts not in the style. */
  negativeControls: readonly string[];
  /** True style samples held out from `rubric.examples`. */
  positiveControls: readonly string[];
}

export interface JudgeControlsReport {
  candidates: JudgeBatchResult;
  negativeControl: JudgeBatchResult;
  positiveControl: JudgeBatchResult;
  /** positive mean − negative mean (null if either is null). */
  separation: number | null;
  /** (candidates − negative) / (positive − negative), or null when undefined. */
  relativeToControls: number | null;
  /** Malformed judge answers over all three groups. */
  malformedAnswers: number;
  /** Items left without a score over all three groups. */
  failed: number;
}

/** Rate candidates and both controls with the same judge and rubric. */
export async function judgeWithControls(
  client: JudgeClient,
  rubric: StyleRubric,
  input: JudgeControlsInput,
  options: { signal?: AbortSignal } = {},
): Promise<JudgeControlsReport> {
  assertArg(input.candidates.length > 0, 'judgeWithControls: no candidates to rate');
  assertArg(input.negativeControls.length > 0, 'judgeWithControls: negativeControls must not be empty');
  assertArg(input.positiveControls.length > 0, 'judgeWithControls: positiveControls must not be empty');
  const shown = new Set(rubric.examples.map((e) => e.trim()));
  const leaked = input.positiveControls.findIndex((p) => shown.has(p.trim()));
  if (leaked >= 0) {
    throw new LorafitEvalError(
      'E_EVAL_ARG',
      `positiveControls[${leaked}] is also a rubric example; hold positive controls out of the examples the judge sees`,
    );
  }
  // Sequential groups keep the client's concurrency limit global.
  const candidates = await client.scoreMany(input.candidates, rubric, options);
  const negativeControl = await client.scoreMany(input.negativeControls, rubric, options);
  const positiveControl = await client.scoreMany(input.positiveControls, rubric, options);
  const neg = negativeControl.mean;
  const pos = positiveControl.mean;
  const cand = candidates.mean;
  const separation = neg !== null && pos !== null ? pos - neg : null;
  const relativeToControls =
    separation !== null && separation > 0 && cand !== null ? (cand - neg!) / separation : null;
  return {
    candidates,
    negativeControl,
    positiveControl,
    separation,
    relativeToControls,
    malformedAnswers: candidates.malformedAnswers + negativeControl.malformedAnswers + positiveControl.malformedAnswers,
    failed: candidates.failed + negativeControl.failed + positiveControl.failed,
  };
}
