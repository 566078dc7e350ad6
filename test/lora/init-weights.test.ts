// The base-rewriting inits (PiSSA, OLoRA) without Python: what they do to the model and what is
// refused. Their numbers against PEFT are in test/interop/peft-init.test.ts.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Golden, HF, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { scratchDir } from '../helpers/python.js';
import { rejects } from '../helpers/rejects.js';

const root = scratchDir('init-weights');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const LLAMA = join(HF, 'llama', 'model');
const golden = new Golden('llama');
const ids = rows(golden.ints('input_ids'), [2, 16]);
const maskFlat = golden.ints('attention_mask');
const mask = rows(maskFlat, [2, 16]);

describe('PiSSA / OLoRA inits', () => {
  it('leave the outputs unchanged at init, rewrite only the wrapped base weights, and delete() keeps the residual (as PEFT)', async () => {
    for (const init of ['pissa', 'olora', 'pissa_niter_1'] as const) {
      await using model = await Model.load(LLAMA);
      const before = await model.forward(ids, { attentionMask: mask });
      const q0 = (await model.parameter('model.layers.0.self_attn.q_proj.weight')).data;
      const k0 = (await model.parameter('model.layers.0.self_attn.k_proj.weight')).data;
      const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, init, targetModules: ['q_proj'] });
      const q = (await model.parameter('model.layers.0.self_attn.q_proj.weight')).data;
      expect(maxAbsDiff(q, q0), init).toBeGreaterThan(1e-3);
      expect(maxAbsDiff((await model.parameter('model.layers.0.self_attn.k_proj.weight')).data, k0), init).toBe(0);
      const out = await model.forward(ids, { attentionMask: mask });
      expect(maxAbsDiffMasked(out.logits, before.logits, maskFlat, 256), init).toBeLessThan(1e-4);
      await LoraAdapter.disableAll(model);
      const residualOnly = await model.forward(ids, { attentionMask: mask });
      expect(maxAbsDiffMasked(residualOnly.logits, before.logits, maskFlat, 256), init).toBeGreaterThan(1e-3);
      await adapter.delete();
      const deleted = await model.forward(ids, { attentionMask: mask });
      expect(maxAbsDiff(deleted.logits, residualOnly.logits), init).toBe(0);
    }
  });

  it('refuses a quantized base, a module another adapter wraps, and conversions that have no meaning', async () => {
    {
      await using nf4 = await Model.load(LLAMA, { quantize: 'nf4' });
      await rejects(LoraAdapter.create(nf4, { init: 'pissa' }), 'E_ADAPTER', "init 'pissa' rewrites the base weight of model.layers.0.self_attn.q_proj, which is quantized (nf4)");
      await rejects(LoraAdapter.create(nf4, { init: 'olora' }), 'E_ADAPTER', 'load the model unquantized');
      expect(LoraAdapter.list(nf4)).toEqual([]);
    }
    await using model = await Model.load(LLAMA);
    const plain = await LoraAdapter.create(model, { name: 'plain', targetModules: ['q_proj'] });
    await rejects(LoraAdapter.create(model, { name: 'p', init: 'pissa', targetModules: ['q_proj'] }), 'E_ADAPTER', 'which other adapters already use');
    await rejects(plain.save(join(root, 'x'), { convertToLora: true }), 'E_OPTION', "option 'convertToLora'", 'init_lora_weights true');
    await plain.delete();
    const dora = await LoraAdapter.create(model, { name: 'dora', init: 'olora', useDora: true, targetModules: ['v_proj'] });
    await rejects(dora.save(join(root, 'y'), { convertToLora: true }), 'E_OPTION', 'DoRA');
  });
});
