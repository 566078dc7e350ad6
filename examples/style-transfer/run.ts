// Style transfer in two stages on one adapter: first answer like a Leprechaun, then like Yoda.
//   stage 1: the adapter on chats whose assistant turns are Leprechaun lines;
//   stage 2: the same adapter, trained on, on chats whose assistant turns are Yoda lines.
// The loss is on the answers only (and their end-of-turn token), through the model's chat template.
// After each stage: the held-out NLL of both styles' answers, chat answers to questions never
// trained on, style indicators (marker rates and the style-profile distance to each style) beside
// positive and negative controls, and an LLM judge when LORAFIT_JUDGE_BASE_URL is set.
//
//   node dist/examples/style-transfer/run.js [--short] [--model SPEC] [--dtype float32] [--out DIR]
import { evaluate, LoraAdapter, Trainer } from '../../lib/index.js';
import type { Model } from '../../lib/index.js';
import type { TokenizedExample } from '../../lib/data/tokenize.js';
import { styleLines } from '../default-model/corpus.js';
import { ask, chatExamples, DATA, load, meanNll, parseArgs, styleChats, writeSummary } from '../common.js';

const args = parseArgs('style-transfer');
// Full: 2 x 36 steps of batch 4 at <= 144 tokens (bf16: ~3.5 s a step on 2 idle cores, ~7 s while
// other jobs share them); short: 2 x 6 steps at <= 96.
const steps = args.short ? 6 : 36;
const seq = args.short ? 96 : 144;
const nHeld = args.short ? 8 : 24;
const nTrain = args.short ? 48 : 600;
const maxNewTokens = args.short ? 24 : 64;
// The judge client is made up front, so a missing LORAFIT_JUDGE_MODEL fails before training.
const judgeClient = process.env.LORAFIT_JUDGE_BASE_URL || process.env.OPENAI_BASE_URL ? new evaluate.JudgeClient({}) : null;
const { model, tokenizer } = await load(args.model, { dtype: args.dtype });

// The two files are rewrites of the same answers line by line: hold out the same indices of both.
const yoda = styleLines(DATA, 'yoda');
const lep = styleLines(DATA, 'leprechaun');
const held = { yoda: yoda.slice(0, nHeld), leprechaun: lep.slice(0, nHeld) };
const train = { yoda: yoda.slice(100, 100 + nTrain), leprechaun: lep.slice(100 + nTrain, 100 + 2 * nTrain) };
const heldEx: Record<'yoda' | 'leprechaun', TokenizedExample[]> = {
  yoda: await chatExamples(tokenizer, styleChats(held.yoda), seq),
  leprechaun: await chatExamples(tokenizer, styleChats(held.leprechaun), seq),
};
const questions = ['Tell me about the ocean.', 'What is a good breakfast?', 'How do I learn to code?', 'Why is the sky blue?', 'What makes a good friend?', 'How does a bicycle work?'].slice(0, args.short ? 2 : 6);

// Style markers per 100 words. Yoda: "hmm" and friends, and a clause that ends on its subject and
// verb ("Blue it is.", "Survive, they can."); Leprechaun: ye, o', wee, lad, dropped g's ("runnin'").
// On the whole data files: Yoda lines 5.7 Yoda / 0.0 Leprechaun markers, Leprechaun lines 0.2 / 11.3.
const MARKERS = {
  yoda: /\b(?:hmm+|mmm+|herh|young one|padawan)\b|\b(?:it|they|he|she|you|we|i|this|that|there)\s(?:is|are|was|were|must|will|can|do|does|did|have|has|shall|be)(?=\s*[.!?,;]|$)/gi,
  leprechaun: /\b(?:ye|yer|o'|wee|lad|laddie|lass|lassie|me hearty|begorrah?|fer|meself|rainbow|gold|mornin')(?=[\s.,!?;:]|$)|\b\w+in'(?=[\s.,!?;:]|$)/gi,
};
function markerRate(texts: string[], re: RegExp): number {
  let hits = 0;
  let words = 0;
  for (const t of texts) {
    hits += t.match(re)?.length ?? 0;
    words += t.split(/\s+/).filter(Boolean).length;
  }
  return Math.round((10000 * hits) / Math.max(1, words)) / 100;
}
// Style-profile references from training lines (never the held-out ones used as controls).
const refs = { yoda: evaluate.styleProfile(yoda.slice(100, 400)), leprechaun: evaluate.styleProfile(lep.slice(100, 400)) };
function indicators(texts: string[]) {
  const p = evaluate.styleProfile(texts);
  return {
    yodaMarkers: markerRate(texts, MARKERS.yoda),
    leprechaunMarkers: markerRate(texts, MARKERS.leprechaun),
    distanceToYoda: Math.round(evaluate.styleDistance(refs.yoda, p).total * 1000) / 1000,
    distanceToLeprechaun: Math.round(evaluate.styleDistance(refs.leprechaun, p).total * 1000) / 1000,
  };
}
const controls = {
  // positive control for Yoda / negative for Leprechaun, and the other way round
  heldOutYodaLines: indicators(held.yoda),
  heldOutLeprechaunLines: indicators(held.leprechaun),
};

interface Snapshot {
  stage: string;
  nll: { yoda: number; leprechaun: number };
  answers: string[];
  style: ReturnType<typeof indicators>;
  seconds?: number;
}
async function snapshot(stage: string, m: Model, adapter: string | null): Promise<Snapshot> {
  const nll = { yoda: await meanNll(m, heldEx.yoda), leprechaun: await meanNll(m, heldEx.leprechaun) };
  const answers = await ask(m, tokenizer, questions, { adapter, maxNewTokens });
  const s: Snapshot = { stage, nll, answers, style: indicators(answers) };
  console.log(`\n[${stage}] held-out answer NLL/token: Yoda ${nll.yoda.toFixed(3)}, Leprechaun ${nll.leprechaun.toFixed(3)}`);
  console.log(`[${stage}] markers /100 words: Yoda ${s.style.yodaMarkers}, Leprechaun ${s.style.leprechaunMarkers}; style distance: to Yoda ${s.style.distanceToYoda}, to Leprechaun ${s.style.distanceToLeprechaun}`);
  for (let i = 0; i < Math.min(3, questions.length); i++) console.log(`  > ${questions[i]}\n    ${answers[i].replaceAll('\n', ' ')}`);
  return s;
}

const adapter = await LoraAdapter.create(model, { name: 'style', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
await LoraAdapter.disableAll(model);
const snapshots: Snapshot[] = [await snapshot('base', model, null)];
await adapter.activate();

async function stage(name: 'leprechaun' | 'yoda', seed: number): Promise<void> {
  console.log(`\nstage ${name}: ${train[name].length} chats answered in ${name} style, ${steps} steps of batch 4`);
  const t0 = Date.now();
  const trainer = new Trainer({
    model, adapter, trainData: await chatExamples(tokenizer, styleChats(train[name]), seq),
    learningRate: 2e-3, maxSteps: steps, batchSize: 4, lrScheduler: 'cosine', warmupSteps: Math.min(5, steps - 1),
    outputDir: `${args.out}/stage-${name}`, seed,
  });
  trainer.on('step', (s) => (s.step % 10 === 0 || s.step === steps) && console.log(`  step ${s.step} loss ${s.loss.toFixed(3)} (${Math.round(s.tokensPerSecond)} tok/s)`));
  await trainer.fit();
  await adapter.save(`${args.out}/adapter-after-${name}`);
  const s = await snapshot(`after ${name}`, model, 'style');
  s.seconds = Math.round((Date.now() - t0) / 1000);
  snapshots.push(s);
}
await stage('leprechaun', 1);
await stage('yoda', 2);

console.log(`\ncontrols (held-out true lines): Yoda lines ${JSON.stringify(controls.heldOutYodaLines)}, Leprechaun lines ${JSON.stringify(controls.heldOutLeprechaunLines)}`);
const [base, afterLep, afterYoda] = snapshots;
for (let i = 0; i < questions.length; i++) console.log(`\n> ${questions[i]}\nbase:             ${base.answers[i]}\nafter Leprechaun: ${afterLep.answers[i]}\nafter Yoda:       ${afterYoda.answers[i]}`);

let judge: unknown = 'not run: set LORAFIT_JUDGE_BASE_URL and LORAFIT_JUDGE_MODEL (and LORAFIT_JUDGE_API_KEY) to score with an LLM judge';
if (judgeClient) {
  const client = judgeClient;
  judge = {
    yodaAfterStage2: await evaluate.judgeWithControls(client, { styleDescription: 'Yoda from Star Wars: inverted syntax (object-subject-verb), "hmm", wise and terse.', examples: yoda.slice(50, 55) }, {
      candidates: afterYoda.answers,
      negativeControls: base.answers,
      positiveControls: held.yoda.slice(0, 4),
    }),
    leprechaunAfterStage1: await evaluate.judgeWithControls(client, { styleDescription: "An Irish leprechaun: 'Top o' the mornin'', 'ye', 'me hearty', dropped g's, gold and rainbows, cheerful.", examples: lep.slice(50, 55) }, {
      candidates: afterLep.answers,
      negativeControls: base.answers,
      positiveControls: held.leprechaun.slice(0, 4),
    }),
  };
  for (const [k, r] of Object.entries(judge as Record<string, evaluate.JudgeControlsReport>)) {
    const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(2));
    console.log(`judge ${k}: candidates ${f(r.candidates.mean)}, negative control ${f(r.negativeControl.mean)}, positive control ${f(r.positiveControl.mean)}, relative to controls ${f(r.relativeToControls)}`);
  }
}
writeSummary(args.out, { model: args.model, dtype: args.dtype, steps, seq, questions, snapshots, controls, judge });
await model.dispose();
