// The fused segment-attention kernel (native/layers/segment_attention.cc) on a real model's shapes:
// SmolLM2-135M (head_dim 64, 9 query heads over 3 kv heads), where the HF fixtures of
// padding-free.test.ts have head_dim 16. Padding-free rows run the kernel; the padded batch of the
// same examples runs SDPA (checked against transformers in test/gguf/smollm2-model.test.ts). In
// bf16 the reference is the fp32 model, and the kernel is held to the accuracy of the eager form.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { collate, collatePaddingFree, type Example } from '../../lib/train/batches.js';
import { smollm2Gguf } from '../gguf/reference.js';

// Deterministic pseudo-random numbers (mulberry32)
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Three examples of different lengths (one longer than a 32-column register block, one shorter
// than 16), token ids from the vocabulary, every token trained on.
function examples(): Example[] {
  const r = random(7);
  return [90, 5, 37].map((n) => {
    const ids = Int32Array.from({ length: n }, () => 100 + Math.floor(r() * 40000));
    return { inputIds: ids, labels: ids };
  });
}

type Grads = Map<string, { shape: number[]; data: Float32Array }>;

async function randomAdapter(model: Model): Promise<LoraAdapter> {
  // q/k/v/o only: the attention's inputs and outputs carry the gradients under test
  const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], seed: 3 });
  const r = random(11);
  const values = await adapter.tensors();
  for (const [key, v] of values) {
    const scale = key.includes('lora_A') ? 0.05 : 0.02;  // B nonzero, so A's gradients are too
    for (let i = 0; i < v.data.length; i++) v.data[i] = (2 * r() - 1) * scale;
  }
  await adapter.setTensors(values);
  return adapter;
}

async function lossAndGrads(model: Model, adapter: LoraAdapter, paddingFree: boolean): Promise<{ loss: number; grads: Grads }> {
  const rows = examples();
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

describe('segment attention on SmolLM2-135M (head_dim 64, grouped-query heads)', () => {
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

  it('bf16: the kernel is at least as close to the fp32 reference as the eager matmul + softmax form it replaces', async () => {
    const adapter = await randomAdapter(bf16);
    const kernel = await lossAndGrads(bf16, adapter, true);
    process.env.LORAFIT_SEGMENT_ATTENTION = '0'; // read by the native code at each layer call
    let eager: Awaited<ReturnType<typeof lossAndGrads>>;
    try {
      eager = await lossAndGrads(bf16, adapter, true);
    } finally {
      delete process.env.LORAFIT_SEGMENT_ATTENTION;
    }
    const kernelLoss = Math.abs(kernel.loss - ref.loss);
    const eagerLoss = Math.abs(eager.loss - ref.loss);
    const k = gradError(kernel.grads, ref.grads);
    const e = gradError(eager.grads, ref.grads);
    console.log({ kernelLoss, eagerLoss, kernelGrad: k, eagerGrad: e });
    expect(kernel.loss).not.toBe(eager.loss); // two paths ran
    expect(kernelLoss).toBeLessThan(Math.max(1.2 * eagerLoss, 1e-3));
    expect(k.rel).toBeLessThan(1.2 * e.rel);
    expect(k.rel).toBeLessThan(0.1);
  });
});
