// Writes a model as a Hugging Face folder that transformers loads: config.json (dtype updated),
// generation_config.json, tokenizer files, model.safetensors or shards + model.safetensors.index.json.
// Written into a temporary folder and renamed: the folder is complete or absent.
// A model loaded from GGUF has no folder to copy from: its config.json, generation config and
// tokenizer files are built from the file's metadata (lib/gguf/hf-folder.ts).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { optionError } from '../errors.js';
import { writeFileAtomicSync } from '../util/fs-atomic.js';
import { ggufFolderFiles, type GgufFolderFiles } from '../gguf/hf-folder.js';
import type { Dtype, Model } from './model.js';
import { serializeSafetensors, type StDtype, type StTensor } from '../util/safetensors.js';

export interface SaveModelOptions {
  /** Storage dtype (default: the model's). */
  dtype?: Dtype;
  /** Largest shard in bytes (default 5 GB, as transformers' default "5GB"). */
  maxShardSize?: number;
  /**
   * An NF4 model: write the linear weights as they are held, in the bitsandbytes 4-bit layout
   * (packed uint8 weight + absmax, quant_map, nested_* and the quant_state JSON; config.json gets
   * transformers' quantization_config), which transformers + bitsandbytes load as a 4-bit model.
   * Default true for an NF4 model whose linear layers are all still quantized; false writes
   * every weight dense in `dtype` (dequantized). An int8 model is always written dense.
   */
  quantized?: boolean;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'tokenizer.model', 'vocab.json', 'merges.txt', 'added_tokens.json'];
const ST_DTYPE: Record<Dtype, StDtype> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

export async function saveModel(model: Model, dir: string, options: SaveModelOptions = {}): Promise<void> {
  const dtype = options.dtype ?? model.dtype;
  if (!(dtype in ST_DTYPE)) throw optionError('dtype', `must be float32, bfloat16 or float16, got '${dtype}'`);
  const maxShard = options.maxShardSize ?? 5e9;
  if (!(maxShard > 0)) throw optionError('maxShardSize', 'must be a positive number of bytes');
  const q = model.quantization;
  const report = q ? await model.storageReport() : undefined;
  const allQuantized = !!report && report.quantizedParams > 0 && report.quantizedParams === report.linearParams;
  const quantized = options.quantized ?? (q?.type === 'nf4' && allQuantized);
  if (quantized && (q?.type !== 'nf4' || !allQuantized)) {
    throw optionError(
      'quantized',
      q?.type !== 'nf4'
        ? `needs a model loaded with quantize: 'nf4' (this one is ${q ? q.type : 'dense'}); the bitsandbytes 4-bit layout holds NF4 weights only`
        : 'some linear layers are dense (an adapter was merged into them); save with quantized: false',
    );
  }
  if (quantized && dtype !== model.dtype) throw optionError('dtype', `an NF4 save keeps the model's compute dtype ${model.dtype}; got '${dtype}'`);
  const src = model.source;
  const gguf: GgufFolderFiles | undefined = src.format === 'gguf' ? await ggufFolderFiles(src.path, src.hfConfig, model.generationConfig) : undefined;
  const abs = resolve(dir);
  const tmp = `${abs}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  try {
    const shards: Map<string, StTensor>[] = [new Map()];
    let shardBytes = 0;
    let total = 0;
    const written: string[] = [];
    const flush = (index: number) => {
      const name = `shard-${index}.safetensors`;
      writeFileAtomicSync(join(tmp, name), serializeSafetensors(shards[index], { format: 'pt' }));
      shards[index] = new Map();  // release its memory
      written.push(name);
    };
    const weightMap: Record<string, number> = {};
    for (const name of model.parameterNames()) {
      // An NF4 weight is several tensors (bitsandbytes layout); they go into one shard together.
      const entries: [string, StTensor][] = [];
      const qs = quantized ? await model.serial.run(() => model.handle.quantizedState(name)) : null;
      if (qs) {
        for (const e of qs) entries.push([e.key, { dtype: e.dtype, shape: e.shape, bytes: e.bytes }]);
      } else {
        const p = await model.parameter(name);
        entries.push([name, encode(p.data, p.shape, dtype)]);
      }
      const bytes = entries.reduce((n, [, t]) => n + t.bytes.length, 0);
      if (shardBytes > 0 && shardBytes + bytes > maxShard) {
        flush(shards.length - 1);
        shards.push(new Map());
        shardBytes = 0;
      }
      for (const [k, t] of entries) {
        shards[shards.length - 1].set(k, t);
        weightMap[k] = shards.length - 1;
      }
      shardBytes += bytes;
      total += bytes;
    }
    flush(shards.length - 1);
    const n = written.length;
    const finalName = (i: number) => (n === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`);
    written.forEach((w, i) => renameSync(join(tmp, w), join(tmp, finalName(i))));
    if (n > 1) {
      const index = { metadata: { total_size: total }, weight_map: Object.fromEntries(Object.entries(weightMap).map(([k, i]) => [k, finalName(i)])) };
      writeFileAtomicSync(join(tmp, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
    }
    const config = gguf ? { ...gguf.config } : (JSON.parse(readFileSync(join(model.dir, 'config.json'), 'utf8')) as Record<string, unknown>);
    config.torch_dtype = dtype;
    if ('dtype' in config) config.dtype = dtype;
    if (quantized && q) config.quantization_config = bnbQuantizationConfig(dtype, q.doubleQuant);
    else delete config.quantization_config;
    // transformers checks llm_int8_threshold is a float: write 6.0, not JSON.stringify's 6
    const configText = JSON.stringify(config, null, 2).replace(/("llm_int8_threshold": )(-?\d+)(,?\n)/, '$1$2.0$3');
    writeFileAtomicSync(join(tmp, 'config.json'), `${configText}\n`);
    if (gguf) {
      writeFileAtomicSync(join(tmp, 'generation_config.json'), `${JSON.stringify(gguf.generationConfig, null, 2)}\n`);
      for (const [f, text] of Object.entries(gguf.tokenizerFiles)) writeFileAtomicSync(join(tmp, f), text);
    } else {
      for (const f of ['generation_config.json', ...TOKENIZER_FILES]) {
        if (existsSync(join(model.dir, f))) copyFileSync(join(model.dir, f), join(tmp, f));
      }
    }
    const old = existsSync(abs) ? `${abs}.old-${process.pid}-${Date.now()}` : undefined;
    if (old) renameSync(abs, old);
    renameSync(tmp, abs);
    if (old) rmSync(old, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** transformers' BitsAndBytesConfig(load_in_4bit=True, ...).to_dict() as save_pretrained writes it. */
export function bnbQuantizationConfig(computeDtype: Dtype, doubleQuant: boolean): Record<string, unknown> {
  return {
    _load_in_4bit: true,
    _load_in_8bit: false,
    bnb_4bit_compute_dtype: computeDtype,
    bnb_4bit_quant_storage: 'uint8',
    bnb_4bit_quant_type: 'nf4',
    bnb_4bit_use_double_quant: doubleQuant,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: null,
    llm_int8_threshold: 6.0,
    load_in_4bit: true,
    load_in_8bit: false,
    quant_method: 'bitsandbytes',
  };
}

function encode(data: Float32Array, shape: number[], dtype: Dtype): StTensor {
  if (dtype === 'float32') return { dtype: 'F32', shape, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  const out = new Uint16Array(data.length);
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  if (dtype === 'bfloat16') {
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i];
      // round to nearest even; keep NaN a NaN
      out[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  } else {
    for (let i = 0; i < data.length; i++) out[i] = toHalf(data[i]);
  }
  return { dtype: ST_DTYPE[dtype], shape, bytes: new Uint8Array(out.buffer) };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half, round to nearest even (as torch's .half()). */
function toHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}
