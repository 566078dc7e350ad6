// Small synthetic GGUF model files (random weights, llama.cpp names and keys), written with
// lorafit's GgufWriter, for the mapping, error and fuzz tests. Not a reference for numbers: the
// numeric comparisons use files written by gguf-py (arch_ref.py) and the real SmolLM2 file.
import { GgufValueType, GgufWriter, type GgmlDtype } from '../../lib/export/gguf-writer.js';
import { layerTensorTable, type GgufArch } from '../../lib/gguf/tensor-names.js';
import { mulberry32 } from '../helpers/corrupt.js';

export interface TinyOptions {
  arch?: GgufArch;
  name?: string;
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  vocab?: number;
  tied?: boolean;
  dtype?: GgmlDtype;
  /** Metadata to add or override (undefined: drop the key). */
  meta?: Record<string, string | number | boolean | undefined>;
  /** Write a tokenizer vocabulary of this many tokens (tokenizer.ggml.tokens/scores/token_type arrays). */
  tokens?: number;
  /** GGUF tensor names to leave out. */
  omit?: string[];
  /** Extra tensors: name -> shape (HF order). */
  extra?: Record<string, number[]>;
  /** Shape overrides: name -> shape. */
  shapes?: Record<string, number[]>;
  seed?: number;
}

/** Writes a tiny model of `arch` to `file`. */
export function writeTinyGguf(file: string, o: TinyOptions = {}): void {
  const arch = o.arch ?? 'llama';
  const layers = o.layers ?? 2;
  const hidden = o.hidden ?? 32;
  const heads = o.heads ?? 4;
  const kv = o.kvHeads ?? 2;
  const hd = hidden / heads;
  const inter = o.intermediate ?? 64;
  const vocab = o.vocab ?? 64;
  const tied = o.tied ?? arch.startsWith('gemma');
  const dtype = o.dtype ?? 'F32';
  const rng = mulberry32(o.seed ?? 7);
  const meta: Record<string, string | number | boolean | undefined> = {
    'general.architecture': arch,
    'general.type': 'model',
    'general.name': o.name ?? `tiny-${arch}`,
    [`${arch}.context_length`]: 128,
    [`${arch}.embedding_length`]: hidden,
    [`${arch}.block_count`]: layers,
    [`${arch}.feed_forward_length`]: inter,
    [`${arch}.attention.head_count`]: heads,
    [`${arch}.attention.head_count_kv`]: kv,
    [`${arch}.rope.freq_base`]: 10000,
    [`${arch}.attention.layer_norm_rms_epsilon`]: 1e-5,
    [`${arch}.attention.key_length`]: hd,
    [`${arch}.attention.value_length`]: hd,
    [`${arch}.vocab_size`]: vocab,
    'tokenizer.ggml.bos_token_id': 1,
    'tokenizer.ggml.eos_token_id': 2,
    ...(arch === 'llama' || arch === 'qwen2' ? { [`${arch}.rope.dimension_count`]: hd } : {}),
    ...o.meta,
  };
  const w = new GgufWriter();
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined) continue;
    if (typeof v === 'string') w.addString(k, v);
    else if (typeof v === 'boolean') w.addBool(k, v);
    else if (k.endsWith('freq_base') || k.endsWith('epsilon') || k.endsWith('softcapping') || k.endsWith('factor') || !Number.isInteger(v)) w.addFloat32(k, v);
    else w.addUint32(k, v);
  }
  if (o.tokens) {
    w.addString('tokenizer.ggml.model', 'llama');
    w.addArray('tokenizer.ggml.tokens', GgufValueType.STRING, Array.from({ length: o.tokens }, (_, i) => `t${i}`));
    w.addArray('tokenizer.ggml.scores', GgufValueType.FLOAT32, Float32Array.from({ length: o.tokens }, (_, i) => -i));
    w.addArray('tokenizer.ggml.token_type', GgufValueType.INT32, Int32Array.from({ length: o.tokens }, () => 1));
  }
  const shapes = new Map<string, number[]>();
  shapes.set('token_embd.weight', [vocab, hidden]);
  const table = layerTensorTable(arch);
  const layerShape: Record<string, number[]> = {
    attn_norm: [hidden], attn_q: [heads * hd, hidden], attn_k: [kv * hd, hidden], attn_v: [kv * hd, hidden],
    attn_output: [hidden, heads * hd], ffn_norm: [hidden], ffn_gate: [inter, hidden], ffn_up: [inter, hidden], ffn_down: [hidden, inter],
    post_attention_norm: [hidden], post_ffw_norm: [hidden],
  };
  for (let i = 0; i < layers; i++) {
    for (const g of new Set(Object.values(table))) shapes.set(`blk.${i}.${g}.weight`, layerShape[g]);
    if (arch === 'qwen2') for (const g of ['attn_q', 'attn_k', 'attn_v']) shapes.set(`blk.${i}.${g}.bias`, [layerShape[g][0]]);
  }
  shapes.set('output_norm.weight', [hidden]);
  if (!tied) shapes.set('output.weight', [vocab, hidden]);
  for (const [n, s] of Object.entries(o.extra ?? {})) shapes.set(n, s);
  for (const [n, s] of Object.entries(o.shapes ?? {})) shapes.set(n, s);
  for (const n of o.omit ?? []) shapes.delete(n);
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const norm = name.includes('norm');
    for (let i = 0; i < n; i++) data[i] = norm ? 0.5 + rng() : (rng() - 0.5) * 0.4;
    w.addTensor(name, { shape, dtype: shape.length === 2 && shape[1] % 32 === 0 ? dtype : 'F32', data });
  }
  w.write(file);
}
