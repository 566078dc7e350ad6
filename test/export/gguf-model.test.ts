import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GgufValueType as T, exportGguf, permuteQk } from '../../lib/export/index.js';
import { readSafetensors, toFloat32, writeSafetensors, fromFloat32 } from '../../lib/util/safetensors.js';
import { FIXTURES, readGguf, tempDir, writeByteTokenizer } from './helpers.js';

const dir = tempDir();
const tokenizerDir = writeByteTokenizer(join(dir, 'tokenizer'), { chatTemplate: "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}" });

type Kv = Record<string, { value: unknown; type: number; subType?: number }>;

function expectKv(m: Kv, want: Record<string, [unknown, number]>): void {
  for (const [key, [value, type]] of Object.entries(want)) {
    expect(m[key], key).toBeDefined();
    expect(m[key].type, key).toBe(type);
    if (typeof value === 'number' && type === T.FLOAT32) expect(m[key].value, key).toBe(Math.fround(value));
    else expect(m[key].value, key).toEqual(value);
  }
}

describe('exportGguf on the HF fixtures', () => {
  it.each([
    ['llama', 'llama', 500000, 1e-5],
    ['qwen2', 'qwen2', 1000000, 1e-6],
  ])('%s: every key round-trips through @huggingface/gguf with the right value and type', async (fixture, arch, theta, eps) => {
    const file = join(dir, `${fixture}.gguf`);
    const res = await exportGguf(join(FIXTURES, fixture, 'model'), file, { tokenizerDir });
    const r = await readGguf(file);
    const m = r.typedMetadata as unknown as Kv;
    const want: Record<string, [unknown, number]> = {
      'general.architecture': [arch, T.STRING],
      'general.type': ['model', T.STRING],
      'general.name': ['model', T.STRING],
      'general.file_type': [1, T.UINT32],
      [`${arch}.vocab_size`]: [256, T.UINT32],
      [`${arch}.context_length`]: [128, T.UINT32],
      [`${arch}.embedding_length`]: [64, T.UINT32],
      [`${arch}.block_count`]: [2, T.UINT32],
      [`${arch}.feed_forward_length`]: [128, T.UINT32],
      [`${arch}.attention.head_count`]: [4, T.UINT32],
      [`${arch}.attention.head_count_kv`]: [2, T.UINT32],
      [`${arch}.rope.freq_base`]: [theta, T.FLOAT32],
      [`${arch}.attention.layer_norm_rms_epsilon`]: [eps, T.FLOAT32],
      [`${arch}.attention.key_length`]: [16, T.UINT32],
      [`${arch}.attention.value_length`]: [16, T.UINT32],
      [`${arch}.rope.dimension_count`]: [16, T.UINT32],
      'tokenizer.ggml.model': ['gpt2', T.STRING],
      'tokenizer.ggml.pre': ['gpt-2', T.STRING],
      'tokenizer.ggml.merges': [[], T.ARRAY],
      'tokenizer.ggml.bos_token_id': [1, T.UINT32], // from config.json: the byte tokenizer names none
      'tokenizer.ggml.eos_token_id': [2, T.UINT32],
      'tokenizer.ggml.padding_token_id': [0, T.UINT32],
      'tokenizer.ggml.add_bos_token': [false, T.BOOL],
      'tokenizer.ggml.add_eos_token': [false, T.BOOL],
      'tokenizer.chat_template': [res.tokenizer.chatTemplate, T.STRING],
    };
    expectKv(m, want);
    const tokens = m['tokenizer.ggml.tokens'];
    expect(tokens.subType).toBe(T.STRING);
    expect((tokens.value as string[]).length).toBe(256);
    expect((tokens.value as string[])[65]).toBe('A');
    expect((tokens.value as string[])[32]).toBe('Ġ');
    expect(m['tokenizer.ggml.token_type'].subType).toBe(T.INT32);
    expect(m['tokenizer.ggml.token_type'].value).toEqual(new Array(256).fill(1));
    // nothing written that the test does not know about
    const known = new Set([...Object.keys(want), 'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type', 'version', 'tensor_count', 'kv_count']);
    expect(Object.keys(m).filter((k) => !known.has(k))).toEqual([]);
    expect(res.keys.length).toBe(Number(r.metadata.kv_count));

    // tensors: llama.cpp names, ggml shapes, 2-D F16, 1-D F32
    const names = r.tensorInfos.map((t) => t.name);
    const layer = (i: number) => [
      `blk.${i}.attn_norm.weight`,
      ...(arch === 'qwen2' ? [`blk.${i}.attn_k.bias`] : []),
      `blk.${i}.attn_k.weight`,
      `blk.${i}.attn_output.weight`,
      ...(arch === 'qwen2' ? [`blk.${i}.attn_q.bias`] : []),
      `blk.${i}.attn_q.weight`,
      ...(arch === 'qwen2' ? [`blk.${i}.attn_v.bias`] : []),
      `blk.${i}.attn_v.weight`,
      `blk.${i}.ffn_down.weight`,
      `blk.${i}.ffn_gate.weight`,
      `blk.${i}.ffn_up.weight`,
      `blk.${i}.ffn_norm.weight`,
    ];
    expect([...names].sort()).toEqual(['token_embd.weight', ...layer(0), ...layer(1), 'output_norm.weight', 'output.weight'].sort());
    expect(names[0]).toBe('token_embd.weight');
    expect(names.slice(-2)).toEqual(['output_norm.weight', 'output.weight']);
    const info = (n: string) => r.tensorInfos.find((t) => t.name === n)!;
    expect(info('blk.0.attn_k.weight').shape.map(Number)).toEqual([64, 32]);
    expect(info('blk.0.ffn_down.weight').shape.map(Number)).toEqual([128, 64]);
    expect(info('blk.0.attn_k.weight').dtype).toBe(1);
    expect(info('blk.0.attn_norm.weight').dtype).toBe(0);
  });

  it('F32 data equals the checkpoint; q/k rows are permuted for llama only', async () => {
    for (const fixture of ['llama', 'qwen2']) {
      const file = join(dir, `${fixture}-f32.gguf`);
      await exportGguf(join(FIXTURES, fixture, 'model'), file, { tokenizerDir, dtype: 'F32' });
      const r = await readGguf(file);
      const hf = readSafetensors(join(FIXTURES, fixture, 'model', 'model.safetensors'));
      const get = (k: string) => toFloat32(hf.tensors.get(k)!);
      expect(r.f32('token_embd.weight', 256 * 64)).toEqual(get('model.embed_tokens.weight'));
      expect(r.f32('blk.1.ffn_down.weight', 64 * 128)).toEqual(get('model.layers.1.mlp.down_proj.weight'));
      expect(r.f32('output.weight', 256 * 64)).toEqual(get('lm_head.weight'));
      const q = get('model.layers.0.self_attn.q_proj.weight'); // [64, 64], 4 heads of 16
      const k = get('model.layers.0.self_attn.k_proj.weight'); // [32, 64], 2 kv heads
      const gq = r.f32('blk.0.attn_q.weight', 64 * 64);
      const gk = r.f32('blk.0.attn_k.weight', 32 * 64);
      if (fixture === 'llama') {
        expect(gq).toEqual(permuteQk(q, 64, 4));
        expect(gk).toEqual(permuteQk(k, 32, 2));
        // by hand: in head h, new row 2i+j = old row j*8+i (rotate_half halves -> interleaved pairs)
        const row = (a: Float32Array, i: number) => [...a.subarray(i * 64, i * 64 + 64)];
        expect(row(gq, 1)).toEqual(row(q, 8));
        expect(row(gq, 2)).toEqual(row(q, 1));
        expect(row(gq, 16 + 3)).toEqual(row(q, 16 + 9));
        expect(row(gk, 16 + 15)).toEqual(row(k, 16 + 15));
      } else {
        expect(gq).toEqual(q);
        expect(gk).toEqual(k);
        expect(r.f32('blk.0.attn_q.bias', 64)).toEqual(get('model.layers.0.self_attn.q_proj.bias'));
      }
    }
  });

  it('Q8_0 export: 2-D weights quantized, sharded checkpoint read', async () => {
    const file = join(dir, 'llama-q8.gguf');
    await exportGguf(join(FIXTURES, 'llama', 'model_sharded'), file, { tokenizerDir, dtype: 'Q8_0', name: 'tiny' });
    const r = await readGguf(file);
    const m = r.typedMetadata as unknown as Kv;
    expect(m['general.file_type'].value).toBe(7);
    expect(m['general.quantization_version'].value).toBe(2);
    expect(m['general.name'].value).toBe('tiny');
    expect(r.tensorInfos.find((t) => t.name === 'blk.0.ffn_up.weight')!.dtype).toBe(8);
    expect(r.tensorInfos.find((t) => t.name === 'output_norm.weight')!.dtype).toBe(0);
    expect(r.tensorInfos.length).toBe(1 + 2 * 9 + 2);
  });

  it('errors: missing tokenizer, unsupported architecture, integer weights', async () => {
    await expect(exportGguf(join(FIXTURES, 'llama', 'model'), join(dir, 'x.gguf'))).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringContaining('tokenizerDir'),
    });
    const bad = join(dir, 'phi');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ model_type: 'phi3' }));
    await expect(exportGguf(bad, join(dir, 'x.gguf'), { tokenizerDir })).rejects.toMatchObject({
      code: 'E_EXPORT',
      message: expect.stringMatching(/config\.json: model_type 'phi3'/),
    });
  });
});

// Tiny synthetic checkpoints for the architectures without HF fixtures.
async function tinyModel(modelType: string, extra: Record<string, unknown> = {}): Promise<string> {
  const d = join(dir, `tiny-${modelType}`);
  mkdirSync(d, { recursive: true });
  const cfg = { model_type: modelType, vocab_size: 256, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, ...extra };
  writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
  let seed = 1;
  const rnd = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5);
  const t: Record<string, ReturnType<typeof fromFloat32>> = {
    'model.embed_tokens.weight': fromFloat32(rnd(256 * 64), [256, 64]),
    'model.norm.weight': fromFloat32(rnd(64), [64]),
  };
  const p = 'model.layers.0.';
  for (const [n, s] of [['self_attn.q_proj', [64, 64]], ['self_attn.k_proj', [32, 64]], ['self_attn.v_proj', [32, 64]], ['self_attn.o_proj', [64, 64]], ['mlp.gate_proj', [128, 64]], ['mlp.up_proj', [128, 64]], ['mlp.down_proj', [64, 128]]] as const) {
    t[`${p}${n}.weight`] = fromFloat32(rnd(s[0] * s[1]), [...s]);
  }
  const norms = ['input_layernorm', 'post_attention_layernorm', ...(modelType === 'gemma2' ? ['pre_feedforward_layernorm', 'post_feedforward_layernorm'] : [])];
  for (const n of norms) t[`${p}${n}.weight`] = fromFloat32(rnd(64), [64]);
  if (modelType === 'mistral') t['lm_head.weight'] = fromFloat32(rnd(256 * 64), [256, 64]);
  await writeSafetensors(join(d, 'model.safetensors'), t);
  return d;
}

describe('exportGguf: mistral, gemma, gemma2 (synthetic)', () => {
  it('mistral maps to llama with permuted q/k', async () => {
    const d = await tinyModel('mistral', { rope_theta: 1e6, sliding_window: 4096 });
    const r = await readGguf((await exportGguf(d, join(dir, 'mistral.gguf'), { tokenizerDir, dtype: 'F32' })).file);
    const m = r.typedMetadata as unknown as Kv;
    expectKv(m, { 'general.architecture': ['llama', T.STRING], 'llama.context_length': [131072, T.UINT32], 'llama.rope.freq_base': [1e6, T.FLOAT32], 'llama.attention.layer_norm_rms_epsilon': [1e-6, T.FLOAT32] });
    const hf = readSafetensors(join(d, 'model.safetensors'));
    expect(r.f32('blk.0.attn_q.weight', 4096)).toEqual(permuteQk(toFloat32(hf.tensors.get('model.layers.0.self_attn.q_proj.weight')!), 64, 4));
    expect(r.tensorInfos.map((x) => x.name)).toContain('output.weight');
  });

  it('gemma: norm weights + 1, no permutation, tied output, defaults from the config class', async () => {
    const d = await tinyModel('gemma');
    const r = await readGguf((await exportGguf(d, join(dir, 'gemma.gguf'), { tokenizerDir, dtype: 'F32' })).file);
    const m = r.typedMetadata as unknown as Kv;
    expectKv(m, { 'general.architecture': ['gemma', T.STRING], 'gemma.context_length': [8192, T.UINT32], 'gemma.attention.key_length': [16, T.UINT32], 'gemma.attention.layer_norm_rms_epsilon': [1e-6, T.FLOAT32] });
    expect(m['gemma.rope.dimension_count']).toBeUndefined();
    const hf = readSafetensors(join(d, 'model.safetensors'));
    const norm = toFloat32(hf.tensors.get('model.layers.0.input_layernorm.weight')!);
    expect(r.f32('blk.0.attn_norm.weight', 64)).toEqual(norm.map((x) => x + 1));
    expect(r.f32('blk.0.attn_q.weight', 4096)).toEqual(toFloat32(hf.tensors.get('model.layers.0.self_attn.q_proj.weight')!));
    expect(r.tensorInfos.map((x) => x.name)).not.toContain('output.weight');
  });

  it('gemma2: four norms a layer, softcaps, sliding window', async () => {
    const d = await tinyModel('gemma2', { attn_logit_softcapping: 50.0, final_logit_softcapping: 30.0, sliding_window: 4096, query_pre_attn_scalar: 16 });
    const r = await readGguf((await exportGguf(d, join(dir, 'gemma2.gguf'), { tokenizerDir, dtype: 'BF16' })).file);
    const m = r.typedMetadata as unknown as Kv;
    expectKv(m, {
      'general.architecture': ['gemma2', T.STRING],
      'general.file_type': [32, T.UINT32],
      'gemma2.attn_logit_softcapping': [50, T.FLOAT32],
      'gemma2.final_logit_softcapping': [30, T.FLOAT32],
      'gemma2.attention.sliding_window': [4096, T.UINT32],
    });
    const names = r.tensorInfos.map((x) => x.name);
    for (const n of ['attn_norm', 'post_attention_norm', 'ffn_norm', 'post_ffw_norm']) expect(names).toContain(`blk.0.${n}.weight`);
    const hf = readSafetensors(join(d, 'model.safetensors'));
    expect(r.f32('blk.0.post_ffw_norm.weight', 64)).toEqual(toFloat32(hf.tensors.get('model.layers.0.post_feedforward_layernorm.weight')!).map((x) => x + 1));
    expect(r.tensorInfos.find((x) => x.name === 'blk.0.attn_q.weight')!.dtype).toBe(30);
  });

  it('llama 3.1 rope scaling becomes the rope_freqs tensor; linear scaling becomes keys', async () => {
    const d = await tinyModel('llama', { tie_word_embeddings: true, rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
    const r = await readGguf((await exportGguf(d, join(dir, 'l31.gguf'), { tokenizerDir, dtype: 'F16' })).file);
    const f = r.f32('rope_freqs.weight', 8);
    // head_dim 16: wavelen 2*pi*500000^(2i/16); < 2048 -> 1, > 8192 -> 8, between: smoothed
    const want = Array.from({ length: 8 }, (_, i) => {
      const wl = 2 * Math.PI * 500000 ** ((2 * i) / 16);
      if (wl < 2048) return 1;
      if (wl > 8192) return 8;
      const s = (8192 / wl - 1) / 3;
      return Math.fround(1 / ((1 - s) / 8 + s));
    });
    expect([...f]).toEqual(want);
    expect(f[0]).toBe(1);
    expect(f[7]).toBe(8);
    const d2 = await tinyModel('qwen2', { tie_word_embeddings: true, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } });
    const m = (await readGguf((await exportGguf(d2, join(dir, 'yarn.gguf'), { tokenizerDir })).file)).typedMetadata as unknown as Kv;
    expectKv(m, { 'qwen2.rope.scaling.type': ['yarn', T.STRING], 'qwen2.rope.scaling.factor': [4, T.FLOAT32], 'qwen2.rope.scaling.original_context_length': [32768, T.UINT32] });
  });
});

