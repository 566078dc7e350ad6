// Domain Q/A: teach the model facts about itself (LLaMA-Factory's identity set, placeholders
// filled in), then measure token F1 / exact match on held-out questions, base vs tuned.
//
//   node dist/examples/domain-qa/run.js [--short] [--model DIR] [--out DIR]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate, LoraAdapter, Trainer } from '../../lib/index.js';
import { permutation } from '../../lib/train/random.js';
import { answer, chatExamples, DATA, load, parseArgs, writeSummary } from '../common.js';

const args = parseArgs('domain-qa');
const steps = args.short ? 40 : 300;
const { model, tokenizer } = await load(args.model);
const rows = JSON.parse(readFileSync(join(DATA, 'identity.json'), 'utf8')) as { instruction: string; output: string }[];
const fill = (s: string) => s.replaceAll('{{name}}', 'Lorafit Tiny').replaceAll('{{author}}', 'the lorafit team');
const qa = permutation(rows.length, 7).map((i) => ({ q: fill(rows[i].instruction), a: fill(rows[i].output) }));
const test = qa.slice(0, 12);
const train = qa.slice(12);
const toChat = (x: { q: string; a: string }) => [{ role: 'user', content: x.q }, { role: 'assistant', content: x.a }];

const adapter = await LoraAdapter.create(model, { name: 'identity', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
const trainer = new Trainer({ model, adapter, trainData: await chatExamples(tokenizer, train.map(toChat)), evalData: await chatExamples(tokenizer, test.map(toChat)), learningRate: 2e-3, maxSteps: steps, batchSize: 8, lrScheduler: 'cosine', warmupSteps: 5, seed: 1 });
trainer.on('step', (s) => s.step % 20 === 0 && console.log(`step ${s.step} loss ${s.loss.toFixed(3)}`));
await trainer.fit();

const base: string[] = [];
const tuned: string[] = [];
for (const x of test) {
  base.push(await answer(model, tokenizer, [{ role: 'user', content: x.q }], { adapter: null, maxNewTokens: 64 }));
  tuned.push(await answer(model, tokenizer, [{ role: 'user', content: x.q }], { adapter: 'identity', maxNewTokens: 64 }));
}
const refs = test.map((x) => [x.a]);
const scoreBase = evaluate.f1EmCorpus(base, refs);
const scoreTuned = evaluate.f1EmCorpus(tuned, refs);
for (let i = 0; i < 3; i++) console.log(`\nQ: ${test[i].q}\nreference: ${test[i].a}\nbase:  ${base[i]}\ntuned: ${tuned[i]}`);
console.log(`\nheld-out questions (${test.length}): F1 ${scoreBase.f1.toFixed(3)} -> ${scoreTuned.f1.toFixed(3)}, EM ${scoreBase.exactMatch.toFixed(3)} -> ${scoreTuned.exactMatch.toFixed(3)}`);
writeSummary(args.out, { steps, f1: { base: scoreBase.f1, tuned: scoreTuned.f1 }, exactMatch: { base: scoreBase.exactMatch, tuned: scoreTuned.exactMatch }, questions: test.map((x, i) => ({ ...x, base: base[i], tuned: tuned[i] })) });
await model.dispose();
