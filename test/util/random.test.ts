// The one PRNG keeps the exact sequences its three former copies gave (train order, A/B files,
// corpus splits): values pinned from the copies before they were merged.
import { describe, expect, it } from 'vitest';
import { mulberry32, shuffled } from '../../lib/util/random.js';
import { permutation, prng } from '../../lib/train/random.js';
import { seededRandom } from '../../lib/eval/random.js';
import { shuffle } from '../../lib/data/markdown-corpus.js';

describe('mulberry32', () => {
  it('gives the pinned sequence', () => {
    const r = mulberry32(42);
    expect([r(), r(), r()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
    const p = prng(42);
    expect(p()).toBe(0.6011037519201636);
  });

  it('permutation, shuffle and seededRandom keep their sequences', () => {
    expect(permutation(10, 7)).toEqual([6, 5, 8, 1, 2, 3, 4, 7, 9, 0]);
    expect(shuffle([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 7)).toEqual([6, 5, 8, 1, 2, 3, 4, 7, 9, 0]);
    expect(shuffled([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], mulberry32(7))).toEqual([6, 5, 8, 1, 2, 3, 4, 7, 9, 0]);
    const s = seededRandom('ab-seed');
    expect([s(), s()]).toEqual([0.9473345172591507, 0.7958674326073378]);
    const n = seededRandom(-1.5); // floored, then taken as uint32
    expect([n(), n()]).toEqual([0.1577923847362399, 0.04910933715291321]);
  });
});
