// Export a (merged) Hugging Face model folder to a GGUF file that llama.cpp and Ollama load:
// llama.cpp tensor names, the `<arch>.*` hyperparameters, tokenizer metadata, and the same tensor
// transforms as convert_hf_to_gguf.py (llama q/k permutation, Gemma norm weights + 1).
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { LorafitError } from '../errors.js';
import { checkLlamaCppExpressible, ggufTensorName, needsQkPermute, parseArchConfig, permuteQk, qkHeads, type ArchConfig } from './gguf-arch.js';
import { readTokenizerMetadata, writeTokenizerMetadata, type TokenizerMetadata } from './gguf-tokenizer.js';
import { GgufWriter, LLAMA_FTYPE, QK8_0, type GgmlDtype } from './gguf-writer.js';
import { HfWeights } from './hf-weights.js';

export interface ExportGgufOptions {
  /** Type of the 2-D weight matrices: 'F16' (default), 'BF16', 'F32' or 'Q8_0'. Norms and biases stay F32. */
  dtype?: GgmlDtype;
  /** Folder holding tokenizer.json (+ tokenizer_config.json); default: the model folder. */
  tokenizerDir?: string;
  /** `general.name`; default: the model folder's name. */
  name?: string;
  /** Chat template to store instead of the tokenizer's (`null`: store none). */
  chatTemplate?: string | null;
  /** llama.cpp pre-tokenizer name (`tokenizer.ggml.pre`) when it cannot be detected. */
  pre?: string;
}

export interface ExportGgufResult {
  file: string;
  architecture: string;
  tensorCount: number;
  /** The metadata keys written, in order. */
  keys: string[];
  tokenizer: TokenizerMetadata;
}

const DTYPES: GgmlDtype[] = ['F32', 'F16', 'BF16', 'Q8_0'];

export function readModelConfig(modelDir: string): { config: Record<string, unknown>; arch: ArchConfig } {
  const file = join(modelDir, 'config.json');
  if (!existsSync(file)) throw new LorafitError('E_EXPORT', `${file}: not found (expected a Hugging Face model folder)`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new LorafitError('E_EXPORT', `${file}: invalid JSON (${(e as Error).message})`);
  }
  return { config, arch: parseArchConfig(config, file) };
}

/** Writes the general.* and <arch>.* hyperparameter keys (not the tokenizer). */
export function writeArchMetadata(w: GgufWriter, a: ArchConfig, configFile: string): void {
  const k = (s: string): string => `${a.ggufArch}.${s}`;
  w.addUint32(k('vocab_size'), a.vocabSize);
  w.addUint32(k('context_length'), a.contextLength);
  w.addUint32(k('embedding_length'), a.hiddenSize);
  w.addUint32(k('block_count'), a.numLayers);
  w.addUint32(k('feed_forward_length'), a.intermediateSize);
  w.addUint32(k('attention.head_count'), a.numHeads);
  w.addUint32(k('attention.head_count_kv'), a.numKvHeads);
  w.addFloat32(k('rope.freq_base'), a.ropeTheta);
  w.addFloat32(k('attention.layer_norm_rms_epsilon'), a.rmsNormEps);
  w.addUint32(k('attention.key_length'), a.headDim);
  w.addUint32(k('attention.value_length'), a.headDim);
  if (a.ggufArch === 'llama' || a.ggufArch === 'qwen2') w.addUint32(k('rope.dimension_count'), a.headDim);
  if (a.ggufArch === 'gemma2') {
    if (a.attnLogitSoftcapping !== null) w.addFloat32(k('attn_logit_softcapping'), a.attnLogitSoftcapping);
    if (a.finalLogitSoftcapping !== null) w.addFloat32(k('final_logit_softcapping'), a.finalLogitSoftcapping);
    if (a.slidingWindow !== null) w.addUint32(k('attention.sliding_window'), a.slidingWindow);
  }
  const rs = a.ropeScaling;
  if (rs) {
    const type = String(rs.rope_type ?? rs.type ?? 'default');
    const factor = typeof rs.factor === 'number' ? rs.factor : null;
    if (type === 'linear' && factor !== null) {
      w.addString(k('rope.scaling.type'), 'linear');
      w.addFloat32(k('rope.scaling.factor'), factor);
    } else if (type === 'yarn' && factor !== null) {
      w.addString(k('rope.scaling.type'), 'yarn');
      w.addFloat32(k('rope.scaling.factor'), factor);
      if (typeof rs.original_max_position_embeddings === 'number') {
        w.addUint32(k('rope.scaling.original_context_length'), rs.original_max_position_embeddings);
      }
    } else if (type === 'llama3' && a.ggufArch === 'llama') {
      // expressed as the rope_freqs tensor (see llama3RopeFactors)
    } else if (type !== 'default') {
      throw new LorafitError('E_EXPORT', `${configFile}: rope_scaling type '${type}' is not supported by the GGUF export`);
    }
  }
}

/**
 * Llama 3.1 rope scaling as llama.cpp takes it: per frequency pair a divisor of the frequency
 * (convert_hf_to_gguf's LlamaModel rope_freqs).
 */
export function llama3RopeFactors(a: ArchConfig): Float32Array {
  const rs = a.ropeScaling as Record<string, number>;
  const factor = rs.factor ?? 8.0;
  const lowFreqFactor = rs.low_freq_factor ?? 1.0;
  const highFreqFactor = rs.high_freq_factor ?? 4.0;
  const oldContextLen = rs.original_max_position_embeddings ?? 8192;
  const lowFreqWavelen = oldContextLen / lowFreqFactor;
  const highFreqWavelen = oldContextLen / highFreqFactor;
  const dim = a.headDim;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = 1.0 / a.ropeTheta ** ((2 * i) / dim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highFreqWavelen) out[i] = 1;
    else if (wavelen > lowFreqWavelen) out[i] = factor;
    else {
      const smooth = (oldContextLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

/** Export `modelDir` (config.json + safetensors + tokenizer) to the GGUF file `outFile`. */
export async function exportGguf(modelDir: string, outFile: string, options: ExportGgufOptions = {}): Promise<ExportGgufResult> {
  const dtype = options.dtype ?? 'F16';
  if (!DTYPES.includes(dtype)) throw new LorafitError('E_EXPORT', `dtype '${String(dtype)}' is not one of ${DTYPES.join(', ')}`);
  const { arch } = readModelConfig(modelDir);
  const configFile = join(modelDir, 'config.json');
  checkLlamaCppExpressible(arch, configFile);
  const weights = HfWeights.open(modelDir);

  const tokenizerDir = options.tokenizerDir ?? modelDir;
  if (!existsSync(join(tokenizerDir, 'tokenizer.json'))) {
    throw new LorafitError(
      'E_EXPORT',
      `${join(tokenizerDir, 'tokenizer.json')}: not found; llama.cpp needs the vocabulary inside the GGUF file: pass tokenizerDir (a folder with the model's tokenizer.json)`,
    );
  }
  const tokenizer = await readTokenizerMetadata(tokenizerDir, {
    vocabSize: arch.vocabSize,
    pre: options.pre,
    chatTemplate: options.chatTemplate,
    fallbackIds: { bos: arch.bosTokenId, eos: arch.eosTokenId, pad: arch.padTokenId },
  });

  const w = new GgufWriter();
  w.addString('general.architecture', arch.ggufArch);
  w.addString('general.type', 'model');
  w.addString('general.name', options.name ?? basename(resolve(modelDir)));
  w.addUint32('general.file_type', LLAMA_FTYPE[dtype]);
  if (dtype === 'Q8_0') w.addUint32('general.quantization_version', 2);
  writeArchMetadata(w, arch, configFile);
  writeTokenizerMetadata(w, tokenizer);

  // Tensors in HF order: embeddings, layers (in numeric order), final norm, head.
  const names = [...weights.infos.keys()].sort(compareHfNames);
  if (arch.ropeScaling && String(arch.ropeScaling.rope_type ?? arch.ropeScaling.type) === 'llama3' && arch.ggufArch === 'llama') {
    const factors = llama3RopeFactors(arch);
    w.addTensor('rope_freqs.weight', { shape: [factors.length], dtype: 'F32', data: factors });
  }
  const permute = needsQkPermute(arch);
  const isGemma = arch.ggufArch === 'gemma' || arch.ggufArch === 'gemma2';
  for (const hfName of names) {
    const info = weights.info(hfName);
    const gName = ggufTensorName(hfName, arch, info.file);
    if (gName === null) continue;
    if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
      throw new LorafitError('E_EXPORT', `${info.file}: tensor '${hfName}' has dtype ${info.dtype}; only F32/F16/BF16 weights can be exported (merge and dequantize first)`);
    }
    const heads = permute ? qkHeads(gName, arch) : null;
    const is2d = info.shape.length === 2;
    let tdtype: GgmlDtype = is2d ? dtype : 'F32';
    if (tdtype === 'Q8_0' && info.shape[info.shape.length - 1] % QK8_0 !== 0) tdtype = 'F16'; // as the converter falls back
    const addOne = isGemma && gName.endsWith('norm.weight');
    w.addTensor(gName, {
      shape: info.shape,
      dtype: tdtype,
      data: () => {
        let v = weights.read(hfName);
        if (heads !== null) v = permuteQk(v, info.shape[0], heads);
        if (addOne) for (let i = 0; i < v.length; i++) v[i] += 1;
        return v;
      },
    });
  }
  if (!weights.has('model.embed_tokens.weight')) {
    throw new LorafitError('E_EXPORT', `${modelDir}: no model.embed_tokens.weight in the checkpoint`);
  }
  if (!isGemma && !arch.tieWordEmbeddings && !weights.has('lm_head.weight')) {
    throw new LorafitError('E_EXPORT', `${modelDir}: tie_word_embeddings is false but the checkpoint has no lm_head.weight`);
  }

  w.write(outFile);
  return { file: outFile, architecture: arch.ggufArch, tensorCount: w.tensorCount, keys: w.keys, tokenizer };
}

/** Orders `model.layers.10` after `model.layers.9`, embeddings first, head last. */
function compareHfNames(a: string, b: string): number {
  const rank = (n: string): [number, number, string] => {
    if (n.startsWith('model.embed_tokens')) return [0, 0, n];
    const m = /^model\.layers\.(\d+)\./.exec(n);
    if (m) return [1, Number(m[1]), n];
    if (n.startsWith('model.norm')) return [2, 0, n];
    return [3, 0, n];
  };
  const [ra, la, na] = rank(a);
  const [rb, lb, nb] = rank(b);
  return ra - rb || la - lb || (na < nb ? -1 : na > nb ? 1 : 0);
}
