// GGUF header -> HF config.json + native tensor list (lib/gguf/hf-config.ts, plan.ts,
// tensor-names.ts) on small synthetic files: the rules transformers' GGUF loader follows, the
// places lorafit reads more than it, and the E_GGUF errors for files lorafit cannot load. The
// numbers (logits against transformers) are in smollm2-model.test.ts and architectures.test.ts.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fitLlama3RopeScaling, ggufToHfConfig, llama3Factors } from '../../lib/gguf/hf-config.js';
import { planGgufModel } from '../../lib/gguf/plan.js';
import { readGguf } from '../../lib/gguf/reader.js';
import { GGUF_ARCHS, layerTensorTable, toGgufName, toHfName } from '../../lib/gguf/tensor-names.js';
import { ggufTensorName, parseArchConfig } from '../../lib/export/gguf-arch.js';
import { rejects } from '../helpers/rejects.js';
import { scratchDir } from '../helpers/python.js';
import { writeTinyGguf, type TinyOptions } from './tiny-gguf.js';

const dir = scratchDir('gguf-config');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
async function tiny(o: TinyOptions = {}) {
  const file = join(dir, `t${n++}.gguf`);
  writeTinyGguf(file, o);
  return readGguf(file);
}

describe('tensor names', () => {
  it('GGUF -> HF is the inverse of HF -> GGUF for every weight of every architecture', () => {
    for (const arch of GGUF_ARCHS) {
      const names = ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight'];
      for (const hf of Object.keys(layerTensorTable(arch))) names.push(`model.layers.11.${hf}.weight`, `model.layers.0.${hf}.bias`);
      for (const hf of names) {
        const g = toGgufName(hf, arch)!;
        expect(g, hf).toBeDefined();
        expect(toHfName(g, arch)?.name, `${arch} ${g}`).toBe(hf);
      }
    }
    expect(toHfName('blk.3.post_ffw_norm.weight', 'gemma2')?.name).toBe('model.layers.3.post_feedforward_layernorm.weight');
    expect(toHfName('blk.3.ffn_norm.weight', 'gemma2')?.name).toBe('model.layers.3.pre_feedforward_layernorm.weight');
    expect(toHfName('blk.3.ffn_norm.weight', 'llama')?.name).toBe('model.layers.3.post_attention_layernorm.weight');
    expect(toHfName('blk.3.post_ffw_norm.weight', 'llama')).toBeUndefined();
    for (const bad of ['blk.01.attn_q.weight', 'blk.-1.attn_q.weight', 'blk.1.attn_q', 'token_embd.scale', 'blk.1.toString.weight', '__proto__.weight', 'constructor.weight']) {
      expect(toHfName(bad, 'llama'), bad).toBeUndefined();
    }
  });

  it("the export's names come from the same table (its behaviour unchanged)", () => {
    const arch = parseArchConfig({ model_type: 'gemma2', hidden_size: 64, num_attention_heads: 4, vocab_size: 8, intermediate_size: 8, num_hidden_layers: 1 }, 'c.json');
    expect(ggufTensorName('model.layers.0.pre_feedforward_layernorm.weight', arch, 'x')).toBe('blk.0.ffn_norm.weight');
    expect(ggufTensorName('lm_head.weight', arch, 'x')).toBeNull();
    const llama = parseArchConfig({ model_type: 'llama', hidden_size: 64, num_attention_heads: 4, vocab_size: 8, intermediate_size: 8, num_hidden_layers: 1 }, 'c.json');
    expect(ggufTensorName('lm_head.weight', llama, 'x')).toBe('output.weight');
    expect(ggufTensorName('model.layers.0.self_attn.q_proj.bias', llama, 'x')).toBe('blk.0.attn_q.bias');
    expect(() => ggufTensorName('model.embed_tokens.bias', llama, 'x')).toThrow('has no llama.cpp equivalent');
    expect(() => ggufTensorName('model.layers.0.post_feedforward_layernorm.weight', llama, 'x')).toThrow('has no llama.cpp equivalent');
  });
});

describe('config', () => {
  it('llama: the transformers keys, tied when there is no output.weight, token ids from tokenizer.ggml.*', async () => {
    const f = await tiny({ meta: { 'tokenizer.ggml.padding_token_id': 0, 'tokenizer.ggml.unknown_token_id': 3 } });
    const { config, generationConfig } = ggufToHfConfig(f);
    expect(config).toEqual({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', _model_name_or_path: 'tiny-llama',
      max_position_embeddings: 128, num_hidden_layers: 2, hidden_size: 32, intermediate_size: 64, num_attention_heads: 4,
      num_key_value_heads: 2, rope_theta: 10000, rms_norm_eps: Math.fround(1e-5), head_dim: 8, vocab_size: 64,
      tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, unk_token_id: 3, pad_token_id: 0,
    });
    expect(generationConfig).toEqual({ bos_token_id: 1, eos_token_id: 2, pad_token_id: 0 });
    expect(ggufToHfConfig(await tiny({ tied: true })).config.tie_word_embeddings).toBe(true);
  });

  it('Mistral is llama with general.name exactly "mistral" (transformers checks membership in a one-item list)', async () => {
    expect(ggufToHfConfig(await tiny({ name: 'mistral' })).config).toMatchObject({ model_type: 'mistral', sliding_window: null });
    expect(ggufToHfConfig(await tiny({ name: 'Mistral 7B Instruct v0.3' })).config.model_type).toBe('llama');
  });

  it('qwen2 takes no head_dim (rope.dimension_count maps to None); vocab_size falls back to the embedding rows', async () => {
    const { config } = ggufToHfConfig(await tiny({ arch: 'qwen2', meta: { 'qwen2.vocab_size': undefined } }));
    expect(config.head_dim).toBeUndefined();
    expect(config.vocab_size).toBe(64);
    expect(config.model_type).toBe('qwen2');
  });

  it('gemma2: head_dim from key_length, sliding window, soft-capping (beyond transformers), query scale as llama.cpp', async () => {
    const { config } = ggufToHfConfig(
      await tiny({ arch: 'gemma2', meta: { 'gemma2.attention.sliding_window': 4, 'gemma2.attn_logit_softcapping': 5, 'gemma2.final_logit_softcapping': 3 } }),
    );
    expect(config).toMatchObject({ model_type: 'gemma2', head_dim: 8, sliding_window: 4, attn_logit_softcapping: 5, final_logit_softcapping: 3, query_pre_attn_scalar: 8, tie_word_embeddings: true });
  });

  it('rope scaling: linear from rope.scaling.*, Llama 3 from the rope_freqs.weight factors, yarn refused', async () => {
    const lin = ggufToHfConfig(await tiny({ meta: { 'llama.rope.scaling.type': 'linear', 'llama.rope.scaling.factor': 4 } })).config;
    expect(lin.rope_scaling).toEqual({ rope_type: 'linear', factor: 4 });
    const p = { factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
    const factors = llama3Factors(p, 500000, 16);
    expect(fitLlama3RopeScaling(factors, 500000, 16)).toEqual(p);
    const real = { factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 }; // Llama 3.2
    expect(fitLlama3RopeScaling(llama3Factors(real, 500000, 64), 500000, 64)).toEqual(real);
    const l3 = ggufToHfConfig(await tiny(), { ropeFactors: llama3Factors({ ...p, original_max_position_embeddings: 256 }, 10000, 8) }).config;
    expect(l3.rope_scaling).toEqual({ rope_type: 'llama3', ...p, original_max_position_embeddings: 256 });
    const junk = new Float32Array([1, 3, 2, 5]);
    await rejects((async () => ggufToHfConfig(await tiny(), { ropeFactors: junk }))(), 'E_GGUF', "rope_freqs.weight' holds rope factors that are not Llama 3's");
    await rejects((async () => ggufToHfConfig(await tiny({ meta: { 'llama.rope.scaling.type': 'yarn', 'llama.rope.scaling.factor': 4 } })))(), 'E_GGUF', "'llama.rope.scaling.type' is 'yarn'");
  });

  it('refuses other architectures naming general.architecture and the supported ones; bad keys by name', async () => {
    await rejects((async () => ggufToHfConfig(await tiny({ meta: { 'general.architecture': 'phi3' } })))(), 'E_GGUF', "general.architecture 'phi3' is not supported; lorafit loads GGUF models of architecture llama, qwen2, gemma, gemma2");
    await rejects((async () => ggufToHfConfig(await tiny({ meta: { 'general.type': 'adapter', 'adapter.type': 'lora' } })))(), 'E_GGUF', "general.type is 'adapter': this file is not a model but an adapter");
    await rejects((async () => ggufToHfConfig(await tiny({ meta: { 'llama.block_count': undefined } })))(), 'E_GGUF', "metadata 'llama.block_count' is missing");
    await rejects((async () => ggufToHfConfig(await tiny({ meta: { 'llama.attention.head_count': 0 } })))(), 'E_GGUF', "'llama.attention.head_count' must be an integer from 1");
    await rejects((async () => ggufToHfConfig(await tiny({ meta: { 'llama.attention.head_count_kv': 3 } })))(), 'E_GGUF', 'must be a multiple of');
    await rejects((async () => ggufToHfConfig(await tiny({ meta: { 'llama.embedding_length': 'x' } })))(), 'E_GGUF', "metadata 'llama.embedding_length' should be a number");
    await rejects((async () => ggufToHfConfig(await tiny({ meta: { 'llama.attention.layer_norm_rms_epsilon': -1 } })))(), 'E_GGUF', 'must be a positive number');
  });
});

describe('tensor plan', () => {
  it('llama: HF names, absolute offsets, q permuted by heads and k by kv heads, nothing else', async () => {
    const f = await tiny();
    const plan = await planGgufModel(f);
    expect(plan.tensors.length).toBe(f.tensors.length);
    const by = new Map(plan.tensors.map((t) => [t.name, t]));
    expect(by.get('model.layers.1.self_attn.q_proj.weight')!.permuteHeads).toBe(4);
    expect(by.get('model.layers.1.self_attn.k_proj.weight')!.permuteHeads).toBe(2);
    expect(plan.tensors.filter((t) => t.permuteHeads !== undefined).length).toBe(4);
    expect(plan.tensors.some((t) => t.add !== undefined)).toBe(false);
    const embd = f.tensors.find((t) => t.name === 'token_embd.weight')!;
    expect(by.get('model.embed_tokens.weight')).toEqual({ name: 'model.embed_tokens.weight', offset: embd.offset, type: 0, shape: [64, 32] });
    expect(plan.quantTypes).toEqual(['F32']);
  });

  it('qwen2: biases, no permutation; gemma/gemma2: every norm weight gets -1, nothing is permuted', async () => {
    const q = await planGgufModel(await tiny({ arch: 'qwen2' }));
    expect(q.tensors.some((t) => t.permuteHeads !== undefined)).toBe(false);
    expect(q.tensors.map((t) => t.name)).toContain('model.layers.0.self_attn.k_proj.bias');
    for (const arch of ['gemma', 'gemma2'] as const) {
      const g = await planGgufModel(await tiny({ arch }));
      const shifted = g.tensors.filter((t) => t.add === -1).map((t) => t.name).sort();
      const norms = g.tensors.map((t) => t.name).filter((x) => x.includes('norm')).sort();
      expect(shifted).toEqual(norms);
      expect(norms.length).toBe(arch === 'gemma2' ? 9 : 5);
      expect(g.tensors.some((t) => t.permuteHeads !== undefined)).toBe(false);
    }
  });

  it('unknown, missing, misshapen and undecodable tensors: E_GGUF naming them', async () => {
    await rejects(planGgufModel(await tiny({ extra: { 'blk.0.attn_rot_embd.weight': [4] } })), 'E_GGUF', "tensor 'blk.0.attn_rot_embd.weight' is not part of a llama model");
    await rejects(planGgufModel(await tiny({ extra: { 'blk.2.attn_q.weight': [32, 32] } })), 'E_GGUF', "'blk.2.attn_q.weight (block_count is 2)'");
    await rejects(planGgufModel(await tiny({ omit: ['blk.1.ffn_up.weight', 'output_norm.weight'] })), 'E_GGUF', "tensors 'blk.1.ffn_up.weight', 'output_norm.weight' are missing");
    await rejects(planGgufModel(await tiny({ arch: 'qwen2', omit: ['blk.0.attn_v.bias'] })), 'E_GGUF', "tensor 'blk.0.attn_v.bias' is missing");
    await rejects(planGgufModel(await tiny({ shapes: { 'blk.0.ffn_down.weight': [32, 32] } })), 'E_GGUF', "tensor 'blk.0.ffn_down.weight' has shape [32, 32], but the metadata says [32, 64]");
    const f = await tiny();
    f.tensors[3] = { ...f.tensors[3], type: 16, typeName: 'IQ2_XXS' };
    await rejects(planGgufModel(f), 'E_GGUF', `tensor '${f.tensors[3].name}' has ggml type IQ2_XXS, which lorafit cannot dequantize`);
  });

  it('llama biases turn on attention_bias / mlp_bias (llama.cpp loads them; HF has the flags)', async () => {
    const extra: Record<string, number[]> = {};
    for (const i of [0, 1]) Object.assign(extra, { [`blk.${i}.attn_q.bias`]: [32], [`blk.${i}.attn_k.bias`]: [16], [`blk.${i}.attn_v.bias`]: [16], [`blk.${i}.attn_output.bias`]: [32] });
    const plan = await planGgufModel(await tiny({ extra }));
    expect(plan.config.attention_bias).toBe(true);
    expect(plan.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.bias')!.permuteHeads).toBe(4);
    delete extra['blk.1.attn_output.bias'];
    await rejects(planGgufModel(await tiny({ extra })), 'E_GGUF', "tensor 'blk.1.attn_output.bias' is missing");
  });
});
