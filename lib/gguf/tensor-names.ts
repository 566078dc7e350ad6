// Hugging Face <-> GGUF (llama.cpp) tensor names for the supported architectures: one table used
// both ways, by the GGUF export (lib/export/gguf-arch.ts, HF -> GGUF) and by the GGUF loader
// (lib/gguf/plan.ts, GGUF -> HF). The names are gguf-py's `get_tensor_name_map` for LLAMA, QWEN2,
// GEMMA and GEMMA2 (gguf/tensor_mapping.py); the transforms are the ones convert_hf_to_gguf.py
// applies and transformers' modeling_gguf_pytorch_utils.py undoes.

/** llama.cpp's `general.architecture` names lorafit reads and writes (Mistral is stored as 'llama'). */
export type GgufArch = 'llama' | 'qwen2' | 'gemma' | 'gemma2';
export const GGUF_ARCHS: readonly GgufArch[] = ['llama', 'qwen2', 'gemma', 'gemma2'];

/** Whole-model tensors (HF module path -> GGUF name, without the .weight/.bias suffix). */
export const GLOBAL_TENSORS: Readonly<Record<string, string>> = {
  'model.embed_tokens': 'token_embd',
  'model.norm': 'output_norm',
  'lm_head': 'output',
};

/** Per-layer tensors (HF path under model.layers.N -> GGUF name under blk.N). */
export const LAYER_TENSORS: Readonly<Record<string, string>> = {
  'input_layernorm': 'attn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'post_attention_layernorm': 'ffn_norm',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};

/** Gemma 2 has four norms a layer; its post_attention_layernorm normalises the attention output. */
export const GEMMA2_LAYER_TENSORS: Readonly<Record<string, string>> = {
  ...LAYER_TENSORS,
  'post_attention_layernorm': 'post_attention_norm',
  'pre_feedforward_layernorm': 'ffn_norm',
  'post_feedforward_layernorm': 'post_ffw_norm',
};

export function layerTensorTable(arch: GgufArch): Readonly<Record<string, string>> {
  return arch === 'gemma2' ? GEMMA2_LAYER_TENSORS : LAYER_TENSORS;
}

const inverse = (t: Readonly<Record<string, string>>): Record<string, string> => Object.fromEntries(Object.entries(t).map(([hf, g]) => [g, hf]));
const GLOBAL_INV = inverse(GLOBAL_TENSORS);
const LAYER_INV: Record<GgufArch, Record<string, string>> = {
  llama: inverse(LAYER_TENSORS),
  qwen2: inverse(LAYER_TENSORS),
  gemma: inverse(LAYER_TENSORS),
  gemma2: inverse(GEMMA2_LAYER_TENSORS),
};

/** The GGUF name of an HF tensor name (`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight`); undefined if none. */
export function toGgufName(hfName: string, arch: GgufArch): string | undefined {
  const g = /^(.+)\.(weight|bias)$/.exec(hfName);
  if (!g) return undefined;
  if (Object.hasOwn(GLOBAL_TENSORS, g[1])) return `${GLOBAL_TENSORS[g[1]]}.${g[2]}`;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(g[1]);
  const table = layerTensorTable(arch);
  if (m && Object.hasOwn(table, m[2])) return `blk.${m[1]}.${table[m[2]]}.${g[2]}`;
  return undefined;
}

/** The HF name of a GGUF tensor (`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`); undefined if none. */
export function toHfName(ggufName: string, arch: GgufArch): { name: string; layer: number | null } | undefined {
  const g = /^(.+)\.(weight|bias)$/.exec(ggufName);
  if (!g) return undefined;
  if (Object.hasOwn(GLOBAL_INV, g[1])) return { name: `${GLOBAL_INV[g[1]]}.${g[2]}`, layer: null };
  const m = /^blk\.(0|[1-9]\d{0,8})\.(.+)$/.exec(g[1]);
  const inv = LAYER_INV[arch];
  if (m && Object.hasOwn(inv, m[2])) return { name: `model.layers.${m[1]}.${inv[m[2]]}.${g[2]}`, layer: Number(m[1]) };
  return undefined;
}

/**
 * The head count llama.cpp's converter permuted a q/k projection's rows with (convert_hf_to_gguf's
 * LlamaModel.permute; transformers' LlamaTensorProcessor undoes it): only for the 'llama' GGUF
 * architecture (Llama and Mistral), q by attention.head_count, k by attention.head_count_kv, weights
 * and biases alike. null for every other tensor and architecture (Qwen2 and Gemma are not permuted).
 */
export function qkPermuteHeads(ggufName: string, arch: GgufArch, numHeads: number, numKvHeads: number): number | null {
  if (arch !== 'llama') return null;
  if (/^blk\.\d+\.attn_q\.(weight|bias)$/.test(ggufName)) return numHeads;
  if (/^blk\.\d+\.attn_k\.(weight|bias)$/.test(ggufName)) return numKvHeads;
  return null;
}

/**
 * Gemma's RMSNorm scales by (1 + w) and HF checkpoints store w; llama.cpp's converter stores w + 1
 * (GemmaModel/Gemma2Model.modify_tensors: `if name.endswith("norm.weight"): data + 1`), and
 * transformers' Gemma2TensorProcessor subtracts 1 from every tensor whose name contains
 * "norm.weight". The value to add when loading: -1 for those tensors, 0 otherwise.
 */
export function normOffset(ggufName: string, arch: GgufArch): number {
  return (arch === 'gemma' || arch === 'gemma2') && ggufName.includes('norm.weight') ? -1 : 0;
}
