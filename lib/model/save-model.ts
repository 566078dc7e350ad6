// Writes a model as a Hugging Face folder that transformers loads: config.json (dtype updated),
// generation_config.json, tokenizer files, model.safetensors or shards + model.safetensors.index.json.
// Written into a temporary folder and renamed: the folder is complete or absent.
// A model loaded from GGUF has no folder to copy from: its config.json, generation config and
// tokenizer files are built from the file's metadata (lib/gguf/hf-folder.ts).
import { copyFileSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { optionError } from '../errors.js';
import { writeDirAtomic, writeFileAtomicSync } from '../util/fs-atomic.js';
import { ggufFolderFiles, type GgufFolderFiles } from '../gguf/hf-folder.js';
import { channelOf } from './channel.js';
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
  const channel = channelOf(model);
  await writeDirAtomic(dir, async (tmp) => {
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
      const qs = quantized ? await channel.call((h) => h.quantizedState(name)) : null;
      if (qs) {
        for (const e of qs) entries.push([e.key, { dtype: e.dtype, shape: e.shape, bytes: e.bytes }]);
      } else {
        // converted to `dtype` by libtorch (round to nearest even, as torch's .to())
        const p = await channel.call((h) => h.parameterBytes(name, dtype));
        entries.push([name, { dtype: ST_DTYPE[dtype], shape: p.shape, bytes: p.bytes }]);
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
  });
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
