// What llama.cpp needs to know about each supported HF architecture: the GGUF architecture name,
// config.json defaults (HF omits values equal to the class default), HF -> GGUF tensor names, and
// the llama q/k row permutation (convert_hf_to_gguf.py's LlamaModel.permute).
import { LorafitError } from '../errors.js';
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
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
}

interface Defaults {
  ggufArch: GgufArch;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  tie: boolean;
  headDim?: number;
}

// transformers' config class defaults (the values config.json omits).
const DEFAULTS: Record<HfArch, Defaults> = {
  llama: { ggufArch: 'llama', rmsNormEps: 1e-6, ropeTheta: 10000, maxPositions: 2048, tie: false },
  mistral: { ggufArch: 'llama', rmsNormEps: 1e-6, ropeTheta: 10000, maxPositions: 4096 * 32, tie: false },
  qwen2: { ggufArch: 'qwen2', rmsNormEps: 1e-6, ropeTheta: 10000, maxPositions: 32768, tie: false },
  gemma: { ggufArch: 'gemma', rmsNormEps: 1e-6, ropeTheta: 10000, maxPositions: 8192, tie: true, headDim: 256 },
  gemma2: { ggufArch: 'gemma2', rmsNormEps: 1e-6, ropeTheta: 10000, maxPositions: 8192, tie: true, headDim: 256 },
};

export function parseArchConfig(config: Record<string, unknown>, file: string): ArchConfig {
  const modelType = String(config.model_type ?? '');
  if (!(modelType in DEFAULTS)) {
    throw new LorafitError(
      'E_EXPORT',
      `${file}: model_type '${modelType}' cannot be exported to GGUF (supported: ${Object.keys(DEFAULTS).join(', ')})`,
    );
  }
  const hfArch = modelType as HfArch;
  const d = DEFAULTS[hfArch];
  const num = (key: string, def?: number): number => {
    const v = config[key];
    if (typeof v === 'number') return v;
    if (def !== undefined) return def;
    throw new LorafitError('E_EXPORT', `${file}: '${key}' is missing`);
  };
  const optNum = (key: string, def: number | null): number | null => {
    const v = config[key];
    return typeof v === 'number' ? v : v === null ? null : def;
  };
  const hiddenSize = num('hidden_size');
  const numHeads = num('num_attention_heads');
  const isGemma2 = hfArch === 'gemma2';
  const rs = config.rope_scaling;
  return {
    hfArch,
    ggufArch: d.ggufArch,
    vocabSize: num('vocab_size'),
    hiddenSize,
    intermediateSize: num('intermediate_size'),
    numLayers: num('num_hidden_layers'),
    numHeads,
    numKvHeads: num('num_key_value_heads', numHeads),
    headDim: num('head_dim', d.headDim ?? hiddenSize / numHeads),
    contextLength: num('max_position_embeddings', d.maxPositions),
    ropeTheta: num('rope_theta', d.ropeTheta),
    rmsNormEps: num('rms_norm_eps', d.rmsNormEps),
    tieWordEmbeddings: typeof config.tie_word_embeddings === 'boolean' ? config.tie_word_embeddings : d.tie,
    ropeScaling: rs && typeof rs === 'object' ? (rs as Record<string, unknown>) : null,
    attnLogitSoftcapping: isGemma2 ? optNum('attn_logit_softcapping', 50.0) : null,
    finalLogitSoftcapping: isGemma2 ? optNum('final_logit_softcapping', 30.0) : null,
    slidingWindow: isGemma2 ? optNum('sliding_window', 4096) : null,
    bosTokenId: firstId(config.bos_token_id),
    eosTokenId: firstId(config.eos_token_id),
    padTokenId: firstId(config.pad_token_id),
  };
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
