// The main job on the embedded default (README: `npm run demo`): LoRA-tune a small model on Yoda's
// lines, then show the eval-loss drop and generations before and after.
//
// Until the project's own pretrained default model lands (issue 8), the base is the tiny Llama
// test fixture (random weights, vocab of 256 byte tokens), so "text" here is UTF-8 bytes: the
// tuned model learns Yoda's letters and word shapes, not meaning.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LoraAdapter, Model, Trainer, torchInfo } from '../lib/index.js';

const root = new URL('../../', import.meta.url);
const modelDir = fileURLToPath(new URL('test/fixtures/hf/llama/model', root));
const lines = readFileSync(fileURLToPath(new URL('test/fixtures/data/styles/yoda.txt', root)), 'utf8').split('\n').filter((l) => l.trim());
const toExample = (line: string) => {
  const ids = Int32Array.from(Buffer.from(line, 'utf8').subarray(0, 96));
  return { inputIds: ids, labels: Int32Array.from(ids) };
};
const trainData = lines.slice(0, 32).map(toExample);
const evalData = lines.slice(32).map(toExample);
const decode = (ids: number[]) => Buffer.from(ids.filter((t) => t >= 32 && t < 256)).toString('utf8').replace(/\uFFFD/g, '?');

const info = torchInfo();
console.log(`libtorch ${info.version}, ${info.threads} threads, cuda: ${info.cuda}`);
await using model = await Model.load(modelDir);
const adapter = await LoraAdapter.create(model, { rank: 16, alpha: 32, targetModules: 'all-linear', seed: 1 });
const share = adapter.trainableParameters();
console.log(`${model.config.modelType}: ${share.total} parameters, ${share.trainable} trainable (${share.percent.toFixed(1)}%)`);

const prompt = [...Buffer.from('Strong, ', 'utf8')];
const sample = async () => decode((await model.generate(prompt, { maxNewTokens: 48, eosTokenId: [], repetitionPenalty: 1.1 }))[0]);
console.log(`before: "Strong, ${await sample()}"`);

const trainer = new Trainer({ model, adapter, trainData, evalData, learningRate: 3e-3, maxSteps: 60, batchSize: 4, lrScheduler: 'cosine', warmupSteps: 5, evalSteps: 20, seed: 7 });
const before = await trainer.evaluateLoss();
trainer.on('step', (s) => {
  if (s.step % 10 === 0) console.log(`step ${s.step}/${s.totalSteps}  loss ${s.loss.toFixed(3)}  lr ${s.learningRate.toExponential(2)}  ${Math.round(s.tokensPerSecond)} tok/s`);
});
trainer.on('eval', (e) => console.log(`eval at step ${e.step}: loss ${e.evalLoss.toFixed(3)} (perplexity ${e.perplexity.toFixed(1)})`));
const result = await trainer.fit();
console.log(`eval loss ${before.evalLoss.toFixed(3)} -> ${result.evalLoss!.toFixed(3)} (${(before.evalLoss - result.evalLoss!).toFixed(3)} lower)`);
console.log(`after:  "Strong, ${await sample()}"`);
