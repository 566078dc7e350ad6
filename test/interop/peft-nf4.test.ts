// LoRA variants on an NF4 base against the real PEFT + bitsandbytes (test/interop/peft_nf4_check.py):
// the model is lorafit's NF4 quantization saved in bitsandbytes' layout, which transformers loads
// as Linear4bit modules with the same codes; both stacks then hold the same 4-bit base.
// DoRA:
//  - lorafit -> PEFT: logits, loss and every gradient (magnitudes included) agree;
//  - PEFT -> lorafit: PEFT's DoRA adapter made on the Linear4bit base (magnitudes from the
//    dequantized weight) loads on lorafit's NF4 model with PEFT's logits.
// OLoRA: the initial factors (QR of the dequantized weight) and the re-quantized residual equal
// PEFT's, and adapters go both ways (each side re-runs the init on its untouched 4-bit base).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { mulberry32 } from '../helpers/corrupt.js';
import { Golden, HF, maxAbs, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { runPython, scratchDir } from '../helpers/python.js';

const root = scratchDir('dora-nf4');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('DoRA on an NF4 base (bitsandbytes Linear4bit in PEFT)', () => {
  it('both directions: logits, loss and gradients equal PEFT on the same 4-bit weights', async () => {
    const golden = new Golden('llama');
    const ids = rows(golden.ints('input_ids'), [2, 16]);
    const maskFlat = golden.ints('attention_mask');
    const mask = rows(maskFlat, [2, 16]);
    const labels = rows(golden.ints('labels'), [2, 16]);
    const bnbDir = join(root, 'llama-nf4');
    const targets = ['q_proj', 'v_proj', 'down_proj'];
    let logits: Float32Array, loss: number, grads: Map<string, { data: Float32Array }>;
    {
      await using model = await Model.load(join(HF, 'llama', 'model'), { quantize: 'nf4' });
      await model.save(bnbDir);
      const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, useDora: true, targetModules: targets, seed: 5 });
      const rnd = mulberry32(77);
      const t = await adapter.tensors();
      for (const [key, v] of t) {
        for (let i = 0; i < v.data.length; i++) {
          if (key.endsWith('lora_magnitude_vector')) v.data[i] *= 1 + 0.2 * (2 * rnd() - 1);
          else v.data[i] = (2 * rnd() - 1) * (key.includes('lora_A') ? 0.25 : 0.1);
        }
      }
      await adapter.setTensors(t);
      await adapter.save(join(root, 'lorafit'));
      logits = (await model.forward(ids, { attentionMask: mask })).logits;
      loss = (await model.lossAndGrad([{ inputIds: ids, labels, attentionMask: mask }])).loss;
      grads = await adapter.tensors({ grads: true });
    }
    await runPython('peft_nf4_check.py', ['--use-dora', '--model', bnbDir, '--inputs', join(HF, 'llama', 'golden.safetensors'), '--lorafit', join(root, 'lorafit'),
      '--targets', targets.join(','), '--r', '4', '--alpha', '8', '--seed', '6', '--out', join(root, 'out')]);
    const report = JSON.parse(readFileSync(join(root, 'out', 'report.json'), 'utf8'));
    expect(report.linear4bit_modules).toBe(14);
    expect(report['lorafit.load']).toEqual({ keys_not_loaded: [], params_not_in_file: [], value_mismatch: [] });

    const ref = new Golden('llama', join(root, 'out', 'lorafit.safetensors'));
    expect(maxAbsDiffMasked(logits, ref.floats('logits'), maskFlat, 256)).toBeLessThan(1e-4);
    expect(Math.abs(loss - ref.floats('loss')[0])).toBeLessThan(1e-5);
    const gradKeys = ref.keys('grad.');
    expect(gradKeys.length).toBe(grads.size);
    expect(gradKeys.filter((k) => k.endsWith('lora_magnitude_vector'))).toHaveLength(6);
    for (const key of gradKeys) {
      const want = ref.floats(key);
      expect(maxAbs(want), key).toBeGreaterThan(0);
      expect(maxAbsDiff(grads.get(key.slice(5))!.data, want), key).toBeLessThan(1e-5 + 1e-4 * maxAbs(want));
    }

    const peft = new Golden('llama', join(root, 'out', 'peft.safetensors'));
    expect(maxAbsDiffMasked(peft.floats('peft.logits'), peft.floats('base.logits'), maskFlat, 256)).toBeGreaterThan(1e-2);
    await using nf4 = await Model.load(bnbDir);
    expect(nf4.quantization).toMatchObject({ type: 'nf4', prequantized: true });
    await LoraAdapter.load(nf4, join(root, 'out', 'peft'));
    const out = await nf4.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(out.logits, peft.floats('peft.logits'), maskFlat, 256)).toBeLessThan(1e-4);
  }, 300_000);

  it("OLoRA: factors and re-quantized residual equal PEFT's on the same 4-bit weights; both directions' logits, loss and gradients", async () => {
    const golden = new Golden('llama');
    const ids = rows(golden.ints('input_ids'), [2, 16]);
    const maskFlat = golden.ints('attention_mask');
    const mask = rows(maskFlat, [2, 16]);
    const labels = rows(golden.ints('labels'), [2, 16]);
    const bnbDir = join(root, 'llama-nf4-olora');
    const targets = ['q_proj', 'v_proj', 'down_proj'];
    let logits: Float32Array, loss: number, grads: Map<string, { data: Float32Array }>, init: Map<string, { data: Float32Array }>;
    const residual = new Map<string, Float32Array>(), original = new Map<string, Float32Array>();
    {
      await using model = await Model.load(join(HF, 'llama', 'model'), { quantize: 'nf4' });
      await model.save(bnbDir);
      const paths = model.parameterNames().filter((n) => targets.some((t) => n.endsWith(`${t}.weight`))).map((n) => n.slice(0, -'.weight'.length));
      for (const m of paths) original.set(m, (await model.parameter(`${m}.weight`)).data);
      const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, init: 'olora', targetModules: targets, seed: 6 });
      expect(model.quantization).toMatchObject({ type: 'nf4' });
      init = await adapter.tensors();
      for (const m of adapter.modules) residual.set(m, (await model.parameter(`${m}.weight`)).data);
      const rnd = mulberry32(78);
      const t = await adapter.tensors();
      for (const v of t.values()) for (let i = 0; i < v.data.length; i++) v.data[i] += (2 * rnd() - 1) * 0.08;
      await adapter.setTensors(t);
      await adapter.save(join(root, 'lorafit-olora'));
      logits = (await model.forward(ids, { attentionMask: mask })).logits;
      loss = (await model.lossAndGrad([{ inputIds: ids, labels, attentionMask: mask }])).loss;
      grads = await adapter.tensors({ grads: true });
    }
    await runPython('peft_nf4_check.py', ['--init', 'olora', '--model', bnbDir, '--inputs', join(HF, 'llama', 'golden.safetensors'), '--lorafit', join(root, 'lorafit-olora'),
      '--targets', targets.join(','), '--r', '4', '--alpha', '8', '--seed', '6', '--out', join(root, 'out-olora')]);
    const ref0 = new Golden('llama', join(root, 'out-olora', 'init.safetensors'));
    for (const [key, v] of init) {
      const want = ref0.floats(`init.${key}`);
      expect(maxAbsDiff(v.data, want), key).toBeLessThan(1e-5 * Math.max(1, maxAbs(want)));
    }
    for (const [m, w] of residual) {
      expect(maxAbsDiff(w, original.get(m)!), m).toBeGreaterThan(1e-3);  // the 4-bit base really changed
      expect(maxAbsDiff(w, ref0.floats(`residual.${m}.weight`)), m).toBeLessThan(1e-6);
    }
    const report = JSON.parse(readFileSync(join(root, 'out-olora', 'report.json'), 'utf8'));
    expect(report['lorafit.load']).toEqual({ keys_not_loaded: [], params_not_in_file: [], value_mismatch: [] });
    const ref = new Golden('llama', join(root, 'out-olora', 'lorafit.safetensors'));
    expect(maxAbsDiffMasked(logits, ref.floats('logits'), maskFlat, 256)).toBeLessThan(1e-4);
    expect(Math.abs(loss - ref.floats('loss')[0])).toBeLessThan(1e-5);
    for (const key of ref.keys('grad.')) {
      const want = ref.floats(key);
      expect(maxAbsDiff(grads.get(key.slice(5))!.data, want), key).toBeLessThan(1e-5 + 1e-4 * maxAbs(want));
    }
    const peft = new Golden('llama', join(root, 'out-olora', 'peft.safetensors'));
    await using nf4 = await Model.load(bnbDir);
    await LoraAdapter.load(nf4, join(root, 'out-olora', 'peft'));
    const out = await nf4.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(peft.floats('peft.logits'), peft.floats('base.logits'), maskFlat, 256)).toBeGreaterThan(1e-2);
    expect(maxAbsDiffMasked(out.logits, peft.floats('peft.logits'), maskFlat, 256)).toBeLessThan(1e-4);
  }, 300_000);
});
