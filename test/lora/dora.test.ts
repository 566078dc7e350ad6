// DoRA on lorafit's side (PEFT agreement in both directions is test/interop/peft.test.ts): the
// magnitude starts at the row norms of the base weight, training moves it, merge folds
// m / ||W + dW|| * (W + dW) into the weights with the same outputs, and unmerge returns the
// base exactly; on an NF4 base too.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Trainer } from '../../lib/train/trainer.js';
import { byteExamples, yodaLines } from '../helpers/byte-data.js';
import { Golden, HF, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { randomLoraB } from '../helpers/lora.js';

const golden = new Golden('llama');
const ids = rows(golden.ints('input_ids'), [2, 16]);
const maskFlat = golden.ints('attention_mask');
const mask = rows(maskFlat, [2, 16]);
const MAG = 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector';

describe('DoRA', () => {
  it('the magnitude starts at ||W||_row (B = 0), so the adapted model equals the base; it counts as trainable', async () => {
    await using model = await Model.load(join(HF, 'llama', 'model'));
    const base = (await model.forward(ids, { attentionMask: mask })).logits;
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, useDora: true, targetModules: 'all-linear', seed: 1 });
    const w = await model.parameter('model.layers.0.self_attn.q_proj.weight');
    const [out, inF] = w.shape;
    const norms = Float32Array.from({ length: out }, (_, o) => Math.hypot(...w.data.subarray(o * inF, (o + 1) * inF)));
    const m = (await adapter.tensors()).get(MAG)!;
    expect(m.shape).toEqual([out]);
    expect(maxAbsDiff(m.data, norms)).toBeLessThan(1e-5);
    expect(maxAbsDiffMasked((await model.forward(ids, { attentionMask: mask })).logits, base, maskFlat, 256)).toBeLessThan(1e-5);
    const plain = (await LoraAdapter.create(model, { name: 'plain', rank: 4, alpha: 8, targetModules: 'all-linear', activate: false })).trainableParameters();
    const magnitudes = adapter.modules.reduce((n, p) => n + (p.endsWith('k_proj') || p.endsWith('v_proj') ? model.config.numKeyValueHeads * model.config.headDim : p.endsWith('gate_proj') || p.endsWith('up_proj') ? model.config.intermediateSize : model.config.hiddenSize), 0);
    expect(adapter.trainableParameters().trainable - plain.trainable).toBe(magnitudes);
  });

  it('training moves the magnitudes and lowers the loss; merge keeps the outputs, unmerge restores the base exactly', async () => {
    await using model = await Model.load(join(HF, 'llama', 'model'));
    const q0 = await model.parameter('model.layers.0.self_attn.q_proj.weight');
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, useDora: true, targetModules: 'all-linear', seed: 2 });
    const m0 = (await adapter.tensors()).get(MAG)!.data.slice();
    const data = byteExamples(yodaLines().slice(0, 16));
    const trainer = new Trainer({ model, adapter, trainData: data, evalData: data.slice(0, 4), maxSteps: 8, batchSize: 4, learningRate: 1e-2, seed: 5 });
    const before = await trainer.evaluateLoss();
    await trainer.fit();
    const after = await trainer.evaluateLoss();
    expect(after.evalLoss).toBeLessThan(before.evalLoss - 0.05);
    expect(maxAbsDiff((await adapter.tensors()).get(MAG)!.data, m0)).toBeGreaterThan(1e-4);
    const live = (await model.forward(ids, { attentionMask: mask })).logits;
    await adapter.merge();
    const merged = (await model.forward(ids, { attentionMask: mask })).logits;
    expect(maxAbsDiffMasked(merged, live, maskFlat, 256)).toBeLessThan(1e-4);
    expect(maxAbsDiff((await model.parameter('model.layers.0.self_attn.q_proj.weight')).data, q0.data)).toBeGreaterThan(1e-4);
    await adapter.unmerge();
    expect(maxAbsDiff((await model.parameter('model.layers.0.self_attn.q_proj.weight')).data, q0.data)).toBeLessThan(1e-6);
    expect(maxAbsDiffMasked((await model.forward(ids, { attentionMask: mask })).logits, live, maskFlat, 256)).toBeLessThan(1e-4);
  });

  it('on an NF4 base: the magnitude is the norm of the dequantized weight; trains; merge keeps the outputs; unmerge is the exact quantized base again', async () => {
    await using model = await Model.load(join(HF, 'llama', 'model'), { quantize: 'nf4' });
    const base = (await model.forward(ids, { attentionMask: mask })).logits;
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, useDora: true, targetModules: 'all-linear', seed: 3 });
    const w = await model.parameter('model.layers.0.self_attn.q_proj.weight');  // dequantized
    const [out, inF] = w.shape;
    const norms = Float32Array.from({ length: out }, (_, o) => Math.hypot(...w.data.subarray(o * inF, (o + 1) * inF)));
    expect(maxAbsDiff((await adapter.tensors()).get(MAG)!.data, norms)).toBeLessThan(1e-5);
    await randomLoraB(adapter, 9);
    const data = byteExamples(yodaLines().slice(0, 8));
    const r = await new Trainer({ model, adapter, trainData: data, maxSteps: 3, batchSize: 4, learningRate: 1e-2 }).fit();
    expect(Number.isFinite(r.trainLoss)).toBe(true);
    const live = (await model.forward(ids, { attentionMask: mask })).logits;
    expect(maxAbsDiffMasked(live, base, maskFlat, 256)).toBeGreaterThan(1e-3);
    await adapter.merge();
    expect(maxAbsDiffMasked((await model.forward(ids, { attentionMask: mask })).logits, live, maskFlat, 256)).toBeLessThan(1e-4);
    await adapter.unmerge();
    await LoraAdapter.disableAll(model);
    const back = (await model.forward(ids, { attentionMask: mask })).logits;
    expect(Array.from(back)).toEqual(Array.from(base));
    expect((await model.storageReport()).quantizedParams).toBeGreaterThan(0);
  });

  it('DoRA adapters are not combined, as in PEFT', async () => {
    await using model = await Model.load(join(HF, 'llama', 'model'));
    const a = await LoraAdapter.create(model, { name: 'a', rank: 2, useDora: true });
    const b = await LoraAdapter.create(model, { name: 'b', rank: 2 });
    await expect(LoraAdapter.combine(model, [{ adapter: a, weight: 1 }, { adapter: b, weight: 1 }], { name: 'ab' })).rejects.toMatchObject({ code: 'E_ADAPTER', message: expect.stringMatching(/'a' is a DoRA adapter/) });
  });
});
