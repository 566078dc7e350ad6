// Access to the HF golden fixtures copied into test/fixtures/hf.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors, toFloat32, toIntArray, type StFile } from '../../lib/util/safetensors.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const HF = join(FIXTURES, 'hf');

export class Golden {
  readonly file: StFile;
  constructor(readonly arch: string, path = join(HF, arch, 'golden.safetensors')) {
    this.file = readSafetensors(path);
  }
  has(key: string): boolean {
    return this.file.tensors.has(key);
  }
  floats(key: string): Float32Array {
    const t = this.file.tensors.get(key);
    if (!t) throw new Error(`golden ${this.arch}: no ${key}`);
    return toFloat32(t);
  }
  ints(key: string): number[] {
    const t = this.file.tensors.get(key);
    if (!t) throw new Error(`golden ${this.arch}: no ${key}`);
    return toIntArray(t);
  }
  shape(key: string): number[] {
    return this.file.tensors.get(key)!.shape;
  }
  keys(prefix = ''): string[] {
    return [...this.file.tensors.keys()].filter((k) => k.startsWith(prefix));
  }
}

/** Max |a - b| over the rows of a [B, T, V] tensor whose mask entry (per [B, T]) is 1. */
export function maxAbsDiffMasked(a: Float32Array, b: Float32Array, mask: number[], inner: number): number {
  let worst = 0;
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    for (let i = p * inner; i < (p + 1) * inner; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  return worst;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** [B, T] row-major ids -> number[][] */
export function rows(flat: number[], shape: number[]): number[][] {
  const out: number[][] = [];
  for (let b = 0; b < shape[0]; b++) out.push(flat.slice(b * shape[1], (b + 1) * shape[1]));
  return out;
}
