// Turns tokenized examples into optimizer steps: a seeded order per epoch (optionally grouped by
// length, as HF's LengthGroupedSampler), micro-batches of `batchSize` examples, `accumulation`
// micro-batches per optimizer step. By default a micro-batch is padding-free: its examples are laid
// end to end in one row with their lengths as segments (positions restart per example, attention
// is isolated per example, no pad token is computed), as transformers' DataCollatorWithFlattening.
// `paddingFree: false` pads the rows to the longest instead (dynamic padding).
import { LorafitError } from '../errors.js';
import type { MicroBatch } from '../model/model.js';
import { mixSeed, permutation } from './random.js';

export interface Example {
  inputIds: ArrayLike<number>;
  labels: ArrayLike<number>;
  /** A packed block: the lengths of the documents it holds (they attend only to themselves). */
  segmentLengths?: ArrayLike<number>;
}

export interface BatchPlan {
  batchSize: number;
  accumulation: number;
  seed: number;
  groupByLength: boolean;
  shuffle: boolean;
  /** One row per micro-batch with the examples as segments (default true); false: padded rows. */
  paddingFree?: boolean;
}

/** Example indices in the order epoch `epoch` visits them. */
export function epochOrder(lengths: number[], epoch: number, plan: BatchPlan): number[] {
  if (!plan.shuffle) return lengths.map((_, i) => i);
  const order = permutation(lengths.length, mixSeed(plan.seed, epoch, 0x5eed));
  if (!plan.groupByLength) return order;
  // Mega-batches of 50 micro-batches, each sorted by length (longest first) so padding is small
  // while the order stays random across mega-batches.
  const mega = plan.batchSize * 50;
  const out: number[] = [];
  for (let i = 0; i < order.length; i += mega) {
    out.push(...order.slice(i, i + mega).sort((a, b) => lengths[b] - lengths[a]));
  }
  return out;
}

export function stepsPerEpoch(n: number, plan: BatchPlan): number {
  return Math.ceil(Math.ceil(n / plan.batchSize) / plan.accumulation);
}

/** The micro-batches of optimizer step `step` (0-based within the epoch). */
export function stepBatches(examples: Example[], order: number[], step: number, plan: BatchPlan, padId = 0): MicroBatch[] {
  const out: MicroBatch[] = [];
  for (let m = 0; m < plan.accumulation; m++) {
    const start = (step * plan.accumulation + m) * plan.batchSize;
    if (start >= order.length) break;
    const rows = order.slice(start, start + plan.batchSize).map((i) => examples[i]);
    out.push((plan.paddingFree ?? true) ? collatePaddingFree(rows) : collate(rows, padId));
  }
  return out;
}

function checkExample(r: Example): void {
  if (r.labels.length !== r.inputIds.length) {
    throw new LorafitError('E_DATA', `an example has ${r.inputIds.length} input ids but ${r.labels.length} labels`);
  }
  if (r.segmentLengths !== undefined) {
    let sum = 0;
    for (let i = 0; i < r.segmentLengths.length; i++) sum += r.segmentLengths[i];
    if (sum !== r.inputIds.length) throw new LorafitError('E_DATA', `an example's segmentLengths sum to ${sum} but it has ${r.inputIds.length} input ids`);
  }
}

function pushSegments(out: number[], r: Example): void {
  if (r.segmentLengths === undefined) {
    if (r.inputIds.length > 0) out.push(r.inputIds.length);
  } else {
    for (let i = 0; i < r.segmentLengths.length; i++) if (r.segmentLengths[i] > 0) out.push(r.segmentLengths[i]);
  }
}

/**
 * Right-pads rows to the longest: pad id / label -100 / mask 0. A packed row (segmentLengths)
 * keeps its documents isolated: the batch then carries segments, the pad tail being one more.
 */
export function collate(rows: Example[], padId = 0): MicroBatch {
  const T = Math.max(...rows.map((r) => r.inputIds.length));
  const B = rows.length;
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(-100);
  const mask = new Int32Array(B * T);
  const packed = rows.some((r) => r.segmentLengths !== undefined);
  const segments: number[] = [];
  rows.forEach((r, b) => {
    checkExample(r);
    for (let t = 0; t < r.inputIds.length; t++) {
      ids[b * T + t] = r.inputIds[t];
      labels[b * T + t] = r.labels[t];
      mask[b * T + t] = 1;
    }
    if (packed) {
      pushSegments(segments, r);
      if (r.inputIds.length < T) segments.push(T - r.inputIds.length);
    }
  });
  const batch: MicroBatch = { inputIds: { data: ids, shape: [B, T] }, labels: { data: labels, shape: [B, T] }, attentionMask: { data: mask, shape: [B, T] } };
  if (packed) batch.segmentLengths = Int32Array.from(segments);
  return batch;
}

/**
 * The rows laid end to end as one row [1, sum of lengths], each example (or each document of a
 * packed example) one segment. The label of every segment's first token is -100: the token before
 * it belongs to another example (the native side drops it too), so the loss counts exactly the
 * tokens that padded rows count.
 */
export function collatePaddingFree(rows: Example[]): MicroBatch {
  let N = 0;
  for (const r of rows) {
    checkExample(r);
    N += r.inputIds.length;
  }
  const ids = new Int32Array(N);
  const labels = new Int32Array(N);
  const segments: number[] = [];
  let at = 0;
  for (const r of rows) {
    for (let t = 0; t < r.inputIds.length; t++) {
      ids[at + t] = r.inputIds[t];
      labels[at + t] = r.labels[t];
    }
    const first = segments.length;
    pushSegments(segments, r);
    let start = at;
    for (let i = first; i < segments.length; i++) {
      labels[start] = -100;
      start += segments[i];
    }
    at += r.inputIds.length;
  }
  return { inputIds: { data: ids, shape: [1, N] }, labels: { data: labels, shape: [1, N] }, segmentLengths: Int32Array.from(segments) };
}
