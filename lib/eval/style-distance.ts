/**
 * Distance between two style profiles (`style.ts`), so one can say how far a
 * model's outputs are from a reference corpus, and whether tuning moved them
 * closer than the base model's outputs.
 *
 * distance = wL · JSD(sentence-length histograms)
 *          + wP · JSD(punctuation-mark distributions)
 *          + wR · mean |Δ ratio| over `ratioKeys`
 * with weights normalised to sum 1. Each part lies in [0, 1] (JSD with base-2
 * logarithms), so the total does too; 0 means identical indicators.
 */
import { LorafitEvalError, assertArg } from './errors.js';
import type { StyleProfile, StyleRatios } from './style.js';

export interface StyleDistanceOptions {
  /** Relative weights; default 1/3 each. */
  weights?: { sentenceLength?: number; punctuation?: number; ratios?: number };
  /**
   * Ratios compared by the L1 part. Default: mattr, punctuationDensity,
   * questionRate, exclamationRate, cjkShare (raw TTR is left out: it depends on
   * corpus size).
   */
  ratioKeys?: readonly (keyof StyleRatios)[];
}

export interface StyleDistance {
  /** Weighted total in [0, 1]. */
  total: number;
  sentenceLengthJsd: number;
  punctuationJsd: number;
  /** Mean absolute difference of the compared ratios. */
  ratioL1: number;
  /** Signed difference (b − a) of each compared ratio. */
  ratioDiffs: Partial<Record<keyof StyleRatios, number>>;
}

export const DEFAULT_RATIO_KEYS: readonly (keyof StyleRatios)[] = [
  'mattr',
  'punctuationDensity',
  'questionRate',
  'exclamationRate',
  'cjkShare',
];

/**
 * Jensen-Shannon divergence with base-2 logarithms, in [0, 1]. Inputs are
 * non-negative weights (normalised here), as arrays of equal length or as
 * records keyed by category (missing keys count as 0). Two empty
 * distributions are at distance 0; an empty and a non-empty one at 1.
 */
export function jensenShannon(
  p: readonly number[] | Readonly<Record<string, number>>,
  q: readonly number[] | Readonly<Record<string, number>>,
): number {
  let a: number[];
  let b: number[];
  if (Array.isArray(p) || Array.isArray(q)) {
    assertArg(Array.isArray(p) && Array.isArray(q) && p.length === q.length, 'jensenShannon: arrays of equal length required');
    a = [...(p as number[])];
    b = [...(q as number[])];
  } else {
    const pr = p as Record<string, number>;
    const qr = q as Record<string, number>;
    const keys = [...new Set([...Object.keys(pr), ...Object.keys(qr)])];
    a = keys.map((k) => pr[k] ?? 0);
    b = keys.map((k) => qr[k] ?? 0);
  }
  for (const x of [...a, ...b]) assertArg(Number.isFinite(x) && x >= 0, 'jensenShannon: weights must be finite and >= 0');
  const sa = a.reduce((s, x) => s + x, 0);
  const sb = b.reduce((s, x) => s + x, 0);
  if (sa === 0 || sb === 0) return sa === sb ? 0 : 1;
  let js = 0;
  for (let i = 0; i < a.length; i++) {
    const pi = a[i]! / sa;
    const qi = b[i]! / sb;
    const m = (pi + qi) / 2;
    if (pi > 0) js += 0.5 * pi * Math.log2(pi / m);
    if (qi > 0) js += 0.5 * qi * Math.log2(qi / m);
  }
  return Math.min(1, Math.max(0, js));
}

/** Distance between two style profiles built with the same options. */
export function styleDistance(a: StyleProfile, b: StyleProfile, options: StyleDistanceOptions = {}): StyleDistance {
  const ea = a.sentenceLength.histogram.edges;
  const eb = b.sentenceLength.histogram.edges;
  if (ea.length !== eb.length || ea.some((e, i) => e !== eb[i])) {
    throw new LorafitEvalError(
      'E_EVAL_ARG',
      `styleDistance: profiles use different histogram edges ([${ea.join(', ')}] vs [${eb.join(', ')}]); build both with the same histogramEdges`,
    );
  }
  const w = options.weights ?? {};
  const wl = w.sentenceLength ?? 1;
  const wp = w.punctuation ?? 1;
  const wr = w.ratios ?? 1;
  const wsum = wl + wp + wr;
  assertArg(wl >= 0 && wp >= 0 && wr >= 0 && wsum > 0, 'styleDistance: weights must be >= 0 and not all 0');
  const keys = options.ratioKeys ?? DEFAULT_RATIO_KEYS;

  const sentenceLengthJsd = jensenShannon(a.sentenceLength.histogram.counts, b.sentenceLength.histogram.counts);
  const punctuationJsd = jensenShannon(a.punctuationCounts, b.punctuationCounts);
  const ratioDiffs: Partial<Record<keyof StyleRatios, number>> = {};
  let l1 = 0;
  for (const k of keys) {
    const d = b.ratios[k] - a.ratios[k];
    ratioDiffs[k] = d;
    l1 += Math.abs(d);
  }
  const ratioL1 = keys.length ? l1 / keys.length : 0;
  const total = (wl * sentenceLengthJsd + wp * punctuationJsd + wr * ratioL1) / wsum;
  return { total, sentenceLengthJsd, punctuationJsd, ratioL1, ratioDiffs };
}

export interface StyleComparison {
  /** Distance of the base model's outputs to the reference corpus. */
  base: StyleDistance;
  /** Distance of the tuned model's outputs to the reference corpus. */
  tuned: StyleDistance;
  /** base.total − tuned.total: positive when tuning moved the style closer. */
  improvement: number;
  /** improvement / base.total (0 when base.total is 0). */
  relativeImprovement: number;
  closer: 'tuned' | 'base' | 'tie';
}

/** How far base and tuned outputs are from the reference style, side by side. */
export function compareStyle(
  reference: StyleProfile,
  base: StyleProfile,
  tuned: StyleProfile,
  options: StyleDistanceOptions = {},
): StyleComparison {
  const b = styleDistance(reference, base, options);
  const t = styleDistance(reference, tuned, options);
  const improvement = b.total - t.total;
  const eps = 1e-12;
  return {
    base: b,
    tuned: t,
    improvement,
    relativeImprovement: b.total > 0 ? improvement / b.total : 0,
    closer: Math.abs(improvement) <= eps ? 'tie' : improvement > 0 ? 'tuned' : 'base',
  };
}
