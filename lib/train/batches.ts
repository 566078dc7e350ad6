// Turns tokenized examples into optimizer steps: a seeded order per epoch (optionally grouped by
// length, as HF's LengthGroupedSampler), micro-batches of `batchSize` examples padded to their
// longest row (dynamic padding), `accumulation` micro-batches per optimizer step.
import { LorafitError } from '../errors.js';
import type { MicroBatch } from '../model.js';
import { mixSeed, permutation } from './random.js';

export interface Example {
  inputIds: ArrayLike<number>;
  labels: ArrayLike<number>;
}

export interface BatchPlan {
  batchSize: number;
  accumulation: number;
  seed: number;
  groupByLength: boolean;
  shuffle: boolean;
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
    out.push(collate(order.slice(start, start + plan.batchSize).map((i) => examples[i]), padId));
  }
  return out;
}

/** Right-pads rows to the longest: pad id / label -100 / mask 0. */
export function collate(rows: Example[], padId = 0): MicroBatch {
  const T = Math.max(...rows.map((r) => r.inputIds.length));
  const B = rows.length;
  const ids = new Int32Array(B * T).fill(padId);
  const labels = new Int32Array(B * T).fill(-100);
  const mask = new Int32Array(B * T);
  rows.forEach((r, b) => {
    if (r.labels.length !== r.inputIds.length) {
      throw new LorafitError('E_DATA', `an example has ${r.inputIds.length} input ids but ${r.labels.length} labels`);
    }
    for (let t = 0; t < r.inputIds.length; t++) {
      ids[b * T + t] = r.inputIds[t];
      labels[b * T + t] = r.labels[t];
      mask[b * T + t] = 1;
    }
  });
  return { inputIds: { data: ids, shape: [B, T] }, labels: { data: labels, shape: [B, T] }, attentionMask: { data: mask, shape: [B, T] } };
}
