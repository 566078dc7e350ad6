// Domain Q/A: teach the model who it is (LLaMA-Factory's identity set, English and Chinese, with
// {{name}}/{{author}} filled in) from a conversations JSONL, check the label masks (only the
// assistant's tokens and its end-of-turn token carry labels), then score held-out questions with
// token F1 / exact match and the NLL of the reference answers, base vs tuned, on one loaded model.
//
//   node dist/examples/domain-qa/run.js [--short] [--model SPEC] [--dtype float32] [--out DIR]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { data, evaluate, LoraAdapter, Trainer } from '../../lib/index.js';
import type { ChatMessage } from '../../lib/text/chat-template.js';
import type { TokenizedExample } from '../../lib/data/tokenize.js';
import { permutation } from '../../lib/train/random.js';
import { ask, DATA, load, meanNll, parseArgs, writeSummary } from '../common.js';

const args = parseArgs('domain-qa');
// Full: 60 steps of batch 4 (~3 epochs of the 75 training conversations; ~6 s a step on 2 shared
// cores); short: 8 steps.
const steps = args.short ? 8 : 60;
const nTest = args.short ? 6 : 16;
const { model, tokenizer } = await load(args.model, { dtype: args.dtype });

// 1. A conversations JSONL ({"conversations": [{role, content}, ...]} a line) from the alpaca rows.
const NAME = 'Sprout';
const AUTHOR = 'the lorafit team';
const rows = JSON.parse(readFileSync(join(DATA, 'identity.json'), 'utf8')) as { instruction: string; input: string; output: string }[];
const fill = (s: string) => s.replaceAll('{{name}}', NAME).replaceAll('{{author}}', AUTHOR);
const order = permutation(rows.length, 7);
const toRecord = (i: number) => ({ conversations: [{ role: 'user', content: fill(rows[i].instruction + (rows[i].input ? `\n${rows[i].input}` : '')) }, { role: 'assistant', content: fill(rows[i].output) }] });
const files = { train: join(args.out, 'identity-train.jsonl'), test: join(args.out, 'identity-test.jsonl') };
writeFileSync(files.test, order.slice(0, nTest).map((i) => JSON.stringify(toRecord(i))).join('\n') + '\n');
writeFileSync(files.train, order.slice(nTest).map((i) => JSON.stringify(toRecord(i))).join('\n') + '\n');
const trainRecords = await data.loadDataset(files.train);
const testRecords = await data.loadDataset(files.test);
const train = await data.tokenizeDataset(trainRecords, tokenizer, { maxSeqLength: 256 });
const test = await data.tokenizeDataset(testRecords, tokenizer, { maxSeqLength: 256 });
console.log(`${files.train}: ${train.stats.examples} conversations, ${train.stats.trainedTokens} of ${train.stats.tokens} tokens carry labels; ${files.test}: ${test.stats.examples}`);

// 2. Label masks: the prompt (system + user turn + the assistant header) is all -100; the labels
//    are exactly the input ids from there on, and decode to the answer plus the end-of-turn token.
async function checkMasks(records: data.DataRecord[], examples: TokenizedExample[]): Promise<{ checked: number; failures: string[] }> {
  const failures: string[] = [];
  for (const [k, rec] of records.entries()) {
    if (rec.kind !== 'conversation') throw new Error('expected conversations');
    const ex = examples[k];
    const messages = rec.messages as ChatMessage[];
    const prompt = await tokenizer.encodeChat(messages.slice(0, -1), { addGenerationPrompt: true });
    const ids = Array.from(ex.inputIds);
    const labels = Array.from(ex.labels);
    const labelled = labels.map((l, i) => (l >= 0 ? i : -1)).filter((i) => i >= 0);
    const fail = (why: string) => failures.push(`#${k} ${JSON.stringify(messages[0].content)}: ${why}`);
    if (prompt.some((t, i) => ids[i] !== t)) fail('the prompt ids are not a prefix of the example');
    if (labelled.length === 0 || labelled[0] < prompt.length) fail(`a label at ${labelled[0]} falls inside the ${prompt.length}-token prompt`);
    if (labelled.some((i, j) => j > 0 && i !== labelled[j - 1] + 1)) fail('the labelled tokens are not one contiguous span');
    if (labelled.some((i) => labels[i] !== ids[i])) fail('a label differs from its input id');
    const text = await tokenizer.decode(labelled.map((i) => ids[i]), { skipSpecialTokens: false });
    const expected = `${messages.at(-1)!.content}${tokenizer.endOfTurn?.trim() ?? ''}`;
    if (text !== expected) fail(`labels decode to ${JSON.stringify(text)}, expected ${JSON.stringify(expected)}`);
  }
  return { checked: records.length, failures };
}
const masks = await checkMasks([...trainRecords, ...testRecords], [...train.examples, ...test.examples]);
console.log(`label masks: ${masks.checked} conversations checked, ${masks.failures.length} failures`);
for (const f of masks.failures.slice(0, 5)) console.log(`  ${f}`);
if (masks.failures.length) process.exitCode = 1;

// 3. Base, tune, tuned: one model, the adapter switched per call.
const questions = testRecords.map((r) => (r.kind === 'conversation' ? (r.messages[0].content as string) : ''));
const references = testRecords.map((r) => (r.kind === 'conversation' ? (r.messages[1].content as string) : ''));
const adapter = await LoraAdapter.create(model, { name: 'identity', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
await LoraAdapter.disableAll(model);
const baseNll = await meanNll(model, test.examples);
const base = await ask(model, tokenizer, questions, { adapter: null, maxNewTokens: 64 });
await adapter.activate();
const trainer = new Trainer({ model, adapter, trainData: train.examples, learningRate: 2e-3, maxSteps: steps, batchSize: 4, lrScheduler: 'cosine', warmupSteps: Math.min(5, steps - 1), outputDir: join(args.out, 'run'), seed: 1 });
trainer.on('step', (s) => (s.step % 10 === 0 || s.step === steps) && console.log(`step ${s.step} loss ${s.loss.toFixed(3)} (${Math.round(s.tokensPerSecond)} tok/s)`));
await trainer.fit();
await adapter.save(join(args.out, 'adapter'));
const tunedNll = await meanNll(model, test.examples);
const tuned = await ask(model, tokenizer, questions, { adapter: 'identity', maxNewTokens: 64 });

const refs = references.map((r) => [r]);
const scoreBase = evaluate.f1EmCorpus(base, refs);
const scoreTuned = evaluate.f1EmCorpus(tuned, refs);
// The same scores by the question's language (Chinese is scored per character, English per word).
const byLanguage: Record<string, { questions: number; f1: { base: number; tuned: number }; exactMatch: { base: number; tuned: number } }> = {};
for (const lang of ['en', 'zh']) {
  const idx = questions.map((q, i) => (/\p{Script=Han}/u.test(q) === (lang === 'zh') ? i : -1)).filter((i) => i >= 0);
  if (idx.length === 0) continue;
  const b = evaluate.f1EmCorpus(idx.map((i) => base[i]), idx.map((i) => refs[i]));
  const t = evaluate.f1EmCorpus(idx.map((i) => tuned[i]), idx.map((i) => refs[i]));
  byLanguage[lang] = { questions: idx.length, f1: { base: b.f1, tuned: t.f1 }, exactMatch: { base: b.exactMatch, tuned: t.exactMatch } };
}
for (let i = 0; i < Math.min(4, questions.length); i++) console.log(`\nQ: ${questions[i]}\nreference: ${references[i]}\nbase:  ${base[i]}\ntuned: ${tuned[i]}`);
console.log(`\nheld-out questions (${questions.length}): F1 ${scoreBase.f1.toFixed(3)} -> ${scoreTuned.f1.toFixed(3)}, EM ${scoreBase.exactMatch.toFixed(3)} -> ${scoreTuned.exactMatch.toFixed(3)}; reference-answer NLL/token ${baseNll.toFixed(3)} -> ${tunedNll.toFixed(3)}`);
for (const [lang, r] of Object.entries(byLanguage)) console.log(`  ${lang} (${r.questions}): F1 ${r.f1.base.toFixed(3)} -> ${r.f1.tuned.toFixed(3)}, EM ${r.exactMatch.base.toFixed(3)} -> ${r.exactMatch.tuned.toFixed(3)}`);
writeSummary(args.out, {
  model: args.model, dtype: args.dtype, steps, files, masks,
  f1: { base: scoreBase.f1, tuned: scoreTuned.f1 }, exactMatch: { base: scoreBase.exactMatch, tuned: scoreTuned.exactMatch }, byLanguage,
  referenceNll: { base: baseNll, tuned: tunedNll },
  questions: questions.map((q, i) => ({ q, reference: references[i], base: base[i], tuned: tuned[i] })),
});
await model.dispose();
