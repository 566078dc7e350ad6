import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  GgufValueType,
  GgufWriter,
  bf16ToFloat,
  dequantizeQ8_0,
  floatToBf16,
  floatToHalf,
  halfToFloat,
  quantizeQ8_0,
} from '../../lib/export/index.js';
import { readGguf, tempDir } from './helpers.js';

describe('GgufWriter', () => {
  it('round-trips every metadata type, arrays included, through @huggingface/gguf', async () => {
    const dir = tempDir();
    const file = join(dir, 'kv.gguf');
    const w = new GgufWriter();
    w.addUint8('t.u8', 250)
      .addInt8('t.i8', -120)
      .addUint16('t.u16', 65000)
      .addInt16('t.i16', -32000)
      .addUint32('t.u32', 4_000_000_000)
      .addInt32('t.i32', -2_000_000_000)
      .addUint64('t.u64', 2n ** 63n + 5n)
      .addInt64('t.i64', -(2n ** 62n))
      .addFloat32('t.f32', 0.1)
      .addFloat64('t.f64', Math.PI)
      .addBool('t.true', true)
      .addBool('t.false', false)
      .addString('t.str', 'héllo ✓ 日本')
      .addString('t.empty', '')
      .addArray('t.arr.str', GgufValueType.STRING, ['a', '', 'Ġthe', '<|im_end|>', 'ü'])
      .addArray('t.arr.i32', GgufValueType.INT32, [1, -2, 3])
      .addArray('t.arr.f32', GgufValueType.FLOAT32, new Float32Array([0.5, -1.25]))
      .addArray('t.arr.u8', GgufValueType.UINT8, [0, 255])
      .addArray('t.arr.bool', GgufValueType.BOOL, [true, false])
      .addArray('t.arr.empty', GgufValueType.STRING, []);
    w.write(file);
    const { typedMetadata: m, metadata } = await readGguf(file);
    expect(metadata.version).toBe(3);
    expect(metadata.tensor_count).toBe(0n);
    expect(metadata.kv_count).toBe(20n);
    const T = GgufValueType;
    const want: Array<[string, unknown, GgufValueType, GgufValueType?]> = [
      ['t.u8', 250, T.UINT8],
      ['t.i8', -120, T.INT8],
      ['t.u16', 65000, T.UINT16],
      ['t.i16', -32000, T.INT16],
      ['t.u32', 4_000_000_000, T.UINT32],
      ['t.i32', -2_000_000_000, T.INT32],
      ['t.u64', 2n ** 63n + 5n, T.UINT64],
      ['t.i64', -(2n ** 62n), T.INT64],
      ['t.f32', Math.fround(0.1), T.FLOAT32],
      ['t.f64', Math.PI, T.FLOAT64],
      ['t.true', true, T.BOOL],
      ['t.false', false, T.BOOL],
      ['t.str', 'héllo ✓ 日本', T.STRING],
      ['t.empty', '', T.STRING],
      ['t.arr.str', ['a', '', 'Ġthe', '<|im_end|>', 'ü'], T.ARRAY, T.STRING],
      ['t.arr.i32', [1, -2, 3], T.ARRAY, T.INT32],
      ['t.arr.f32', [0.5, -1.25], T.ARRAY, T.FLOAT32],
      ['t.arr.u8', [0, 255], T.ARRAY, T.UINT8],
      ['t.arr.bool', [true, false], T.ARRAY, T.BOOL],
      ['t.arr.empty', [], T.ARRAY, T.STRING],
    ];
    for (const [key, value, type, sub] of want) {
      const got = (m as Record<string, { value: unknown; type: number; subType?: number }>)[key];
      expect(got, key).toBeDefined();
      expect(got.value, key).toEqual(value);
      expect(got.type, key).toBe(type);
      if (sub !== undefined) expect(got.subType, key).toBe(sub);
    }
  });

  it('writes tensor infos in ggml order with 32-byte aligned offsets and the data at them', async () => {
    const dir = tempDir();
    const file = join(dir, 't.gguf');
    const a = Float32Array.from({ length: 3 * 5 }, (_, i) => i - 7.5); // 60 bytes: needs padding
    const b = Float32Array.from({ length: 2 * 32 }, (_, i) => Math.sin(i));
    const c = Float32Array.from({ length: 7 }, (_, i) => i / 3);
    const w = new GgufWriter();
    w.addString('general.architecture', 'llama');
    w.addTensor('a', { shape: [3, 5], dtype: 'F32', data: a });
    w.addTensor('b.q8', { shape: [2, 32], dtype: 'Q8_0', data: () => b });
    w.addTensor('c.f16', { shape: [7], dtype: 'F16', data: c });
    w.addTensor('d.bf16', { shape: [7], dtype: 'BF16', data: c });
    w.write(file);
    const r = await readGguf(file);
    expect(r.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)])).toEqual([
      ['a', [5, 3], 0, 0],
      ['b.q8', [32, 2], 8, 64],
      ['c.f16', [7], 1, 64 + 96],
      ['d.bf16', [7], 30, 64 + 96 + 32],
    ]);
    expect(Number(r.tensorDataOffset) % 32).toBe(0);
    expect(r.bytes.length).toBe(Number(r.tensorDataOffset) + 64 + 96 + 32 + 32); // each tensor padded, the last too (as gguf-py)
    expect([...r.f32('a', 15)]).toEqual([...a]);
    expect([...r.data('b.q8').slice(0, 68)]).toEqual([...quantizeQ8_0(b)]);
    const h = new DataView(r.data('c.f16').slice(0, 14).buffer);
    const bf = new DataView(r.data('d.bf16').slice(0, 14).buffer);
    for (let i = 0; i < 7; i++) {
      expect(halfToFloat(h.getUint16(i * 2, true))).toBeCloseTo(c[i], 3);
      expect(bf16ToFloat(bf.getUint16(i * 2, true))).toBeCloseTo(c[i], 2);
    }
  });

  it('rejects bad input with E_EXPORT', () => {
    const w = new GgufWriter();
    w.addUint32('k', 1);
    expect(() => w.addUint32('k', 2)).toThrow(expect.objectContaining({ code: 'E_EXPORT' }));
    expect(() => new GgufWriter().addUint8('x', 256).headerBytes()).toThrow(/does not fit type UINT8/);
    expect(() => new GgufWriter().addTensor('q', { shape: [4, 30], dtype: 'Q8_0', data: new Float32Array(120) })).toThrow(
      expect.objectContaining({ code: 'E_EXPORT', message: expect.stringContaining("tensor 'q'") }),
    );
    const w2 = new GgufWriter().addTensor('t', { shape: [2, 2], dtype: 'F32', data: new Float32Array(3) });
    expect(() => w2.write(join(tempDir(), 'x.gguf'))).toThrow(/tensor 't': 3 values/);
  });
});

describe('tensor encodings', () => {
  it('Q8_0: hand-computed block (d = 1, roundf ties away from zero) and zero block', () => {
    const block = new Float32Array(32);
    block.set([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 127, -3.49, 3.5, 0.49]);
    const q = quantizeQ8_0(block);
    expect(q.length).toBe(34);
    expect([q[0], q[1]]).toEqual([0x00, 0x3c]); // fp16 1.0
    expect([...new Int8Array(q.buffer, 2, 12)]).toEqual([1, -1, 2, -2, 3, -3, 127, -127, 127, -3, 4, 0]);
    const z = quantizeQ8_0(new Float32Array(32));
    expect([...z]).toEqual(new Array(34).fill(0));
  });

  it('Q8_0 equals gguf-py quantize() (bit-exact reference of ggml) on four blocks', () => {
    // Reference bytes from gguf 0.19.0: quants.quantize(x, GGMLQuantizationType.Q8_0).
    const x = new Float32Array(128);
    x.set([0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 127, -3.49, 3.5, 0.49], 0);
    for (let i = 0; i < 32; i++) x[32 + i] = (((i * 37) % 101) - 50) / 7.3;
    for (let i = 0; i < 32; i++) x[96 + i] = ((((i * 13) % 29) - 14) * 1e-3) / 3;
    const ref = [
      0, 60, 1, 255, 2, 254, 3, 253, 127, 129, 127, 253, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      231, 42, 129, 223, 61, 154, 248, 86, 180, 18, 112, 205, 43, 137, 231, 69, 162, 0, 94, 187, 25, 119, 213, 51, 144, 238, 76, 170, 8, 102, 195, 33, 127, 220,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      104, 2, 129, 247, 109, 220, 82, 192, 54, 165, 27, 138, 0, 118, 229, 91, 202, 64, 174, 36, 147, 9, 127, 238, 100, 211, 73, 183, 45, 156, 18, 129, 247, 109,
    ];
    expect([...quantizeQ8_0(x)]).toEqual(ref);
    // gguf-py dequantize() of block 1, first 8 values
    expect([...dequantizeQ8_0(quantizeQ8_0(x)).slice(32, 40)]).toEqual([
      -6.848419189453125, -1.779510498046875, 3.289398193359375, -5.50030517578125, -0.431396484375, 4.63751220703125, -4.0982666015625,
      0.97064208984375,
    ]);
  });

  it('fp16 and bf16 round to nearest even and keep specials', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(-2)).toBe(0xc000);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(65520)).toBe(0x7c00); // rounds up to inf
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(floatToHalf(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(floatToHalf(2 ** -25)).toBe(0x0000); // tie -> even (zero)
    expect(floatToHalf(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
    expect(floatToBf16(1)).toBe(0x3f80);
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bf16ToFloat(floatToBf16(NaN)))).toBe(true);
    for (const v of [0.1, -3.75, 1e-3, 1234.5]) expect(Math.abs(halfToFloat(floatToHalf(v)) - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11);
  });
});
