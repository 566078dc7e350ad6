/**
 * Small seeded pseudo-random generator for reproducible shuffles (A/B files).
 * Not for cryptography. The same seed gives the same sequence on every
 * platform and Node version.
 */

/** 32-bit FNV-1a hash of a string (used to turn string seeds into numbers). */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: returns a function yielding floats in [0, 1). */
export function seededRandom(seed: number | string): () => number {
  let a = (typeof seed === 'string' ? fnv1a32(seed) : Math.floor(seed)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle into a new array. */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
