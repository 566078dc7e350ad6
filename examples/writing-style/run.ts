// Personal writing style from a folder of Markdown posts: prepare (strip Markdown, chunk, three
// task templates), tune (QLoRA with --quantize nf4 where the loaded lorafit supports it), then
// perplexity on held-out posts base vs tuned, style indicators of generated text, and a blind A/B
// file for people to rate.
//
//   node dist/examples/writing-style/run.js [--short] [--model DIR] [--out DIR] [--posts DIR] [--quantize nf4|int8]
import { join } from 'node:path';
import { data, evaluate, LoraAdapter, Model, Tokenizer, Trainer } from '../../lib/index.js';
import type { ChatMessage } from '../../lib/chat-template.js';
import { answer, DATA, meanNll, parseArgs, writeSummary } from '../common.js';

const args = parseArgs('writing-style');
const argv = process.argv.slice(2);
const posts = argv.includes('--posts') ? argv[argv.indexOf('--posts') + 1] : join(DATA, 'markdown-blog', 'en');
const quantize = argv.includes('--quantize') ? argv[argv.indexOf('--quantize') + 1] : undefined;
const steps = args.short ? 20 : 300;
const SEQ = 384;

const tokenizer = await Tokenizer.fromDir(args.model);
const model = await Model.load(args.model, (quantize ? { quantize } : {}) as Parameters<typeof Model.load>[1]);
const corpusDir = join(args.out, 'corpus');
const stats = await data.buildMarkdownCorpus({ inputDir: posts, outputDir: corpusDir, tokenizer, minTokens: 100, maxTokens: 250, seed: 1 });
console.log(`prepared ${stats.posts} posts -> ${stats.chunks} chunks, ${stats.records.train} train / ${stats.records.val} val records`);
const limit = args.short ? 200 : undefined;
const train = await data.tokenizeDataset(await data.loadDataset(join(corpusDir, 'sft_train.jsonl'), { limit }), tokenizer, { maxSeqLength: SEQ });
const val = await data.tokenizeDataset(await data.loadDataset(join(corpusDir, 'sft_val.jsonl'), { limit: 40 }), tokenizer, { maxSeqLength: SEQ });
console.log(`tokenized: ${train.stats.examples} train examples (${train.stats.truncated} truncated), ${val.stats.examples} val`);

const adapter = await LoraAdapter.create(model, { name: 'author', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
await LoraAdapter.disableAll(model);
const basePpl = Math.exp(await meanNll(model, val.examples));
await adapter.activate();
const trainer = new Trainer({ model, adapter, trainData: train.examples, learningRate: 1e-3, maxSteps: steps, batchSize: 4, gradientAccumulationSteps: 2, lrScheduler: 'cosine', warmupSteps: 5, outputDir: join(args.out, 'run'), seed: 1, groupByLength: true });
trainer.on('step', (s) => s.step % 10 === 0 && console.log(`step ${s.step} loss ${s.loss.toFixed(3)} (${Math.round(s.tokensPerSecond)} tok/s)`));
await trainer.fit();
const tunedPpl = Math.exp(await meanNll(model, val.examples));

// Continue held-out openings with both models; compare style profiles with the author's text.
const valRecords = (await data.loadDataset(join(corpusDir, 'sft_val.jsonl'), { limit: 6 })) as { kind: string; messages: ChatMessage[] }[];
const prompts = valRecords.map((r) => r.messages.filter((m) => m.role !== 'assistant'));
const base: string[] = [];
const tuned: string[] = [];
for (const p of prompts) {
  base.push(await answer(model, tokenizer, p, { adapter: null, maxNewTokens: 80 }));
  tuned.push(await answer(model, tokenizer, p, { adapter: 'author', maxNewTokens: 80 }));
}
const reference = evaluate.styleProfile(valRecords.map((r) => r.messages.find((m) => m.role === 'assistant')!.content));
const style = evaluate.compareStyle(reference, evaluate.styleProfile(base), evaluate.styleProfile(tuned));
await evaluate.writeAbTest({ prompts: prompts.map((p) => p.at(-1)!.content), base, tuned }, { seed: 1, file: join(args.out, 'ab.jsonl'), keyFile: join(args.out, 'ab-key.json') });
console.log(`held-out perplexity: base ${basePpl.toFixed(1)} -> tuned ${tunedPpl.toFixed(1)}`);
console.log(`style distance to the author: base ${style.base.total.toFixed(3)} -> tuned ${style.tuned.total.toFixed(3)} (closer: ${style.closer})`);
console.log(`blind A/B file: ${join(args.out, 'ab.jsonl')} (key: ab-key.json)`);
writeSummary(args.out, { steps, quantize: quantize ?? null, corpus: stats, perplexity: { base: basePpl, tuned: tunedPpl }, style: { base: style.base.total, tuned: style.tuned.total, closer: style.closer }, abFile: join(args.out, 'ab.jsonl') });
await model.dispose();
