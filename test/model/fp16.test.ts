// float16 base weights (dtype: 'float16') against transformers' float32 logits
// (test/fixtures/hf/<arch>/golden.safetensors) and against lorafit's own float32 forward.
// fp16 keeps 11 bits of mantissa (relative rounding 2^-11 = 0.05 %, 8x finer than bf16), so the
// logits move by a fraction of bf16's few hundredths (bf16.test.ts: ~4e-2).
// Measured (libtorch CPU, the 28 valid positions of the 2x16 golden batch, reference = HF fp32):
//   llama: max |fp16 - fp32| = 6.54e-3, logit range 8.71 -> 7.5e-4 of the range, top-1 28/28
//   qwen2: max |fp16 - fp32| = 5.49e-3, logit range 7.78 -> 7.1e-4 of the range, top-1 27/28
// (the same against lorafit's own fp32 forward, to 1e-6). Tolerances about 2.5x the measurement:
// 0.015 abs, 2e-3 of the range, top-1 >= 90 % of positions.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Model } from '../../lib/model/model.js';
import { Golden, HF, rows } from '../helpers/golden.js';

const V = 256;

function stats(got: Float32Array, want: Float32Array, mask: number[]) {
  let maxDiff = 0;
  let lo = Infinity;
  let hi = -Infinity;
  let agree = 0;
  let positions = 0;
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    positions++;
    let ag = 0;
    let aw = 0;
    for (let v = 0; v < V; v++) {
      const i = p * V + v;
      maxDiff = Math.max(maxDiff, Math.abs(got[i] - want[i]));
      lo = Math.min(lo, want[i]);
      hi = Math.max(hi, want[i]);
      if (got[i] > got[p * V + ag]) ag = v;
      if (want[i] > want[p * V + aw]) aw = v;
    }
    if (ag === aw) agree++;
  }
  return { maxDiff, range: hi - lo, rel: maxDiff / (hi - lo), agree, positions };
}

describe.each(['llama', 'qwen2'] as const)('%s float16', (arch) => {
  it('loads fp16 weights (low 13 mantissa bits zero) and gives logits within 0.015 of fp32', async () => {
    const golden = new Golden(arch);
    const mask = golden.ints('attention_mask');
    const ids = rows(golden.ints('input_ids'), [2, 16]);
    await using model = await Model.load(join(HF, arch, 'model'), { dtype: 'float16' });
    expect(model.dtype).toBe('float16');
    const w = await model.parameter('model.layers.0.self_attn.q_proj.weight');
    const bits = new Uint32Array(w.data.buffer, w.data.byteOffset, w.data.length);
    expect(bits.every((b) => (b & 0x1fff) === 0)).toBe(true);
    const out = await model.forward(ids, { attentionMask: rows(mask, [2, 16]) });
    await using fp32 = await Model.load(join(HF, arch, 'model'));
    const own = (await fp32.forward(ids, { attentionMask: rows(mask, [2, 16]) })).logits;
    for (const [what, want] of [['transformers fp32', golden.floats('base.logits')], ['lorafit fp32', own]] as const) {
      const s = stats(out.logits, want, mask);
      console.log(`${arch} fp16 vs ${what}: max abs ${s.maxDiff.toExponential(3)}, rel ${s.rel.toExponential(3)}, top-1 ${s.agree}/${s.positions}`);
      expect(s.maxDiff).toBeGreaterThan(1e-5);  // fp16 really ran
      expect(s.maxDiff).toBeLessThan(0.015);
      expect(s.rel).toBeLessThan(2e-3);
      expect(s.agree / s.positions).toBeGreaterThanOrEqual(0.9);
    }
  });
});
