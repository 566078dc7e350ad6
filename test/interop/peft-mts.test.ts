// modules_to_save (lm_head, embed_tokens) against the real PEFT (test/interop/peft_mts_check.py,
// one Python run), on the untied llama fixture and on a tied copy of it:
//  - lorafit -> PEFT: lorafit's adapter with perturbed copies loads in PeftModel with every tensor;
//    logits, loss, the gradient of every trainable tensor (the copies included) and, untied, the
//    merge_and_unload logits agree;
//  - PEFT -> lorafit: PEFT's adapter (its file keys, base_model.model.<path>.weight) loads in
//    lorafit with PEFT's logits, and lorafit trains exactly the tensors PEFT trains (tied: the copy
//    on one side only);
//  - a Trainer step moves the copies (the native train state trains them).
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Trainer } from '../../lib/train/trainer.js';
import { readSafetensors, serializeSafetensors } from '../../lib/util/safetensors.js';
import { mulberry32 } from '../helpers/corrupt.js';
import { Golden, HF, maxAbs, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { runPython, scratchDir } from '../helpers/python.js';

const root = scratchDir('peft-mts');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const TIED = join(root, 'llama-tied');

interface Case {
  id: string;
  tied: boolean;
  modulesToSave: string[];
  targets: string[];
  seed: number;
}
const CASES: Case[] = [
  { id: 'untied llama [lm_head, embed_tokens]', tied: false, modulesToSave: ['lm_head', 'embed_tokens'], targets: ['q_proj', 'v_proj'], seed: 1 },
  { id: 'tied llama [lm_head]', tied: true, modulesToSave: ['lm_head'], targets: ['q_proj'], seed: 2 },
  { id: 'tied llama [embed_tokens]', tied: true, modulesToSave: ['embed_tokens'], targets: ['v_proj'], seed: 3 },
];
const dirOf = (c: Case) => join(root, c.id.replace(/\W+/g, '_'));
const modelOf = (c: Case) => (c.tied ? TIED : join(HF, 'llama', 'model'));

const golden = new Golden('llama');
const ids = rows(golden.ints('input_ids'), [2, 16]);
const maskFlat = golden.ints('attention_mask');
const mask = rows(maskFlat, [2, 16]);
const labels = rows(golden.ints('labels'), [2, 16]);
const V = 256;

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;
const mine = new Map<string, { logits: Float32Array; loss: number; grads: Tensors; merged?: Float32Array; keys: string[] }>();

/** The llama fixture with tie_word_embeddings true and no lm_head.weight (transformers ties it on load). */
function makeTiedLlama(): void {
  cpSync(join(HF, 'llama', 'model'), TIED, { recursive: true });
  const cfgFile = join(TIED, 'config.json');
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), tie_word_embeddings: true }, null, 2));
  const st = readSafetensors(join(TIED, 'model.safetensors'));
  st.tensors.delete('lm_head.weight');
  writeFileSync(join(TIED, 'model.safetensors'), serializeSafetensors(st.tensors, { format: 'pt' }));
}

beforeAll(async () => {
  makeTiedLlama();
  const cases = [];
  for (const c of CASES) {
    await using model = await Model.load(modelOf(c));
    const adapter = await LoraAdapter.create(model, { rank: 2, alpha: 4, targetModules: c.targets, modulesToSave: c.modulesToSave, seed: c.seed });
    const rnd = mulberry32(300 + c.seed);
    const t = await adapter.tensors();
    for (const [key, v] of t) {
      const scale = key.includes('lora_') ? (key.includes('lora_A') ? 0.25 : 0.1) : 0.05;
      for (let i = 0; i < v.data.length; i++) v.data[i] = key.includes('lora_') ? (2 * rnd() - 1) * scale : v.data[i] + (2 * rnd() - 1) * scale;
    }
    await adapter.setTensors(t);
    await adapter.save(join(dirOf(c), 'lorafit'));
    const logits = (await model.forward(ids, { attentionMask: mask })).logits;
    const r = await model.lossAndGrad([{ inputIds: ids, labels, attentionMask: mask }]);
    const grads = await adapter.tensors({ grads: true });
    let merged: Float32Array | undefined;
    if (!c.tied) {
      await adapter.mergeAndUnload();
      merged = (await model.forward(ids, { attentionMask: mask })).logits;
    }
    mine.set(c.id, { logits, loss: r.loss, grads, merged, keys: [...t.keys()] });
    cases.push({ id: c.id, model: modelOf(c), inputs: join(HF, 'llama', 'golden.safetensors'), modules_to_save: c.modulesToSave, targets: c.targets, r: 2, alpha: 4, seed: c.seed, out: dirOf(c), lorafit: join(dirOf(c), 'lorafit') });
  }
  writeFileSync(join(root, 'spec.json'), JSON.stringify({ cases }));
  await runPython('peft_mts_check.py', ['--spec', join(root, 'spec.json')]);
}, 600_000);

describe.each(CASES)('modules_to_save: $id', (c) => {
  it('lorafit -> PEFT: every tensor loads; logits, loss, every gradient (copies included) and merged logits agree', () => {
    const report = JSON.parse(readFileSync(join(dirOf(c), 'report.json'), 'utf8'));
    expect(report.tied).toBe(c.tied);
    expect(report['lorafit.load']).toEqual({ keys_not_loaded: [], params_not_in_file: [], value_mismatch: [] });
    const ref = new Golden('llama', join(dirOf(c), 'lorafit.safetensors'));
    const m = mine.get(c.id)!;
    expect(maxAbsDiffMasked(m.logits, ref.floats('logits'), maskFlat, V)).toBeLessThan(1e-4);
    expect(Math.abs(m.loss - ref.floats('loss')[0])).toBeLessThan(1e-5);
    const gradKeys = ref.keys('grad.');
    expect(gradKeys.map((k) => k.slice(5)).sort()).toEqual([...m.grads.keys()].sort());
    for (const key of gradKeys) {
      const want = ref.floats(key);
      expect(maxAbs(want), key).toBeGreaterThan(0);
      expect(maxAbsDiff(m.grads.get(key.slice(5))!.data, want), key).toBeLessThan(1e-5 + 1e-4 * maxAbs(want));
    }
    if (!c.tied) expect(maxAbsDiffMasked(m.merged!, ref.floats('merged.logits'), maskFlat, V)).toBeLessThan(1e-4);
  });

  it('PEFT -> lorafit: PEFT\'s file loads with PEFT\'s logits, and lorafit trains the tensors PEFT trains', async () => {
    const report = JSON.parse(readFileSync(join(dirOf(c), 'report.json'), 'utf8'));
    expect(report['peft.config'].modules_to_save).toEqual(c.modulesToSave);
    const paths = c.modulesToSave.map((n) => (n === 'lm_head' ? 'lm_head' : 'model.embed_tokens'));
    expect(report['peft.file_keys']).toEqual(paths.map((p) => `base_model.model.${p}.weight`).sort());
    const ref = new Golden('llama', join(dirOf(c), 'peft.safetensors'));
    await using model = await Model.load(modelOf(c));
    const adapter = await LoraAdapter.load(model, join(dirOf(c), 'peft'));
    const out = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(ref.floats('peft.logits'), ref.floats('base.logits'), maskFlat, V)).toBeGreaterThan(1e-2);
    expect(maxAbsDiffMasked(out.logits, ref.floats('peft.logits'), maskFlat, V)).toBeLessThan(1e-4);
    // PEFT's trainable parameters, named as in the file, are exactly lorafit's tensors
    const peftTrainable = (report['peft.trainable'] as string[]).map((n) => n.replace('.lora_A.default.', '.lora_A.').replace('.lora_B.default.', '.lora_B.').replace('.modules_to_save.default.weight', '.weight'));
    expect([...(await adapter.tensors()).keys()].sort()).toEqual(peftTrainable.sort());
  });
});

describe('modules_to_save training', () => {
  it('a Trainer step moves the copies; the tied base weight under them stays as it was', async () => {
    await using model = await Model.load(TIED);
    const embed0 = (await model.parameter('model.embed_tokens.weight')).data;
    const adapter = await LoraAdapter.create(model, { rank: 2, alpha: 4, targetModules: ['q_proj'], modulesToSave: ['lm_head'], seed: 4 });
    const before = (await adapter.tensors()).get('base_model.model.lm_head.weight')!.data;
    expect(maxAbsDiff(before, embed0)).toBe(0);  // the copy starts as the tied weight
    expect(adapter.trainableParameters().trainable).toBe(2 * (64 + 64) * 2 + 256 * 64);
    const keep = [...Array(16).keys()].filter((t) => maskFlat[t] === 1);
    const trainer = new Trainer({
      model, adapter, trainData: [{ inputIds: keep.map((t) => ids[0][t]), labels: keep.map((t) => labels[0][t]) }], maxSteps: 1, batchSize: 1,
      learningRate: 1e-2, lrScheduler: 'constant', shuffle: false,
    });
    await trainer.fit();
    const after = (await adapter.tensors()).get('base_model.model.lm_head.weight')!.data;
    expect(maxAbsDiff(after, before)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff((await model.parameter('model.embed_tokens.weight')).data, embed0)).toBe(0);
  });
});
