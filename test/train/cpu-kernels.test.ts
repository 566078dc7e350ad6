// lorafit's own CPU kernels on a real model's shapes, SmolLM2-135M (head_dim 64, 9 query heads over
// 3 kv heads, LoRA on the seven projections), where the HF fixtures have head_dim 16:
// - the fused segment attention (native/layers/segment_attention.cc) of padding-free rows, and the
//   blocked attention (native/layers/blocked_attention.cc) of rows with a segment past 256 tokens,
//   against the padded batch of the same examples, which runs SDPA (checked against transformers
//   in test/gguf/smollm2-model.test.ts);
// - in bf16, each kernel (attention, LoRA update, SwiGLU, cross-entropy) against the at::mm / ATen form it
//   replaces (its debugging switch off), both against the fp32 model: the kernel must be at least
//   as close; in fp32, the SwiGLU and cross-entropy kernels and the oneDNN frozen GEMMs against
//   the ATen forms.
// (The LoRA kernels, native/lora_delta.cc, also run in every fp32 PEFT comparison of test/interop.)
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { collate, collatePaddingFree, type Example } from '../../lib/train/batches.js';
import { mulberry32 as random } from '../../lib/util/random.js';
import { smollm2Gguf } from '../gguf/reference.js';

// Three examples of different lengths (one longer than a 32-column register block, one shorter
// than 16), token ids from the vocabulary, every token trained on.
const SHORT = [90, 5, 37];
// A segment past segment_attention's 256 tokens (not a multiple of the blocked kernel's 32-query
// tiles or 64-key chunks) beside a short one: the blocked kernel runs the row.
const LONG = [300, 40];
function examples(lengths: readonly number[] = SHORT): Example[] {
  const r = random(7);
  return lengths.map((n) => {
    const ids = Int32Array.from({ length: n }, () => 100 + Math.floor(r() * 40000));
    return { inputIds: ids, labels: ids };
  });
}

type Grads = Map<string, { shape: number[]; data: Float32Array }>;

async function randomAdapter(model: Model): Promise<LoraAdapter> {
  const targetModules = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
  const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, targetModules, seed: 3 });
  const r = random(11);
  const values = await adapter.tensors();
  for (const [key, v] of values) {
    const scale = key.includes('lora_A') ? 0.05 : 0.02;  // B nonzero, so A's gradients are too
    for (let i = 0; i < v.data.length; i++) v.data[i] = (2 * r() - 1) * scale;
  }
  await adapter.setTensors(values);
  return adapter;
}

async function lossAndGrads(model: Model, adapter: LoraAdapter, paddingFree: boolean, lengths: readonly number[] = SHORT): Promise<{ loss: number; grads: Grads }> {
  const rows = examples(lengths);
  const r = await model.lossAndGrad([paddingFree ? collatePaddingFree(rows) : collate(rows)]);
  return { loss: r.loss, grads: await adapter.tensors({ grads: true }) };
}

/** The largest |a - b| over every gradient, the largest |b| (the scale it is measured against),
 *  and ||a - b|| / ||b|| over all of them (less noisy than one element). */
function gradError(a: Grads, b: Grads): { diff: number; scale: number; rel: number } {
  let diff = 0;
  let scale = 0;
  let d2 = 0;
  let b2 = 0;
  for (const [k, t] of b) {
    const other = a.get(k)!.data;
    for (let i = 0; i < t.data.length; i++) {
      const d = other[i] - t.data[i];
      diff = Math.max(diff, Math.abs(d));
      scale = Math.max(scale, Math.abs(t.data[i]));
      d2 += d * d;
      b2 += t.data[i] * t.data[i];
    }
  }
  return { diff, scale, rel: Math.sqrt(d2 / b2) };
}

describe('CPU kernels on SmolLM2-135M (head_dim 64, grouped-query heads)', () => {
  let fp32: Model;
  let bf16: Model;
  let fp32Adapter: LoraAdapter;
  let ref: { loss: number; grads: Grads };

  beforeAll(async () => {
    const file = smollm2Gguf();
    fp32 = await Model.load(file, { dtype: 'float32' });
    fp32Adapter = await randomAdapter(fp32);
    ref = await lossAndGrads(fp32, fp32Adapter, false);
    bf16 = await Model.load(file, { dtype: 'bfloat16' });
  }, 300_000);
  afterAll(async () => {
    await fp32?.dispose();
    await bf16?.dispose();
  });

  it('fp32: the padding-free row has the padded batch\'s loss (1e-5) and LoRA gradients (1e-5 of their scale)', async () => {
    const r = await lossAndGrads(fp32, fp32Adapter, true);
    expect(Math.abs(r.loss - ref.loss)).toBeLessThan(1e-5);
    const { diff, scale } = gradError(r.grads, ref.grads);
    expect(scale).toBeGreaterThan(1e-4);  // the gradients are not all zero
    expect(diff / scale).toBeLessThan(1e-5);
  });

  it('fp32: the blocked attention of a 300-token segment gives the padded batch\'s loss (1e-5) and LoRA gradients (1e-5 of their scale)', async () => {
    const padded = await lossAndGrads(fp32, fp32Adapter, false, LONG);
    const blocked = await lossAndGrads(fp32, fp32Adapter, true, LONG);
    process.env.LORAFIT_BLOCKED_ATTENTION = '0';  // SDPA per segment
    let sdpa: typeof blocked;
    try {
      sdpa = await lossAndGrads(fp32, fp32Adapter, true, LONG);
    } finally {
      delete process.env.LORAFIT_BLOCKED_ATTENTION;
    }
    expect(gradError(blocked.grads, sdpa.grads).diff).toBeGreaterThan(0);  // two paths ran
    expect(Math.abs(blocked.loss - padded.loss)).toBeLessThan(1e-5);
    const { diff, scale } = gradError(blocked.grads, padded.grads);
    expect(scale).toBeGreaterThan(1e-4);
    expect(diff / scale).toBeLessThan(1e-5);
  });

  // In fp32 the kernels change only the order of the sums: within 1e-5 of the form they replace.
  // logitsThrough: whether the forward's logits go through it (else the gradients show that two paths ran).
  for (const [name, knob, logitsThrough] of [
    ['the SwiGLU kernel', 'LORAFIT_SWIGLU_KERNEL', true],
    ['the oneDNN path of the frozen GEMMs (native/cpu_matmul.cc)', 'LORAFIT_ONEDNN_FP32', true],
    ['the cross-entropy kernel (native/cross_entropy_rows.cc)', 'LORAFIT_CE_KERNEL', false],
  ] as const) {
    it(`fp32: ${name} gives the loss, logits and LoRA gradients of the ATen form (1e-5)`, async () => {
      const mb = collatePaddingFree(examples());
      const ids = mb.inputIds as { data: Int32Array; shape: [number, number] };
      const run = async () => ({ ...(await lossAndGrads(fp32, fp32Adapter, true)), logits: (await fp32.forward(ids, { segmentLengths: mb.segmentLengths })).logits });
      const kernel = await run();
      process.env[knob] = '0';
      let aten: typeof kernel;
      try {
        aten = await run();
      } finally {
        delete process.env[knob];
      }
      // two paths ran (sums in another order)
      if (logitsThrough) expect(kernel.logits).not.toEqual(aten.logits);
      else expect(gradError(kernel.grads, aten.grads).diff).toBeGreaterThan(0);
      let worst = 0;
      for (let i = 0; i < aten.logits.length; i++) worst = Math.max(worst, Math.abs(kernel.logits[i] - aten.logits[i]));
      expect(worst).toBeLessThan(1e-3);  // logits of magnitude ~10-30
      expect(Math.abs(kernel.loss - aten.loss)).toBeLessThan(1e-5);
      const { diff, scale } = gradError(kernel.grads, aten.grads);
      expect(diff / scale).toBeLessThan(1e-5);
    });
  }

  // differs: the kernel computes in fp32 what the form it replaces rounds to bf16 (so the outputs
  // differ); the SwiGLU kernel rounds where transformers does.
  // slack: how much larger the kernel's logit error may be. The blocked attention replaces SDPA,
  // which computes in fp32 as well and rounds the probabilities to bf16 where it does: on random
  // inputs their output errors are equal (bench/results/2026-12-06-s10-cpp-probes.txt: rms 5.40e-4
  // vs 5.41e-4) and its gradients closer; through 30 layers the logits came out 5% either way.
  for (const [kernelName, knob, differs, lengths, slack] of [
    ['segment attention', 'LORAFIT_SEGMENT_ATTENTION', true, SHORT, 1.05],
    ['blocked attention', 'LORAFIT_BLOCKED_ATTENTION', true, LONG, 1.1],
    ['LoRA update', 'LORAFIT_LORA_KERNELS', true, SHORT, 1.05],
    ['SwiGLU', 'LORAFIT_SWIGLU_KERNEL', false, SHORT, 1.05],
    ['cross-entropy', 'LORAFIT_CE_KERNEL', false, SHORT, 1.05],
  ] as const) {
    it(`bf16: the ${kernelName} kernel is at least as close to the fp32 model as the form it replaces`, async () => {
      const adapter = await randomAdapter(bf16);
      const mb = collatePaddingFree(examples(lengths));
      const ids = mb.inputIds as { data: Int32Array; shape: [number, number] };
      const logits = async (m: Model) => (await m.forward(ids, { segmentLengths: mb.segmentLengths })).logits;
      const reference = await logits(fp32);
      const refGrads = lengths === SHORT ? ref.grads : (await lossAndGrads(fp32, fp32Adapter, true, lengths)).grads;
      const kernel = { logits: await logits(bf16), ...(await lossAndGrads(bf16, adapter, true, lengths)) };
      process.env[knob] = '0'; // read by the native code at each call
      let replaced: typeof kernel;
      try {
        replaced = { logits: await logits(bf16), ...(await lossAndGrads(bf16, adapter, true, lengths)) };
      } finally {
        delete process.env[knob];
      }
      await adapter.delete();
      // The root mean square logit error over every position and the whole vocabulary (6.5M
      // values): a bf16 loss on its own moves by ~1e-2 with any change of rounding.
      const rms = (l: Float32Array) => {
        let s = 0;
        for (let i = 0; i < l.length; i++) s += (l[i] - reference[i]) ** 2;
        return Math.sqrt(s / l.length);
      };
      const k = { logits: rms(kernel.logits), grads: gradError(kernel.grads, refGrads).rel };
      const e = { logits: rms(replaced.logits), grads: gradError(replaced.grads, refGrads).rel };
      console.log(kernelName, { kernel: k, replaced: e });
      if (differs) expect(kernel.logits).not.toEqual(replaced.logits); // two paths ran
      expect(k.logits).toBeLessThan(slack * e.logits);
      expect(k.grads).toBeLessThan(1.5 * e.grads);
      expect(k.grads).toBeLessThan(0.1);
    });
  }
});
