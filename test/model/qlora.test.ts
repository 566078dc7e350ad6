// QLoRA: NF4 / int8 quantized base weights through Model.load, training on top, storage,
// merge, the bitsandbytes checkpoint layout and bad input. (NF4 against the fixture and the
// real bitsandbytes kernels is test/native/quant.test.ts; real bitsandbytes/transformers interop is
// test/interop/bnb-model.test.ts.)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeModel } from '../../bench/make-model.js';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { channelOf } from '../../lib/model/channel.js';
import { Model } from '../../lib/model/model.js';
import { native } from '../../lib/model/native.js';
import { readSafetensors, serializeSafetensors, type StTensor } from '../../lib/util/safetensors.js';
import { Trainer } from '../../lib/train/trainer.js';
import { byteExamples, yodaLines } from '../helpers/byte-data.js';
import { Golden, HF, maxAbsDiff, maxAbsDiffMasked } from '../helpers/golden.js';

const root = mkdtempSync(join(tmpdir(), 'lorafit-qlora-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function goldenInputs(arch: string) {
  const g = new Golden(arch);
  const ids = g.ints('input_ids');
  const mask = g.ints('attention_mask');
  const T = g.shape('input_ids')[1];
  return { ids: [ids.slice(0, T), ids.slice(T)], mask: [mask.slice(0, T), mask.slice(T)], flatMask: mask };
}

/** Small random LoRA weights (B included, which PEFT initialises to zero) so the adapter changes outputs. */
async function randomize(adapter: LoraAdapter, seed: number): Promise<void> {
  let s = seed >>> 0 || 1;
  const t = await adapter.tensors();
  for (const v of t.values()) {
    for (let i = 0; i < v.data.length; i++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      v.data[i] = (s / 2 ** 32 - 0.5) * 0.2;
    }
  }
  await adapter.setTensors(t);
}

function rmsDiff(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

describe.each(['llama', 'qwen2'] as const)('%s with a quantized base', (arch) => {
  // Measured on the fixture models (random weights, std 0.02; logits up to |4.8|), golden inputs,
  // fp32 compute, vs the fp32 model:
  //   NF4 (block 64, double quant): llama max 0.976 / rms 0.191; qwen2 max 1.088 / rms 0.187
  //   NF4 without double quant:     llama max 0.978 / rms 0.191; qwen2 max 1.086 / rms 0.186
  //   int8 per-row absmax:          llama max 0.052 / rms 0.012; qwen2 max 0.048 / rms 0.012
  // NF4's 16 levels give each weight ~10% rms relative error, so logits move by ~0.2 rms; the
  // interop test shows these NF4 logits equal transformers + bitsandbytes' to 1e-4, i.e. the
  // error is the quantization's own, not ours. Bounds: ~1.4x the measurements.
  it('NF4 and int8 logits stay within the measured quantization error of fp32', async () => {
    const { ids, mask, flatMask } = goldenInputs(arch);
    await using dense = await Model.load(join(HF, arch, 'model'));
    const ref = (await dense.forward(ids, { attentionMask: mask })).logits;
    const err: Record<string, { max: number; rms: number }> = {};
    for (const [label, opts] of [
      ['nf4', { quantize: 'nf4' }],
      ['nf4-plain', { quantize: 'nf4', doubleQuant: false }],
      ['int8', { quantize: 'int8' }],
    ] as const) {
      await using m = await Model.load(join(HF, arch, 'model'), opts);
      expect(m.quantization?.type).toBe(opts.quantize);
      const got = (await m.forward(ids, { attentionMask: mask })).logits;
      err[label] = { max: maxAbsDiffMasked(ref, got, flatMask, 256), rms: rmsDiff(ref, got) };
    }
    expect(err.nf4.max).toBeLessThan(1.5);
    expect(err.nf4.rms).toBeLessThan(0.27);
    expect(err['nf4-plain'].max).toBeLessThan(1.5);
    expect(err.int8.max).toBeLessThan(0.075);
    expect(err.int8.rms).toBeLessThan(0.017);
    expect(err.nf4.rms).toBeGreaterThan(10 * err.int8.rms);  // 4 bits are coarser than 8
    expect(err.int8.max).toBeGreaterThan(0);                  // it is really quantized
  });

  it('a quantized weight reads back as its dequantized dense value, and the storage adds up', async () => {
    await using m = await Model.load(join(HF, arch, 'model'), { quantize: 'nf4' });
    await using d = await Model.load(join(HF, arch, 'model'));
    expect(m.parameterNames()).toEqual(d.parameterNames());
    expect(m.numParameters()).toBe(d.numParameters());
    const name = 'model.layers.0.mlp.up_proj.weight';
    const q = await m.parameter(name);
    const w = await d.parameter(name);
    expect(q.shape).toEqual(w.shape);
    // NF4: |w - deq(w)| <= half the widest code gap (0.28) x the block absmax <= ~0.15 max|w|
    let wmax = 0;
    for (const v of w.data) wmax = Math.max(wmax, Math.abs(v));
    expect(maxAbsDiff(q.data, w.data)).toBeLessThan(0.16 * wmax);
    expect(new Set(q.data.slice(0, 64)).size).toBeLessThanOrEqual(16);  // one block: at most 16 values

    // Storage: per weight [out, in] with n values, nb = n/64 blocks:
    //   n/2 (codes) + nb (8-bit absmax) + 4*ceil(nb/256) (absmax2) + 1024 (nested map) + 4 (offset) + 64 (NF4 map)
    const r = await m.storageReport();
    const cfg = m.config;
    const H = cfg.hiddenSize, I = cfg.intermediateSize, D = cfg.headDim;
    const shapes = [[cfg.numAttentionHeads * D, H], [cfg.numKeyValueHeads * D, H], [cfg.numKeyValueHeads * D, H], [H, cfg.numAttentionHeads * D], [I, H], [I, H], [H, I]];
    let bytes = 0, params = 0;
    for (const [o, i] of shapes) {
      const n = o * i, nb = Math.ceil(n / 64);
      bytes += n / 2 + nb + 4 * Math.ceil(nb / 256) + 1024 + 4 + 64;
      params += n;
    }
    expect(r.quantizedParams).toBe(params * cfg.numHiddenLayers);
    expect(r.quantizedBytes).toBe(bytes * cfg.numHiddenLayers);
    expect(await m.quantizedBytes()).toBe(r.quantizedBytes);
    const i8 = await (await Model.load(join(HF, arch, 'model'), { quantize: 'int8' })).storageReport();
    expect(i8.quantizedBytes).toBe(r.quantizedParams + 4 * cfg.numHiddenLayers * shapes.reduce((s, [o]) => s + o, 0));
  });

  it('a LoRA gradient through the NF4 base equals the one through its dequantized dense copy', async () => {
    // The custom autograd function (dequantize in forward, again in backward) against autograd
    // through an ordinary dense layer holding exactly the dequantized weights.
    await using q = await Model.load(join(HF, arch, 'model'), { quantize: 'nf4' });
    const denseDir = join(root, `${arch}-nf4-dequantized`);
    await q.save(denseDir, { quantized: false });
    await using d = await Model.load(denseDir);
    expect(d.quantization).toBeUndefined();
    const batch = byteExamples(yodaLines().slice(0, 2), 24).map((e) => ({ inputIds: [Array.from(e.inputIds)], labels: [Array.from(e.labels)] }));
    const grads: Map<string, { data: Float32Array }>[] = [];
    for (const m of [q, d]) {
      const a = await LoraAdapter.create(m, { rank: 4, alpha: 8, targetModules: 'all-linear', seed: 3 });
      await randomize(a, 3);
      const r = await m.lossAndGrad([batch[0]]);
      expect(Number.isFinite(r.loss)).toBe(true);
      grads.push(await a.tensors({ grads: true }));
    }
    let worst = 0, scale = 0;
    for (const [k, g] of grads[0]) {
      worst = Math.max(worst, maxAbsDiff(g.data, grads[1].get(k)!.data));
      for (const v of g.data) scale = Math.max(scale, Math.abs(v));
    }
    expect(scale).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1e-5 * Math.max(1, scale));
  });
});

describe('LoRA training on a quantized base', () => {
  const lines = yodaLines();
  const train = byteExamples(lines.slice(0, 32));
  const evalSet = byteExamples(lines.slice(32));
  async function run(quantize?: 'nf4' | 'int8', gradientCheckpointing = false) {
    await using model = await Model.load(join(HF, 'llama', 'model'), quantize ? { quantize } : {});
    const adapter = await LoraAdapter.create(model, { rank: 8, alpha: 16, targetModules: 'all-linear', seed: 1 });
    const trainer = new Trainer({ model, adapter, trainData: train, evalData: evalSet, learningRate: 3e-3, batchSize: 4, seed: 7, maxSteps: 40, lrScheduler: 'cosine', warmupSteps: 4, gradientCheckpointing });
    const before = (await trainer.evaluateLoss()).evalLoss;
    const after = (await trainer.fit()).evalLoss!;
    return { before, after };
  }

  // Measured (llama fixture, 40 steps): fp32 6.049 -> 4.483, NF4 6.067 -> 4.481, int8 6.047 -> 4.485.
  it('lowers eval loss on the NF4 (and int8) base as it does on the fp32 one', async () => {
    const fp32 = await run();
    const nf4 = await run('nf4');
    const int8 = await run('int8');
    expect(fp32.before - fp32.after).toBeGreaterThan(1.0);
    for (const q of [nf4, int8]) {
      expect(q.before - q.after).toBeGreaterThan(1.0);
      expect(Math.abs(q.after - fp32.after)).toBeLessThan(0.1);
    }
  });

  it('works with gradient checkpointing on the NF4 base (same losses as without)', async () => {
    const a = await run('nf4', false);
    const b = await run('nf4', true);
    expect(Math.abs(a.after - b.after)).toBeLessThan(1e-4);
  });
});

describe('merging into a quantized base', () => {
  it('merge gives the LoRA outputs with a dense layer and a warning; unmerge restores the exact NF4 base', async () => {
    const { ids, mask, flatMask } = goldenInputs('qwen2');
    await using m = await Model.load(join(HF, 'qwen2', 'model'), { quantize: 'nf4' });
    const base = (await m.forward(ids, { attentionMask: mask })).logits;
    const adapter = await LoraAdapter.create(m, { rank: 4, alpha: 8, targetModules: 'all-linear', seed: 5 });
    await randomize(adapter, 5);
    const lora = (await m.forward(ids, { attentionMask: mask })).logits;
    expect(maxAbsDiff(lora, base)).toBeGreaterThan(1e-3);
    await adapter.merge();
    expect(m.warnings.some((w) => /merged into a quantized \(nf4\) base/.test(w) && /changes its outputs/.test(w))).toBe(true);
    expect((await m.storageReport()).quantizedParams).toBe(0);  // every targeted layer is dense now
    const merged = (await m.forward(ids, { attentionMask: mask })).logits;
    expect(maxAbsDiffMasked(merged, lora, flatMask, 256)).toBeLessThan(1e-4);
    await adapter.unmerge();
    expect((await m.storageReport()).quantizedParams).toBeGreaterThan(0);
    await adapter.delete();
    expect(Array.from((await m.forward(ids, { attentionMask: mask })).logits)).toEqual(Array.from(base));
  });

  it('mergeAndUnload + save writes a dense model in the compute dtype', async () => {
    await using m = await Model.load(join(HF, 'llama', 'model'), { quantize: 'nf4' });
    const adapter = await LoraAdapter.create(m, { rank: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], seed: 5 });
    await randomize(adapter, 5);
    await adapter.mergeAndUnload();
    const out = join(root, 'merged-dense');
    await expect(m.save(out, { quantized: true })).rejects.toMatchObject({ code: 'E_OPTION', message: /quantized/ });
    await m.save(out);
    const f = readSafetensors(join(out, 'model.safetensors'));
    expect(f.tensors.get('model.layers.0.self_attn.q_proj.weight')!.dtype).toBe('F32');
    expect([...f.tensors.keys()].some((k) => k.includes('quant_state'))).toBe(false);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).quantization_config).toBeUndefined();
  });
});

describe('the bitsandbytes checkpoint layout', () => {
  it('save NF4 -> load gives identical codes, statistics and logits', async () => {
    const { ids, mask } = goldenInputs('llama');
    await using m = await Model.load(join(HF, 'llama', 'model'), { quantize: 'nf4' });
    const out = join(root, 'llama-nf4');
    await m.save(out, { maxShardSize: 100_000 });
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    const keys = Object.keys(index.weight_map);
    const w = 'model.layers.1.mlp.down_proj.weight';
    for (const suffix of ['', '.absmax', '.quant_map', '.nested_absmax', '.nested_quant_map', '.quant_state.bitsandbytes__nf4']) expect(keys).toContain(w + suffix);
    const shard = readSafetensors(join(out, index.weight_map[w]));
    const t = (k: string) => shard.tensors.get(k)!;
    expect([t(w).dtype, t(w).shape]).toEqual(['U8', [64 * 128 / 2, 1]]);
    expect([t(`${w}.absmax`).dtype, t(`${w}.absmax`).shape]).toEqual(['U8', [128]]);
    expect([t(`${w}.nested_absmax`).dtype, t(`${w}.nested_absmax`).shape]).toEqual(['F32', [1]]);
    expect([t(`${w}.nested_quant_map`).dtype, t(`${w}.nested_quant_map`).shape]).toEqual(['F32', [256]]);
    const state = JSON.parse(Buffer.from(t(`${w}.quant_state.bitsandbytes__nf4`).bytes).toString('utf8'));
    expect(Object.keys(state)).toEqual(['quant_type', 'blocksize', 'dtype', 'shape', 'nested_blocksize', 'nested_dtype', 'nested_offset']);
    expect(state).toMatchObject({ quant_type: 'nf4', blocksize: 64, dtype: 'float32', shape: [64, 128], nested_blocksize: 256, nested_dtype: 'float32' });
    expect(Buffer.from(t(`${w}.quant_state.bitsandbytes__nf4`).bytes).toString('utf8')).toMatch(/^\{"quant_type": "nf4", "blocksize": 64, /);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.quantization_config).toMatchObject({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4', bnb_4bit_use_double_quant: true, bnb_4bit_compute_dtype: 'float32' });
    expect(keys.filter((k) => k.startsWith('model.embed_tokens') || k.includes('layernorm'))).toEqual(keys.filter((k) => (k.startsWith('model.embed_tokens') || k.includes('layernorm')) && !k.includes('.weight.')));

    await using back = await Model.load(out);
    expect(back.quantization).toEqual({ type: 'nf4', doubleQuant: true, blockSize: 64, prequantized: true });
    for (const name of m.parameterNames().filter((n) => n.endsWith('_proj.weight'))) {
      const a = await channelOf(m).call((h) => h.quantizedState(name));
      const b = await channelOf(back).call((h) => h.quantizedState(name));
      expect(b!.map((e) => [e.key, e.dtype, e.shape])).toEqual(a!.map((e) => [e.key, e.dtype, e.shape]));
      for (let i = 0; i < a!.length; i++) expect(Buffer.compare(Buffer.from(a![i].bytes), Buffer.from(b![i].bytes))).toBe(0);
    }
    const l1 = (await m.forward(ids, { attentionMask: mask })).logits;
    const l2 = (await back.forward(ids, { attentionMask: mask })).logits;
    expect(Array.from(l2)).toEqual(Array.from(l1));
    // saving the reloaded model again gives the same files
    const again = join(root, 'llama-nf4-again');
    await back.save(again, { maxShardSize: 100_000 });
    for (const f of Object.values(index.weight_map as Record<string, string>)) expect(Buffer.compare(readFileSync(join(out, f)), readFileSync(join(again, f)))).toBe(0);
  });

  it('without double quant: F32 absmax and the short JSON', async () => {
    await using m = await Model.load(join(HF, 'qwen2', 'model'), { quantize: 'nf4', doubleQuant: false, blockSize: 128 });
    const out = join(root, 'qwen2-nf4-plain');
    await m.save(out);
    const f = readSafetensors(join(out, 'model.safetensors'));
    const w = 'model.layers.0.self_attn.q_proj.weight';
    expect(f.tensors.get(`${w}.absmax`)!.dtype).toBe('F32');
    expect(f.tensors.has(`${w}.nested_absmax`)).toBe(false);
    expect(JSON.parse(Buffer.from(f.tensors.get(`${w}.quant_state.bitsandbytes__nf4`)!.bytes).toString())).toEqual({ quant_type: 'nf4', blocksize: 128, dtype: 'float32', shape: [64, 64] });
    await using back = await Model.load(out);
    expect(back.quantization).toEqual({ type: 'nf4', doubleQuant: false, blockSize: 128, prequantized: true });
    expect(Array.from((await back.parameter(w)).data)).toEqual(Array.from((await m.parameter(w)).data));
  });

  it('a corrupt quant_state names the tensor (E_QUANT_STATE)', async () => {
    await using m = await Model.load(join(HF, 'qwen2', 'model'), { quantize: 'nf4' });
    const good = join(root, 'qwen2-nf4');
    await m.save(good);
    const f = readSafetensors(join(good, 'model.safetensors'));
    const key = 'model.layers.1.mlp.gate_proj.weight.quant_state.bitsandbytes__nf4';
    const cases: [string, (t: Map<string, StTensor>) => void, RegExp][] = [
      ['not json', (t) => t.set(key, { dtype: 'U8', shape: [5], bytes: Buffer.from('{"qua') }), /not valid JSON/],
      ['fp4', (t) => t.set(key, { ...t.get(key)!, bytes: Buffer.from(Buffer.from(t.get(key)!.bytes).toString().replace('"nf4"', '"fp4"')) }), /quant_type must be "nf4"/],
      ['shape', (t) => t.set(key, { ...t.get(key)!, bytes: Buffer.from(Buffer.from(t.get(key)!.bytes).toString().replace('[128, 64]', '[64, 128]')) }), /shape \[64, 128\] differs/],
      ['absmax', (t) => t.delete('model.layers.1.mlp.gate_proj.weight.absmax'), /gate_proj\.weight\.absmax': missing/],
      ['code book', (t) => t.set('model.layers.1.mlp.gate_proj.weight.quant_map', { dtype: 'F32', shape: [16], bytes: new Uint8Array(64) }), /not the NF4 code book/],
    ];
    for (const [label, edit, msg] of cases) {
      const dir = join(root, `corrupt-${label.replace(' ', '-')}`);
      rmSync(dir, { recursive: true, force: true });
      const tensors = new Map(f.tensors);
      edit(tensors);
      await m.save(dir);
      writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));
      const err = await Model.load(dir).then(() => undefined, (e) => e);
      expect(err, label).toMatchObject({ code: 'E_QUANT_STATE' });
      expect(err.message, label).toMatch(/model\.layers\.1\.mlp\.gate_proj\.weight/);
      expect(err.message, label).toMatch(msg);
    }
  });
});

describe('storage at real layer shapes', () => {
  it('NF4 + double quant holds Qwen2.5-0.5B-shaped linear weights in at most 0.53 bytes per parameter', async () => {
    // One decoder layer of the real widths (hidden 896, intermediate 4864, kv 128), small vocab.
    const dir = join(root, 'qwen-shaped');
    makeModel({ out: dir, layers: 1, vocab: 512 });
    await using m = await Model.load(dir, { quantize: 'nf4' });
    const r = await m.storageReport();
    expect(r.quantizedParams).toBe(896 * 896 * 2 + 128 * 896 * 2 + 3 * 896 * 4864);
    expect(r.bytesPerQuantizedParam!).toBeLessThanOrEqual(0.53);
    expect(r.bytesPerQuantizedParam!).toBeGreaterThan(0.5);
    await using plain = await Model.load(dir, { quantize: 'nf4', doubleQuant: false });
    expect((await plain.storageReport()).bytesPerQuantizedParam!).toBeGreaterThan(0.56);  // fp32 absmax: 0.5 + 4/64
    await using i8 = await Model.load(dir, { quantize: 'int8' });
    expect((await i8.storageReport()).bytesPerQuantizedParam!).toBeLessThan(1.01);
  });
});

describe('bad input', () => {
  const dir = join(HF, 'qwen2', 'model');
  it('rejects unknown or contradictory quantization options with E_OPTION naming the option', async () => {
    await expect(Model.load(dir, { quantize: 'nf3' as never })).rejects.toMatchObject({ code: 'E_OPTION', message: /option 'quantize'.*nf3/ });
    await expect(Model.load(dir, { quantize: 'nf4', blockSize: 48 })).rejects.toMatchObject({ code: 'E_OPTION', message: /option 'blockSize'/ });
    await expect(Model.load(dir, { doubleQuant: false })).rejects.toMatchObject({ code: 'E_OPTION', message: /option 'doubleQuant'/ });
    await expect(Model.load(dir, { quantize: 'nf4', dtype: 'float32', computeDtype: 'bfloat16' })).rejects.toMatchObject({ code: 'E_OPTION', message: /option 'computeDtype'/ });
    // the native layer checks too (for callers that bypass lib/)
    expect(() => native().loadModel(dir, { dtype: 'float32', device: 'cpu', quantize: 'q4_0', doubleQuant: true, blockSize: 64 })).toThrow(expect.objectContaining({ code: 'E_OPTION', message: expect.stringMatching(/option 'quantize'/) }));
  });

  it('refuses full-parameter training and loadWeights on a quantized base (E_QUANTIZED)', async () => {
    await using m = await Model.load(dir, { quantize: 'int8' });
    await expect(m.setFullTraining(true)).rejects.toMatchObject({ code: 'E_QUANTIZED' });
    await expect(m.loadWeights(dir)).rejects.toMatchObject({ code: 'E_QUANTIZED' });
    await expect(m.save(join(root, 'int8-as-bnb'), { quantized: true })).rejects.toMatchObject({ code: 'E_OPTION', message: /option 'quantized'/ });
  });
});
