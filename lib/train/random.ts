// Seeded randomness for data order and dropout seeds: the same seed gives the same run, and any
// step's randomness can be re-derived on resume without replaying earlier steps.
import { mulberry32, shuffled } from '../util/random.js';

/** splitmix64-style mix of (seed, a, b) into a 32-bit unsigned integer. */
export function mixSeed(seed: number, a = 0, b = 0): number {
  let x = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(a) * 0xbf58476d1ce4e5b9n + BigInt(b) * 0x94d049bb133111ebn);
  x = BigInt.asUintN(64, (x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n);
  x = BigInt.asUintN(64, (x ^ (x >> 27n)) * 0x94d049bb133111ebn);
  x ^= x >> 31n;
  return Number(x & 0xffffffffn);
}

/** mulberry32: a small, fast 32-bit PRNG returning floats in [0, 1) (lib/util/random.ts). */
export const prng = mulberry32;

/** Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, seed: number): number[] {
  return shuffled(Array.from({ length: n }, (_, i) => i), prng(seed));
}
