// Adapters: train two small style adapters (Yoda, Leprechaun: answer-only chats), keep both on one
// loaded model and pick one per request, combine them, merge one into a fresh base and export:
//   - merged-hf/: a Hugging Face folder (transformers loads it);
//   - merged.gguf: the merged model for llama.cpp / Ollama (F16);
//   - yoda-lora.gguf: the adapter alone in llama.cpp's LoRA format, for the base GGUF it was trained on;
//   - Modelfile (FROM base GGUF + ADAPTER yoda-lora.gguf) and Modelfile.merged (FROM merged.gguf).
// Then checks: the merged model (and the merged GGUF loaded back) answers as base + adapter, and,
// when node-llama-cpp is installed, llama.cpp runs the base GGUF + the exported LoRA GGUF.
//
//   node dist/examples/adapters/run.js [--short] [--model SPEC] [--dtype float32] [--out DIR]
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { chat, LoraAdapter, Model, Trainer } from '../../lib/index.js';
import { exportGguf, exportLoraGguf, writeModelfile } from '../../lib/export/index.js';
import { styleLines } from '../default-model/corpus.js';
import { ask, chatExamples, DATA, elapsedSeconds, load, parseArgs, styleChats, writeSummary } from '../common.js';

const args = parseArgs('adapters');
// Full: 30 steps of batch 4 at <= 128 tokens per adapter, lr 2e-3 (1e-3 left the Yoda adapter too
// weak to show in bf16 greedy answers); short: 4 at <= 96.
const steps = args.short ? 4 : 30;
const seq = args.short ? 96 : 128;
const maxNewTokens = args.short ? 24 : 48;
const { model, tokenizer } = await load(args.model, { dtype: args.dtype });
const question = 'What is the best way to learn?';
const questions = [question, 'Why do cats purr?', 'What is rain?'].slice(0, args.short ? 1 : 3);

async function trainStyle(name: 'yoda' | 'leprechaun'): Promise<LoraAdapter> {
  const adapter = await LoraAdapter.create(model, { name, rank: 8, alpha: 16, targetModules: 'all-linear', seed: 1 });
  const lines = styleLines(DATA, name).slice(100, 100 + (args.short ? 40 : 240));
  const trainer = new Trainer({ model, adapter, trainData: await chatExamples(tokenizer, styleChats(lines), seq), learningRate: 2e-3, maxSteps: steps, batchSize: 4, lrScheduler: 'cosine', warmupSteps: Math.min(3, steps - 1), seed: 1 });
  const r = await trainer.fit();
  console.log(`[${elapsedSeconds()} s] adapter ${name}: ${steps} steps, final train loss ${r.trainLoss.toFixed(3)}`);
  await adapter.save(join(args.out, name), { baseModelNameOrPath: args.model });
  return adapter;
}
const yoda = await trainStyle('yoda');
const leprechaun = await trainStyle('leprechaun');

// 1. One model, one request each: no adapter, either adapter (chat() with `adapter`).
const messages = [{ role: 'user', content: question }];
const perRequest: Record<string, string> = {};
for (const adapter of [null, 'yoda', 'leprechaun'] as const) {
  perRequest[adapter ?? 'base'] = await chat(model, tokenizer, messages, { adapter, maxNewTokens, repetitionPenalty: 1.2 });
}
// The same three requests in flight at once: each call's adapter holds, whatever the order they run in.
const concurrent = await Promise.all([null, 'yoda', 'leprechaun'].map((adapter) => chat(model, tokenizer, messages, { adapter, maxNewTokens, repetitionPenalty: 1.2 })));
const concurrentMatches = concurrent[0] === perRequest.base && concurrent[1] === perRequest.yoda && concurrent[2] === perRequest.leprechaun;

// 2. Combined: 'cat' keeps both adapters' deltas exactly (rank 8 + 8), weighted 0.5 each.
await LoraAdapter.combine(model, [{ adapter: yoda, weight: 0.5 }, { adapter: leprechaun, weight: 0.5 }], { name: 'mix', combinationType: 'cat', activate: false });
perRequest.mix = await chat(model, tokenizer, messages, { adapter: 'mix', maxNewTokens, repetitionPenalty: 1.2 });
for (const [k, v] of Object.entries(perRequest)) console.log(`\n[${k}] ${question}\n${v}`);
console.log(`\n[${elapsedSeconds()} s] the same requests concurrently: ${concurrentMatches ? 'identical answers' : 'DIFFERENT answers'}`);

// 3. Merge the Yoda adapter into a fresh fp32 copy of the base (merging in bf16 would round the
//    sum W + BA to 8 bits of mantissa) and save it as an HF folder in bf16. The same fp32 copy
//    answers with the adapter unmerged first, so the comparison is merged vs unmerged only.
await using merged = await Model.load(args.model, { dtype: 'float32' });
const again = await LoraAdapter.load(merged, join(args.out, 'yoda'), { name: 'yoda' });
const yodaAnswers = await ask(merged, tokenizer, questions, { adapter: 'yoda', maxNewTokens });
// plain greedy (no repetition penalty: llama.cpp's differs from transformers'), for the llama.cpp check
const promptIds = await tokenizer.encodeChat(messages, { addGenerationPrompt: true });
const [fp32Greedy] = await merged.generate(promptIds, { maxNewTokens, adapter: 'yoda', eosTokenId: [...tokenizer.stopTokenIds] });
await again.mergeAndUnload();
const hfDir = join(args.out, 'merged-hf');
await merged.save(hfDir, { dtype: 'bfloat16' });
const mergedAnswers = await ask(merged, tokenizer, questions, { maxNewTokens });

// 4. Export: the merged model as GGUF, the adapter alone as a llama.cpp LoRA GGUF over the base
//    GGUF, and Ollama Modelfiles for both routes.
const gguf = await exportGguf(hfDir, join(args.out, 'merged.gguf'), { dtype: 'F16' });
let loraGguf: { file: string; targets: string[] } | { error: string };
try {
  loraGguf = await exportLoraGguf(join(args.out, 'yoda'), join(args.out, 'yoda-lora.gguf'), { baseModel: args.model });
} catch (e) {
  loraGguf = { error: (e as Error).message };
}
const chatTemplate = tokenizer.chatTemplate;
const modelfiles: string[] = [];
if ('file' in loraGguf && args.model.endsWith('.gguf')) {
  await writeModelfile(join(args.out, 'Modelfile'), { from: args.model, adapter: './yoda-lora.gguf', chatTemplate, system: 'You speak like Yoda.' });
  modelfiles.push(join(args.out, 'Modelfile'));
}
await writeModelfile(join(args.out, 'Modelfile.merged'), { from: './merged.gguf', chatTemplate, system: 'You speak like Yoda.' });
modelfiles.push(join(args.out, 'Modelfile.merged'));
const mib = (f: string) => `${(statSync(f).size / 2 ** 20).toFixed(1)} MiB`;
console.log(`\n[${elapsedSeconds()} s] merged HF folder: ${hfDir}\nmerged GGUF: ${gguf.file} (${gguf.tensorCount} tensors, ${mib(gguf.file)})`);
console.log('file' in loraGguf ? `LoRA GGUF: ${loraGguf.file} (${loraGguf.targets.length} weights, ${mib(loraGguf.file)})` : `LoRA GGUF not written: ${loraGguf.error}`);
console.log(`Ollama: ${modelfiles.join(', ')} (ollama create yoda -f Modelfile)`);

// 5. The merged GGUF loaded back by lorafit answers as the merged model.
const roundTrip = await Model.load(gguf.file, { dtype: 'float32' });
const roundTripAnswers = await ask(roundTrip, tokenizer, questions, { maxNewTokens });
await roundTrip.dispose();

// 6. llama.cpp (node-llama-cpp, when installed): the base GGUF with the exported LoRA GGUF.
//    llama.cpp runs the Q4_1 weights with 8-bit activations, lorafit dequantizes to fp32: greedy
//    texts part at the first near-tie. So besides llama.cpp's own greedy answer, both score
//    lorafit's greedy tokens teacher-forced (one pass each): the log-probability of every token,
//    and whether each position's argmax agrees.
type LlamaCppCheck = { answer: string; lorafit: string; greedyTokensAgree: number; tokens: number; argmaxAgree: number; maxLogProbDiff: number; meanLogProbDiff: number };
let llamaCpp: LlamaCppCheck | { skipped: string };
try {
  if (!('file' in loraGguf) || !args.model.endsWith('.gguf')) throw new Error('no LoRA GGUF over a GGUF base');
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const lm = await llama.loadModel({ modelPath: args.model });
  const context = () => lm.createContext({ contextSize: 512, threads: Math.min(2, availableParallelism()), lora: { adapters: [{ filePath: (loraGguf as { file: string }).file, scale: 1 }] } });
  let ctx = await context();
  const out: number[] = [];
  for await (const t of ctx.getSequence().evaluate(promptIds as never[], { temperature: 0 })) {
    out.push(t as number);
    if (tokenizer.stopTokenIds.includes(t as number) || out.length >= maxNewTokens) break;
  }
  await ctx.dispose();
  let agree = 0;
  while (agree < out.length && out[agree] === fp32Greedy[agree]) agree++;
  // teacher-forced on lorafit's tokens: llama.cpp's next-token distribution after each prefix
  const seqIds = [...promptIds, ...fp32Greedy.slice(0, -1)];
  ctx = await context();
  const input = seqIds.map((t, i) => (i >= promptIds.length - 1 ? [t, { generateNext: { probabilities: true } }] : t));
  const evaluated = await ctx.getSequence().controlledEvaluate(input as never);
  await ctx.dispose();
  const theirs = evaluated.slice(promptIds.length - 1).map((o) => (o as { next?: { probabilities?: Map<number, number> } } | undefined)?.next?.probabilities);
  // lorafit's side: the merged fp32 model (W + BA, the same function as base + adapter)
  const r = await merged.forward([seqIds]);
  const V = r.shape[2];
  let argmaxAgree = 0;
  let maxDiff = 0;
  let sumDiff = 0;
  fp32Greedy.forEach((tok, k) => {
    const row = r.logits.subarray((promptIds.length - 1 + k) * V, (promptIds.length + k) * V);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    const mine = row[tok] - max - Math.log(sum);
    const probs = theirs[k];
    const p = probs?.get(tok) ?? 0;
    const diff = Math.abs(mine - Math.log(Math.max(p, 1e-30)));
    maxDiff = Math.max(maxDiff, diff);
    sumDiff += diff;
    if (probs && probs.keys().next().value === tok) argmaxAgree++;
  });
  const decode = async (ids: number[]) => (await tokenizer.decode(ids, { skipSpecialTokens: true })).trim();
  llamaCpp = {
    answer: await decode(out), lorafit: await decode(fp32Greedy), greedyTokensAgree: agree, tokens: fp32Greedy.length,
    argmaxAgree, maxLogProbDiff: Math.round(maxDiff * 1000) / 1000, meanLogProbDiff: Math.round((sumDiff / fp32Greedy.length) * 1000) / 1000,
  };
  await lm.dispose();
  await llama.dispose();
  console.log(`\nllama.cpp (${args.model} + yoda-lora.gguf) vs lorafit (fp32 + adapter):`);
  console.log(`  greedy: the first ${agree} of ${fp32Greedy.length} tokens agree\n    llama.cpp: ${llamaCpp.answer}\n    lorafit:   ${llamaCpp.lorafit}`);
  console.log(`  teacher-forced on lorafit's ${fp32Greedy.length} tokens: argmax agrees at ${argmaxAgree}; |log p(lorafit) - log p(llama.cpp)| of each token: mean ${llamaCpp.meanLogProbDiff}, max ${llamaCpp.maxLogProbDiff}`);
} catch (e) {
  llamaCpp = { skipped: (e as Error).message.split('\n')[0] };
  console.log(`\nllama.cpp check skipped: ${llamaCpp.skipped}`);
}

const same = (a: string[], b: string[]) => a.filter((x, i) => x === b[i]).length;
console.log(`\nfp32 base: merged vs unmerged adapter: ${same(mergedAnswers, yodaAnswers)}/${questions.length} answers identical; merged GGUF loaded back vs merged model: ${same(roundTripAnswers, mergedAnswers)}/${questions.length}`);
for (let i = 0; i < questions.length; i++) console.log(`  > ${questions[i]}\n    adapter: ${yodaAnswers[i]}\n    merged:  ${mergedAnswers[i]}\n    GGUF:    ${roundTripAnswers[i]}`);
const files = { hf: hfDir, gguf: gguf.file, loraGguf: 'file' in loraGguf ? loraGguf.file : null, modelfiles };
writeSummary(args.out, {
  model: args.model, dtype: args.dtype, steps, question, outputs: perRequest, concurrentMatches,
  merge: { questions, adapter: yodaAnswers, merged: mergedAnswers, mergedGgufLoadedBack: roundTripAnswers },
  llamaCpp, files, loraGgufError: 'error' in loraGguf ? loraGguf.error : null,
  exists: [hfDir, gguf.file, files.loraGguf ?? '', ...modelfiles].map((f) => existsSync(f)),
});
await model.dispose();
