// LoRA adapters in both directions with the real PEFT from PyPI.
//  a. lorafit -> PEFT: LoraAdapter.create with several settings, seeded random A and B, save(),
//     then test/interop/peft_check.py loads the folder with PeftModel and must agree with lorafit
//     on logits, loss, every gradient and the merged model.
//  b. PEFT -> lorafit: test/interop/make_reference.py --adapter (gemma2, mistral, llama3, qwen2,
//     each with rsLoRA, with rank 8 / alpha 16 and with q_proj,v_proj only); LoraAdapter.load
//     must reproduce PEFT's logits, loss, gradients, merged logits and merged q_proj weight.
// The Python runs go two at a time in one beforeAll (they dominate the time of this file).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter, type LoraOptions } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { mulberry32 } from '../helpers/corrupt.js';
import { Golden, HF, maxAbs, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { runPython, scratchDir } from '../helpers/python.js';

const root = scratchDir('peft');
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs async jobs with at most `width` in flight (two cores: two Python processes). */
async function pool<T>(jobs: (() => Promise<T>)[], width = 2): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]();
      }
    }),
  );
  return out;
}

/** Seeded values in [-scale, scale) for every tensor of an adapter (A and B alike). */
async function randomize(adapter: LoraAdapter, seed: number): Promise<void> {
  const r = mulberry32(seed);
  const values = await adapter.tensors();
  for (const [key, v] of values) {
    if (key.endsWith('.lora_magnitude_vector')) {
      // DoRA: keep the magnitudes near their init (the row norms), but away from it
      for (let i = 0; i < v.data.length; i++) v.data[i] *= 1 + 0.2 * (2 * r() - 1);
      continue;
    }
    const scale = key.includes('lora_A') ? 0.25 : 0.1;
    for (let i = 0; i < v.data.length; i++) v.data[i] = (2 * r() - 1) * scale;
  }
  await adapter.setTensors(values);
}

interface ToPeft {
  name: string;
  arch: 'llama' | 'qwen2';
  options: LoraOptions;
  /** modules expected to be wrapped */
  modules: number;
}

const TO_PEFT: ToPeft[] = [
  { name: 'llama r2 alpha5 [q_proj, v_proj]', arch: 'llama', options: { rank: 2, alpha: 5, targetModules: ['q_proj', 'v_proj'] }, modules: 4 },
  { name: 'llama r8 alpha16 rsLoRA all-linear', arch: 'llama', options: { rank: 8, alpha: 16, useRslora: true, targetModules: 'all-linear' }, modules: 14 },
  { name: 'qwen2 r8 alpha3 regex (layer 1 k/o/gate/down)', arch: 'qwen2', options: { rank: 8, alpha: 3, targetModules: 'model\\.layers\\.1\\.(self_attn\\.(k|o)_proj|mlp\\.(gate|down)_proj)' }, modules: 4 },
  { name: 'qwen2 r2 alpha4 rsLoRA all-linear', arch: 'qwen2', options: { rank: 2, alpha: 4, useRslora: true, targetModules: 'all-linear' }, modules: 14 },
  { name: 'llama r4 alpha8 DoRA all-linear', arch: 'llama', options: { rank: 4, alpha: 8, useDora: true, targetModules: 'all-linear' }, modules: 14 },
  { name: 'qwen2 r2 alpha4 DoRA [q_proj, v_proj] (q/k/v biases)', arch: 'qwen2', options: { rank: 2, alpha: 4, useDora: true, targetModules: ['q_proj', 'v_proj'] }, modules: 4 },
];

const ARCHS = ['gemma2', 'mistral', 'llama3', 'qwen2'] as const;
const VARIANTS: { name: string; args: string[] }[] = [
  { name: 'rsLoRA', args: ['--rslora'] },
  { name: 'rank 8 alpha 16', args: ['--rank', '8', '--alpha', '16'] },
  { name: 'q_proj,v_proj', args: ['--targets', 'q_proj,v_proj'] },
];
// Every architecture once and every variant at least once (a diagonal, not the full 4 x 3 grid:
// each case is a Python process of several seconds, and CI runs on 2 cores).
const FROM_PEFT: { arch: string; variant: string; args: string[]; out: string }[] = ARCHS.map((arch, i) => {
  const v = VARIANTS[i % VARIANTS.length];
  return { arch, variant: v.name, args: ['--arch', arch, '--adapter', ...v.args], out: join(root, `${arch}-${v.name.replace(/\W+/g, '_')}`) };
});
// Gemma (v1: tied embeddings, head_dim 32 != hidden / heads, (1 + w) norms), and DoRA made by PEFT
// (magnitudes moved off their init) on llama 3 and on qwen2's biased q/k/v
FROM_PEFT.push(
  { arch: 'gemma', variant: 'rank 8 alpha 16', args: ['--arch', 'gemma', '--adapter', '--rank', '8', '--alpha', '16'], out: join(root, 'gemma-r8') },
  { arch: 'llama3', variant: 'DoRA', args: ['--arch', 'llama3', '--adapter', '--dora'], out: join(root, 'llama3-DoRA') },
  { arch: 'qwen2', variant: 'DoRA rsLoRA', args: ['--arch', 'qwen2', '--adapter', '--dora', '--rslora'], out: join(root, 'qwen2-DoRA') },
);

// lorafit-side state for direction a, filled in beforeAll
const made = new Map<string, { dir: string; scaling: number; keys: string[] }>();

beforeAll(async () => {
  // a: build and save the lorafit adapters (fast), then queue every Python job
  for (const [i, c] of TO_PEFT.entries()) {
    await using model = await Model.load(join(HF, c.arch, 'model'));
    const adapter = await LoraAdapter.create(model, { ...c.options, seed: i });
    expect(adapter.modules.length).toBe(c.modules);
    await randomize(adapter, 100 + i);
    const dir = join(root, `to-peft-${i}`);
    await adapter.save(join(dir, 'adapter'));
    made.set(c.name, { dir, scaling: adapter.scaling, keys: [...(await adapter.tensors()).keys()] });
  }
  const jobs: (() => Promise<string>)[] = [
    ...TO_PEFT.map((c) => () => {
      const dir = made.get(c.name)!.dir;
      return runPython('peft_check.py', ['--model', join(HF, c.arch, 'model'), '--adapter', join(dir, 'adapter'), '--inputs', join(HF, c.arch, 'golden.safetensors'), '--out', join(dir, 'peft.safetensors')]);
    }),
    ...FROM_PEFT.map((c) => () => runPython('make_reference.py', [...c.args, '--out', c.out])),
  ];
  await pool(jobs);
}, 900_000);

describe.each(TO_PEFT)('lorafit -> PEFT: $name', (c) => {
  it('PEFT loads every tensor with our scaling; logits, loss, gradients and merged logits agree', async () => {
    const { dir, scaling, keys } = made.get(c.name)!;
    const report = JSON.parse(readFileSync(join(dir, 'peft.json'), 'utf8'));
    expect(report.adapter_keys_not_loaded).toEqual([]);
    expect(report.lora_params_not_in_file).toEqual([]);
    expect(report.lora_params_value_mismatch_vs_file).toEqual([]);
    expect(report.num_lora_tensors_loaded).toBe(keys.length);
    expect(report.peft_scaling).toBeCloseTo(scaling, 12);
    expect(report.peft_scaling).toBeCloseTo(c.options.useRslora ? c.options.alpha! / Math.sqrt(c.options.rank!) : c.options.alpha! / c.options.rank!, 12);

    const ref = new Golden(c.arch, join(dir, 'peft.safetensors'));
    const golden = new Golden(c.arch);
    const ids = rows(golden.ints('input_ids'), [2, 16]);
    const maskFlat = golden.ints('attention_mask');
    const mask = rows(maskFlat, [2, 16]);
    const labels = rows(golden.ints('labels'), [2, 16]);
    await using model = await Model.load(join(HF, c.arch, 'model'));
    const adapter = await LoraAdapter.load(model, join(dir, 'adapter'));
    const out = await model.forward(ids, { attentionMask: mask });
    // the adapter must matter, or agreement proves nothing
    expect(maxAbsDiffMasked(ref.floats('logits'), ref.floats('base.logits'), maskFlat, 256)).toBeGreaterThan(1e-2);
    expect(maxAbsDiffMasked(out.logits, ref.floats('logits'), maskFlat, 256)).toBeLessThan(1e-4);

    const r = await model.lossAndGrad([{ inputIds: ids, labels, attentionMask: mask }]);
    expect(Math.abs(r.loss - ref.floats('loss')[0])).toBeLessThan(1e-5);
    const grads = await adapter.tensors({ grads: true });
    const gradKeys = ref.keys('grad.');
    expect(gradKeys.length).toBe(keys.length);
    for (const key of gradKeys) {
      const want = ref.floats(key);
      const got = grads.get(key.slice('grad.'.length));
      expect(got, key).toBeDefined();
      expect(maxAbs(want), key).toBeGreaterThan(0);
      expect(maxAbsDiff(got!.data, want), key).toBeLessThan(1e-5 + 1e-4 * maxAbs(want));
    }

    await adapter.merge();
    const merged = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(merged.logits, ref.floats('merged.logits'), maskFlat, 256)).toBeLessThan(1e-4);
  });
});

describe.each(FROM_PEFT)('PEFT -> lorafit: $arch, $variant', (c) => {
  it('logits, loss, every gradient, merged logits and merged q_proj weight match PEFT', async () => {
    const ref = new Golden(c.arch, join(c.out, 'reference.safetensors'));
    const info = JSON.parse(readFileSync(join(c.out, 'reference.json'), 'utf8'));
    const ids = rows(ref.ints('input_ids'), [2, 16]);
    const maskFlat = ref.ints('attention_mask');
    const mask = rows(maskFlat, [2, 16]);
    const labels = rows(ref.ints('labels'), [2, 16]);
    await using model = await Model.load(join(c.out, 'model'));
    const V = model.config.vocabSize;
    const adapter = await LoraAdapter.load(model, join(c.out, 'adapter'));
    expect(adapter.scaling).toBeCloseTo(info.lora.scaling, 12);
    if (c.variant === 'q_proj,v_proj') expect(adapter.modules.every((m) => /\.(q|v)_proj$/.test(m))).toBe(true);

    const out = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(ref.floats('lora.logits'), ref.floats('base.logits'), maskFlat, V)).toBeGreaterThan(1e-2);
    expect(maxAbsDiffMasked(out.logits, ref.floats('lora.logits'), maskFlat, V)).toBeLessThan(1e-4);

    const r = await model.lossAndGrad([{ inputIds: ids, labels, attentionMask: mask }]);
    expect(Math.abs(r.loss - ref.floats('lora.loss')[0])).toBeLessThan(1e-5);
    const grads = await adapter.tensors({ grads: true });
    const gradKeys = ref.keys('grad.');
    expect(gradKeys.length).toBe(grads.size);
    for (const key of gradKeys) {
      const want = ref.floats(key);
      const got = grads.get(key.slice('grad.'.length));
      expect(got, key).toBeDefined();
      expect(maxAbsDiff(got!.data, want), key).toBeLessThan(1e-5 + 1e-4 * maxAbs(want));
    }

    await adapter.merge();
    const merged = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(merged.logits, ref.floats('merged.logits'), maskFlat, V)).toBeLessThan(1e-4);
    const q = await model.parameter('model.layers.0.self_attn.q_proj.weight');
    expect(maxAbsDiff(q.data, ref.floats('merged.model.layers.0.self_attn.q_proj.weight'))).toBeLessThan(1e-6);
  });
});
