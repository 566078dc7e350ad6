// Model: a Hugging Face causal LM folder, a GGUF file or an Ollama model loaded into the native addon.
//   const model = await Model.load('path/to/Qwen2.5-0.5B', { dtype: 'bfloat16' });
//   const model = await Model.load('SmolLM2-135M-Instruct.Q4_1.gguf');   // or 'ollama:qwen2.5:0.5b'
//   const { logits, shape } = await model.forward([[1, 2, 3]]);
//   await model.dispose();
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveOllamaModel } from '../gguf/ollama.js';
import { checkNormOffset, planGgufModel } from '../gguf/plan.js';
import { readGguf } from '../gguf/reader.js';
import { isGgufFile } from './model-source.js';
import { looksLikeHubId, resolveModelPath } from '../hub/resolve.js';
import { saveModel, type SaveModelOptions } from './save-model.js';
import { generateBatch, generateTokens, type GenerateOptions } from './generation.js';
import { fromNative, LorafitError, optionError } from '../errors.js';
import { bindChannel, ModelChannel } from './channel.js';
import { native, type NativeModel, type NativeStorageReport } from './native.js';
import { toNativeBatch, toSegments, type MicroBatch } from './micro-batch.js';
import { toTokenBatch, type TokenBatch } from './tokens.js';

export type { MicroBatch } from './micro-batch.js';

export type Dtype = 'float32' | 'bfloat16' | 'float16';
const DTYPES: readonly Dtype[] = ['float32', 'bfloat16', 'float16'];

export interface ModelConfig {
  modelType: 'llama' | 'qwen2' | 'mistral' | 'gemma' | 'gemma2';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: { type: string; factor: number };
  tieWordEmbeddings: boolean;
  hiddenAct: string;
  slidingWindow: number;
  slidingLayers: boolean[];
  attnLogitSoftcapping: number;
  finalLogitSoftcapping: number;
  bosTokenId: number;
  eosTokenIds: number[];
  padTokenId: number;
  torchDtype: string;
}

export type QuantizeKind = 'nf4' | 'int8';
const QUANTIZE_KINDS: readonly QuantizeKind[] = ['nf4', 'int8'];

export interface ModelLoadOptions {
  /** Compute and storage dtype of the base weights. Default 'float32'. */
  dtype?: Dtype;
  /** Same as `dtype` (the QLoRA name): the dtype activations, embeddings, norms and lm_head use. */
  computeDtype?: Dtype;
  /**
   * QLoRA: store the decoder layers' linear weights quantized, quantizing each tensor as it is
   * read (the dense model never exists in memory). Embeddings, norms and lm_head stay in the
   * compute dtype. 'nf4': 4-bit NormalFloat exactly as bitsandbytes (blocks of `blockSize`,
   * double quantization of the block scales). 'int8': symmetric per-row absmax int8 (LLM.int8's
   * quantizer without its outlier split: every column is int8, none kept in 16 bits).
   * A folder saved by bitsandbytes/transformers in 4-bit NF4 loads as NF4 without this option.
   */
  quantize?: QuantizeKind;
  /** NF4: quantize the block scales to 8 bits too (bitsandbytes compress_statistics). Default true. */
  doubleQuant?: boolean;
  /** NF4 block size (values per absmax). Default 64, as QLoRA. */
  blockSize?: number;
  /** 'cpu' (default), 'cuda' or 'cuda:N' (needs a CUDA libtorch and a GPU). */
  device?: string;
  /** libtorch threads; default all cores. Process-wide. */
  threads?: number;
  /** Hub revision (branch, tag or commit) when `dir` is a hub id. */
  revision?: string;
  signal?: AbortSignal;
}


/** Where a model's weights came from. */
export type ModelSourceInfo =
  | { format: 'hf'; path: string }
  | {
      format: 'gguf';
      /** The GGUF file (for `ollama:` specs, the blob in Ollama's models folder). */
      path: string;
      /** The spec given to Model.load (e.g. 'ollama:qwen2.5:0.5b'). */
      spec: string;
      /** general.architecture. */
      architecture: string;
      /** The ggml types of the file's tensors, most frequent first (['Q4_1', 'F32', 'Q8_0']). */
      quantTypes: string[];
      /** The Hugging Face config.json the file's metadata maps to (as transformers' GGUF loader builds it). */
      hfConfig: Record<string, unknown>;
    };

export interface ForwardOptions {
  /** 1 for tokens, 0 for padding, same shape as the ids. */
  attentionMask?: number[] | number[][] | TokenBatch;
  /** Explicit positions, same shape as the ids (default 0..seq-1). */
  positionIds?: number[] | number[][] | TokenBatch;
  /**
   * Padding-free / packed rows: the lengths of the sequences laid end to end over the rows
   * (row-major, summing to batch x seq, every row starting one). Each sequence attends only to
   * itself and its positions restart at 0 (unless positionIds is given); attentionMask is not used.
   */
  segmentLengths?: ArrayLike<number>;
  /** Return only the last position's logits: shape [batch, 1, vocab]. */
  lastOnly?: boolean;
  /** Also return HF-style hidden states (embeddings, each layer, final norm). */
  outputHiddenStates?: boolean;
}

export interface ForwardResult {
  /** Row-major float32 logits. */
  logits: Float32Array;
  shape: [number, number, number];
  hiddenStates?: Float32Array[];
}

export class Model {
  readonly #channel: ModelChannel;
  readonly config: ModelConfig;
  /** The model folder; for a GGUF model, the GGUF file. */
  readonly dir: string;
  /** The format and file the weights were read from. */
  readonly source: ModelSourceInfo;
  readonly dtype: Dtype;
  readonly device: string;
  /** Notes from loading, e.g. checkpoint weights the architecture does not use. */
  readonly warnings: string[];
  /** generation_config.json of the folder ({} when absent); for GGUF, bos/eos/pad from the tokenizer.ggml.* ids. */
  readonly generationConfig: Record<string, unknown>;
  /** How the base weights are quantized; undefined for a dense model. */
  readonly quantization: { type: QuantizeKind; doubleQuant: boolean; blockSize: number; prequantized: boolean } | undefined;

  private constructor(handle: NativeModel, dir: string, dtype: Dtype, device: string, gguf?: { source: ModelSourceInfo; generationConfig: Record<string, unknown> }) {
    this.#channel = new ModelChannel(handle);
    bindChannel(this, this.#channel);
    this.dir = dir;
    this.dtype = dtype;
    this.device = device;
    this.config = JSON.parse(handle.configJson()) as ModelConfig;
    this.warnings = handle.warnings();
    this.quantization = handle.quantization() ?? undefined;
    if (gguf) {
      this.source = gguf.source;
      this.generationConfig = gguf.generationConfig;
    } else {
      this.source = { format: 'hf', path: dir };
      const genFile = join(dir, 'generation_config.json');
      this.generationConfig = existsSync(genFile) ? (JSON.parse(readFileSync(genFile, 'utf8')) as Record<string, unknown>) : {};
    }
  }

  /** Ids that end generation by default: generation_config.json's eos, else config.json's. */
  get eosTokenIds(): number[] {
    const g = this.generationConfig.eos_token_id;
    if (typeof g === 'number') return [g];
    if (Array.isArray(g)) return g as number[];
    return this.config.eosTokenIds;
  }

  /** New token ids for each prompt (greedy by default; eos included when reached). */
  async generate(prompts: number[] | number[][], options: GenerateOptions = {}): Promise<number[][]> {
    const batch = (Array.isArray(prompts[0]) ? prompts : [prompts]) as number[][];
    return generateBatch(this, batch, options);
  }

  /** Streams new token ids for one prompt. */
  generateStream(prompt: number[], options: GenerateOptions = {}): AsyncGenerator<number> {
    return generateTokens(this, prompt, options);
  }

  /**
   * Loads a model: a Hugging Face folder (config.json + *.safetensors), a hub id (org/name), a GGUF
   * file (llama.cpp's format: any path ending in .gguf or a file starting with the GGUF magic;
   * quantized tensors are dequantized to `dtype`, or requantized with `quantize`), or
   * `ollama:NAME[:TAG]` (the GGUF blob of a model Ollama has pulled; $OLLAMA_MODELS or ~/.ollama/models).
   */
  static async load(dir: string, options: ModelLoadOptions = {}): Promise<Model> {
    if (options.dtype !== undefined && options.computeDtype !== undefined && options.dtype !== options.computeDtype) {
      throw optionError('computeDtype', `'${String(options.computeDtype)}' contradicts dtype '${String(options.dtype)}' (they are the same setting; give one)`);
    }
    const dtype = options.dtype ?? options.computeDtype ?? 'float32';
    const quantize = options.quantize;
    if (quantize !== undefined && !QUANTIZE_KINDS.includes(quantize)) {
      throw optionError('quantize', `'${String(quantize)}' is not one of ${QUANTIZE_KINDS.join(', ')}`);
    }
    const doubleQuant = options.doubleQuant ?? true;
    if (typeof doubleQuant !== 'boolean') throw optionError('doubleQuant', 'must be a boolean');
    const blockSize = options.blockSize ?? 64;
    if (!Number.isInteger(blockSize) || blockSize < 32 || blockSize > 4096 || (blockSize & (blockSize - 1)) !== 0) {
      throw optionError('blockSize', `must be a power of two from 32 to 4096 (as bitsandbytes), got ${String(blockSize)}`);
    }
    if (quantize !== 'nf4' && (options.doubleQuant !== undefined || options.blockSize !== undefined)) {
      throw optionError(options.doubleQuant !== undefined ? 'doubleQuant' : 'blockSize', "applies to quantize: 'nf4' only");
    }
    if (!DTYPES.includes(dtype)) throw optionError('dtype', `'${String(dtype)}' is not one of ${DTYPES.join(', ')}`);
    const device = options.device ?? 'cpu';
    if (typeof device !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(device)) {
      throw optionError('device', `'${String(device)}' is not cpu, cuda or cuda:N`);
    }
    if (options.threads !== undefined) {
      if (!Number.isInteger(options.threads) || options.threads < 1) throw optionError('threads', 'must be a positive integer');
      native().setThreads(options.threads);
    }
    const ggufFile = typeof dir === 'string' && dir.startsWith('ollama:') ? await resolveOllamaModel(dir) : ggufPath(dir);
    if (ggufFile !== undefined) return Model.loadGguf(dir, ggufFile, { dtype, device, quantize: quantize ?? 'none', doubleQuant, blockSize });
    let abs = resolve(dir);
    if (!existsSync(abs) && looksLikeHubId(dir)) {
      // A hub id ('Qwen/Qwen2.5-0.5B-Instruct'): download into (or find in) the shared HF cache.
      abs = await resolveModelPath(dir, { revision: options.revision, signal: options.signal });
    }
    if (!existsSync(abs) || !statSync(abs).isDirectory()) {
      throw new LorafitError('E_MODEL_DIR', `${abs} is not a folder; Model.load expects a Hugging Face model folder (config.json + *.safetensors) or a hub id (org/name)`);
    }
    try {
      const handle = await native().loadModel(abs, { dtype, device, quantize: quantize ?? 'none', doubleQuant, blockSize });
      return new Model(handle, abs, dtype, device);
    } catch (e) {
      throw fromNative(e);
    }
  }

  private static async loadGguf(
    spec: string,
    file: string,
    opts: { dtype: Dtype; device: string; quantize: string; doubleQuant: boolean; blockSize: number },
  ): Promise<Model> {
    const header = await readGguf(file);
    const plan = await planGgufModel(header);
    const source: ModelSourceInfo = { format: 'gguf', path: file, spec, architecture: plan.arch, quantTypes: plan.quantTypes, hfConfig: plan.config };
    try {
      const handle = await native().loadModel(file, { ...opts, gguf: { configJson: JSON.stringify(plan.config), tensors: plan.tensors } });
      const wrong = await checkNormOffset(header, plan, (name) => handle.parameter(name)).catch((e: unknown) => {
        handle.dispose();
        throw e;
      });
      if (wrong) {
        handle.dispose();
        throw new LorafitError('E_GGUF', wrong);
      }
      return new Model(handle, file, opts.dtype, opts.device, { source, generationConfig: plan.generationConfig });
    } catch (e) {
      throw fromNative(e);
    }
  }

  get disposed(): boolean {
    return this.#channel.disposed;
  }

  numParameters(): number {
    return this.#channel.sync((h) => h.numParameters());
  }

  /**
   * What the weights occupy in memory. `quantizedBytes / quantizedParams` is the bytes per
   * quantized parameter (NF4 with double quant: ~0.516 for blocks of 64; int8: ~1.0).
   */
  async storageReport(): Promise<NativeStorageReport & { bytesPerQuantizedParam: number | undefined; totalBytes: number }> {
    const r = await this.#channel.call((h) => h.storageReport());
    return { ...r, bytesPerQuantizedParam: r.quantizedParams > 0 ? r.quantizedBytes / r.quantizedParams : undefined, totalBytes: r.linearBytes + r.otherBytes };
  }

  /** Bytes of the quantized linear weights (0 for a dense model). */
  async quantizedBytes(): Promise<number> {
    return (await this.storageReport()).quantizedBytes;
  }

  /** @internal Copies warnings the native model added after loading (e.g. a merge into a quantized base). */
  syncWarnings(): void {
    const all = this.#channel.sync((h) => h.warnings());
    for (let i = this.warnings.length; i < all.length; i++) this.warnings.push(all[i]);
  }

  async forward(inputIds: number[] | number[][] | TokenBatch, options: ForwardOptions = {}): Promise<ForwardResult> {
    const ids = toTokenBatch(inputIds);
    const mask = options.attentionMask === undefined ? undefined : toTokenBatch(options.attentionMask, 'attentionMask');
    const pos = options.positionIds === undefined ? undefined : toTokenBatch(options.positionIds, 'positionIds');
    for (const [name, b] of [['attentionMask', mask], ['positionIds', pos]] as const) {
      if (b && (b.shape[0] !== ids.shape[0] || b.shape[1] !== ids.shape[1])) {
        throw new LorafitError('E_SHAPE', `${name} has shape [${b.shape.join(', ')}] but inputIds has [${ids.shape.join(', ')}]`);
      }
    }
    const opts = {
      attentionMask: mask?.data,
      positionIds: pos?.data,
      segments: toSegments(options.segmentLengths, 'segmentLengths'),
      lastOnly: options.lastOnly ?? false,
      outputHiddenStates: options.outputHiddenStates ?? false,
    };
    const r = await this.#channel.call((h) => h.forward(ids.data, ids.shape, opts));
    return { logits: r.logits, shape: r.shape as [number, number, number], hiddenStates: r.hiddenStates };
  }

  /** Names of the model's weights, as in the checkpoint. */
  parameterNames(): string[] {
    return this.#channel.sync((h) => h.parameterNames());
  }

  /** A copy of one weight (as float32), e.g. 'model.layers.0.self_attn.q_proj.weight'. */
  async parameter(name: string): Promise<{ shape: number[]; data: Float32Array }> {
    return this.#channel.call((h) => h.parameter(name));
  }

  /**
   * Loss and gradients of one optimizer step over its micro-batches, normalised by the step's
   * total label-token count (so accumulation over micro-batches equals one big batch).
   * Gradients land on the active adapters' weights.
   */
  async lossAndGrad(
    batches: MicroBatch[],
    options: { dropoutSeed?: number; gradientCheckpointing?: boolean } = {},
  ): Promise<{ loss: number; tokens: number; gradNorm: number }> {
    const native = batches.map(toNativeBatch);
    const opts = { dropoutSeed: options.dropoutSeed ?? 0, gradientCheckpointing: options.gradientCheckpointing ?? false };
    return this.#channel.call((h) => h.lossAndGrad(native, opts));
  }

  /** Full-parameter training: every base weight becomes trainable (pretraining, full fine-tuning). */
  async setFullTraining(on: boolean): Promise<void> {
    await this.#channel.call((h) => h.setFullTraining(on));
  }

  /** Replaces the weights with those of another HF folder with the same shapes. */
  async loadWeights(dir: string): Promise<void> {
    await this.#channel.call((h) => h.loadWeights(resolve(dir)));
  }

  /**
   * Writes the model (with merged adapters, if any) as a Hugging Face folder. A GGUF model's
   * config.json, generation config and tokenizer files come from the file's metadata.
   */
  async save(dir: string, options: SaveModelOptions = {}): Promise<void> {
    await saveModel(this, dir, options);
  }

  /** Summed loss and label-token count without gradients (evaluation). */
  async evalLoss(batches: MicroBatch[]): Promise<{ sum: number; tokens: number }> {
    const native = batches.map(toNativeBatch);
    return this.#channel.call((h) => h.evalLoss(native));
  }

  /** Frees the native model (after any call in flight). Safe to call twice. */
  async dispose(): Promise<void> {
    await this.#channel.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/**
 * The GGUF file `spec` names, or undefined for anything else: an existing file that starts with
 * the GGUF magic (Ollama's blobs have no extension), or a path ending in .gguf (which readGguf
 * then reports if it is missing or not GGUF).
 */
function ggufPath(spec: string): string | undefined {
  if (typeof spec !== 'string') return undefined;
  const abs = resolve(spec);
  if (/\.gguf$/i.test(spec)) return abs;
  return isGgufFile(abs) ? abs : undefined;
}

/** Threads used by libtorch (process-wide). */
export function setThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw optionError('threads', 'must be a positive integer');
  return native().setThreads(n);
}

export function torchInfo(): { version: string; threads: number; cuda: boolean } {
  const a = native();
  return { version: a.torchVersion, threads: a.getThreads(), cuda: a.cudaAvailable() };
}
