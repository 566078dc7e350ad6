/**
 * Small seeded pseudo-random generator for reproducible shuffles (A/B files).
 * Not for cryptography. The same seed gives the same sequence on every
 * platform and Node version.
 */
import { mulberry32, shuffled } from '../util/random.js';

/** 32-bit FNV-1a hash of a string (used to turn string seeds into numbers). */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32 (lib/util/random.ts): returns a function yielding floats in [0, 1). */
export function seededRandom(seed: number | string): () => number {
  return mulberry32(typeof seed === 'string' ? fnv1a32(seed) : Math.floor(seed));
}

export { shuffled };
