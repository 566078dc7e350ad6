// Mistral, Gemma and Gemma 2 exports run in llama.cpp (node-llama-cpp's prebuilt CPU binary) and
// generate the whole greedy sequence transformers generates on the same weights: 16 new tokens
// for the base model (F32 GGUF) and for a PEFT LoRA adapter exported as a llama.cpp LoRA GGUF.
// test/interop/llama_cpp_ref.py makes the tiny random models (seeded) and transformers' sequences;
// its docstring says which HF settings a GGUF cannot carry (Mistral's sliding window, Gemma 2's
// query_pre_attn_scalar) and so are set to what llama.cpp computes. Gemma 2's soft-capping
// (attention and final logits) and its sliding window on alternate layers are exported and kept:
// the sequences are longer than the window of 4, and the reference records transformers' tokens
// with each switched off, to show that they matter. An exporter fix came with this test: a Gemma 2
// whose query_pre_attn_scalar llama.cpp would not reproduce is refused (checkLlamaCppExpressible).
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { getLlama, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportGguf, exportLoraGguf } from '../../lib/export/index.js';
import { runPython } from '../helpers/python.js';
import { tempDir, writeByteTokenizer } from './helpers.js';

interface Reference {
  prompt: number[];
  base: number[];
  lora: number[];
  base_margin: number;
  lora_margin: number;
  ablations: Record<string, number[]>;
  base_probs: number[];
  no_final_softcap_probs: number[] | null;
}

const ARCHS = ['mistral', 'gemma', 'gemma2'] as const;
const GGUF_ARCH = { mistral: 'llama', gemma: 'gemma', gemma2: 'gemma2' };
const dir = tempDir('lorafit-llama-cpp-archs-');
const tokenizerDir = writeByteTokenizer(join(dir, 'tokenizer'));
let llama: Llama;
const models: LlamaModel[] = [];

beforeAll(async () => {
  await runPython('llama_cpp_ref.py', ['--out', dir, '--arch', ARCHS.join(','), '--new-tokens', '16']);
  llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
}, 300_000);
afterAll(async () => {
  for (const m of models) await m.dispose();
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Greedy decoding: prompt + `steps` tokens, and the probability llama.cpp gave each chosen token. */
async function greedy(model: LlamaModel, prompt: number[], steps: number, loraFile?: string): Promise<{ ids: number[]; probs: number[] }> {
  const ctx = await model.createContext({
    contextSize: 64,
    threads: Math.min(2, availableParallelism()),
    ...(loraFile ? { lora: { adapters: [{ filePath: loraFile, scale: 1 }] } } : {}),
  });
  try {
    const ids = [...prompt];
    const probs: number[] = [];
    for await (const t of ctx.getSequence().evaluateWithMetadata(prompt as Token[], { confidence: true }, { temperature: 0 })) {
      ids.push(t.token);
      probs.push(t.confidence);
      if (ids.length >= prompt.length + steps) break;
    }
    return { ids, probs };
  } finally {
    await ctx.dispose();
  }
}

it('a Gemma 2 whose query_pre_attn_scalar llama.cpp would not apply is refused', async () => {
  const d = join(dir, 'gemma2-qpas');
  cpSync(join(dir, 'gemma2', 'model'), d, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
  writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, query_pre_attn_scalar: 32 }));
  await expect(exportGguf(d, join(dir, 'refused.gguf'), { tokenizerDir, dtype: 'F32' })).rejects.toMatchObject({
    code: 'E_EXPORT',
    message: expect.stringMatching(/query_pre_attn_scalar 32 .*1\/sqrt\(16\)/),
  });
});

function maxRelDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.abs(b[i])));
}

describe.each(ARCHS)('%s export in llama.cpp', (arch) => {
  let ref: Reference;
  let model: LlamaModel;
  const hf = () => join(dir, arch);

  it('F32 GGUF: the 16 greedy tokens equal transformers generate()', async () => {
    ref = JSON.parse(readFileSync(join(hf(), 'reference.json'), 'utf8')) as Reference;
    // The sequences vary and no step is a near tie (fp32 noise is ~1e-5).
    expect(new Set(ref.base.slice(8)).size).toBeGreaterThan(2);
    expect(Math.min(ref.base_margin, ref.lora_margin)).toBeGreaterThan(1e-3);
    const file = join(dir, `${arch}-f32.gguf`);
    await exportGguf(join(hf(), 'model'), file, { tokenizerDir, dtype: 'F32' });
    model = await llama.loadModel({ modelPath: file });
    models.push(model);
    expect(model.fileInfo.metadata.general.architecture).toBe(GGUF_ARCH[arch]);
    const out = await greedy(model, ref.prompt, 16);
    expect(out.ids).toEqual(ref.base);
    // The probability of each chosen token too, within 1e-3 relative (llama.cpp keeps its KV cache
    // in F16: up to ~4e-4 was seen on the first Gemma 2 steps).
    expect(maxRelDiff(out.probs, ref.base_probs)).toBeLessThan(1e-3);
    // transformers with Gemma 2's attention soft-cap or sliding window switched off generates
    // other tokens, so llama.cpp applied each of them; Mistral's window of 4, which llama.cpp
    // would not apply, changes the sequence too (hence the reference model has none).
    const expected = { mistral: ['sliding_window_4'], gemma: [], gemma2: ['no_attn_softcap', 'no_sliding_window'] }[arch];
    expect(Object.keys(ref.ablations).sort()).toEqual([...expected].sort());
    for (const [name, seq] of Object.entries(ref.ablations)) expect(seq, name).not.toEqual(ref.base);
    // The final soft-cap changes no greedy token (tanh is monotonic), only the probabilities:
    // without it they differ by more than 10x the tolerance above.
    if (arch === 'gemma2') expect(maxRelDiff(ref.no_final_softcap_probs!, ref.base_probs)).toBeGreaterThan(1e-2);
  });

  it('LoRA GGUF on it: the 16 greedy tokens equal PEFT generate()', async () => {
    const file = join(dir, `${arch}-lora.gguf`);
    await exportLoraGguf(join(hf(), 'adapter'), file, { baseModel: join(hf(), 'model') });
    expect(ref.lora).not.toEqual(ref.base);
    expect((await greedy(model, ref.prompt, 16, file)).ids).toEqual(ref.lora);
  });
});
