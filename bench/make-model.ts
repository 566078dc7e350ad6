// Writes a Qwen2.5-0.5B-shaped Hugging Face folder with seeded random weights (bf16 safetensors),
// for benchmarks: same shapes and config as the real model, no download.
//   node dist/bench/make-model.js [--layers N] [--out DIR] [--seed S] [--verify]
// Weights ~ N(0, 0.02) (xorshift128+ -> Box-Muller, float32 -> bf16 round-to-nearest-even), RMSNorm
// weights 1. Each tensor has its own seed (base seed + a hash of its name), so a tensor's values do
// not depend on the layer count or the write order. The file is streamed tensor by tensor in
// chunks of 1M values: peak memory stays a few MB although the 24-layer file is ~1 GB.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../lib/model/native.js';
import { readSafetensors, serializeSafetensors, toFloat32, type StTensor } from '../lib/util/safetensors.js';
import { parseArgs } from './common.js';
import { floatToBf16 } from '../lib/util/float16.js';

export interface QwenShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
}

export const QWEN25_05B: QwenShape = { hidden: 896, layers: 24, heads: 14, kvHeads: 2, headDim: 64, intermediate: 4864, vocab: 151936 };

export function qwenConfig(s: QwenShape): Record<string, unknown> {
  // As Qwen/Qwen2.5-0.5B's config.json.
  return {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151643,
    hidden_act: 'silu',
    hidden_size: s.hidden,
    initializer_range: 0.02,
    intermediate_size: s.intermediate,
    max_position_embeddings: 32768,
    max_window_layers: s.layers,
    model_type: 'qwen2',
    num_attention_heads: s.heads,
    num_hidden_layers: s.layers,
    num_key_value_heads: s.kvHeads,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    sliding_window: 32768,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: s.vocab,
  };
}

export interface TensorSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'ones';
}

export function qwenTensors(s: QwenShape): TensorSpec[] {
  const H = s.hidden, I = s.intermediate, q = s.heads * s.headDim, kv = s.kvHeads * s.headDim;
  const out: TensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, H], init: 'normal' }];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, H], init: 'normal' },
      { name: `${p}.self_attn.q_proj.bias`, shape: [q], init: 'normal' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, H], init: 'normal' },
      { name: `${p}.self_attn.k_proj.bias`, shape: [kv], init: 'normal' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, H], init: 'normal' },
      { name: `${p}.self_attn.v_proj.bias`, shape: [kv], init: 'normal' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, q], init: 'normal' },
      { name: `${p}.mlp.gate_proj.weight`, shape: [I, H], init: 'normal' },
      { name: `${p}.mlp.up_proj.weight`, shape: [I, H], init: 'normal' },
      { name: `${p}.mlp.down_proj.weight`, shape: [H, I], init: 'normal' },
      { name: `${p}.input_layernorm.weight`, shape: [H], init: 'ones' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], init: 'ones' },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [H], init: 'ones' });
  // Tied embeddings: no lm_head.weight, as the real checkpoint.
  return out;
}

/** FNV-1a over the name, mixed with the base seed: an independent stream per tensor. */
function tensorSeed(base: number, name: string): [number, number, number, number] {
  let h = 0x811c9dc5 ^ base;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  // splitmix32 to fill the 128-bit xorshift state (never all zero)
  const st: number[] = [];
  let x = h >>> 0;
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    st.push((z ^ (z >>> 16)) >>> 0 || 1);
  }
  return st as [number, number, number, number];
}

/** Seeded N(0, std) values: xorshift128 (32-bit words) and Box-Muller, two values a pair. */
export class Normal {
  #s: Uint32Array;
  constructor(seed: [number, number, number, number], readonly std: number) {
    this.#s = Uint32Array.from(seed);
  }

  fill(out: Float32Array): void {
    const s = this.#s;
    let a = s[0], b = s[1], c = s[2], d = s[3];
    const std = this.std;
    const n = out.length;
    for (let i = 0; i < n; i += 2) {
      // two 32-bit draws -> u1 in (0, 1], u2 in [0, 1)
      let t = a ^ (a << 11);
      a = b; b = c; c = d;
      d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
      const u1 = (d + 1) / 4294967296;
      t = a ^ (a << 11);
      a = b; b = c; c = d;
      d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
      const u2 = d / 4294967296;
      const r = std * Math.sqrt(-2 * Math.log(u1));
      const th = 2 * Math.PI * u2;
      out[i] = r * Math.cos(th);
      if (i + 1 < n) out[i + 1] = r * Math.sin(th);
    }
    s[0] = a; s[1] = b; s[2] = c; s[3] = d;
  }
}

/** float32 -> bf16 bits, round to nearest even (the library's one codec, lib/util/float16.ts). */
export function toBf16(src: Float32Array, dst: Uint16Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = floatToBf16(src[i]);
}

const CHUNK = 1 << 20;  // values per generated chunk (even, so Box-Muller pairs never straddle chunks)

/** Streams one tensor's bf16 bytes through `sink`, chunk by chunk. */
export function generateTensor(spec: TensorSpec, seed: number, std: number, sink: (bytes: Uint8Array) => void): void {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const f = new Float32Array(Math.min(n, CHUNK));
  const bits = new Uint16Array(f.length);
  const gen = new Normal(tensorSeed(seed, spec.name), std);
  for (let done = 0; done < n; done += CHUNK) {
    const len = Math.min(CHUNK, n - done);
    const fv = f.subarray(0, len), bv = bits.subarray(0, len);
    if (spec.init === 'ones') fv.fill(1);
    else gen.fill(fv);
    toBf16(fv, bv);
    sink(new Uint8Array(bv.buffer, 0, len * 2));
  }
}

/**
 * The safetensors header for these tensors laid out as lib/util/safetensors.ts's serializeSafetensors
 * lays them out (sorted by name, data aligned to 8 bytes), so the streamed file is byte-identical
 * to serializeSafetensors' output (checked by --verify on small models).
 */
function header(specs: TensorSpec[], metadata: Record<string, string>): { bytes: Uint8Array; order: TensorSpec[]; dataBytes: number } {
  const order = [...specs].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const h: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const s of order) {
    const need = s.shape.reduce((a, b) => a * b, 1) * 2;
    h[s.name] = { dtype: 'BF16', shape: s.shape, data_offsets: [off, off + need] };
    off += need;
  }
  let json = JSON.stringify(h);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const bytes = new Uint8Array(8 + hb.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(hb.length), true);
  bytes.set(hb, 8);
  return { bytes, order, dataBytes: off };
}

export interface MakeOptions {
  out: string;
  layers?: number;
  vocab?: number;
  seed?: number;
  std?: number;
  force?: boolean;
}

/** Writes config.json + model.safetensors into `out`; returns the folder. Skips work when the folder is already complete for these options. */
export function makeModel(o: MakeOptions): string {
  const shape = { ...QWEN25_05B, layers: o.layers ?? QWEN25_05B.layers, vocab: o.vocab ?? QWEN25_05B.vocab };
  const seed = o.seed ?? 0;
  const std = o.std ?? 0.02;
  const dir = resolve(o.out);
  mkdirSync(dir, { recursive: true });
  const stamp = JSON.stringify({ seed, std, layers: shape.layers, vocab: shape.vocab, v: 1 });
  const stampFile = join(dir, '.lorafit-bench-stamp');
  const weights = join(dir, 'model.safetensors');
  const specs = qwenTensors(shape);
  const metadata = { format: 'pt' };
  const { bytes: head, order, dataBytes } = header(specs, metadata);
  if (!o.force && existsSync(stampFile) && existsSync(weights) && statSync(weights).size === head.length + dataBytes) {
    const old = JSON.parse(readFileSync(stampFile, 'utf8'));
    if (JSON.stringify(old) === stamp) return dir;
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(qwenConfig(shape), null, 2) + '\n');
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 151643, eos_token_id: 151643, max_new_tokens: 2048 }, null, 2) + '\n');
  const tmp = `${weights}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    const write = (b: Uint8Array) => {
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    };
    write(head);
    for (const s of order) generateTensor(s, seed, std, write);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, weights);
  writeFileSync(stampFile, stamp);
  return dir;
}

/** Checks the streamed file against serializeSafetensors over the same tensors, and the value statistics. */
export function verify(dir: string, seed: number, std: number, layers: number): void {
  const specs = qwenTensors({ ...QWEN25_05B, layers });
  const file = readSafetensors(join(dir, 'model.safetensors'));
  const tensors = new Map<string, StTensor>();
  for (const s of specs) {
    const parts: Uint8Array[] = [];
    generateTensor(s, seed, std, (b) => parts.push(b.slice()));
    const bytes = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) (bytes.set(p, o), (o += p.length));
    tensors.set(s.name, { dtype: 'BF16', shape: s.shape, bytes });
    const got = file.tensors.get(s.name);
    if (!got || Buffer.compare(Buffer.from(got.bytes), Buffer.from(bytes)) !== 0) throw new Error(`verify: tensor ${s.name} differs`);
  }
  const ref = serializeSafetensors(tensors, { format: 'pt' });
  const onDisk = readFileSync(join(dir, 'model.safetensors'));
  if (Buffer.compare(Buffer.from(ref), onDisk) !== 0) throw new Error('verify: file differs from serializeSafetensors output');
  const q = toFloat32(file.tensors.get('model.layers.0.self_attn.q_proj.weight')!);
  let sum = 0, sq = 0;
  for (const v of q) (sum += v, (sq += v * v));
  const mean = sum / q.length, sd = Math.sqrt(sq / q.length - mean * mean);
  if (Math.abs(mean) > 1e-3 || Math.abs(sd - std) > 1e-3) throw new Error(`verify: q_proj mean ${mean} std ${sd}`);
  console.error(`verify: ${specs.length} tensors byte-identical to serializeSafetensors; q_proj mean ${mean.toFixed(5)} std ${sd.toFixed(5)}`);
}

/** The repository's bench/ folder. */
export const BENCH_ROOT = join(packageRoot(), 'bench');

export function defaultModelDir(layers: number): string {
  return join(BENCH_ROOT, 'out', layers === QWEN25_05B.layers ? 'qwen2.5-0.5b-random' : `qwen2.5-0.5b-random-${layers}l`);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const layers = a.layers === undefined ? QWEN25_05B.layers : Number(a.layers);
  if (!Number.isInteger(layers) || layers < 1) throw new Error('--layers must be a positive integer');
  const seed = a.seed === undefined ? 0 : Number(a.seed);
  const out = typeof a.out === 'string' ? a.out : defaultModelDir(layers);
  const t0 = performance.now();
  const dir = makeModel({ out, layers, seed, force: a.force === true });
  const secs = (performance.now() - t0) / 1000;
  console.error(`make-model: ${dir} (${layers} layers, ${(statSync(join(dir, 'model.safetensors')).size / 2 ** 20).toFixed(0)} MiB) in ${secs.toFixed(1)} s`);
  if (a.verify) verify(dir, seed, 0.02, layers);
  console.log(dir);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
