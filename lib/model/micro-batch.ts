// A training or evaluation micro-batch as lib/ takes it, and its conversion to the native baton.
import { LorafitError } from '../errors.js';
import type { NativeMicroBatch } from './native.js';
import { toTokenBatch, type TokenBatch } from './tokens.js';

/** One micro-batch: equal-length rows; labels -100 where not trained (shifted inside, as HF). */
export interface MicroBatch {
  inputIds: number[][] | TokenBatch;
  labels: number[][] | TokenBatch;
  attentionMask?: number[][] | TokenBatch;
  /**
   * Padding-free / packed: the lengths of the examples laid end to end over the rows (row-major,
   * summing to batch x seq; every row starts one). Each example attends only to itself (block-
   * diagonal causal attention), its positions restart at 0, and the label of its first token is
   * not counted (as the shift drops a row's first label). attentionMask is then not used.
   */
  segmentLengths?: ArrayLike<number>;
}

export function toSegments(s: ArrayLike<number> | undefined, what: string): Int32Array | undefined {
  if (s === undefined) return undefined;
  const out = Int32Array.from(s as ArrayLike<number>);
  for (let i = 0; i < out.length; i++) {
    if (!(out[i] > 0) || out[i] !== (s as ArrayLike<number>)[i]) throw new LorafitError('E_SHAPE', `${what}[${i}] must be a positive integer, got ${String((s as ArrayLike<number>)[i])}`);
  }
  return out;
}

export function toNativeBatch(b: MicroBatch, i: number): NativeMicroBatch {
  const ids = toTokenBatch(b.inputIds, `batches[${i}].inputIds`);
  const labels = toTokenBatch(b.labels, `batches[${i}].labels`);
  const mask = b.attentionMask === undefined ? undefined : toTokenBatch(b.attentionMask, `batches[${i}].attentionMask`);
  for (const [name, t] of [['labels', labels], ['attentionMask', mask]] as const) {
    if (t && (t.shape[0] !== ids.shape[0] || t.shape[1] !== ids.shape[1])) {
      throw new LorafitError('E_SHAPE', `batches[${i}].${name} has shape [${t.shape.join(', ')}] but inputIds has [${ids.shape.join(', ')}]`);
    }
  }
  return { inputIds: ids.data, labels: labels.data, attentionMask: mask?.data, segments: toSegments(b.segmentLengths, `batches[${i}].segmentLengths`), shape: ids.shape };
}

