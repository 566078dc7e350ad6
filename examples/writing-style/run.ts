// Personal writing style from a folder of Markdown posts, with QLoRA:
//   1. prepare: data.buildMarkdownCorpus (what `lorafit prepare markdown DIR --out DIR --model M`
//      runs): front matter and Markdown stripped, chunks of 300-800 tokens counted with the model's
//      tokenizer, three task templates per chunk (rewrite notes, continue, expand an outline),
//      split by post;
//   2. tune: the base loaded as NF4 with double quantization (QLoRA), bf16 compute, gradient
//      checkpointing, cosine schedule with warmup;
//   3. evaluate: perplexity of the held-out posts' text (the answers of their records), base vs
//      tuned; style indicators of continuations of held-out openings; a blind A/B file.
//
//   node dist/examples/writing-style/run.js [--short] [--model SPEC] [--dtype float32] [--out DIR] [--posts DIR]
import { join } from 'node:path';
import { data, evaluate, LoraAdapter, Trainer } from '../../lib/index.js';
import type { ChatMessage } from '../../lib/text/chat-template.js';
import type { StyleRecord } from '../../lib/data/markdown-corpus.js';
import { answerAll, DATA, elapsedSeconds, flag, load, meanNll, parseArgs, writeSummary } from '../common.js';
import { readFileSync } from 'node:fs';

const args = parseArgs('writing-style');
const posts = flag(args.argv, '--posts') ?? join(DATA, 'markdown-blog', 'en');
// NF4 + checkpointing trains at ~55 tok/s on 2 shared cores (~25 s a step of 2 x 768 tokens), so
// the full mode sees only a slice of the corpus: 16 steps of 2 examples at <= 768 tokens (32 of the
// ~216 records); short: 3 steps at <= 512 (held-out passages at <= 768), no warmup.
const steps = args.short ? 3 : 16;
const seq = args.short ? 512 : 768;
const evalSeq = 768;
const lr = 1e-3;
const warmup = args.short ? 0 : 2;
const nEval = args.short ? 2 : 6;
const nStyle = args.short ? 2 : 4;
const maxNewTokens = args.short ? 24 : 120;
const { model, tokenizer } = await load(args.model, { dtype: args.dtype, quantize: 'nf4', doubleQuant: true });
const storage = await model.storageReport();
console.log(`QLoRA base: NF4 + double quant, ${args.dtype} compute; ${(storage.totalBytes / 2 ** 20).toFixed(0)} MiB of weights (${storage.bytesPerQuantizedParam?.toFixed(3) ?? '?'} bytes per quantized parameter)`);

// 1. prepare
const corpusDir = join(args.out, 'corpus');
const stats = await data.buildMarkdownCorpus({ inputDir: posts, outputDir: corpusDir, tokenizer, minTokens: 300, maxTokens: 800, seed: 1 });
console.log(`prepared ${stats.posts} posts -> ${stats.chunks} chunks of ${stats.chunkTokens.min}-${stats.chunkTokens.max} tokens (mean ${stats.chunkTokens.mean}), ${stats.records.train} train / ${stats.records.val} val records (${JSON.stringify(stats.tasks)}); held-out posts: ${stats.valPosts.join(', ')}`);
console.log(`  (the same as: lorafit prepare markdown ${posts} --out ${corpusDir} --model ${args.model} --seed 1)`);
const trainRecords = await data.loadDataset(join(corpusDir, 'sft_train.jsonl'));
const train = await data.tokenizeDataset(trainRecords, tokenizer, { maxSeqLength: seq });
// Perplexity on held-out posts: the 'continue' records (first 40% of a chunk -> the rest) of the
// posts no training record came from; the loss is on the author's text only.
const valRaw = readFileSync(join(corpusDir, 'sft_val.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StyleRecord);
const valContinue = valRaw.filter((r) => r.task === 'continue');
const toRecord = (r: StyleRecord) => ({ kind: 'conversation' as const, messages: r.messages });
const val = await data.tokenizeDataset(valContinue.slice(0, nEval).map(toRecord), tokenizer, { maxSeqLength: evalSeq });
console.log(`tokenized: ${train.stats.examples} train examples (${train.stats.truncated} cut at ${seq} tokens, ${train.stats.droppedNoLabels} without answer tokens left), ${val.stats.examples} held-out examples (${val.stats.trainedTokens} answer tokens)`);

const adapter = await LoraAdapter.create(model, { name: 'author', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
await LoraAdapter.disableAll(model);
const baseNll = await meanNll(model, val.examples, 2);
// Style: continue held-out openings (one per held-out chunk) with both models.
const stylePrompts = valContinue.slice(0, nStyle).map((r) => r.messages.filter((m) => m.role !== 'assistant') as ChatMessage[]);
const references = valContinue.map((r) => r.messages.find((m) => m.role === 'assistant')!.content as string);
const base = await answerAll(model, tokenizer, stylePrompts, { adapter: null, maxNewTokens });
await adapter.activate();

console.log(`[${elapsedSeconds()} s] base perplexity and answers done; training: ${steps} steps of 2 examples, lr ${lr} cosine with ${warmup} warmup steps, gradient checkpointing`);
const trainer = new Trainer({
  model, adapter, trainData: train.examples, learningRate: lr, maxSteps: steps, batchSize: 2, lrScheduler: 'cosine', warmupSteps: warmup,
  gradientCheckpointing: true, outputDir: join(args.out, 'run'), seed: 1,
});
trainer.on('step', (s) => (s.step % 4 === 0 || s.step === steps) && console.log(`[${elapsedSeconds()} s] step ${s.step} loss ${s.loss.toFixed(3)} (${Math.round(s.tokensPerSecond)} tok/s)`));
await trainer.fit();
await adapter.save(join(args.out, 'adapter'));
const tunedNll = await meanNll(model, val.examples, 2);
const tuned = await answerAll(model, tokenizer, stylePrompts, { adapter: 'author', maxNewTokens });

const reference = evaluate.styleProfile(references);
const style = evaluate.compareStyle(reference, evaluate.styleProfile(base), evaluate.styleProfile(tuned));
const promptTexts = stylePrompts.map((p) => p.at(-1)!.content as string);
await evaluate.writeAbTest({ prompts: promptTexts, base, tuned }, { seed: 1, file: join(args.out, 'ab.jsonl'), keyFile: join(args.out, 'ab-key.json') });
for (let i = 0; i < Math.min(2, base.length); i++) {
  console.log(`\n--- opening (held-out post):\n${promptTexts[i].split('\n\n').slice(1).join('\n\n').slice(-400)}\n--- author:\n${references[i].slice(0, 400)}\n--- base:\n${base[i]}\n--- tuned:\n${tuned[i]}`);
}
const ppl = { base: Math.exp(baseNll), tuned: Math.exp(tunedNll) };
console.log(`\n[${elapsedSeconds()} s] held-out perplexity (${val.stats.trainedTokens} tokens of ${val.stats.examples} held-out passages): base ${ppl.base.toFixed(2)} -> tuned ${ppl.tuned.toFixed(2)}`);
console.log(`style distance to the author (lower is closer): base ${style.base.total.toFixed(3)} -> tuned ${style.tuned.total.toFixed(3)} (closer: ${style.closer})`);
console.log(`blind A/B file: ${join(args.out, 'ab.jsonl')} (key: ab-key.json)`);
writeSummary(args.out, {
  model: args.model, dtype: args.dtype, quantize: 'nf4', doubleQuant: true, gradientCheckpointing: true, steps, seq, evalSeq, learningRate: lr, warmupSteps: warmup,
  weightsMiB: storage.totalBytes / 2 ** 20, corpus: stats, tokenized: { train: train.stats, val: val.stats },
  perplexity: ppl, nll: { base: baseNll, tuned: tunedNll },
  style: { base: style.base, tuned: style.tuned, closer: style.closer },
  samples: promptTexts.map((p, i) => ({ prompt: p, author: references[i], base: base[i], tuned: tuned[i] })),
  abFile: join(args.out, 'ab.jsonl'),
});
await model.dispose();
