// LoRA initialisations against the real PEFT (test/interop/peft_init_check.py, one Python run):
//  - the initial factors (gaussian, kaiming, pissa, pissa_niter_N, olora) and the residual base
//    weights equal PEFT's get_peft_model under torch.manual_seed(seed) on the same weights;
//  - lorafit -> PEFT: lorafit's adapter, perturbed as if trained, saved plain (PEFT re-runs the
//    init on the untouched base when loading it) and converted to rank-2r LoRA (convertToLora),
//    gives lorafit's logits in PeftModel on the untouched base;
//  - PEFT -> lorafit: PEFT's perturbed adapter, saved plain and converted
//    (path_initial_model_for_weight_conversion), loaded by lorafit on the untouched base, gives
//    PEFT's logits.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoraInit } from '../../lib/lora/init-weights.js';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { mulberry32 } from '../helpers/corrupt.js';
import { Golden, HF, maxAbs, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { runPython, scratchDir } from '../helpers/python.js';

const root = scratchDir('peft-init');
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Case {
  id: string;
  arch: 'llama' | 'qwen2';
  init: LoraInit;
  r: number;
  alpha: number;
  rslora: boolean;
  targets: string[] | 'all-linear';
  seed: number;
}

const CASES: Case[] = [
  { id: 'llama gaussian r4 all-linear', arch: 'llama', init: 'gaussian', r: 4, alpha: 8, rslora: false, targets: 'all-linear', seed: 3 },
  { id: 'llama kaiming r2 [q_proj, v_proj]', arch: 'llama', init: 'kaiming', r: 2, alpha: 4, rslora: false, targets: ['q_proj', 'v_proj'], seed: 7 },
  { id: 'llama pissa r4 all-linear', arch: 'llama', init: 'pissa', r: 4, alpha: 8, rslora: false, targets: 'all-linear', seed: 0 },
  { id: 'qwen2 pissa_niter_2 r4 rsLoRA all-linear', arch: 'qwen2', init: 'pissa_niter_2', r: 4, alpha: 4, rslora: true, targets: 'all-linear', seed: 5 },
  { id: 'qwen2 olora r4 [q_proj, k_proj, v_proj, down_proj]', arch: 'qwen2', init: 'olora', r: 4, alpha: 16, rslora: false, targets: ['q_proj', 'k_proj', 'v_proj', 'down_proj'], seed: 1 },
  { id: 'llama olora r2 all-linear', arch: 'llama', init: 'olora', r: 2, alpha: 2, rslora: false, targets: 'all-linear', seed: 2 },
];
const rewrites = (c: Case) => c.init.startsWith('pissa') || c.init === 'olora';
const dirOf = (c: Case) => join(root, c.id.replace(/\W+/g, '_'));

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;
const mine = new Map<string, { init: Tensors; residual: Map<string, Float32Array>; original: Map<string, Float32Array>; logits: Float32Array }>();

function inputs(arch: string) {
  const golden = new Golden(arch);
  const maskFlat = golden.ints('attention_mask');
  return { ids: rows(golden.ints('input_ids'), [2, 16]), mask: rows(maskFlat, [2, 16]), maskFlat };
}

beforeAll(async () => {
  const cases = [];
  for (const c of CASES) {
    const dir = dirOf(c);
    const { ids, mask } = inputs(c.arch);
    await using model = await Model.load(join(HF, c.arch, 'model'));
    const original = new Map<string, Float32Array>();
    const adapter = await LoraAdapter.create(model, { rank: c.r, alpha: c.alpha, useRslora: c.rslora, targetModules: c.targets, init: c.init, seed: c.seed });
    const init = await adapter.tensors();
    const residual = new Map<string, Float32Array>();
    for (const m of adapter.modules) residual.set(m, (await model.parameter(`${m}.weight`)).data);
    {
      await using untouched = await Model.load(join(HF, c.arch, 'model'));
      for (const m of adapter.modules) original.set(m, (await untouched.parameter(`${m}.weight`)).data);
    }
    // "training": a seeded perturbation of every factor
    const rnd = mulberry32(500 + c.seed);
    const trained = await adapter.tensors();
    for (const v of trained.values()) for (let i = 0; i < v.data.length; i++) v.data[i] += (2 * rnd() - 1) * 0.08;
    await adapter.setTensors(trained);
    const logits = (await model.forward(ids, { attentionMask: mask })).logits;
    await adapter.save(join(dir, 'lorafit-plain'));
    if (rewrites(c)) await adapter.save(join(dir, 'lorafit-converted'), { convertToLora: true });
    mine.set(c.id, { init, residual, original, logits });
    cases.push({
      ...c, model: join(HF, c.arch, 'model'), inputs: join(HF, c.arch, 'golden.safetensors'), out: dir,
      lorafit: { plain: join(dir, 'lorafit-plain'), converted: rewrites(c) ? join(dir, 'lorafit-converted') : null },
    });
  }
  writeFileSync(join(root, 'spec.json'), JSON.stringify({ cases }));
  await runPython('peft_init_check.py', ['--spec', join(root, 'spec.json')]);
}, 600_000);

describe.each(CASES)('init $id', (c) => {
  it("initial factors and residual base weights equal PEFT's get_peft_model under the same seed", () => {
    const ref = new Golden(c.arch, join(dirOf(c), 'init.safetensors'));
    const { init, residual, original } = mine.get(c.id)!;
    expect(ref.keys('init.').sort()).toEqual([...init.keys()].map((k) => `init.${k}`).sort());
    for (const [key, v] of init) {
      const want = ref.floats(`init.${key}`);
      if (key.includes('lora_A')) expect(maxAbs(want), key).toBeGreaterThan(0);
      expect(maxAbsDiff(v.data, want), key).toBeLessThan(1e-5 * Math.max(1, maxAbs(want)));
    }
    for (const [m, w] of residual) {
      const want = ref.has(`residual.${m}.weight`) ? ref.floats(`residual.${m}.weight`) : undefined;
      expect(want, m).toBeDefined();
      expect(maxAbsDiff(w, want!), m).toBeLessThan(1e-5);
      // PiSSA / OLoRA really rewrote the base; the other inits left it as it was
      if (rewrites(c)) expect(maxAbsDiff(w, original.get(m)!), m).toBeGreaterThan(1e-3);
      else expect(maxAbsDiff(w, original.get(m)!), m).toBe(0);
    }
  });

  it('lorafit -> PEFT: the plain and the converted adapter give lorafit logits in PeftModel on the untouched base', () => {
    const report = JSON.parse(readFileSync(join(dirOf(c), 'report.json'), 'utf8'));
    const ref = new Golden(c.arch, join(dirOf(c), 'peft.safetensors'));
    const { maskFlat } = inputs(c.arch);
    const { logits } = mine.get(c.id)!;
    const V = 256;
    expect(maxAbsDiffMasked(logits, ref.floats('base.logits'), maskFlat, V)).toBeGreaterThan(1e-2);
    for (const kind of rewrites(c) ? ['plain', 'converted'] : ['plain']) {
      expect(report[`lorafit.${kind}.load`], kind).toEqual({ keys_not_loaded: [], params_not_in_file: [], value_mismatch: [] });
      expect(maxAbsDiffMasked(ref.floats(`lorafit.${kind}.logits`), logits, maskFlat, V), kind).toBeLessThan(1e-4);
    }
    if (rewrites(c)) {
      const saved = JSON.parse(readFileSync(join(dirOf(c), 'lorafit-converted', 'adapter_config.json'), 'utf8'));
      const peft = report['peft.converted.config'];
      for (const k of ['r', 'lora_alpha', 'init_lora_weights', 'use_rslora']) expect(saved[k], k).toEqual(peft[k]);
      expect(saved.r).toBe(2 * c.r);
    }
  });

  it('PEFT -> lorafit: the plain and the converted adapter give PEFT logits on the untouched base', async () => {
    const ref = new Golden(c.arch, join(dirOf(c), 'peft.safetensors'));
    const { ids, mask, maskFlat } = inputs(c.arch);
    const want = ref.floats('peft.logits');
    expect(maxAbsDiffMasked(want, ref.floats('base.logits'), maskFlat, 256)).toBeGreaterThan(1e-2);
    for (const kind of rewrites(c) ? ['plain', 'converted'] : ['plain']) {
      await using model = await Model.load(join(HF, c.arch, 'model'));
      const adapter = await LoraAdapter.load(model, join(dirOf(c), 'peft', kind), { seed: c.seed });
      expect(adapter.config.init_lora_weights, kind).toEqual(kind === 'converted' ? true : c.init === 'kaiming' ? true : c.init);
      const out = await model.forward(ids, { attentionMask: mask });
      expect(maxAbsDiffMasked(out.logits, want, maskFlat, 256), kind).toBeLessThan(1e-4);
    }
  });
});
