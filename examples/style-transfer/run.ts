// Style tuning: teach the model to write like Yoda, in two stages, on one loaded model.
//   stage 1: a LoRA on Yoda's lines as plain text (the style itself);
//   stage 2: the same adapter on short chats whose answers are Yoda's lines (answer in the style).
// Then: held-out log-likelihood, chat before/after (base and tuned from one model), a style score
// with controls (style indicators always; an LLM judge too when LORAFIT_JUDGE_BASE_URL is set).
//
//   node dist/examples/style-transfer/run.js [--short] [--model DIR] [--out DIR]
import { evaluate, LoraAdapter, Trainer } from '../../lib/index.js';
import { styleLines } from '../default-model/corpus.js';
import { answer, chatExamples, DATA, load, meanNll, parseArgs, textExamples, writeSummary } from '../common.js';

const args = parseArgs('style-transfer');
const steps = args.short ? 30 : 300;
const { model, tokenizer } = await load(args.model);
const yoda = styleLines(DATA, 'yoda');
const heldOut = yoda.slice(0, 40);
const trainLines = yoda.slice(40, args.short ? 400 : yoda.length);
const prompts = ['Tell me about the ocean.', 'What is a good breakfast?', 'How do I learn to code?', 'Why is the sky blue?'];

const heldOutExamples = await textExamples(tokenizer, heldOut);
const adapter = await LoraAdapter.create(model, { name: 'yoda', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
await LoraAdapter.disableAll(model);
const baseNll = await meanNll(model, heldOutExamples);
const baseAnswers = await Promise.all(prompts.map((p) => answer(model, tokenizer, [{ role: 'user', content: p }], { adapter: null })));
await adapter.activate();

console.log(`stage 1: ${trainLines.length} Yoda lines as text, ${steps} steps`);
const stage1 = new Trainer({ model, adapter, trainData: await textExamples(tokenizer, trainLines), evalData: heldOutExamples, learningRate: 2e-3, maxSteps: steps, batchSize: 8, lrScheduler: 'cosine', warmupSteps: 5, outputDir: `${args.out}/stage1`, seed: 1 });
stage1.on('step', (s) => s.step % 10 === 0 && console.log(`  step ${s.step} loss ${s.loss.toFixed(3)}`));
await stage1.fit();

console.log('stage 2: the same adapter on chats answered in Yoda style');
const chats = trainLines.map((line, i) => [
  { role: 'user', content: prompts[i % prompts.length] },
  { role: 'assistant', content: line },
]);
const stage2 = new Trainer({ model, adapter, trainData: await chatExamples(tokenizer, chats), learningRate: 1e-3, maxSteps: Math.ceil(steps / 2), batchSize: 8, lrScheduler: 'cosine', outputDir: `${args.out}/stage2`, seed: 2 });
await stage2.fit();
await adapter.save(`${args.out}/adapter`);

const tunedNll = await meanNll(model, heldOutExamples);
const tunedAnswers = await Promise.all(prompts.map((p) => answer(model, tokenizer, [{ role: 'user', content: p }], { adapter: 'yoda' })));
for (let i = 0; i < prompts.length; i++) console.log(`\n> ${prompts[i]}\nbase:  ${baseAnswers[i]}\ntuned: ${tunedAnswers[i]}`);

// Style score: distance of the answers' style profile from real Yoda lines, beside controls.
const reference = evaluate.styleProfile(yoda.slice(40, 240));
const score = (texts: string[]) => evaluate.styleDistance(reference, evaluate.styleProfile(texts)).total;
const style = {
  base: score(baseAnswers),
  tuned: score(tunedAnswers),
  negativeControl: score(styleLines(DATA, 'leprechaun').slice(0, 40)),
  positiveControl: score(heldOut),
};
console.log(`\nheld-out Yoda NLL/token: base ${baseNll.toFixed(3)} -> tuned ${tunedNll.toFixed(3)}`);
console.log(`style distance to Yoda (lower is closer): base ${style.base.toFixed(3)}, tuned ${style.tuned.toFixed(3)}, plain-text control ${style.negativeControl.toFixed(3)}, true-Yoda control ${style.positiveControl.toFixed(3)}`);

let judge: unknown = 'not run: set LORAFIT_JUDGE_BASE_URL (and LORAFIT_JUDGE_API_KEY) to score with an LLM judge';
if (process.env.LORAFIT_JUDGE_BASE_URL || process.env.OPENAI_BASE_URL) {
  const client = new evaluate.JudgeClient({});
  judge = await evaluate.judgeWithControls(client, { styleDescription: 'Yoda from Star Wars: inverted syntax (object-subject-verb), "hmm", wise and terse.', examples: yoda.slice(300, 305) }, {
    candidates: tunedAnswers,
    negativeControls: styleLines(DATA, 'leprechaun').slice(0, 4),
    positiveControls: heldOut.slice(0, 4),
  });
}
writeSummary(args.out, { steps, heldOutNll: { base: baseNll, tuned: tunedNll }, styleDistance: style, judge, prompts, baseAnswers, tunedAnswers });
await model.dispose();
