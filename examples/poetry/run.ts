// Classical Chinese poetry: tune on 唐诗三百首 as chats ("写一首诗，题目：…" -> the poem), compare
// the adapter after few and after many steps, and write a blind A/B file of base vs tuned answers
// on the same prompts (such as 床前明月光，).
//
//   node dist/examples/poetry/run.js [--short] [--model DIR] [--out DIR]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate, LoraAdapter, Trainer } from '../../lib/index.js';
import { answer, chatExamples, complete, DATA, load, meanNll, parseArgs, writeSummary } from '../common.js';

const args = parseArgs('poetry');
const [early, late] = args.short ? [10, 30] : [100, 500];
const { model, tokenizer } = await load(args.model);
const poems = JSON.parse(readFileSync(join(DATA, 'poetry', 'tang300.json'), 'utf8')) as { title: string; paragraphs: string[] }[];
const chats = poems.map((p) => [
  { role: 'user', content: `写一首诗，题目：${p.title}` },
  { role: 'assistant', content: p.paragraphs.join('\n') },
]);
const evalChats = chats.slice(0, 30);
const examples = await chatExamples(tokenizer, chats.slice(30));
const evalExamples = await chatExamples(tokenizer, evalChats);

const adapter = await LoraAdapter.create(model, { name: 'poet', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
await LoraAdapter.disableAll(model);
const baseNll = await meanNll(model, evalExamples);
await adapter.activate();
const trainer = new Trainer({ model, adapter, trainData: examples, evalData: evalExamples, learningRate: 1e-3, maxSteps: late, batchSize: 8, lrScheduler: 'cosine', warmupSteps: 5, evalSteps: early, saveSteps: early, outputDir: join(args.out, 'run'), seed: 1 });
const evals: { step: number; evalLoss: number }[] = [];
trainer.on('eval', (e) => {
  evals.push({ step: e.step, evalLoss: e.evalLoss });
  console.log(`step ${e.step}: eval loss ${e.evalLoss.toFixed(3)}`);
});
await trainer.fit();

const prompts = ['床前明月光，', '春眠不觉晓，', '白日依山尽，'];
const titles = ['静夜思', '春晓', '登鹳雀楼'];
const base: string[] = [];
const tunedLate: string[] = [];
for (const t of titles) {
  base.push(await answer(model, tokenizer, [{ role: 'user', content: `写一首诗，题目：${t}` }], { adapter: null }));
  tunedLate.push(await answer(model, tokenizer, [{ role: 'user', content: `写一首诗，题目：${t}` }], { adapter: 'poet' }));
}
// the adapter after `early` steps, loaded beside the final one
const earlyAdapter = await LoraAdapter.load(model, join(args.out, 'run', `checkpoint-${early}`, 'adapter'), { name: 'poet-early', activate: false });
const tunedEarly: string[] = [];
for (const t of titles) tunedEarly.push(await answer(model, tokenizer, [{ role: 'user', content: `写一首诗，题目：${t}` }], { adapter: earlyAdapter.name }));
const continuations = [];
for (const p of prompts) continuations.push({ prompt: p, base: await complete(model, tokenizer, p, { adapter: null }), tuned: await complete(model, tokenizer, p, { adapter: 'poet' }) });
for (let i = 0; i < titles.length; i++) console.log(`\n《${titles[i]}》\nbase:\n${base[i]}\nafter ${early} steps:\n${tunedEarly[i]}\nafter ${late} steps:\n${tunedLate[i]}`);
for (const c of continuations) console.log(`\n${c.prompt}\nbase:  ${c.base}\ntuned: ${c.tuned}`);

await evaluate.writeAbTest(
  { prompts: titles.map((t) => `写一首诗，题目：${t}`), base, tuned: tunedLate },
  { seed: 1, file: join(args.out, 'ab.jsonl'), keyFile: join(args.out, 'ab-key.json') },
);
const finalNll = evals.at(-1)!.evalLoss;
console.log(`\neval loss (answer tokens): base ${baseNll.toFixed(3)} -> ${early} steps ${evals[0].evalLoss.toFixed(3)} -> ${late} steps ${finalNll.toFixed(3)}; loss curve: ${join(args.out, 'run', 'loss-curve.svg')}`);
writeSummary(args.out, { steps: { early, late }, evalLoss: { base: baseNll, early: evals[0].evalLoss, late: finalNll }, evals, samples: { titles, base, tunedEarly, tunedLate }, continuations, abFile: join(args.out, 'ab.jsonl') });
await model.dispose();
