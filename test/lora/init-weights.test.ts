// The base-rewriting inits (PiSSA, OLoRA) without Python: what they do to the model and what is
// refused. Their numbers against PEFT are in test/interop/peft-init.test.ts.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Trainer } from '../../lib/train/trainer.js';
import { fromFloat32, readSafetensors, serializeSafetensors } from '../../lib/util/safetensors.js';
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
  it('leave the outputs unchanged at init, rewrite only the wrapped base weights (regrouped), and delete() keeps the residual (as PEFT)', async () => {
    for (const init of ['pissa', 'olora', 'pissa_niter_1'] as const) {
      await using model = await Model.load(LLAMA);
      const before = await model.forward(ids, { attentionMask: mask });
      const q0 = (await model.parameter('model.layers.0.self_attn.q_proj.weight')).data;
      const k0 = (await model.parameter('model.layers.0.self_attn.k_proj.weight')).data;
      const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, init, targetModules: ['q_proj'] });
      const q = (await model.parameter('model.layers.0.self_attn.q_proj.weight')).data;
      expect(maxAbsDiff(q, q0), init).toBeGreaterThan(1e-3);
      expect(maxAbsDiff((await model.parameter('model.layers.0.self_attn.k_proj.weight')).data, k0), init).toBe(0);
      // the residual replaced a fused q/k/v member: the group is fused again (one GEMM, no second copy)
      expect((await model.storageReport()).fusedProjectionGroups, init).toBe(2 * model.config.numHiddenLayers);
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

  it('refuses PiSSA on a quantized base and OLoRA on int8, a module another adapter wraps, and conversions that have no meaning', async () => {
    {
      await using nf4 = await Model.load(LLAMA, { quantize: 'nf4' });
      await rejects(LoraAdapter.create(nf4, { init: 'pissa' }), 'E_ADAPTER', "init 'pissa' rewrites the base weight of model.layers.0.self_attn.q_proj, which is quantized (nf4)");
      await rejects(LoraAdapter.create(nf4, { init: 'pissa_niter_2' }), 'E_ADAPTER', 'load the model unquantized');
      expect(LoraAdapter.list(nf4)).toEqual([]);
    }
    {
      // OLoRA re-quantizes its residual on NF4 (as PEFT on a bitsandbytes 4-bit base), not on int8
      await using int8 = await Model.load(LLAMA, { quantize: 'int8' });
      await rejects(LoraAdapter.create(int8, { init: 'olora' }), 'E_ADAPTER', 'quantized (int8)', 'OLoRA works on an NF4 base');
    }
    await using model = await Model.load(LLAMA);
    const plain = await LoraAdapter.create(model, { name: 'plain', targetModules: ['q_proj'] });
    await rejects(LoraAdapter.create(model, { name: 'p', init: 'pissa', targetModules: ['q_proj'] }), 'E_ADAPTER', 'which other adapters already use');
    await rejects(plain.save(join(root, 'x'), { convertToLora: true }), 'E_OPTION', "option 'convertToLora'", 'init_lora_weights true');
    await plain.delete();
    const dora = await LoraAdapter.create(model, { name: 'dora', init: 'olora', useDora: true, targetModules: ['v_proj'] });
    await rejects(dora.save(join(root, 'y'), { convertToLora: true }), 'E_OPTION', 'DoRA');
  });

  it('a resumed PiSSA + modules_to_save run ends where the uninterrupted one does (the checkpoint loads on the residual, not re-initialised)', async () => {
    const data = [0, 1, 2, 3].map((k) => ({ inputIds: ids[0].slice(0, 12).map((t) => (t + k) % 256), labels: ids[0].slice(0, 12).map((t) => (t + k) % 256) }));
    const run = async (outputDir: string, resumeFrom?: string) => {
      await using model = await Model.load(LLAMA);
      const adapter = await LoraAdapter.create(model, { rank: 2, alpha: 4, init: 'pissa', targetModules: ['q_proj', 'v_proj'], modulesToSave: ['lm_head'] });
      const trainer = new Trainer({ model, adapter, trainData: data, maxSteps: 4, batchSize: 2, learningRate: 1e-2, saveSteps: 2, outputDir, seed: 3 });
      await trainer.fit(resumeFrom ? { resumeFrom } : {});
      return adapter.tensors();
    };
    const whole = await run(join(root, 'whole'));
    const resumed = await run(join(root, 'resumed'), join(root, 'whole', 'checkpoint-2'));
    expect([...resumed.keys()]).toEqual([...whole.keys()]);
    for (const [k, v] of whole) expect(maxAbsDiff(resumed.get(k)!.data, v.data), k).toBeLessThan(1e-6);
  });

  it('loading a pissa adapter with a wrong shape is refused before the base is rewritten', async () => {
    const dir = join(root, 'bad-shape');
    {
      await using model = await Model.load(LLAMA);
      const a = await LoraAdapter.create(model, { rank: 2, init: 'pissa', targetModules: ['q_proj'] });
      await a.save(dir);
    }
    const file = join(dir, 'adapter_model.safetensors');
    const st = readSafetensors(file);
    st.tensors.set('base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight', fromFloat32(new Float32Array(32 * 2), [32, 2]));
    writeFileSync(file, serializeSafetensors(st.tensors, st.metadata));
    await using model = await Model.load(LLAMA);
    const q0 = (await model.parameter('model.layers.0.self_attn.q_proj.weight')).data;
    await rejects(LoraAdapter.load(model, dir), 'E_SHAPE', "q_proj.lora_B.weight' has shape [32, 2] but the model needs [64, 2]");
    expect(maxAbsDiff((await model.parameter('model.layers.0.self_attn.q_proj.weight')).data, q0)).toBe(0);
    expect(LoraAdapter.list(model)).toEqual([]);
  });
});
