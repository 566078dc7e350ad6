// LoraAdapter failure modes (load, create, merge, save) and multi-adapter behaviour: several
// adapters on one model, disable, and LoraAdapter.combine against PEFT's add_weighted_adapter.
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejects } from '../helpers/rejects.js';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { fromFloat32, readSafetensors, serializeSafetensors, toFloat32, type StTensor } from '../../lib/util/safetensors.js';
import { mulberry32, rewriteJson } from '../helpers/corrupt.js';
import { Golden, HF, maxAbsDiff, maxAbsDiffMasked, rows } from '../helpers/golden.js';
import { runPython, scratchDir } from '../helpers/python.js';

const LLAMA = join(HF, 'llama', 'model');
const FIXTURE_ADAPTER = join(HF, 'llama', 'adapter');
const root = scratchDir('adapter-errors');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const golden = new Golden('llama');
const ids = rows(golden.ints('input_ids'), [2, 16]);
const maskFlat = golden.ints('attention_mask');
const mask = rows(maskFlat, [2, 16]);


let n = 0;
/** A copy of the llama fixture adapter whose tensors pass through `edit`. */
function adapterCopy(edit?: (t: Map<string, StTensor>) => void): string {
  const dir = join(root, `adapter-${n++}`);
  cpSync(FIXTURE_ADAPTER, dir, { recursive: true });
  if (edit) {
    const file = join(dir, 'adapter_model.safetensors');
    const st = readSafetensors(file);
    const tensors = new Map(st.tensors);
    edit(tensors);
    writeFileSync(file, serializeSafetensors(tensors, st.metadata));
  }
  return dir;
}

/** A llama checkpoint with other dimensions (seeded random weights), written with our own writer. */
function tinyLlama(dir: string, o: { hidden: number; layers: number }): string {
  mkdirSync(dir, { recursive: true });
  const H = o.hidden, I = 2 * o.hidden, heads = 4, kv = 2, hd = H / heads, Vv = 256;
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: H, intermediate_size: I, num_attention_heads: heads,
    num_key_value_heads: kv, num_hidden_layers: o.layers, vocab_size: Vv, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
    max_position_embeddings: 128, torch_dtype: 'float32',
  }));
  const r = mulberry32(H * 100 + o.layers);
  const t = new Map<string, StTensor>();
  const rand = (shape: number[]) => fromFloat32(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * r() - 1) * 0.1), shape);
  t.set('model.embed_tokens.weight', rand([Vv, H]));
  t.set('lm_head.weight', rand([Vv, H]));
  t.set('model.norm.weight', fromFloat32(new Float32Array(H).fill(1), [H]));
  for (let l = 0; l < o.layers; l++) {
    const p = `model.layers.${l}`;
    t.set(`${p}.input_layernorm.weight`, fromFloat32(new Float32Array(H).fill(1), [H]));
    t.set(`${p}.post_attention_layernorm.weight`, fromFloat32(new Float32Array(H).fill(1), [H]));
    t.set(`${p}.self_attn.q_proj.weight`, rand([heads * hd, H]));
    t.set(`${p}.self_attn.k_proj.weight`, rand([kv * hd, H]));
    t.set(`${p}.self_attn.v_proj.weight`, rand([kv * hd, H]));
    t.set(`${p}.self_attn.o_proj.weight`, rand([H, heads * hd]));
    t.set(`${p}.mlp.gate_proj.weight`, rand([I, H]));
    t.set(`${p}.mlp.up_proj.weight`, rand([I, H]));
    t.set(`${p}.mlp.down_proj.weight`, rand([H, I]));
  }
  writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(t, { format: 'pt' }));
  return dir;
}

async function linearWeights(model: Model): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const name of model.parameterNames().filter((k) => /_proj\.weight$/.test(k))) out.set(name, (await model.parameter(name)).data);
  return out;
}

describe('LoraAdapter.load failures', () => {
  let model: Model;
  beforeAll(async () => {
    model = await Model.load(LLAMA);
  });
  afterAll(async () => model.dispose());

  it('(reference) the untouched copy loads and gives PEFT\'s logits', async () => {
    const a = await LoraAdapter.load(model, adapterCopy(), { name: 'ok' });
    const out = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(out.logits, golden.floats('lora.logits'), maskFlat, 256)).toBeLessThan(1e-4);
    await a.delete();
  });

  it('a missing adapter_model.safetensors is named (and a pickle adapter_model.bin gets a hint)', async () => {
    const dir = adapterCopy();
    unlinkSync(join(dir, 'adapter_model.safetensors'));
    await rejects(LoraAdapter.load(model, dir), 'E_ADAPTER', dir, 'no adapter_model.safetensors');
    writeFileSync(join(dir, 'adapter_model.bin'), 'pickle');
    await rejects(LoraAdapter.load(model, dir), 'E_ADAPTER', 'adapter_model.bin', 'safe_serialization=True');
    unlinkSync(join(dir, 'adapter_config.json'));
    await rejects(LoraAdapter.load(model, dir), 'E_ADAPTER', 'no adapter_config.json');
  });

  it('a missing lora_B tensor is named', async () => {
    const key = 'base_model.model.model.layers.1.mlp.up_proj.lora_B.weight';
    const dir = adapterCopy((t) => t.delete(key));
    await rejects(LoraAdapter.load(model, dir), 'E_ADAPTER', join(dir, 'adapter_model.safetensors'), `'${key}' is missing`);
  });

  it('a tensor whose rank disagrees with r, or whose other dimension disagrees with the model, is named with both shapes', async () => {
    const keyA = 'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight';
    const d1 = adapterCopy((t) => {
      const v = toFloat32(t.get(keyA)!);
      t.set(keyA, fromFloat32(v.subarray(0, 3 * 64), [3, 64]));
    });
    await rejects(LoraAdapter.load(model, d1), 'E_SHAPE', `'${keyA}' has shape [3, 64] but r is 4`);
    const keyB = 'base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight';
    const d2 = adapterCopy((t) => {
      const v = toFloat32(t.get(keyB)!);  // [32, 4] -> [16, 4]
      t.set(keyB, fromFloat32(v.subarray(0, 16 * 4), [16, 4]));
    });
    await rejects(LoraAdapter.load(model, d2), 'E_SHAPE', 'model.layers.0.self_attn.k_proj.lora_B.weight', 'has shape [16, 4] but the model needs [32, 4]', 'another base model');
    // the failed load left nothing behind: the name is free and the base model is unchanged
    expect(LoraAdapter.list(model).map((a) => a.name)).toEqual([]);
    const out = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(out.logits, golden.floats('base.logits'), maskFlat, 256)).toBeLessThan(1e-4);
  });

  it('a tensor for a module the model does not have is refused by name', async () => {
    const dir = adapterCopy((t) => {
      t.set('base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight', t.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!);
    });
    await rejects(LoraAdapter.load(model, dir), 'E_ADAPTER', "targets 'model.layers.7.self_attn.q_proj', which is not a linear module of this llama model");
    const d2 = adapterCopy((t) => {
      t.set('base_model.model.lm_head.modules_to_save.default.weight', t.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!);
    });
    await rejects(LoraAdapter.load(model, d2), 'E_ADAPTER', "unexpected tensor 'base_model.model.lm_head.modules_to_save.default.weight'");
  });

  it('use_dora: true without magnitudes names the missing tensor; other maths-changing keys are refused by name', async () => {
    const dora = adapterCopy();
    rewriteJson(join(dora, 'adapter_config.json'), (j) => ({ ...j, use_dora: true }));
    await rejects(LoraAdapter.load(model, dora), 'E_ADAPTER', 'lora_magnitude_vector\' is missing (use_dora: true');
    const cases: [Record<string, unknown>, string][] = [
      [{ rank_pattern: { q_proj: 8 } }, 'rank_pattern'],
      [{ init_lora_weights: 'loftq' }, 'loftq'],
      [{ init_lora_weights: 'pissa_niter_x' }, 'pissa_niter_x'],
      [{ peft_type: 'IA3' }, "'peft_type' is \"IA3\""],
      [{ r: 0 }, "'r' must be a positive integer"],
    ];
    for (const [patch, msg] of cases) {
      const dir = adapterCopy();
      rewriteJson(join(dir, 'adapter_config.json'), (j) => ({ ...j, ...patch }));
      await rejects(LoraAdapter.load(model, dir), 'E_ADAPTER_CONFIG', join(dir, 'adapter_config.json'), msg);
    }
  });

  it('unknown extra config keys are ignored: the adapter loads and still gives PEFT\'s logits', async () => {
    const dir = adapterCopy();
    rewriteJson(join(dir, 'adapter_config.json'), (j) => ({ ...j, some_future_peft_option: { nested: [1, 2] }, another: 'x' }));
    const a = await LoraAdapter.load(model, dir, { name: 'extra' });
    const out = await model.forward(ids, { attentionMask: mask });
    expect(maxAbsDiffMasked(out.logits, golden.floats('lora.logits'), maskFlat, 256)).toBeLessThan(1e-4);
    await a.delete();
  });

  it('invalid JSON in adapter_config.json is E_ADAPTER_CONFIG naming the file', async () => {
    const dir = adapterCopy();
    writeFileSync(join(dir, 'adapter_config.json'), '{"peft_type": "LORA", "r": 4,');
    await rejects(LoraAdapter.load(model, dir), 'E_ADAPTER_CONFIG', join(dir, 'adapter_config.json'), 'not valid JSON');
    writeFileSync(join(dir, 'adapter_config.json'), '[]');
    await rejects(LoraAdapter.load(model, dir), 'E_ADAPTER_CONFIG', 'must be a JSON object');
  });

  it('a corrupt adapter_model.safetensors is E_SAFETENSORS naming the file', async () => {
    const dir = adapterCopy();
    writeFileSync(join(dir, 'adapter_model.safetensors'), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0x7b]));
    await rejects(LoraAdapter.load(model, dir), 'E_SAFETENSORS', join(dir, 'adapter_model.safetensors'));
  });
});

describe('an adapter for another base model', () => {
  it('the qwen2 fixture adapter on a llama with hidden 32 fails on shape, naming the tensor, and leaves the model usable', async () => {
    const dir = tinyLlama(join(root, 'llama-h32'), { hidden: 32, layers: 2 });
    await using model = await Model.load(dir);
    const before = await model.forward([[5, 6, 7]]);
    const e = await rejects(LoraAdapter.load(model, join(HF, 'qwen2', 'adapter')), 'E_SHAPE', 'adapter_model.safetensors', 'lora_A.weight', 'has shape [4, 64] but the model needs [4, 32]', 'another base model');
    expect(e.message).toMatch(/model\.layers\.\d\.(self_attn|mlp)\.\w+_proj\.lora_A\.weight/);
    expect(LoraAdapter.list(model)).toEqual([]);
    const after = await model.forward([[5, 6, 7]]);
    expect(maxAbsDiff(after.logits, before.logits)).toBe(0);
    // the name is free again
    const again = await LoraAdapter.create(model, { rank: 2 });
    expect(again.name).toBe('default');
  });

  it('an adapter for a deeper model fails on the first layer the model lacks', async () => {
    const dir = tinyLlama(join(root, 'llama-1layer'), { hidden: 64, layers: 1 });
    await using model = await Model.load(dir);
    await rejects(LoraAdapter.load(model, FIXTURE_ADAPTER), 'E_ADAPTER', "targets 'model.layers.1.", 'not a linear module of this llama model');
  });
});

describe('LoraAdapter.create options', () => {
  it('bad options are E_OPTION naming the option; an unknown target lists the model\'s modules', async () => {
    await using model = await Model.load(LLAMA);
    await rejects(LoraAdapter.create(model, { rank: 0 }), 'E_OPTION', "option 'rank'", 'got 0');
    await rejects(LoraAdapter.create(model, { rank: 2.5 }), 'E_OPTION', "option 'rank'");
    await rejects(LoraAdapter.create(model, { dropout: 1 }), 'E_OPTION', "option 'dropout'", 'got 1');
    await rejects(LoraAdapter.create(model, { dropout: -0.1 }), 'E_OPTION', "option 'dropout'");
    await rejects(LoraAdapter.create(model, { alpha: 0 }), 'E_OPTION', "option 'alpha'");
    await rejects(LoraAdapter.create(model, { alpha: NaN }), 'E_OPTION', "option 'alpha'");
    await rejects(LoraAdapter.create(model, { init: 'loftq' as never }), 'E_OPTION', "option 'init'", 'pissa_niter_<N>');
    await rejects(LoraAdapter.create(model, { init: 'pissa_niter_' as never }), 'E_OPTION', "option 'init'");
    await rejects(LoraAdapter.create(model, { init: 'pissa', rank: 65, targetModules: ['k_proj'] }), 'E_OPTION', 'rank <= min(in, out) = 32');
    await rejects(LoraAdapter.create(model, { name: 'a/b' }), 'E_OPTION', "option 'name'");
    await rejects(LoraAdapter.create(model, { targetModules: ['q_proj', 'c_attn'] }), 'E_OPTION', "'c_attn' match no module of this llama model",
      'q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj');
    await rejects(LoraAdapter.create(model, { targetModules: '(' }), 'E_OPTION', 'not a valid regular expression');
    await rejects(LoraAdapter.create(model, { targetModules: 'lm_head' }), 'E_OPTION', 'matches no module');
    await rejects(LoraAdapter.create(model, { targetModules: [] }), 'E_OPTION', "option 'targetModules'");
    // none of the failures attached anything
    expect(LoraAdapter.list(model)).toEqual([]);
    await LoraAdapter.create(model, { name: 'x' });
    await rejects(LoraAdapter.create(model, { name: 'x' }), 'E_ADAPTER', "already has an adapter named 'x'");
  });
});

describe('non-finite adapters', () => {
  it('merge refuses a NaN delta with E_LORA_MERGE and leaves every base weight unchanged', async () => {
    await using model = await Model.load(LLAMA);
    const a = await LoraAdapter.load(model, FIXTURE_ADAPTER);
    const before = await linearWeights(model);
    const values = await a.tensors();
    // NaN only in the LAST module, so a merge that went layer by layer would have changed the others
    const key = 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight';
    values.get(key)!.data[5] = NaN;
    await a.setTensors(new Map([[key, values.get(key)!]]));
    await rejects(a.merge(), 'E_LORA_MERGE', 'non-finite', 'model.layers.1.mlp.down_proj');
    const after = await linearWeights(model);
    for (const [k, v] of before) expect(Buffer.from(after.get(k)!.buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
    await rejects(a.mergeAndUnload(), 'E_LORA_MERGE');
    expect(LoraAdapter.list(model)).toHaveLength(1);
    // Infinity too; a finite value again merges
    values.get(key)!.data[5] = Infinity;
    await a.setTensors(new Map([[key, values.get(key)!]]));
    await rejects(a.merge(), 'E_LORA_MERGE');
    values.get(key)!.data[5] = 0.01;
    await a.setTensors(new Map([[key, values.get(key)!]]));
    await a.merge();
    const merged = await linearWeights(model);
    expect(maxAbsDiff(merged.get('model.layers.1.mlp.down_proj.weight')!, before.get('model.layers.1.mlp.down_proj.weight')!)).toBeGreaterThan(0);
  });

  it('save refuses NaN with E_NON_FINITE and writes no folder (nor leftovers)', async () => {
    await using model = await Model.load(LLAMA);
    const a = await LoraAdapter.create(model, { rank: 2 });
    const values = await a.tensors();
    const [key, v] = [...values][3];
    v.data[0] = NaN;
    await a.setTensors(new Map([[key, v]]));
    const parent = join(root, 'save-nan');
    mkdirSync(parent);
    await rejects(a.save(join(parent, 'out')), 'E_NON_FINITE', key, 'NaN or infinite');
    expect(existsSync(join(parent, 'out'))).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
    // an existing good folder is not replaced by a failed save
    v.data[0] = 0.5;
    await a.setTensors(new Map([[key, v]]));
    await a.save(join(parent, 'out'));
    const good = readSafetensors(join(parent, 'out', 'adapter_model.safetensors'));
    v.data[0] = -Infinity;
    await a.setTensors(new Map([[key, v]]));
    await rejects(a.save(join(parent, 'out')), 'E_NON_FINITE');
    expect(toFloat32(readSafetensors(join(parent, 'out', 'adapter_model.safetensors')).tensors.get(key)!)[0]).toBe(0.5);
    expect(readSafetensors(join(parent, 'out', 'adapter_model.safetensors')).tensors.size).toBe(good.tensors.size);
    expect(readdirSync(parent)).toEqual(['out']);
  });
});

describe('several adapters on one model, and combine against PEFT', () => {
  // 'one' = the llama fixture adapter (r 4, alpha 8, all seven projections);
  // 'two' = an adapter created (r 4, alpha 6, all-linear) with seeded random A and B, saved, deleted
  //         and loaded back from its folder (the folder PEFT reads too).
  const W = [0.7, -0.4];
  const twoDir = join(root, 'two');
  let model: Model;
  let one: LoraAdapter;
  let two: LoraAdapter;
  let ref: Golden;

  beforeAll(async () => {
    model = await Model.load(LLAMA);
    one = await LoraAdapter.load(model, FIXTURE_ADAPTER, { name: 'one', activate: false });
    two = await LoraAdapter.create(model, { name: 'two', rank: 4, alpha: 6, targetModules: 'all-linear', activate: false });
    const r = mulberry32(77);
    const values = await two.tensors();
    for (const v of values.values()) for (let i = 0; i < v.data.length; i++) v.data[i] = (2 * r() - 1) * 0.2;
    await two.setTensors(values);
    await two.save(twoDir);
    // both adapters on the model are loaded from folders, by name
    await two.delete();
    two = await LoraAdapter.load(model, twoDir, { name: 'two', activate: false });
    const out = join(root, 'combine.safetensors');
    await runPython('peft_combine.py', ['--model', LLAMA, '--adapters', `${FIXTURE_ADAPTER},${twoDir}`, '--weights', W.join(','), '--types', 'cat,linear', '--inputs', join(HF, 'llama', 'golden.safetensors'), '--out', out]);
    ref = new Golden('llama', out);
  }, 120_000);
  afterAll(async () => model.dispose());

  const logits = async () => (await model.forward(ids, { attentionMask: mask })).logits;
  const close = (a: Float32Array, b: Float32Array) => maxAbsDiffMasked(a, b, maskFlat, 256);

  it('activate each adapter by name: each gives PEFT\'s logits; disableAll gives the base logits back', async () => {
    await one.activate();
    expect(close(await logits(), golden.floats('lora.logits'))).toBeLessThan(1e-4);
    expect(close(await logits(), ref.floats('source0.logits'))).toBeLessThan(1e-4);
    await two.activate();
    const l2 = await logits();
    expect(close(l2, ref.floats('source1.logits'))).toBeLessThan(1e-4);
    expect(close(l2, golden.floats('base.logits'))).toBeGreaterThan(1e-2);
    await LoraAdapter.disableAll(model);
    expect(close(await logits(), golden.floats('base.logits'))).toBeLessThan(1e-4);
    expect(LoraAdapter.list(model).map((a) => a.name).sort()).toEqual(['one', 'two']);
  });

  it("combine 'cat' (weights 1, 1) equals both adapters merged one after the other", async () => {
    const cat = await LoraAdapter.combine(model, [{ adapter: one, weight: 1 }, { adapter: two, weight: 1 }], { name: 'cat11', combinationType: 'cat' });
    expect(cat.config.r).toBe(8);
    const combined = await logits();
    await LoraAdapter.disableAll(model);
    await one.merge();
    await two.merge();
    const merged = await logits();
    await two.unmerge();
    await one.unmerge();
    expect(close(await logits(), golden.floats('base.logits'))).toBeLessThan(1e-4);
    expect(close(merged, golden.floats('base.logits'))).toBeGreaterThan(1e-2);
    expect(close(combined, merged)).toBeLessThan(1e-4);
    await cat.delete();
  });

  for (const type of ['cat', 'linear'] as const) {
    it(`combine '${type}' with weights ${W.join(', ')} gives PEFT add_weighted_adapter's tensors and logits`, async () => {
      const c = await LoraAdapter.combine(model, [{ adapter: one, weight: W[0] }, { adapter: two, weight: W[1] }], { name: `${type}-peft`, combinationType: type });
      expect(c.config.r).toBe(type === 'cat' ? 8 : 4);
      expect(c.scaling).toBe(1);
      const tensors = await c.tensors();
      const keys = ref.keys(`${type}.base_model.`);
      expect(keys.length).toBe(tensors.size);
      for (const key of keys) {
        const got = tensors.get(key.slice(type.length + 1));
        expect(got, key).toBeDefined();
        expect(got!.shape).toEqual(ref.shape(key));
        expect(maxAbsDiff(got!.data, ref.floats(key)), key).toBeLessThan(1e-6);
      }
      expect(close(await logits(), ref.floats(`${type}.logits`))).toBeLessThan(1e-4);
      await c.delete();
    });
  }

  it("combine 'linear' refuses adapters of different ranks", async () => {
    const three = await LoraAdapter.create(model, { name: 'three', rank: 2, targetModules: 'all-linear', activate: false });
    await rejects(LoraAdapter.combine(model, [{ adapter: one, weight: 1 }, { adapter: three, weight: 1 }], { name: 'bad', combinationType: 'linear' }), 'E_ADAPTER', 'same rank');
    const qv = await LoraAdapter.create(model, { name: 'qv', rank: 4, targetModules: ['q_proj', 'v_proj'], activate: false });
    await rejects(LoraAdapter.combine(model, [{ adapter: one, weight: 1 }, { adapter: qv, weight: 1 }], { name: 'bad2' }), 'E_ADAPTER', 'targets other modules');
    await three.delete();
    await qv.delete();
  });
});
