// Loads the compiled addon (build/Release/lorafit.node) and declares its shape. Nothing outside
// lib/ touches these types; they mirror bindings/*.cc.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LorafitError } from '../errors.js';

export type IdArray = Int32Array | BigInt64Array | number[];

export interface NativeForwardOptions {
  attentionMask?: IdArray;
  positionIds?: IdArray;
  /** Padding-free / packed: example lengths laid end to end over the rows (see MicroBatch.segmentLengths). */
  segments?: IdArray;
  lastOnly?: boolean;
  outputHiddenStates?: boolean;
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
  /** Adapters for this generation; absent: the model's active ones. */
  adapters?: string[];
}

export interface NativeModel {
  forward(inputIds: IdArray, shape: number[], options: NativeForwardOptions): Promise<NativeForwardResult>;
  configJson(): string;
  numParameters(): number;
  warnings(): string[];
  parameter(name: string): Promise<{ shape: number[]; data: Float32Array }>;
  parameterNames(): string[];
  dispose(): void;
  linearNames(): string[];
  setFullTraining(on: boolean): Promise<void>;
  loadWeights(dir: string): Promise<void>;
  addAdapter(spec: { name: string; rank: number; alpha: number; dropout: number; rslora: boolean; init: string; seed: number; targets: string[] }): Promise<void>;
  deleteAdapter(name: string): Promise<void>;
  setActiveAdapters(names: string[]): Promise<void>;
  adapterState(name: string, grads?: boolean): Promise<NativeNamedTensor[]>;
  setAdapterState(name: string, entries: NativeNamedTensor[]): Promise<void>;
  mergeAdapter(name: string, mode: 'merge' | 'unmerge' | 'unload'): Promise<void>;
  lossAndGrad(batches: NativeMicroBatch[], options: { dropoutSeed: number; gradientCheckpointing?: boolean }): Promise<{ loss: number; tokens: number; gradNorm: number }>;
  evalLoss(batches: NativeMicroBatch[]): Promise<{ sum: number; tokens: number }>;
  optimizerStep(
    name: string,
    options: { kind: string; lr: number; maxGradNorm: number; beta1: number; beta2: number; eps: number; weightDecay: number; momentum: number },
  ): Promise<{ gradNorm: number; clipped: boolean; step: number }>;
  optimizerState(name: string): Promise<{ step: number; entries: NativeNamedTensor[] }>;
  setOptimizerState(name: string, step: number, entries: NativeNamedTensor[]): Promise<void>;
  storageReport(): Promise<NativeStorageReport>;
  quantization(): { type: 'nf4' | 'int8'; doubleQuant: boolean; blockSize: number; prequantized: boolean } | null;
  /** The bitsandbytes-layout tensors of one NF4-quantized weight; null when it is not quantized. */
  quantizedState(name: string): Promise<{ key: string; dtype: 'U8' | 'F32'; shape: number[]; bytes: Uint8Array }[] | null>;
  generateStart(ids: IdArray, shape: number[], mask: IdArray | undefined, options: NativeSamplingOptions): Promise<number>;
  generateNext(session: number, n: number): Promise<{ tokens: number[][]; done: boolean }>;
  generateEnd(session: number): void;
}

export interface NativeStorageReport {
  linearParams: number;
  linearBytes: number;
  quantizedParams: number;
  quantizedBytes: number;
  otherParams: number;
  otherBytes: number;
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

export interface NativeAddon {
  loadModel(
    dir: string,
    options: { dtype: string; device: string; quantize?: string; doubleQuant?: boolean; blockSize?: number; gguf?: NativeGgufSource },
  ): Promise<NativeModel>;
  /** Decodes `count` values of ggml type `type` (data must hold exactly their bytes); synchronous. */
  ggufDequantize(data: Uint8Array, type: number, count: number): Float32Array;
  setThreads(n: number): number;
  getThreads(): number;
  cudaAvailable(): boolean;
  /** Benchmarks only: seconds of each of `reps` n x n x n matmuls in `dtype` (after one untimed run). */
  benchMatmul(n: number, dtype: string, reps: number, device?: string): Promise<number[]>;
  torchVersion: string;
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
