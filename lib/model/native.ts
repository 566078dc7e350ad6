// Loads the compiled addon (build/Release/lorafit.node) and declares its shape. Nothing outside
// lib/ touches these types; they mirror bindings/*.cc.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LorafitError } from '../errors.js';

export type IdArray = Int32Array | BigInt64Array | number[];

// Every options object below is complete: lib/ holds the defaults, bindings/ reads each field
// with no fallback (a missing one is an E_INPUT contract error).

export interface NativeForwardOptions {
  attentionMask?: IdArray;
  positionIds?: IdArray;
  /** Padding-free / packed: example lengths laid end to end over the rows (see MicroBatch.segmentLengths). */
  segments?: IdArray;
  lastOnly: boolean;
  outputHiddenStates: boolean;
}

export interface NativeForwardResult {
  logits: Float32Array;
  shape: number[];
  hiddenStates?: Float32Array[];
  hiddenShape?: number[];
}

export interface NativeMicroBatch {
  inputIds: IdArray;
  labels: IdArray;
  attentionMask?: IdArray;
  segments?: IdArray;
  shape: [number, number];
}

export interface NativeNamedTensor {
  key: string;
  shape: number[];
  data: Float32Array;
}

export interface NativeSamplingOptions {
  greedy: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  eosTokenIds: number[];
  /** Adapters for this generation (by name); absent: the model's active ones. */
  adapters?: string[];
}

export interface NativeAdapterSpec {
  name: string;
  rank: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  init: string;
  seed: number;
  targets: string[];
  useDora: boolean;
  /** PEFT modules_to_save as module paths: 'lm_head', 'model.embed_tokens' */
  modulesToSave: string[];
}

export interface NativeOptimizerConfig {
  kind: string;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  /** LoRA+: lora_B tensors learn at lr x this (1: off). */
  loraBLrRatio: number;
}

export interface NativeStepOptions {
  lr: number;
  maxGradNorm: number;
  dropoutSeed: number;
  gradientCheckpointing: boolean;
}

export interface NativeStepResult {
  loss: number;
  tokens: number;
  gradNorm: number;
  clipped: boolean;
  /** false: the loss or gradient norm was not finite and the weights were left unchanged. */
  applied: boolean;
  /** When not applied: the first trained tensor that is itself non-finite, else null. */
  nonFiniteWeight: string | null;
  /** Optimizer updates applied so far. */
  step: number;
  /** Data parallelism: milliseconds of this step in the gradient and loss all-reduce (0 alone). */
  reduceMs: number;
}

/** bindings/process_group_wrap.h: this process's rank in a torch.distributed (c10d) group. */
export interface NativeProcessGroup {
  /** The element-wise sum over all ranks. */
  allReduce(values: Float64Array): Promise<Float64Array>;
  barrier(): Promise<void>;
  /** Milliseconds this rank has spent in collectives. */
  collectiveMs(): number;
  dispose(): void;
}

export interface NativeProcessGroupOptions {
  backend: string;
  rank: number;
  worldSize: number;
  /** nccl: the CUDA device index. */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  bucketBytes: number;
}

/** bindings/model_wrap.h: one native CausalLM. */
export interface NativeModel {
  forward(inputIds: IdArray, shape: number[], options: NativeForwardOptions): Promise<NativeForwardResult>;
  configJson(): string;
  numParameters(): number;
  warnings(): string[];
  parameter(name: string): Promise<{ shape: number[]; data: Float32Array }>;
  /** One weight converted by libtorch to `dtype`, raw little-endian bytes. */
  parameterBytes(name: string, dtype: string): Promise<{ shape: number[]; bytes: Uint8Array }>;
  parameterNames(): string[];
  dispose(): void;
  linearNames(): string[];
  setFullTraining(on: boolean): Promise<void>;
  loadWeights(dir: string): Promise<void>;
  addAdapter(spec: NativeAdapterSpec): Promise<NativeAdapter>;
  setActiveAdapters(adapters: NativeAdapter[]): Promise<void>;
  /** adapter null: every base weight (full-parameter training). */
  createTrainState(adapter: NativeAdapter | null, optimizer: NativeOptimizerConfig): NativeTrainState;
  lossAndGrad(batches: NativeMicroBatch[], options: { dropoutSeed: number; gradientCheckpointing: boolean }): Promise<{ loss: number; tokens: number; gradNorm: number }>;
  evalLoss(batches: NativeMicroBatch[]): Promise<{ sum: number; tokens: number }>;
  storageReport(): Promise<NativeStorageReport>;
  quantization(): { type: 'nf4' | 'int8'; doubleQuant: boolean; blockSize: number; prequantized: boolean } | null;
  /** The bitsandbytes-layout tensors of one NF4-quantized weight; null when it is not quantized. */
  quantizedState(name: string): Promise<{ key: string; dtype: 'U8' | 'F32'; shape: number[]; bytes: Uint8Array }[] | null>;
  generate(ids: IdArray, shape: number[], mask: IdArray | undefined, options: NativeSamplingOptions): Promise<NativeGeneration>;
}

/** bindings/adapter_wrap.h: one LoRA adapter attached to a model. */
export interface NativeAdapter {
  readonly name: string;
  state(grads: boolean): Promise<NativeNamedTensor[]>;
  setState(entries: NativeNamedTensor[]): Promise<void>;
  merge(mode: 'merge' | 'unmerge' | 'unload'): Promise<void>;
  combineFrom(parts: { adapter: NativeAdapter; weight: number }[], type: 'linear' | 'cat'): Promise<void>;
  /** Removes the adapter from the model; idempotent. */
  delete(): Promise<void>;
}

/** bindings/train_state_wrap.h: the optimizer state of one training run; step() is a whole optimizer step. */
export interface NativeTrainState {
  /** With a process group, `batches` are this rank's share and the step is data-parallel. */
  step(batches: NativeMicroBatch[], options: NativeStepOptions, processGroup?: NativeProcessGroup): Promise<NativeStepResult>;
  state(): Promise<{ step: number; entries: NativeNamedTensor[] }>;
  setState(step: number, entries: NativeNamedTensor[]): Promise<void>;
  dispose(): void;
}

/** bindings/generation_wrap.h: one generation session (KV cache + sampler). */
export interface NativeGeneration {
  next(n: number): Promise<{ tokens: number[][]; done: boolean }>;
  dispose(): void;
}

export interface NativeStorageReport {
  linearParams: number;
  linearBytes: number;
  quantizedParams: number;
  quantizedBytes: number;
  otherParams: number;
  otherBytes: number;
  /** q/k/v and gate/up of each layer: 2 per layer. */
  projectionGroups: number;
  /** Of them, those computed as one GEMM over concatenated frozen weights (dense, untrained bases). */
  fusedProjectionGroups: number;
}

/** One tensor of a GGUF file, under its Hugging Face name (bindings/gguf.cc). */
export interface NativeGgufTensor {
  /** HF name, e.g. model.layers.0.self_attn.q_proj.weight */
  name: string;
  /** Absolute byte offset of the tensor data in the file. */
  offset: number;
  /** ggml_type number (lib/gguf/ggml-types.ts). */
  type: number;
  /** HF/numpy order, outermost first (ggml's ne reversed). */
  shape: number[];
  /** > 0: undo llama.cpp's Q/K rotary row permutation with this many heads (q: heads, k: kv heads). */
  permuteHeads?: number;
  /** Added to every value after dequantization, in float32 (-1 for Gemma norms, which llama.cpp stores as w + 1). */
  add?: number;
}

/** loadModel's `gguf` option: the path is then a .gguf file and these describe it. */
export interface NativeGgufSource {
  /** An HF config.json (text) mapped from the GGUF metadata. */
  configJson: string;
  tensors: NativeGgufTensor[];
}

export interface NativeProcessSettings {
  threads: number;
  mallocArenaMax: number;
  mallocTrim: boolean;
}

export interface NativeAddon {
  loadModel(
    dir: string,
    options: { dtype: string; device: string; quantize: string; doubleQuant: boolean; blockSize: number; gguf?: NativeGgufSource },
  ): Promise<NativeModel>;
  /** Decodes `count` values of ggml type `type` (data must hold exactly their bytes); synchronous. */
  ggufDequantize(data: Uint8Array, type: number, count: number): Float32Array;
  /** config.json text -> Model.config JSON: native/hf_config.cc's reading, transformers' class defaults filled in. */
  hfConfig(text: string, where: string): string;
  setThreads(n: number): number;
  configureProcess(settings: { threads?: number; mallocArenaMax?: number; mallocTrim?: boolean }): NativeProcessSettings;
  processSettings(): NativeProcessSettings;
  getThreads(): number;
  cudaAvailable(): boolean;
  /** Benchmarks only: seconds of each of `reps` n x n x n matmuls in `dtype` (after one untimed run). */
  /** lorafitPath: the frozen weights' GEMM (oneDNN for fp32 CPU); else at::mm. */
  benchMatmul(n: number, dtype: string, reps: number, device: string, lorafitPath?: boolean): Promise<number[]>;
  /** The thread counts a native job sees on the libuv pool thread it runs on (blas 0: no MKL/OpenBLAS). */
  workerThreads(): Promise<{ intraOp: number; blas: number; parallel: number }>;
  torchVersion: string;
  /** Rendezvous with the other ranks (TCPStore at masterAddr:masterPort) and connect them (Gloo). */
  createProcessGroup(options: NativeProcessGroupOptions): Promise<NativeProcessGroup>;
  /** false: built without the gloo headers (libgloo-dev); createProcessGroup throws E_DISTRIBUTED_UNAVAILABLE. */
  distributedAvailable: boolean;
}

/** The folder of lorafit's package.json (the repo root in development, node_modules/lorafit when installed). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('lorafit: cannot find the package root');
    dir = up;
  }
  return dir;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  const file = process.env.LORAFIT_ADDON ?? join(packageRoot(), 'build', 'Release', 'lorafit.node');
  if (!existsSync(file)) {
    throw new LorafitError('E_ADDON', `the native addon ${file} is missing: run \`npm run build:native\` (it needs libtorch; see the README)`);
  }
  const require = createRequire(import.meta.url);
  addon = require(file) as NativeAddon;
  return addon;
}
