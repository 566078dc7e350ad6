// `lorafit export ollama` on the real SmolLM2-135M-Instruct Q4_1 GGUF, proven in real llama.cpp
// (node-llama-cpp's prebuilt CPU binary): an adapter lorafit trained on that file (4 steps, lr 3e-3,
// all-linear r=8), exported by the CLI as DIR/adapter.gguf + DIR/Modelfile, then the Modelfile's
// FROM (the base GGUF) and ADAPTER loaded in llama.cpp. On three chat prompts (the same prompt
// ids on both sides), 16 greedy tokens of llama.cpp are compared with lorafit's fp32 greedy
// generation, for the base alone and with the adapter, and teacher-forced: llama.cpp reads the
// prompt + lorafit's tokens in one pass and its next-token distribution at each of the 16 positions
// is compared with lorafit's.
//
// llama.cpp does not compute what lorafit computes: its Q4_1 matmuls quantize the activations to
// 8 bits (Q8_1) and its KV cache is F16, where lorafit (like transformers) runs the dequantized
// weights in fp32. Log-probabilities differ by a few tenths, so sequences agree until a near-tie:
// every token before the first disagreement must be equal, and at a disagreement lorafit's own
// logits for the two candidates must be within NEAR_TIE. The control is the same model dequantized
// to F32 by `lorafit export gguf` with an F32 KV cache: there llama.cpp computes in float32 too,
// and every token must agree, for the base, the base + adapter.gguf and the merged export.
import { readFileSync, rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { getLlama, type Llama, type LlamaContextOptions, type LlamaModel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { ensureBuilt, runCli, tempDir } from '../cli/helpers.js';
import { smollm2Gguf } from '../gguf/reference.js';
import { QUESTION, trainSmollm2Adapter } from '../gguf/smollm2-adapter.js';

const NEW_TOKENS = 16;
const QUESTIONS = [QUESTION, 'What is the capital of France?', 'How do plants grow?'];
/** Largest lorafit logit gap between lorafit's and llama.cpp's choice that counts as a near-tie. */
const NEAR_TIE = 0.25;
/** Largest |log p| difference between lorafit and llama.cpp on lorafit's 10 likeliest next tokens. */
const Q4_LOGPROB_DIFF = 1;
const F32_LOGPROB_DIFF = 2e-3;

const dir = tempDir('lorafit-smollm2-llamacpp-');
let llama: Llama;
let q4: LlamaModel;
let model: Model;
let tokenizer: Tokenizer;
let prompts: number[][];
let modelfile: string;
let fromFile: string;
let adapterFile: string;
let adapterDir: string;
let cliOut = '';

beforeAll(async () => {
  ensureBuilt();
  const file = smollm2Gguf();
  model = await Model.load(file, { dtype: 'float32' });
  tokenizer = await Tokenizer.load(file);
  const trained = await trainSmollm2Adapter(model, tokenizer, file, dir);
  adapterDir = trained.dir;
  console.log(`adapter: ${trained.steps} steps, losses ${trained.losses.map((l) => l.toFixed(3)).join(' ')}`);
  // lorafit's side runs the adapter as saved (what was exported), not the trainer's in-memory copy
  await trained.adapter.delete();
  await LoraAdapter.load(model, trained.dir, { name: 'saved', activate: false });
  prompts = await Promise.all(QUESTIONS.map((q) => tokenizer.encodeChat([{ role: 'user', content: q }], { addGenerationPrompt: true })));

  const out = join(dir, 'ollama');
  const r = await runCli(['export', 'ollama', '--model', file, '--adapter', trained.dir, '--out', out, '--name', 'smollm2-yoda'], { timeoutMs: 120_000 });
  cliOut = r.stdout + r.stderr;
  if (r.code !== 0) throw new Error(`lorafit export ollama failed:\n${cliOut}`);
  modelfile = join(out, 'Modelfile');
  const lines = readFileSync(modelfile, 'utf8').split('\n');
  fromFile = lines.find((l) => l.startsWith('FROM '))!.slice(5);
  adapterFile = resolve(out, lines.find((l) => l.startsWith('ADAPTER '))!.slice(8));

  llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  q4 = await llama.loadModel({ modelPath: fromFile });
}, 600_000);

afterAll(async () => {
  await q4?.dispose();
  await llama?.dispose();
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

type Side = { lm: LlamaModel; lora?: string; exactKv?: boolean };

async function withContext<T>(side: Side, fn: (ctx: Awaited<ReturnType<LlamaModel['createContext']>>) => Promise<T>): Promise<T> {
  const options: LlamaContextOptions = {
    contextSize: 256,
    // One thread: on a shared 2-core machine two llama.cpp threads that spin-wait beside libtorch's
    // ran 16 tokens in 7-16 s, one thread in 1.5 s (the default oversubscribes far worse).
    threads: 1,
    ...(side.lora ? { lora: { adapters: [{ filePath: side.lora, scale: 1 }] } } : {}),
    ...(side.exactKv ? { flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } : {}),
  };
  const ctx = await side.lm.createContext(options);
  try {
    return await fn(ctx);
  } finally {
    await ctx.dispose();
  }
}

async function llamaCppGreedy(side: Side, prompt: number[]): Promise<number[]> {
  return withContext(side, async (ctx) => {
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
      out.push(t);
      if (out.length >= NEW_TOKENS) break;
    }
    return out;
  });
}

/** Indices of the k largest values, largest first. */
function topK(values: Float32Array, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (top.length === k && values[i] <= values[top[k - 1]]) continue;
    let j = Math.min(top.length, k - 1);
    while (j > 0 && values[top[j - 1]] < values[i]) j--;
    top.splice(j, 0, i);
    if (top.length > k) top.pop();
  }
  return top;
}

/** lorafit's forward runs the base alone (null) or with the named adapter. */
async function useAdapter(adapter: string | null): Promise<void> {
  if (adapter === null) await LoraAdapter.disableAll(model);
  else await LoraAdapter.list(model).find((a) => a.name === adapter)!.activate();
}

interface Comparison {
  /** lorafit's new tokens (up to NEW_TOKENS, the eos included when reached). */
  lorafit: number[];
  /** llama.cpp's, with the eos it stopped at appended. */
  llamaCpp: number[];
  /** Leading greedy tokens that agree. */
  agree: number;
  /** Teacher-forced: positions whose argmax agrees, and the largest log-prob difference. */
  forcedAgree: number;
  maxLogprobDiff: number;
  /** lorafit's logit gap between its choice and llama.cpp's at each disagreement (greedy: the first one). */
  greedyGap: number | null;
  forcedGaps: number[];
}

/**
 * Greedy (free-running) and teacher-forced comparison of one prompt. Both sides stop at the end of
 * turn (<|im_end|>, SmolLM2's eos): lorafit returns it as the last token, llama.cpp ends without it,
 * so a llama.cpp run shorter than NEW_TOKENS gets the eos appended before comparing.
 */
async function compare(side: Side, adapter: string | null, prompt: number[], label: string): Promise<Comparison> {
  await useAdapter(adapter);
  const eos = model.eosTokenIds[0];
  const [mine] = await model.generate(prompt, { maxNewTokens: NEW_TOKENS, adapter });
  const generated = await llamaCppGreedy(side, prompt);
  const theirs = generated.length < NEW_TOKENS ? [...generated, eos] : generated;
  const notes: string[] = [];
  let agree = 0;
  while (agree < mine.length && mine[agree] === theirs[agree]) agree++;
  const n = mine.length;

  // one forward over prompt + lorafit's tokens: lorafit's logits at every new position
  const seq = [...prompt, ...mine.slice(0, n - 1)];
  const r = await model.forward([seq]);
  const V = r.shape[2];
  const row = (k: number) => r.logits.subarray((prompt.length - 1 + k) * V, (prompt.length + k) * V);
  let greedyGap: number | null = null;
  if (agree < n || theirs.length !== n) {
    const l = row(Math.min(agree, n - 1));
    greedyGap = agree < n ? l[mine[agree]] - l[theirs[agree]] : NaN;
    notes.push(`greedy diverges at token ${agree} (lorafit ${mine[agree]}, llama.cpp ${theirs[agree]}; lorafit's logit gap ${greedyGap.toFixed(4)})`);
  }

  // teacher-forced: llama.cpp's next-token distribution after the same prefixes
  const dists = await withContext(side, async (ctx) => {
    const input = seq.map((t, i) => (i >= prompt.length - 1 ? ([t, { generateNext: { probabilities: true } }] as [Token, { generateNext: { probabilities: boolean } }]) : (t as Token)));
    return (await ctx.getSequence().controlledEvaluate(input)).slice(prompt.length - 1).map((o) => o!.next.probabilities!);
  });
  expect(dists.length).toBe(n);
  let forcedAgree = 0;
  let maxDiff = 0;
  const forcedGaps: number[] = [];
  for (let k = 0; k < n; k++) {
    const l = row(k);
    let max = -Infinity;
    for (const v of l) max = Math.max(max, v);
    let sum = 0;
    for (const v of l) sum += Math.exp(v - max);
    const lse = max + Math.log(sum);
    const order = topK(l, 10);
    const top = dists[k].keys().next().value as number;
    for (const t of order) maxDiff = Math.max(maxDiff, Math.abs(l[t] - lse - Math.log(dists[k].get(t as Token)!)));
    if (order[0] === top) forcedAgree++;
    else {
      const gap = l[order[0]] - l[top];
      forcedGaps.push(gap);
      notes.push(`teacher-forced position ${k}: llama.cpp prefers ${top} (lorafit's gap ${gap.toFixed(4)})`);
    }
  }
  console.log(
    `${label}: greedy ${agree}/${n} agree, teacher-forced ${forcedAgree}/${n}, max |log-prob diff| (lorafit's top 10) ${maxDiff.toFixed(4)}` +
      `${notes.length ? `\n  ${notes.join('\n  ')}` : ''}\n  lorafit:   ${JSON.stringify(await tokenizer.decode(mine))}\n  llama.cpp: ${JSON.stringify(await tokenizer.decode(theirs))}`,
  );
  return { lorafit: mine, llamaCpp: theirs, agree, forcedAgree, maxLogprobDiff: maxDiff, greedyGap, forcedGaps };
}

/** Equal up to a near-tie: the greedy runs agree until a disagreement that is a near-tie, teacher-forced too, log-probs close. */
function expectClose(c: Comparison, label: string, maxLogprobDiff: number): void {
  if (c.greedyGap !== null) expect(c.greedyGap, `${label}: the greedy disagreement at token ${c.agree} is not a near-tie`).toBeLessThan(NEAR_TIE);
  for (const g of c.forcedGaps) expect(g, `${label}: a teacher-forced disagreement is not a near-tie`).toBeLessThan(NEAR_TIE);
  expect(c.maxLogprobDiff, `${label}: max |log-prob diff|`).toBeLessThan(maxLogprobDiff);
}

async function compareAll(side: Side, adapter: string | null, label: string, maxLogprobDiff: number): Promise<Comparison[]> {
  const out: Comparison[] = [];
  for (let i = 0; i < prompts.length; i++) {
    const c = await compare(side, adapter, prompts[i], `${label}, prompt ${i}`);
    expectClose(c, `${label}, prompt ${i}`, maxLogprobDiff);
    out.push(c);
  }
  return out;
}

describe('lorafit export ollama on SmolLM2 GGUF, in llama.cpp', () => {
  it('the CLI writes adapter.gguf and a Modelfile FROM the absolute base path, and prints the ollama create line', () => {
    expect(isAbsolute(fromFile)).toBe(true);
    expect(fromFile).toBe(smollm2Gguf());
    expect(adapterFile).toBe(join(dir, 'ollama', 'adapter.gguf'));
    const text = readFileSync(modelfile, 'utf8');
    expect(text).toContain('ADAPTER ./adapter.gguf\n');
    expect(text).toContain('TEMPLATE """');
    expect(text).toContain('PARAMETER stop "<|im_end|>"');
    expect(cliOut).toContain(`ollama create smollm2-yoda -f ${modelfile}`);
    expect(cliOut).toMatch(/LoRA r=8 alpha 16 on 210 llama weights/);
  });

  let base: Comparison[];
  it('Q4_1 base alone: llama.cpp greedy tokens equal lorafit fp32 up to a near-tie', async () => {
    base = await compareAll({ lm: q4 }, null, 'Q4_1 base', Q4_LOGPROB_DIFF);
  }, 300_000);

  it('Q4_1 base + exported adapter.gguf: llama.cpp greedy tokens equal lorafit fp32 (adapter) up to a near-tie, and differ from the base', async () => {
    const tuned = await compareAll({ lm: q4, lora: adapterFile }, 'saved', 'Q4_1 base + adapter.gguf', Q4_LOGPROB_DIFF);
    for (let i = 0; i < prompts.length; i++) {
      expect(tuned[i].lorafit).not.toEqual(base[i].lorafit);
      expect(tuned[i].llamaCpp).not.toEqual(base[i].llamaCpp);
    }
    // without the adapter, llama.cpp is far from lorafit's tuned model: the agreement above is the adapter's doing
    const far = await compare({ lm: q4 }, 'saved', prompts[0], 'control: Q4_1 base WITHOUT adapter.gguf vs lorafit with the adapter');
    expect(far.maxLogprobDiff).toBeGreaterThan(3 * Q4_LOGPROB_DIFF);
  }, 300_000);

  it("F32 control (`lorafit export gguf --dtype F32`, F32 KV cache): base, base + adapter.gguf and the merged export give lorafit's greedy tokens exactly", async () => {
    const f32File = join(dir, 'smollm2-f32.gguf');
    const mergedFile = join(dir, 'smollm2-merged-f32.gguf');
    for (const args of [['--out', f32File], ['--adapter', adapterDir, '--out', mergedFile]]) {
      const r = await runCli(['export', 'gguf', '--model', smollm2Gguf(), '--dtype', 'F32', ...args], { timeoutMs: 300_000 });
      if (r.code !== 0) throw new Error(`lorafit export gguf failed:\n${r.stdout}${r.stderr}`);
    }
    const f32 = await llama.loadModel({ modelPath: f32File });
    const merged = await llama.loadModel({ modelPath: mergedFile });
    try {
      const runs = [
        ...(await compareAll({ lm: f32, exactKv: true }, null, 'F32 base', F32_LOGPROB_DIFF)),
        ...(await compareAll({ lm: f32, lora: adapterFile, exactKv: true }, 'saved', 'F32 base + adapter.gguf', F32_LOGPROB_DIFF)),
        ...(await compareAll({ lm: merged, exactKv: true }, 'saved', 'merged F32 export', F32_LOGPROB_DIFF)),
      ];
      for (const r of runs) {
        expect(r.llamaCpp).toEqual(r.lorafit);
        expect(r.forcedAgree).toBe(r.lorafit.length);
      }
    } finally {
      await f32.dispose();
      await merged.dispose();
    }
  }, 600_000);
});
