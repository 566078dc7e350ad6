// modules_to_save without Python: what is refused, and generation through a copy. The numbers
// against PEFT are in test/interop/peft-mts.test.ts.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { rewriteJson } from '../helpers/corrupt.js';
import { HF, maxAbsDiff } from '../helpers/golden.js';
import { scratchDir } from '../helpers/python.js';
import { rejects } from '../helpers/rejects.js';

const LLAMA = join(HF, 'llama', 'model');
const root = scratchDir('mts');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('modules_to_save', () => {
  it('refuses modules it cannot train, configs it would misread and a file without the listed copy', async () => {
    await using model = await Model.load(LLAMA);
    await rejects(LoraAdapter.create(model, { modulesToSave: ['score'] }), 'E_OPTION', "option 'modulesToSave'", "'score'", 'lm_head and embed_tokens');
    await rejects(LoraAdapter.create(model, { modulesToSave: 'lm_head' as never }), 'E_OPTION', "option 'modulesToSave'");
    const a = await LoraAdapter.create(model, { name: 'a', targetModules: ['q_proj'], modulesToSave: ['lm_head'] });
    const dir = join(root, 'a');
    await a.save(dir);
    await a.delete();
    const variants: [string, (j: Record<string, unknown>) => Record<string, unknown>, string, string][] = [
      ['tying', (j) => ({ ...j, ensure_weight_tying: true }), 'E_ADAPTER_CONFIG', "'ensure_weight_tying' is true"],
      ['classifier', (j) => ({ ...j, modules_to_save: ['lm_head', 'classifier'] }), 'E_ADAPTER_CONFIG', "'modules_to_save' 'classifier'"],
      ['missing', (j) => ({ ...j, modules_to_save: ['lm_head', 'embed_tokens'] }), 'E_ADAPTER', "'base_model.model.model.embed_tokens.weight' is missing"],
      ['unlisted', (j) => ({ ...j, modules_to_save: null }), 'E_ADAPTER', "unexpected tensor 'base_model.model.lm_head.weight'"],
    ];
    for (const [name, edit, code, msg] of variants) {
      const d = join(root, name);
      mkdirSync(d, { recursive: true });
      cpSync(dir, d, { recursive: true });
      rewriteJson(join(d, 'adapter_config.json'), edit);
      await rejects(LoraAdapter.load(model, d, { name }), code, msg);
    }
    expect(LoraAdapter.list(model)).toEqual([]);
  });

  it("forward and generate use the active adapter's lm_head copy; delete() returns to the base head; a tied model refuses to merge a copy", async () => {
    await using model = await Model.load(LLAMA);
    const prompt = [5, 9, 17, 33];
    const base = await model.forward([prompt]);
    const baseGen = (await model.generate(prompt, { maxNewTokens: 6, eosTokenId: [] }))[0];
    const a = await LoraAdapter.create(model, { targetModules: ['q_proj'], modulesToSave: ['lm_head'] });
    const t = await a.tensors();
    const head = t.get('base_model.model.lm_head.weight')!;
    head.data.fill(0);  // a zero head: every logit 0
    await a.setTensors(t);
    expect(maxAbsDiff((await model.forward([prompt])).logits, new Float32Array(base.logits.length))).toBe(0);
    // a head of noise: greedy generation (KV cache, its own session) follows the copy's argmax
    let s = 1;
    for (let i = 0; i < head.data.length; i++) head.data[i] = ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 4;
    await a.setTensors(t);
    const gen = (await model.generate(prompt, { maxNewTokens: 6, eosTokenId: [] }))[0];
    const ids = [...prompt];
    for (let i = 0; i < 6; i++) {
      const out = await model.forward([ids]);
      const last = out.logits.subarray((ids.length - 1) * 256, ids.length * 256);
      ids.push(last.indexOf(Math.max(...last)));
    }
    expect(gen).toEqual(ids.slice(prompt.length));
    expect(gen).not.toEqual(baseGen);
    await a.delete();
    expect(maxAbsDiff((await model.forward([prompt])).logits, base.logits)).toBe(0);

    const tied = join(root, 'tied');
    cpSync(LLAMA, tied, { recursive: true });
    rewriteJson(join(tied, 'config.json'), (j) => ({ ...j, tie_word_embeddings: true }));
    await using tm = await Model.load(tied);
    const b = await LoraAdapter.create(tm, { targetModules: ['q_proj'], modulesToSave: ['embed_tokens'] });
    await rejects(b.mergeAndUnload(), 'E_ADAPTER', 'model.embed_tokens', 'would untie lm_head from embed_tokens');
    expect(LoraAdapter.list(tm)).toHaveLength(1);
  });
});
