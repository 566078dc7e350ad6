// GGUF metadata -> a Hugging Face config.json object, the way transformers' GGUF loader builds one
// (transformers/integrations/ggml.py GGUF_CONFIG_MAPPING, modeling_gguf_pytorch_utils.py
// load_gguf_checkpoint), so the native config parser applies the same class defaults to the keys
// the file does not hold. Where transformers drops something the file does say, lorafit reads it
// (each such place is marked "beyond transformers" below):
//   - Gemma 2 soft-capping (`gemma2.attn_logit_softcapping`, `.final_logit_softcapping`): transformers
//     ignores them and uses Gemma2Config's 50/30;
//   - Gemma 2 query scaling: GGUF has no query_pre_attn_scalar; llama.cpp scales queries by
//     1/sqrt(head_dim) (1/sqrt(hidden/heads) for the 46-layer 27B), transformers uses the class default
//     256 (equal for the 2B and 9B). lorafit does what llama.cpp does;
//   - rope scaling (`<arch>.rope.scaling.*`, Llama 3's `rope_freqs.weight` factors): transformers reads
//     it for gpt-oss only;
//   - Gemma 1 (`gemma`): transformers refuses the architecture; the keys map as for Gemma 2;
//   - Mistral (llama with general.name exactly "mistral"): model_type mistral as transformers makes
//     it, but with sliding_window null (see below); transformers 5.23 + gguf 0.19 then fail to load
//     the weights (gguf-py has no 'mistral' architecture name).
import { LorafitError } from '../errors.js';
import { metaNumber, metaString, type GgufFile, type GgufTensorInfo } from './reader.js';
import { GGUF_ARCHS, type GgufArch } from './tensor-names.js';

export type HfModelType = 'llama' | 'mistral' | 'qwen2' | 'gemma' | 'gemma2';

export interface GgufHfConfig {
  /** general.architecture. */
  arch: GgufArch;
  /** config.json as an object (what transformers' AutoConfig would hold, minus its class defaults). */
  config: Record<string, unknown>;
  /** generation_config.json as transformers' GenerationConfig.from_model_config makes it (+ llama.cpp's end-of-generation ids). */
  generationConfig: Record<string, unknown>;
}

function fail(f: GgufFile, what: string): never {
  throw new LorafitError('E_GGUF', `${f.path}: ${what}`);
}

const MAX_INT = 2147483647;

/** A positive integer metadata value (or undefined when absent). */
function int(f: GgufFile, key: string, options: { min?: number } = {}): number | undefined {
  const v = metaNumber(f, key);
  if (v === undefined) return undefined;
  const min = options.min ?? 1;
  if (!Number.isInteger(v) || v < min || v > MAX_INT) fail(f, `metadata '${key}' must be an integer from ${min} to ${MAX_INT}, got ${v}`);
  return v;
}

/** A positive finite metadata number (or undefined when absent). */
function real(f: GgufFile, key: string): number | undefined {
  const v = metaNumber(f, key);
  if (v === undefined) return undefined;
  if (!Number.isFinite(v) || v <= 0) fail(f, `metadata '${key}' must be a positive number, got ${v}`);
  return v;
}

function required<T>(f: GgufFile, key: string, v: T | undefined): T {
  if (v === undefined) fail(f, `metadata '${key}' is missing (llama.cpp writes it for every model)`);
  return v;
}

/** The architecture, or E_GGUF naming general.architecture and the supported ones. */
export function ggufArchitecture(f: GgufFile): GgufArch {
  const type = metaString(f, 'general.type');
  if (type !== undefined && type !== 'model') {
    fail(f, `general.type is '${type}': this file is not a model${type === 'adapter' ? ' but an adapter (llama.cpp LoRA); Model.load needs the base model GGUF' : ''}`);
  }
  const arch = metaString(f, 'general.architecture');
  if (arch === undefined) fail(f, "metadata 'general.architecture' is missing: not a llama.cpp model file");
  if (!(GGUF_ARCHS as readonly string[]).includes(arch)) {
    fail(f, `general.architecture '${arch}' is not supported; lorafit loads GGUF models of architecture ${GGUF_ARCHS.join(', ')} (Mistral is stored as llama)`);
  }
  return arch as GgufArch;
}

/**
 * The HF config.json and generation config of a GGUF model. `tensors` are the file's tensors (for
 * tie_word_embeddings, biases and the vocabulary size); `ropeFactors` the values of
 * `rope_freqs.weight` when the file has one (Llama 3.1+ rope scaling).
 */
export function ggufToHfConfig(f: GgufFile, options: { ropeFactors?: Float32Array } = {}): GgufHfConfig {
  const arch = ggufArchitecture(f);
  const k = (s: string): string => `${arch}.${s}`;
  const name = metaString(f, 'general.name');
  // transformers: `if "llama" in architecture and "mistral" in model_name` where model_name is the
  // list read_field returns, so only a general.name of exactly "mistral" makes a MistralConfig.
  const modelType: HfModelType = arch === 'llama' && name === 'mistral' ? 'mistral' : arch;
  const c: Record<string, unknown> = { architectures: [ARCH_CLASS[modelType]], model_type: modelType };
  if (name !== undefined) c._model_name_or_path = name;
  // GGUF stores no window for the llama architecture and llama.cpp attends to every position:
  // a Mistral file means full attention, not MistralConfig's default window of 4096.
  if (modelType === 'mistral') c.sliding_window = null;

  const set = (key: string, v: unknown): void => {
    if (v !== undefined) c[key] = v;
  };
  set('max_position_embeddings', int(f, k('context_length')));
  c.num_hidden_layers = required(f, k('block_count'), int(f, k('block_count')));
  c.hidden_size = required(f, k('embedding_length'), int(f, k('embedding_length')));
  c.intermediate_size = required(f, k('feed_forward_length'), int(f, k('feed_forward_length')));
  const heads = required(f, k('attention.head_count'), int(f, k('attention.head_count')));
  c.num_attention_heads = heads;
  set('num_key_value_heads', int(f, k('attention.head_count_kv')));
  const kv = (c.num_key_value_heads as number | undefined) ?? heads;
  if (heads % kv !== 0) fail(f, `metadata '${k('attention.head_count')}' (${heads}) must be a multiple of '${k('attention.head_count_kv')}' (${kv})`);
  set('rope_theta', real(f, k('rope.freq_base')));
  set('rms_norm_eps', real(f, k('attention.layer_norm_rms_epsilon')));
  // head_dim: llama/mistral from rope.dimension_count, Gemma from attention.key_length; Qwen2 from
  // neither (transformers maps rope.dimension_count to None there: hidden / heads).
  if (arch === 'llama') set('head_dim', int(f, k('rope.dimension_count')));
  if (arch === 'gemma' || arch === 'gemma2') set('head_dim', int(f, k('attention.key_length')));
  const headDim = (c.head_dim as number | undefined) ?? (arch.startsWith('gemma') ? 256 : (c.hidden_size as number) / heads);
  if (!Number.isInteger(headDim)) fail(f, `metadata '${k('attention.head_count')}' (${heads}) must divide '${k('embedding_length')}' (${String(c.hidden_size)})`);
  if (headDim % 2 !== 0) fail(f, `the head size ${headDim} is odd; rotary embeddings need an even one`);

  if (arch === 'gemma2') {
    set('sliding_window', int(f, k('attention.sliding_window')));
    // beyond transformers: soft-capping and query scaling as llama.cpp applies them
    for (const key of ['attn_logit_softcapping', 'final_logit_softcapping']) {
      const v = metaNumber(f, k(key));
      if (v !== undefined) {
        if (!Number.isFinite(v) || v < 0) fail(f, `metadata '${k(key)}' must be a non-negative number, got ${v}`);
        c[key] = v === 0 ? null : v;
      }
    }
    c.query_pre_attn_scalar = c.num_hidden_layers === 46 ? (c.hidden_size as number) / heads : headDim;
  }

  // vocab_size, else the tokenizer's token count (transformers issue 32526), else the embedding rows
  const tokens = f.metadata.get('tokenizer.ggml.tokens');
  const embd = f.tensors.find((t) => t.name === 'token_embd.weight');
  const vocab = int(f, k('vocab_size')) ?? (Array.isArray(tokens) ? tokens.length : undefined) ?? embd?.shape[0];
  if (vocab === undefined) fail(f, `metadata '${k('vocab_size')}' is missing, and there are no tokenizer.ggml.tokens or token_embd.weight to count`);
  c.vocab_size = vocab;

  // transformers: tie_word_embeddings = no tensor named output.weight
  c.tie_word_embeddings = !f.tensors.some((t) => t.name === 'output.weight');
  // llama.cpp's llama loads optional q/k/v/o and MLP biases; HF Llama/Mistral have attention_bias
  // and mlp_bias for them (transformers' GGUF loader would drop them silently).
  if (arch === 'llama') {
    if (hasTensor(f.tensors, 'blk.0.attn_q.bias')) c.attention_bias = true;
    if (hasTensor(f.tensors, 'blk.0.ffn_up.bias')) c.mlp_bias = true;
  }

  readRopeScaling(f, arch, c, headDim, options.ropeFactors);

  // token ids: tokenizer.ggml.* as transformers maps them into the config
  const ids: Record<string, number> = {};
  for (const [key, hf] of [['bos_token_id', 'bos_token_id'], ['eos_token_id', 'eos_token_id'], ['unknown_token_id', 'unk_token_id'], ['padding_token_id', 'pad_token_id']]) {
    const v = tokenId(f, `tokenizer.ggml.${key}`, vocab);
    if (v !== undefined) {
      c[hf] = v;
      ids[hf] = v;
    }
  }
  // GenerationConfig.from_model_config takes bos/eos/pad from the config; llama.cpp also stops at
  // its end-of-turn ids (eot, eom), which is what a chat model's eos really is.
  const generationConfig: Record<string, unknown> = {};
  if (ids.bos_token_id !== undefined) generationConfig.bos_token_id = ids.bos_token_id;
  const eos = [ids.eos_token_id, tokenId(f, 'tokenizer.ggml.eot_token_id', vocab), tokenId(f, 'tokenizer.ggml.eom_token_id', vocab)].filter(
    (x, i, a): x is number => x !== undefined && a.indexOf(x) === i,
  );
  if (eos.length > 0) generationConfig.eos_token_id = eos.length === 1 ? eos[0] : eos;
  if (ids.pad_token_id !== undefined) generationConfig.pad_token_id = ids.pad_token_id;
  return { arch, config: c, generationConfig };
}

const ARCH_CLASS: Record<HfModelType, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  gemma: 'GemmaForCausalLM',
  gemma2: 'Gemma2ForCausalLM',
};

function hasTensor(tensors: GgufTensorInfo[], name: string): boolean {
  return tensors.some((t) => t.name === name);
}

function tokenId(f: GgufFile, key: string, vocab: number): number | undefined {
  const v = metaNumber(f, key);
  if (v === undefined) return undefined;
  // llama.cpp writes -1 (as u32: 4294967295) for "none" in some files: treat ids outside the vocabulary as absent
  if (!Number.isInteger(v) || v < 0 || v >= vocab) return undefined;
  return v;
}

function readRopeScaling(f: GgufFile, arch: GgufArch, c: Record<string, unknown>, headDim: number, factors: Float32Array | undefined): void {
  const k = (s: string): string => `${arch}.rope.${s}`;
  const type = metaString(f, k('scaling.type')) ?? (metaNumber(f, k('scale_linear')) !== undefined ? 'linear' : 'none');
  const factor = metaNumber(f, k('scaling.factor')) ?? metaNumber(f, k('scale_linear'));
  if (type === 'linear') {
    if (factor === undefined || !(factor > 0) || !Number.isFinite(factor)) fail(f, `metadata '${k('scaling.factor')}' must be a positive number for linear rope scaling`);
    if (factor !== 1) c.rope_scaling = { rope_type: 'linear', factor };
  } else if (type !== 'none') {
    fail(f, `metadata '${k('scaling.type')}' is '${type}': lorafit supports rope scaling none, linear and Llama 3's (rope_freqs.weight)`);
  }
  if (factors) {
    if (c.rope_scaling) fail(f, `has both '${k('scaling.type')}' and a rope_freqs.weight tensor`);
    const theta = (c.rope_theta as number | undefined) ?? 10000;
    const fit = fitLlama3RopeScaling(factors, theta, headDim);
    if (fit === null) {
      fail(f, `tensor 'rope_freqs.weight' holds rope factors that are not Llama 3's scaling (factor, low/high frequency factors, original context); lorafit cannot load them`);
    }
    if (fit.factor !== 1) c.rope_scaling = { rope_type: 'llama3', ...fit };
  }
}

/** convert_hf_to_gguf's Llama 3 rope factors (one divisor a frequency pair) for the given parameters. */
export function llama3Factors(p: { factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number }, theta: number, headDim: number): Float32Array {
  const lowWavelen = p.original_max_position_embeddings / p.low_freq_factor;
  const highWavelen = p.original_max_position_embeddings / p.high_freq_factor;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const wavelen = (2 * Math.PI) / (1.0 / theta ** ((2 * i) / headDim));
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = p.factor;
    else {
      const smooth = (p.original_max_position_embeddings / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
      out[i] = 1 / ((1 - smooth) / p.factor + smooth);
    }
  }
  return out;
}

/**
 * Llama 3's rope_scaling parameters that reproduce `factors` (llama.cpp keeps only the factors).
 * The factors depend on the parameters only through original/low and original/high, so any
 * parameter set that reproduces every factor is the same scaling; the search tries the values real
 * checkpoints use (low 1, high 4; original context a power of two) first.
 */
export function fitLlama3RopeScaling(
  factors: Float32Array,
  theta: number,
  headDim: number,
): { factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number } | null {
  if (factors.length !== headDim / 2 || factors.some((x) => !Number.isFinite(x) || x <= 0)) return null;
  let factor = 0;
  for (const x of factors) factor = Math.max(factor, x);
  const all1 = factors.every((x) => x === 1);
  if (all1) return { factor: 1, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  for (const [low, high] of [[1, 4], [1, 2], [1, 8], [2, 4], [1, 3], [1, 16]]) {
    for (let e = 4; e <= 24; e++) {
      const p = { factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: 2 ** e };
      const got = llama3Factors(p, theta, headDim);
      if (got.every((x, i) => Math.abs(x - factors[i]) <= 1e-6 * factor)) return p;
    }
  }
  return null;
}
