// A random-weight model with Qwen2.5-0.5B's shapes (hidden 896, 24 layers, 14 heads, 2 kv heads,
// head_dim 64, intermediate 4864, vocab 151936, tied embeddings, q/k/v bias), written as one bf16
// model.safetensors streamed tensor by tensor (never the whole model in memory). Seeded: the same
// seed gives the same bytes. For benchmarks and storage tests only: the weights mean nothing.
//   npm run build:ts && node dist/bench/make-model.js [outDir=bench/out/qwen2.5-0.5b-random] [--layers N] [--vocab N]
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MakeModelOptions {
  layers?: number;        // default 24
  vocab?: number;         // default 151936
  hidden?: number;        // default 896
  intermediate?: number;  // default 4864
  seed?: number;          // default 1
}

interface Spec {
  name: string;
  shape: number[];
  kind: 'weight' | 'bias' | 'norm';
}

export function qwen25Config(o: Required<MakeModelOptions>): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151643,
    hidden_act: 'silu',
    hidden_size: o.hidden,
    initializer_range: 0.02,
    intermediate_size: o.intermediate,
    max_position_embeddings: 32768,
    max_window_layers: o.layers,
    model_type: 'qwen2',
    num_attention_heads: 14,
    num_hidden_layers: o.layers,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    sliding_window: null,
    tie_word_embeddings: true,
    torch_dtype: 'bfloat16',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: o.vocab,
  };
}

function specs(o: Required<MakeModelOptions>): Spec[] {
  const H = o.hidden, I = o.intermediate, D = 64, q = 14 * D, kv = 2 * D;
  const out: Spec[] = [{ name: 'model.embed_tokens.weight', shape: [o.vocab, H], kind: 'weight' }];
  for (let i = 0; i < o.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, H], kind: 'weight' },
      { name: `${p}.self_attn.q_proj.bias`, shape: [q], kind: 'bias' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, H], kind: 'weight' },
      { name: `${p}.self_attn.k_proj.bias`, shape: [kv], kind: 'bias' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, H], kind: 'weight' },
      { name: `${p}.self_attn.v_proj.bias`, shape: [kv], kind: 'bias' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, q], kind: 'weight' },
      { name: `${p}.mlp.gate_proj.weight`, shape: [I, H], kind: 'weight' },
      { name: `${p}.mlp.up_proj.weight`, shape: [I, H], kind: 'weight' },
      { name: `${p}.mlp.down_proj.weight`, shape: [H, I], kind: 'weight' },
      { name: `${p}.input_layernorm.weight`, shape: [H], kind: 'norm' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], kind: 'norm' },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [H], kind: 'norm' });
  return out;
}

/** Writes config.json + model.safetensors into dir; returns the parameter count. */
export function makeQwenShapedModel(dir: string, options: MakeModelOptions = {}): number {
  const o: Required<MakeModelOptions> = { layers: 24, vocab: 151936, hidden: 896, intermediate: 4864, seed: 1, ...options };
  const list = specs(o);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const s of list) {
    const bytes = s.shape.reduce((a, b) => a * b, 1) * 2;
    header[s.name] = { dtype: 'BF16', shape: s.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(qwen25Config(o), null, 2)}\n`);
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, 'utf8'));
    // xorshift32 -> roughly normal values (sum of 4 uniforms), std 0.02 for weights.
    let state = (o.seed * 2654435761) >>> 0 || 1;
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const chunk = new Uint16Array(1 << 20);
    let params = 0;
    for (const s of list) {
      let n = s.shape.reduce((a, b) => a * b, 1);
      params += n;
      while (n > 0) {
        const m = Math.min(n, chunk.length);
        for (let i = 0; i < m; i++) {
          if (s.kind === 'norm') {
            chunk[i] = 0x3f80;  // 1.0
            continue;
          }
          let sum = 0;
          for (let k = 0; k < 4; k++) {
            state ^= state << 13;
            state ^= state >>> 17;
            state ^= state << 5;
            state >>>= 0;
            sum += state / 4294967296;
          }
          f32[0] = (sum - 2) * 0.0346 * (s.kind === 'bias' ? 0.5 : 1);  // var(sum of 4 U) = 1/3
          chunk[i] = u32[0] >>> 16;  // truncate to bf16
        }
        writeSync(fd, new Uint8Array(chunk.buffer, 0, m * 2));
        n -= m;
      }
    }
    return params;
  } finally {
    closeSync(fd);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = Number(args[i + 1]);
    args.splice(i, 2);
    return v;
  };
  const layers = flag('--layers');
  const vocab = flag('--vocab');
  const dir = resolve(args[0] ?? 'bench/out/qwen2.5-0.5b-random');
  const t0 = Date.now();
  const n = makeQwenShapedModel(dir, { ...(layers ? { layers } : {}), ...(vocab ? { vocab } : {}) });
  console.log(JSON.stringify({ dir, params: n, seconds: (Date.now() - t0) / 1000 }));
}
