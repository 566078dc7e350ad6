// Token batches as they cross into native code: a flat id array plus its [batch, seq] shape.
import { LorafitError } from '../errors.js';
import type { IdArray } from './native.js';

export interface TokenBatch {
  data: IdArray;
  shape: [number, number];
}

/** number[] (one row), number[][] (equal-length rows) or a TokenBatch -> TokenBatch. */
export function toTokenBatch(input: number[] | number[][] | TokenBatch | Int32Array | BigInt64Array, what = 'inputIds'): TokenBatch {
  if (input instanceof Int32Array || input instanceof BigInt64Array) return { data: input, shape: [1, input.length] };
  if (!Array.isArray(input)) {
    const { data, shape } = input as TokenBatch;
    if (!data || !Array.isArray(shape) || shape.length !== 2) throw new LorafitError('E_INPUT', `${what} must be { data, shape: [batch, seq] }`);
    if (shape[0] * shape[1] !== data.length) {
      throw new LorafitError('E_SHAPE', `${what} has ${data.length} ids but shape [${shape.join(', ')}] needs ${shape[0] * shape[1]}`);
    }
    return { data, shape: [shape[0], shape[1]] };
  }
  if (input.length === 0) throw new LorafitError('E_INPUT', `${what} is empty`);
  if (!Array.isArray(input[0])) {
    const row = input as number[];
    return { data: Int32Array.from(row), shape: [1, row.length] };
  }
  const rows = input as number[][];
  const seq = rows[0].length;
  const data = new Int32Array(rows.length * seq);
  rows.forEach((row, i) => {
    if (row.length !== seq) {
      throw new LorafitError('E_SHAPE', `${what}: row ${i} has ${row.length} ids but row 0 has ${seq}; pad them to one length and pass an attentionMask`);
    }
    data.set(row, i * seq);
  });
  return { data, shape: [rows.length, seq] };
}
