// The native GGUF dequantizers (native/gguf_quants.cc) against the real gguf package:
// gguf.quants.dequantize on blocks that gguf.quants.quantize made from random floats (where it can
// quantize the type) and on random bytes (f16 scales forced finite), plus edge cases of the scales
// (subnormal, negative, extreme, zero blocks, inf/NaN) and every F16/BF16 bit pattern. The float32
// bits must be identical (any NaN equals any NaN).
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { dequantizeGguf } from '../../lib/gguf/dequantize.js';
import { rejects } from '../helpers/rejects.js';
import { scratchDir } from '../helpers/python.js';
import { bitsDiffer, floats, reference } from './reference.js';

interface Case {
  case: string;
  type: number;
  typeName: string;
  count: number;
  input: string;
  expected: string;
}

const TYPES = ['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];
const dir = scratchDir('gguf-dequant');
let cases: Case[] = [];

// Every test awaits the reference, so a missing Python fails each one with its message (a
// throwing beforeAll would only mark them skipped).
let ready: Promise<void> | undefined;
function setup(): Promise<void> {
  ready ??= (async () => {
    cases = await reference<Case[]>('cases', dir);
  })();
  return ready;
}
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('GGUF dequantizers, bit-for-bit equal to gguf.quants.dequantize', () => {
  it('the reference covers all 13 types, each with several cases', async () => {
    await setup();
    expect([...new Set(cases.map((c) => c.typeName))].sort()).toEqual([...TYPES].sort());
    for (const t of TYPES) expect(cases.filter((c) => c.typeName === t).length, t).toBeGreaterThanOrEqual(2);
  });

  it.each(TYPES)('%s', async (typeName) => {
    await setup();
    const mine = cases.filter((c) => c.typeName === typeName);
    expect(mine.length).toBeGreaterThan(0);
    for (const c of mine) {
      const input = new Uint8Array(readFileSync(c.input));
      const expected = floats(readFileSync(c.expected));
      expect(expected.length, c.case).toBe(c.count);
      const actual = dequantizeGguf(input, c.type, c.count);
      expect(bitsDiffer(actual, expected), c.case).toBeUndefined();
    }
  });

  it('a subarray of a larger buffer decodes from its own offset', async () => {
    await setup();
    const c = cases.find((x) => x.case === 'Q4_K-random')!;
    const input = readFileSync(c.input);
    const padded = new Uint8Array(input.length + 3);
    padded.set(input, 3);  // odd offset: the decoder must not assume alignment
    const actual = dequantizeGguf(padded.subarray(3), c.type, c.count);
    expect(bitsDiffer(actual, floats(readFileSync(c.expected)))).toBeUndefined();
  });
});

describe('GGUF dequantizer errors', () => {
  it('an unknown type, a count that is not whole blocks, or a wrong byte count is a LorafitError E_GGUF', async () => {
    await rejects(() => dequantizeGguf(new Uint8Array(36), 9, 32), 'E_GGUF', 'unsupported ggml tensor type 9');
    await rejects(() => dequantizeGguf(new Uint8Array(36), 99, 32), 'E_GGUF', 'type 99');
    await rejects(() => dequantizeGguf(new Uint8Array(36), -1, 32), 'E_GGUF', 'type -1');
    await rejects(() => dequantizeGguf(new Uint8Array(18), 2, 31), 'E_GGUF', '31 values of Q4_0', 'blocks of 32');
    await rejects(() => dequantizeGguf(new Uint8Array(17), 2, 32), 'E_GGUF', '32 values of Q4_0 take 18 bytes, but data holds 17');
    await rejects(() => dequantizeGguf(new Uint8Array(210 * 2), 14, 256), 'E_GGUF', 'Q6_K take 210 bytes, but data holds 420');
    await rejects(() => dequantizeGguf([1, 2] as unknown as Uint8Array, 0, 0), 'E_INPUT', 'Uint8Array');
    await rejects(() => dequantizeGguf(new Uint8Array(4), 0, 1.5), 'E_INPUT', 'count');
    expect(dequantizeGguf(new Uint8Array(0), 12, 0)).toEqual(new Float32Array(0));
  });
});
