import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgufValueType as T, exportGguf, exportLoraGguf, permuteQk } from '../../lib/export/index.js';
import { readSafetensors, toFloat32 } from '../../lib/util/safetensors.js';
import { smollm2Gguf } from '../gguf/reference.js';
import { FIXTURES, readGguf, tempDir, writeByteTokenizer } from './helpers.js';

type Kv = Record<string, { value: unknown; type: number }>;
const dir = tempDir();
const P = 'base_model.model.model.layers.';

function adapterCopy(name: string, patch: Record<string, unknown>): string {
  const d = join(dir, name);
  cpSync(join(FIXTURES, 'llama', 'adapter'), d, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(d, 'adapter_config.json'), 'utf8'));
  writeFileSync(join(d, 'adapter_config.json'), JSON.stringify({ ...cfg, ...patch }));
  return d;
}

describe('exportLoraGguf', () => {
  it('llama fixture: adapter metadata, llama.cpp names and shapes, lora_b q/k rows permuted', async () => {
    const file = join(dir, 'llama-lora.gguf');
    const res = await exportLoraGguf(join(FIXTURES, 'llama', 'adapter'), file, { baseModelDir: join(FIXTURES, 'llama', 'model') });
    expect(res).toMatchObject({ architecture: 'llama', alpha: 8, rank: 4 });
    const r = await readGguf(file);
    const m = r.typedMetadata as unknown as Kv;
    expect(m['general.architecture']).toEqual({ value: 'llama', type: T.STRING });
    expect(m['general.type']).toEqual({ value: 'adapter', type: T.STRING });
    expect(m['adapter.type']).toEqual({ value: 'lora', type: T.STRING });
    expect(m['adapter.lora.alpha']).toEqual({ value: 8, type: T.FLOAT32 });
    expect(m['general.name'].value).toBe('adapter');
    expect(r.tensorInfos.length).toBe(2 * 7 * 2);
    const info = (n: string) => r.tensorInfos.find((t) => t.name === n)!;
    // ggml ne: lora_a [in, r], lora_b [r, out] (llama.cpp checks a.ne[0] == W.ne[0], b.ne[1] == W.ne[1])
    expect(info('blk.0.attn_k.weight.lora_a').shape.map(Number)).toEqual([64, 4]);
    expect(info('blk.0.attn_k.weight.lora_b').shape.map(Number)).toEqual([4, 32]);
    expect(info('blk.1.ffn_down.weight.lora_a').shape.map(Number)).toEqual([128, 4]);
    expect(info('blk.1.ffn_down.weight.lora_b').shape.map(Number)).toEqual([4, 64]);
    expect(info('blk.0.attn_q.weight.lora_a').dtype).toBe(0);

    const st = readSafetensors(join(FIXTURES, 'llama', 'adapter', 'adapter_model.safetensors'));
    const get = (k: string) => toFloat32(st.tensors.get(k)!);
    expect(r.f32('blk.0.attn_q.weight.lora_a', 4 * 64)).toEqual(get(`${P}0.self_attn.q_proj.lora_A.weight`));
    expect(r.f32('blk.0.attn_q.weight.lora_b', 64 * 4)).toEqual(permuteQk(get(`${P}0.self_attn.q_proj.lora_B.weight`), 64, 4));
    expect(r.f32('blk.1.attn_k.weight.lora_b', 32 * 4)).toEqual(permuteQk(get(`${P}1.self_attn.k_proj.lora_B.weight`), 32, 2));
    expect(r.f32('blk.1.attn_v.weight.lora_b', 32 * 4)).toEqual(get(`${P}1.self_attn.v_proj.lora_B.weight`));
  });

  it('qwen2 fixture: no permutation; base model found from base_model_name_or_path', async () => {
    const file = join(dir, 'qwen2-lora.gguf');
    const res = await exportLoraGguf(join(FIXTURES, 'qwen2', 'adapter'), file);
    expect(res.architecture).toBe('qwen2');
    const r = await readGguf(file);
    const st = readSafetensors(join(FIXTURES, 'qwen2', 'adapter', 'adapter_model.safetensors'));
    expect(r.f32('blk.0.attn_q.weight.lora_b', 64 * 4)).toEqual(toFloat32(st.tensors.get(`${P}0.self_attn.q_proj.lora_B.weight`)!));
  });

  it('rsLoRA: alpha written as alpha*sqrt(r) so llama.cpp\'s alpha/r equals PEFT\'s alpha/sqrt(r)', async () => {
    const d = adapterCopy('rslora', { use_rslora: true });
    const res = await exportLoraGguf(d, join(dir, 'rs.gguf'), { baseModelDir: join(FIXTURES, 'llama', 'model') });
    expect(res.alpha).toBe(16); // 8 * sqrt(4)
    const m = (await readGguf(res.file)).typedMetadata as unknown as Kv;
    expect(m['adapter.lora.alpha'].value).toBe(16);
    expect((m['adapter.lora.alpha'].value as number) / 4).toBe(8 / Math.sqrt(4));
  });

  it('alpha_pattern: a module\'s own alpha is folded into its lora_b', async () => {
    const d = adapterCopy('pattern', { alpha_pattern: { v_proj: 2 } });
    const res = await exportLoraGguf(d, join(dir, 'pat.gguf'), { baseModelDir: join(FIXTURES, 'llama', 'model') });
    const r = await readGguf(res.file);
    const st = readSafetensors(join(d, 'adapter_model.safetensors'));
    const v = toFloat32(st.tensors.get(`${P}0.self_attn.v_proj.lora_B.weight`)!);
    expect(r.f32('blk.0.attn_v.weight.lora_b', 32 * 4)).toEqual(v.map((x) => x * (2 / 8)));
    expect(r.f32('blk.0.attn_output.weight.lora_b', 64 * 4)).toEqual(toFloat32(st.tensors.get(`${P}0.self_attn.o_proj.lora_B.weight`)!));
  });

  it('errors name the file: DoRA, trained modules, unknown base', async () => {
    const base = { baseModelDir: join(FIXTURES, 'llama', 'model') };
    await expect(exportLoraGguf(adapterCopy('dora', { use_dora: true }), join(dir, 'x.gguf'), base)).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringMatching(/adapter_config\.json: DoRA/),
    });
    await expect(exportLoraGguf(adapterCopy('mts', { modules_to_save: ['lm_head'] }), join(dir, 'x.gguf'), base)).rejects.toMatchObject({ code: 'E_EXPORT' });
    await expect(exportLoraGguf(adapterCopy('pissa', { init_lora_weights: 'pissa' }), join(dir, 'x.gguf'), base)).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringMatching(/init_lora_weights "pissa": .*convertToLora/),
    });
    await expect(exportLoraGguf(adapterCopy('nobase', { base_model_name_or_path: 'meta-llama/Nope' }), join(dir, 'x.gguf'))).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringContaining('baseModelDir'),
    });
  });

  it('a GGUF base (baseModel, or a .gguf base_model_name_or_path as lorafit train writes it) gives the same file as its HF folder', async () => {
    const ggufBase = join(dir, 'llama-base.gguf');
    await exportGguf(join(FIXTURES, 'llama', 'model'), ggufBase, { dtype: 'F32', tokenizerDir: writeByteTokenizer(join(dir, 'tok')) });
    const fromHf = await exportLoraGguf(join(FIXTURES, 'llama', 'adapter'), join(dir, 'from-hf.gguf'), { baseModelDir: join(FIXTURES, 'llama', 'model') });
    const fromGguf = await exportLoraGguf(join(FIXTURES, 'llama', 'adapter'), join(dir, 'from-gguf.gguf'), { baseModel: ggufBase });
    expect(fromGguf.base).toEqual({ format: 'gguf', path: ggufBase, spec: ggufBase });
    expect(fromHf.base.format).toBe('hf');
    expect(fromGguf.targets).toEqual(fromHf.targets);
    expect(readFileSync(fromGguf.file)).toEqual(readFileSync(fromHf.file));
    // the adapter names the GGUF file itself
    const named = join(dir, 'named');
    cpSync(join(FIXTURES, 'llama', 'adapter'), named, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(named, 'adapter_config.json'), 'utf8'));
    writeFileSync(join(named, 'adapter_config.json'), JSON.stringify({ ...cfg, base_model_name_or_path: ggufBase }));
    const byName = await exportLoraGguf(named, join(dir, 'by-name.gguf'));
    expect(byName.base.path).toBe(ggufBase);
    const [a, b] = [await readGguf(byName.file), await readGguf(fromHf.file)];
    expect((a.typedMetadata as unknown as Kv)['general.name'].value).toBe('named');
    expect(a.tensorInfos.map((t) => t.name)).toEqual(b.tensorInfos.map((t) => t.name));
    for (const t of b.tensorInfos) {
      const n = t.shape.reduce((x, y) => x * Number(y), 1);
      expect(a.f32(t.name, n), t.name).toEqual(b.f32(t.name, n));
    }
  });

  it('an adapter for another model is refused, naming the adapter file, the tensor and the base shape', async () => {
    // the llama fixture's adapter (hidden 64) on the real SmolLM2 GGUF (hidden 576)
    const smol = smollm2Gguf();
    await expect(exportLoraGguf(join(FIXTURES, 'llama', 'adapter'), join(dir, 'x.gguf'), { baseModel: smol })).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringMatching(/adapter_model\.safetensors: '.*layers\.0\..*lora_A\.weight' \[4, \d+\] and .* do not fit the base model .*SmolLM2.*weight is \[\d+, \d+\] \(llama, hidden 576\): was the adapter trained on another model/),
    });
    // more layers than the base has
    const deep = join(dir, 'deep');
    cpSync(join(FIXTURES, 'llama', 'adapter'), deep, { recursive: true });
    const st = readFileSync(join(deep, 'adapter_model.safetensors'));
    writeFileSync(join(deep, 'adapter_model.safetensors'), Buffer.from(st.toString('latin1').replaceAll('layers.1.', 'layers.7.'), 'latin1'));
    await expect(exportLoraGguf(deep, join(dir, 'x.gguf'), { baseModelDir: join(FIXTURES, 'llama', 'model') })).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringMatching(/adapter_model\.safetensors: '.*layers\.7\..*' adapts layer 7, but the base model .* has 2 layers/),
    });
    await expect(exportLoraGguf(join(dir, 'missing-adapter'), join(dir, 'x.gguf'), { baseModel: smol })).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringMatching(/missing-adapter\/adapter_config\.json: not found/),
    });
  });
});
