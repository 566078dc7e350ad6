// q/k/v and gate/up run as one GEMM each over concatenated frozen weights (native/layers/projection_group.h).
// The numbers of the grouped path are checked against transformers + PEFT in test/lora/lora-fixtures.test.ts
// (whose adapter targets v_proj without q/k and gate_proj without up: the empty blocks) and
// test/interop/peft.test.ts; this file checks when the grouping holds and that the fallbacks give the same numbers.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Golden, HF, maxAbsDiffMasked, rows } from '../helpers/golden.js';

describe('projection groups (qwen2 fixture: q/k/v biases)', () => {
  const golden = new Golden('qwen2');
  const ids = rows(golden.ints('input_ids'), [2, 16]);
  const maskFlat = golden.ints('attention_mask');
  const mask = rows(maskFlat, [2, 16]);
  let model: Model;
  let layers: number;

  beforeAll(async () => {
    model = await Model.load(join(HF, 'qwen2', 'model'));
    layers = model.config.numHiddenLayers;
  });
  afterAll(async () => model.dispose());

  it('a dense model loads with every group fused, and holds no second copy of the weights', async () => {
    const r = await model.storageReport();
    expect(r.projectionGroups).toBe(2 * layers);
    expect(r.fusedProjectionGroups).toBe(2 * layers);
    // The members are views of the fused tensor: linear bytes are params x 4 (fp32), not more.
    expect(r.linearBytes).toBe(r.linearParams * 4);
  });

  it('merge and unmerge regroup the replaced weights, with PEFT\'s merged and unmerged logits', async () => {
    const adapter = await LoraAdapter.load(model, join(HF, 'qwen2', 'adapter'));
    await adapter.merge();
    expect((await model.storageReport()).fusedProjectionGroups).toBe(2 * layers);
    const merged = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(merged.logits, golden.floats('merged.logits'), maskFlat, 256)).toBeLessThan(1e-4);
    await adapter.unmerge();
    expect((await model.storageReport()).fusedProjectionGroups).toBe(2 * layers);
    const lora = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(lora.logits, golden.floats('lora.logits'), maskFlat, 256)).toBeLessThan(1e-4);
    await adapter.delete();
  });

  it('full-parameter training computes each projection on its own weight, and groups again after', async () => {
    await model.setFullTraining(true);
    expect((await model.storageReport()).fusedProjectionGroups).toBe(0);
    const out = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(out.logits, golden.floats('base.logits'), maskFlat, 256)).toBeLessThan(1e-4);
    await model.setFullTraining(false);
    expect((await model.storageReport()).fusedProjectionGroups).toBe(2 * layers);
  });
});

describe('projection groups on a quantized base', () => {
  it('NF4 layers stay per projection (dequantized one at a time)', async () => {
    const model = await Model.load(join(HF, 'llama', 'model'), { quantize: 'nf4' });
    try {
      const r = await model.storageReport();
      expect(r.projectionGroups).toBeGreaterThan(0);
      expect(r.fusedProjectionGroups).toBe(0);
    } finally {
      await model.dispose();
    }
  });
});
