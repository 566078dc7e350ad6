// The main job on the embedded default (README: `npm run demo`): LoRA-tune the shipped tiny model
// (pretrained by examples/default-model/pretrain.ts on Tang/Song poetry and Leprechaun-style
// lines) to a style it never saw, Yoda's, and show the eval-loss drop and answers before/after.
// The same job from the CLI: `lorafit train` (no arguments).
import { fileURLToPath } from 'node:url';
import { chat, data, LoraAdapter, Model, Tokenizer, Trainer, torchInfo } from '../lib/index.js';
import { styleLines } from './default-model/corpus.js';

const root = new URL('../../', import.meta.url);
const modelDir = fileURLToPath(new URL('models/lorafit-tiny', root));
const dataDir = fileURLToPath(new URL('examples/data', root));

const info = torchInfo();
console.log(`libtorch ${info.version}, ${info.threads} threads, cuda: ${info.cuda}`);
await using model = await Model.load(modelDir);
const tokenizer = await Tokenizer.fromDir(modelDir);
const adapter = await LoraAdapter.create(model, { name: 'yoda', rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
const share = adapter.trainableParameters();
console.log(`${model.config.modelType}: ${share.total} parameters, ${share.trainable} trainable (${share.percent.toFixed(1)}%)`);

// Yoda's lines as chats: the answer is trained, the question is not.
const lines = styleLines(dataDir, 'yoda');
const questions = ['Tell me about the ocean.', 'What is a good breakfast?', 'How do I learn to code?', 'Why is the sky blue?'];
const asChat = (line: string, i: number) => ({ kind: 'conversation' as const, messages: [{ role: 'user', content: questions[i % questions.length] }, { role: 'assistant', content: line }] });
const { examples: evalData } = await data.tokenizeDataset(lines.slice(0, 40).map(asChat), tokenizer, { maxSeqLength: 256 });
const { examples: trainData } = await data.tokenizeDataset(lines.slice(40, 1040).map(asChat), tokenizer, { maxSeqLength: 256 });

const ask = (q: string, adapterName: string | null) => chat(model, tokenizer, [{ role: 'user', content: q }], { adapter: adapterName, maxNewTokens: 40, repetitionPenalty: 1.2 });
const trainer = new Trainer({ model, adapter, trainData, evalData, learningRate: 2e-3, maxSteps: 150, batchSize: 8, lrScheduler: 'cosine', warmupSteps: 10, evalSteps: 50, seed: 7 });
const before = await trainer.evaluateLoss();
trainer.on('step', (s) => {
  if (s.step % 25 === 0) console.log(`step ${s.step}/${s.totalSteps}  loss ${s.loss.toFixed(3)}  lr ${s.learningRate.toExponential(2)}  ${Math.round(s.tokensPerSecond)} tok/s`);
});
trainer.on('eval', (e) => console.log(`eval at step ${e.step}: loss ${e.evalLoss.toFixed(3)} (perplexity ${e.perplexity.toFixed(1)})`));
const result = await trainer.fit();
console.log(`\neval loss on held-out Yoda answers: ${before.evalLoss.toFixed(3)} -> ${result.evalLoss!.toFixed(3)} (${(before.evalLoss - result.evalLoss!).toFixed(3)} lower)\n`);
for (const q of ['What is the moon?', 'How do plants grow?']) {
  console.log(`> ${q}`);
  console.log(`base:  ${await ask(q, null)}`);
  console.log(`tuned: ${await ask(q, 'yoda')}\n`);
}
