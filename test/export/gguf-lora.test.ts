import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgufValueType as T, exportLoraGguf, permuteQk } from '../../lib/export/index.js';
import { readSafetensors, toFloat32 } from '../../lib/safetensors.js';
import { FIXTURES, readGguf, tempDir } from './helpers.js';

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
    await expect(exportLoraGguf(adapterCopy('nobase', { base_model_name_or_path: 'meta-llama/Nope' }), join(dir, 'x.gguf'))).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringContaining('baseModelDir'),
    });
  });
});
