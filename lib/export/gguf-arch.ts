// What llama.cpp needs to know about each supported HF architecture: the GGUF architecture name,
// config.json defaults (HF omits values equal to the class default), HF -> GGUF tensor names, and
// the llama q/k row permutation (convert_hf_to_gguf.py's LlamaModel.permute).
import { fromNative, LorafitError } from '../errors.js';
import type { ModelConfig } from '../model/model.js';
import { native } from '../model/native.js';
import { qkPermuteHeads, toGgufName, type GgufArch } from '../gguf/tensor-names.js';

export type HfArch = 'llama' | 'mistral' | 'qwen2' | 'gemma' | 'gemma2';
export type { GgufArch };

export interface ArchConfig {
  hfArch: HfArch;
  ggufArch: GgufArch;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  contextLength: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  ropeScaling: Record<string, unknown> | null;
  /** Gemma 2 only. */
  attnLogitSoftcapping: number | null;
  finalLogitSoftcapping: number | null;
  slidingWindow: number | null;
  /** Gemma 2 only: queries are scaled by 1/sqrt(this). */
  queryPreAttnScalar: number | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
}

// The GGUF architecture of each HF model_type (llama.cpp runs Mistral as llama).
const GGUF_ARCH: Record<HfArch, GgufArch> = { llama: 'llama', mistral: 'llama', qwen2: 'qwen2', gemma: 'gemma', gemma2: 'gemma2' };

/**
 * The architecture of a config.json. Values config.json omits take transformers' class defaults
 * as native/hf_config.cc fills them in (the one table of them, the same reading Model.load uses).
 */
export function parseArchConfig(config: Record<string, unknown>, file: string): ArchConfig {
  const modelType = String(config.model_type ?? '');
  if (!(modelType in GGUF_ARCH)) {
    throw new LorafitError(
      'E_EXPORT',
      `${file}: model_type '${modelType}' cannot be exported to GGUF (supported: ${Object.keys(GGUF_ARCH).join(', ')})`,
    );
  }
  const hfArch = modelType as HfArch;
  // GGUF carries rope scalings training here does not run (yarn, ...): the scaling goes to the
  // GGUF as written; only rope_theta is read through the native table.
  const rs = (config.rope_scaling ?? config.rope_parameters ?? null) as Record<string, unknown> | null;
  const base: Record<string, unknown> = { ...config };
  delete base.rope_scaling;
  delete base.rope_parameters;
  if (rs && typeof rs === 'object' && typeof rs.rope_theta === 'number') base.rope_theta = rs.rope_theta;
  let c: ModelConfig;
  try {
    c = JSON.parse(native().hfConfig(JSON.stringify(base), file)) as ModelConfig;
  } catch (e) {
    const err = fromNative(e);
    throw new LorafitError('E_EXPORT', err.message, { cause: err });
  }
  const isGemma2 = hfArch === 'gemma2';
  const scaled = rs && typeof rs === 'object' && String(rs.rope_type ?? rs.type ?? 'default') !== 'default';
  return {
    hfArch,
    ggufArch: GGUF_ARCH[hfArch],
    vocabSize: c.vocabSize,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numLayers: c.numHiddenLayers,
    numHeads: c.numAttentionHeads,
    numKvHeads: c.numKeyValueHeads,
    headDim: c.headDim,
    contextLength: c.maxPositionEmbeddings,
    ropeTheta: c.ropeTheta,
    rmsNormEps: c.rmsNormEps,
    tieWordEmbeddings: c.tieWordEmbeddings,
    ropeScaling: scaled ? rs : null,
    attnLogitSoftcapping: isGemma2 ? nullIfOff(c.attnLogitSoftcapping) : null,
    finalLogitSoftcapping: isGemma2 ? nullIfOff(c.finalLogitSoftcapping) : null,
    slidingWindow: isGemma2 ? nullIfOff(c.slidingWindow) : null,
    // Not in native's config JSON; 256 is Gemma2Config's default, as native/hf_config.cc has it.
    queryPreAttnScalar: isGemma2 ? (typeof config.query_pre_attn_scalar === 'number' ? config.query_pre_attn_scalar : 256) : null,
    bosTokenId: firstId(config.bos_token_id),
    eosTokenId: firstId(config.eos_token_id),
    padTokenId: firstId(config.pad_token_id),
  };
}

/**
 * Refuses a model that llama.cpp would run differently from transformers because GGUF has no key
 * for the setting. Gemma 2's query scale: llama.cpp uses 1/sqrt(head_dim), or 1/sqrt(hidden/heads)
 * for the 46-layer (27B) model type (llama-model.cpp, f_attention_scale), which is what every
 * released Gemma 2 has as query_pre_attn_scalar (2B, 9B: 256 = head_dim; 27B: 144 = 4608 / 32).
 * (Mistral's sliding window is not refused: llama.cpp's llama architecture attends to the whole
 * context, as convert_hf_to_gguf.py exports it, so a windowed Mistral, e.g. v0.1's 4096, matches
 * transformers only on sequences no longer than the window.)
 */
export function checkLlamaCppExpressible(a: ArchConfig, file: string): void {
  if (a.ggufArch !== 'gemma2' || a.queryPreAttnScalar === null) return;
  const llamaCpp = a.numLayers === 46 ? a.hiddenSize / a.numHeads : a.headDim;
  if (a.queryPreAttnScalar !== llamaCpp) {
    throw new LorafitError(
      'E_EXPORT',
      `${file}: query_pre_attn_scalar ${a.queryPreAttnScalar} cannot be expressed in GGUF: llama.cpp scales Gemma 2 queries by 1/sqrt(${llamaCpp}) ` +
        `(${a.numLayers === 46 ? 'hidden_size / num_attention_heads for the 46-layer model' : 'head_dim'}), so the exported model would compute something else`,
    );
  }
}

/** native uses 0 for "off" (no soft-cap, no window); GGUF leaves the key out then. */
function nullIfOff(v: number): number | null {
  return v > 0 ? v : null;
}

function firstId(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && typeof v[0] === 'number') return v[0];
  return null;
}

/**
 * The GGUF name of an HF tensor (`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight`),
 * `null` for tensors llama.cpp does not use, or throws for unknown tensors.
 */
export function ggufTensorName(hfName: string, arch: ArchConfig, file: string): string | null {
  if (hfName.endsWith('.rotary_emb.inv_freq')) return null;
  if (hfName === 'lm_head.weight') {
    // llama.cpp's Gemma always uses the embedding as the output projection.
    if (arch.ggufArch === 'gemma' || arch.ggufArch === 'gemma2') return null;
  }
  const g = toGgufName(hfName, arch.ggufArch);
  if (g !== undefined && (g.startsWith('blk.') || g.endsWith('.weight'))) return g;
  throw new LorafitError('E_EXPORT', `${file}: tensor '${hfName}' has no llama.cpp equivalent for ${arch.hfArch}`);
}

/** Whether q/k rows must be permuted from HF's rotate_half layout to llama.cpp's interleaved one. */
export function needsQkPermute(arch: ArchConfig): boolean {
  return arch.ggufArch === 'llama';
}

/**
 * convert_hf_to_gguf's LlamaModel.permute on the rows of a [rows, cols] matrix (or a [rows] bias):
 * within each head, row j*(hd/2)+i moves to 2*i+j.
 * `nHead` is the number of heads the rows hold (num_attention_heads for q, num_key_value_heads for k).
 */
export function permuteQk(values: Float32Array, rows: number, nHead: number): Float32Array {
  const cols = values.length / rows;
  const hd = rows / nHead;
  if (!Number.isInteger(cols) || !Number.isInteger(hd) || hd % 2 !== 0) {
    throw new LorafitError('E_EXPORT', `cannot permute ${rows} rows into ${nHead} heads of even size`);
  }
  const half = hd / 2;
  const out = new Float32Array(values.length);
  for (let h = 0; h < nHead; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const src = (h * hd + j * half + i) * cols;
        const dst = (h * hd + 2 * i + j) * cols;
        out.set(values.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** The head count that a q/k projection's rows are split into, or null for other tensors. */
export function qkHeads(ggufName: string, arch: ArchConfig): number | null {
  return qkPermuteHeads(ggufName, 'llama', arch.numHeads, arch.numKvHeads);
}
