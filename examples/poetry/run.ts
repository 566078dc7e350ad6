// Classical Chinese poetry: LoRA on short poems of 唐诗三百首 and 宋词三百首 as chats
// ("写一首诗，题目：…" / "写一首词，词牌：…" -> the poem), with a checkpoint after a few steps and the
// adapter after many; both are loaded beside each other on the same model, and a blind A/B file
// compares early vs late answers to the same held-out prompts (a second file: base vs late).
// The Trainer writes the loss curves (run/metrics.jsonl, run/loss-curve.svg).
//
// SmolLM2 is English-first: its tokenizer spends ~2 tokens on a Chinese character, and the base
// model rarely writes classical verse. The form indicators below (share of lines of 5 or 7 Han
// characters, share of Han characters) show what the tuning changes, beside the answer-token loss.
//
//   node dist/examples/poetry/run.js [--short] [--model SPEC] [--dtype float32] [--out DIR]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate, LoraAdapter, Trainer } from '../../lib/index.js';
import type { ChatMessage } from '../../lib/text/chat-template.js';
import { answerAll, chatExamples, DATA, load, meanNll, parseArgs, writeSummary } from '../common.js';

const args = parseArgs('poetry');
// Full: 15 vs 60 steps of batch 4 at <= 160 tokens (the 100 vs 500, scaled to ~10 minutes
// on 2 shared cores: 100 steps took 13.6 minutes there); short: 3 vs 8 steps.
const [early, late] = args.short ? [3, 8] : [15, 60];
const seq = args.short ? 96 : 160;
const maxNewTokens = args.short ? 32 : 96;
const { model, tokenizer } = await load(args.model, { dtype: args.dtype });

type Poem = { title?: string; rhythmic?: string; author: string; paragraphs: string[] };
const read = (f: string) => JSON.parse(readFileSync(join(DATA, 'poetry', f), 'utf8')) as Poem[];
// Short poems only (<= 64 characters: quatrains, 5-character regulated verse, short ci), each text
// once (the anthology lists a few poems twice under two authors).
const seen = new Set<string>();
const keep = (p: Poem) => {
  const text = p.paragraphs.join('');
  if (text.length > 64 || seen.has(text)) return false;
  seen.add(text);
  return true;
};
const tang = read('tang300.json').filter(keep);
const song = read('song300.json').filter(keep);
const request = (p: Poem) => (p.rhythmic ? `写一首词，词牌：${p.rhythmic}` : `写一首诗，题目：${p.title}`);
const toChat = (p: Poem): ChatMessage[] => [{ role: 'user', content: request(p) }, { role: 'assistant', content: p.paragraphs.join('\n') }];
// Held out (eval loss and the A/B prompts): every 30th Tang poem and every 12th Song ci.
const nHeld = args.short ? { tang: 2, song: 1 } : { tang: 8, song: 4 };
const heldTang = tang.filter((_, i) => i % 30 === 0).slice(0, nHeld.tang);
const heldSong = song.filter((_, i) => i % 12 === 0).slice(0, nHeld.song);
const held = [...heldTang, ...heldSong];
const trainPoems = [...tang, ...song].filter((p) => !held.includes(p));
const trainData = await chatExamples(tokenizer, trainPoems.map(toChat), seq);
const evalData = await chatExamples(tokenizer, held.map(toChat), seq);
const prompts = held.map((p) => [{ role: 'user', content: request(p) }] as ChatMessage[]);
console.log(`${trainPoems.length} poems to train on (${tang.length - heldTang.length} Tang, ${song.length - heldSong.length} Song ci), ${held.length} held out`);

/** Form indicators of generated poems: Han share, and lines of exactly 5 or 7 Han characters. */
function form(texts: string[]) {
  let han = 0;
  let chars = 0;
  let lines = 0;
  let regular = 0;
  for (const t of texts) {
    for (const ch of t.replace(/\s/g, '')) {
      chars++;
      if (/\p{Script=Han}/u.test(ch)) han++;
    }
    // A line is a clause ended by ， 。 ！ ？ ； or a line break.
    for (const clause of t.split(/[，。！？；,.!?;\n]/)) {
      const n = [...clause].filter((ch) => /\p{Script=Han}/u.test(ch)).length;
      if (clause.trim() === '') continue;
      lines++;
      if ((n === 5 || n === 7) && n === [...clause.trim()].length) regular++;
    }
  }
  return { hanShare: Math.round((1000 * han) / Math.max(1, chars)) / 1000, regularLineShare: Math.round((1000 * regular) / Math.max(1, lines)) / 1000 };
}

const adapter = await LoraAdapter.create(model, { name: 'poet', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
await LoraAdapter.disableAll(model);
const baseLoss = await meanNll(model, evalData);
const base = await answerAll(model, tokenizer, prompts, { adapter: null, maxNewTokens });
await adapter.activate();
console.log(`base: held-out answer loss ${baseLoss.toFixed(3)}; training ${late} steps, checkpoint and eval every ${early}`);
const trainer = new Trainer({
  model, adapter, trainData, evalData, learningRate: 1e-3, maxSteps: late, batchSize: 4, lrScheduler: 'cosine', warmupSteps: Math.min(5, early),
  evalSteps: early, saveSteps: early, outputDir: join(args.out, 'run'), seed: 1,
});
const evals: { step: number; evalLoss: number }[] = [];
trainer.on('eval', (e) => {
  evals.push({ step: e.step, evalLoss: e.evalLoss });
  console.log(`step ${e.step}: eval loss ${e.evalLoss.toFixed(3)}`);
});
trainer.on('step', (s) => s.step % 10 === 0 && console.log(`step ${s.step} loss ${s.loss.toFixed(3)} (${Math.round(s.tokensPerSecond)} tok/s)`));
await trainer.fit();

// The checkpoint after `early` steps, loaded beside the final adapter.
const earlyAdapter = await LoraAdapter.load(model, join(args.out, 'run', `checkpoint-${early}`, 'adapter'), { name: 'poet-early', activate: false });
const tunedEarly = await answerAll(model, tokenizer, prompts, { adapter: earlyAdapter.name, maxNewTokens });
const tunedLate = await answerAll(model, tokenizer, prompts, { adapter: 'poet', maxNewTokens });
for (let i = 0; i < prompts.length; i++) {
  console.log(`\n${prompts[i][0].content}\nreference (${held[i].author}):\n${held[i].paragraphs.join('\n')}\nbase:\n${base[i]}\nafter ${early} steps:\n${tunedEarly[i]}\nafter ${late} steps:\n${tunedLate[i]}`);
}
const promptTexts = prompts.map((p) => p[0].content as string);
// early vs late: "base" in the key file means the early checkpoint, "tuned" the late one.
await evaluate.writeAbTest({ prompts: promptTexts, base: tunedEarly, tuned: tunedLate }, { seed: 1, file: join(args.out, 'ab-early-vs-late.jsonl'), keyFile: join(args.out, 'ab-early-vs-late-key.json') });
await evaluate.writeAbTest({ prompts: promptTexts, base, tuned: tunedLate }, { seed: 2, file: join(args.out, 'ab-base-vs-late.jsonl'), keyFile: join(args.out, 'ab-base-vs-late-key.json') });
const earlyLoss = evals.find((e) => e.step === early)?.evalLoss ?? NaN;
const lateLoss = evals.at(-1)?.evalLoss ?? NaN;
const forms = { reference: form(held.map((p) => p.paragraphs.join('\n'))), base: form(base), early: form(tunedEarly), late: form(tunedLate) };
console.log(`\nheld-out answer loss: base ${baseLoss.toFixed(3)} -> ${early} steps ${earlyLoss.toFixed(3)} -> ${late} steps ${lateLoss.toFixed(3)}`);
console.log(`form (Han share / lines of 5 or 7 characters): reference ${JSON.stringify(forms.reference)}, base ${JSON.stringify(forms.base)}, early ${JSON.stringify(forms.early)}, late ${JSON.stringify(forms.late)}`);
console.log(`loss curve: ${join(args.out, 'run', 'loss-curve.svg')}; blind A/B: ${join(args.out, 'ab-early-vs-late.jsonl')}, ${join(args.out, 'ab-base-vs-late.jsonl')}`);
writeSummary(args.out, {
  model: args.model, dtype: args.dtype, steps: { early, late }, seq,
  evalLoss: { base: baseLoss, early: earlyLoss, late: lateLoss }, evals, form: forms,
  samples: prompts.map((p, i) => ({ prompt: p[0].content, reference: held[i].paragraphs.join('\n'), base: base[i], early: tunedEarly[i], late: tunedLate[i] })),
  abFile: join(args.out, 'ab-early-vs-late.jsonl'), abBaseFile: join(args.out, 'ab-base-vs-late.jsonl'),
  lossCurve: join(args.out, 'run', 'loss-curve.svg'),
});
await model.dispose();
