// What the native loader needs to build a model from a GGUF file: the HF config.json text and, for
// every weight, its HF name, where its bytes are, its ggml type, its HF shape and the transform
// that undoes llama.cpp's converter (q/k row permutation, Gemma's norm + 1). Every tensor of the
// file must be a weight of the architecture and every weight must be in the file: E_GGUF names
// the ones that are not.
import { open } from 'node:fs/promises';
import { LorafitError } from '../errors.js';
import { DEQUANTIZABLE_TYPES } from './ggml-types.js';
import { ggufToHfConfig, type GgufHfConfig } from './hf-config.js';
import type { NativeGgufTensor } from '../model/native.js';
import { type GgufFile, type GgufTensorInfo } from './reader.js';
import { normOffset, qkPermuteHeads, toGgufName, toHfName, type GgufArch } from './tensor-names.js';

/** One tensor as native.loadModel's `gguf.tensors` takes it (declared with the addon's types). */
export type GgufNativeTensor = NativeGgufTensor;

export interface GgufModelPlan extends GgufHfConfig {
  tensors: GgufNativeTensor[];
  /** The ggml types of the file's tensors, most frequent first (e.g. ['Q4_1', 'F32', 'Q8_0']). */
  quantTypes: string[];
}

function fail(f: GgufFile, what: string): never {
  throw new LorafitError('E_GGUF', `${f.path}: ${what}`);
}

const listed = (xs: string[], n = 8): string => xs.slice(0, n).map((x) => `'${x}'`).join(', ') + (xs.length > n ? ` and ${xs.length - n} more` : '');

/** Maps a GGUF file's header to the config and tensor list native.loadModel takes. */
export async function planGgufModel(f: GgufFile): Promise<GgufModelPlan> {
  const ropeInfo = f.tensors.find((t) => t.name === 'rope_freqs.weight');
  const ropeFactors = ropeInfo ? await readF32(f, ropeInfo) : undefined;
  const hf = ggufToHfConfig(f, { ropeFactors });
  const { arch, config } = hf;
  const layers = config.num_hidden_layers as number;
  const heads = config.num_attention_heads as number;
  const kvHeads = (config.num_key_value_heads as number | undefined) ?? heads;
  // Every layer has at least 9 tensors: a block_count the tensor table cannot hold is corrupt
  // (and must not drive a loop of billions).
  if (layers * 9 > f.tensors.length) {
    fail(f, `metadata '${arch}.block_count' is ${layers}, but the file has ${f.tensors.length} tensors (at least ${layers * 9 + 2} needed)`);
  }
  const expected = expectedShapes(arch, config);

  const tensors: GgufNativeTensor[] = [];
  const unknown: string[] = [];
  const seen = new Set<string>();
  for (const t of f.tensors) {
    if (t.name === 'rope_freqs.weight') continue; // read into rope_scaling above
    const m = toHfName(t.name, arch);
    if (!m || !expected.has(m.name)) {
      unknown.push(m && m.layer !== null && m.layer >= layers ? `${t.name} (block_count is ${layers})` : t.name);
      continue;
    }
    if (!DEQUANTIZABLE_TYPES.includes(t.typeName)) {
      fail(f, `tensor '${t.name}' has ggml type ${t.typeName}, which lorafit cannot dequantize (supported: ${DEQUANTIZABLE_TYPES.join(', ')})`);
    }
    const want = expected.get(m.name)!;
    if (want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i])) {
      fail(f, `tensor '${t.name}' has shape [${t.shape.join(', ')}], but the metadata says [${want.join(', ')}] (${m.name})`);
    }
    const entry: GgufNativeTensor = { name: m.name, offset: t.offset, type: t.type, shape: t.shape };
    const ph = qkPermuteHeads(t.name, arch, heads, kvHeads);
    if (ph !== null) entry.permuteHeads = ph;
    const add = normOffset(t.name, arch);
    if (add !== 0) entry.add = add;
    tensors.push(entry);
    seen.add(m.name);
  }
  if (unknown.length > 0) {
    fail(f, `tensor${unknown.length > 1 ? 's' : ''} ${listed(unknown)} ${unknown.length > 1 ? 'are' : 'is'} not part of a ${arch} model as lorafit knows it`);
  }
  const missing = [...expected.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0) fail(f, `tensor${missing.length > 1 ? 's' : ''} ${listed(missing.map((n) => toGgufName(n, arch) ?? n))} ${missing.length > 1 ? 'are' : 'is'} missing`);

  const counts = new Map<string, number>();
  for (const t of f.tensors) counts.set(t.typeName, (counts.get(t.typeName) ?? 0) + 1);
  const quantTypes = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([n]) => n);
  return { ...hf, tensors, quantTypes };
}

/** Every weight the architecture has, with its HF shape. */
function expectedShapes(arch: GgufArch, c: Record<string, unknown>): Map<string, number[]> {
  const h = c.hidden_size as number;
  const inter = c.intermediate_size as number;
  const heads = c.num_attention_heads as number;
  const kv = (c.num_key_value_heads as number | undefined) ?? heads;
  const hd = (c.head_dim as number | undefined) ?? (arch === 'gemma' || arch === 'gemma2' ? 256 : h / heads);
  const vocab = c.vocab_size as number;
  const shapes: Record<string, number[]> = {
    'input_layernorm.weight': [h],
    'self_attn.q_proj.weight': [heads * hd, h],
    'self_attn.k_proj.weight': [kv * hd, h],
    'self_attn.v_proj.weight': [kv * hd, h],
    'self_attn.o_proj.weight': [h, heads * hd],
    'post_attention_layernorm.weight': [h],
    'mlp.gate_proj.weight': [inter, h],
    'mlp.up_proj.weight': [inter, h],
    'mlp.down_proj.weight': [h, inter],
  };
  if (arch === 'gemma2') {
    shapes['pre_feedforward_layernorm.weight'] = [h];
    shapes['post_feedforward_layernorm.weight'] = [h];
  }
  if (arch === 'qwen2' || c.attention_bias === true) {
    shapes['self_attn.q_proj.bias'] = [heads * hd];
    shapes['self_attn.k_proj.bias'] = [kv * hd];
    shapes['self_attn.v_proj.bias'] = [kv * hd];
  }
  if (c.attention_bias === true) shapes['self_attn.o_proj.bias'] = [h];
  if (c.mlp_bias === true) {
    shapes['mlp.gate_proj.bias'] = [inter];
    shapes['mlp.up_proj.bias'] = [inter];
    shapes['mlp.down_proj.bias'] = [h];
  }
  const out = new Map<string, number[]>();
  out.set('model.embed_tokens.weight', [vocab, h]);
  for (let i = 0; i < (c.num_hidden_layers as number); i++) {
    for (const [k, s] of Object.entries(shapes)) out.set(`model.layers.${i}.${k}`, s);
  }
  out.set('model.norm.weight', [h]);
  if (c.tie_word_embeddings !== true) out.set('lm_head.weight', [vocab, h]);
  return out;
}

/** The values of a small F32 tensor (rope_freqs.weight, a norm weight). */
export async function readF32(f: GgufFile, t: GgufTensorInfo): Promise<Float32Array> {
  if (t.typeName !== 'F32') fail(f, `tensor '${t.name}' has type ${t.typeName}; llama.cpp writes it as F32`);
  if (t.nbytes > 1 << 20) fail(f, `tensor '${t.name}' is ${t.nbytes} bytes, more than a rope-factor or norm tensor takes`);
  const fh = await open(f.path, 'r');
  try {
    const buf = Buffer.alloc(t.nbytes);
    const { bytesRead } = await fh.read(buf, 0, t.nbytes, t.offset);
    if (bytesRead !== t.nbytes) fail(f, `tensor '${t.name}': short read`);
    return new Float32Array(buf.buffer, buf.byteOffset, t.nbytes / 4).slice();
  } finally {
    await fh.close();
  }
}

/**
 * Checks on a loaded model that the native loader applied `add` (Gemma's norm - 1): the first
 * F32 tensor with an offset is compared with the file's values. Returns undefined when it holds, or
 * a message. (A guard: a loader that ignored the offset would give a model that runs, wrongly.)
 */
export async function checkNormOffset(
  f: GgufFile,
  plan: GgufModelPlan,
  parameter: (name: string) => Promise<{ data: Float32Array }>,
): Promise<string | undefined> {
  const probe = plan.tensors.find((t) => t.add !== undefined && t.type === 0);
  if (!probe) return undefined;
  const info = f.tensors.find((t) => t.offset === probe.offset && t.type === probe.type);
  if (!info) return undefined;
  const raw = await readF32(f, info);
  const got = (await parameter(probe.name)).data;
  let asStored = 0;
  let shifted = 0;
  for (let i = 0; i < raw.length; i++) {
    asStored += Math.abs(got[i] - raw[i]);
    shifted += Math.abs(got[i] - (raw[i] + probe.add!));
  }
  if (shifted <= asStored) return undefined;
  return `${f.path}: the native addon loaded '${info.name}' without the ${probe.add} that undoes llama.cpp's Gemma norm + 1 (the model would run, wrongly); this addon cannot load ${plan.arch} GGUF files yet`;
}
