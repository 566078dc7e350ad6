// One rank (or a single process) of the data-parallel tests: trains a LoRA adapter on the llama
// fixture with the options in argv[2] (JSON) and writes what the test compares as JSON to
// `<result>.<rank>.json`: the loss of every step, the eval loss, the adapter tensors. Uses the
// compiled library (dist/), as an application would. With `distributed: true` the rank, world
// size and rendezvous come from torchrun's environment variables, which the test sets.
import { readFileSync, writeFileSync } from 'node:fs';
import { configureProcess, LoraAdapter, Model, Trainer } from '../../dist/lib/index.js';

const o = JSON.parse(process.argv[2]);
configureProcess({ threads: 1 });
const lines = readFileSync(o.dataFile, 'utf8').split('\n').filter((l) => l.trim());
const example = (l) => {
  const ids = Int32Array.from(Buffer.from(l, 'utf8').subarray(0, o.seqLength ?? 24));
  return { inputIds: ids, labels: Int32Array.from(ids) };
};
const trainData = lines.slice(0, o.trainCount).map(example);
const evalData = lines.slice(o.trainCount, o.trainCount + (o.evalCount ?? 0)).map(example);
const controller = new AbortController();
const model = await Model.load(o.modelDir);
const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, targetModules: 'all-linear', seed: 1 });
const trainer = new Trainer({
  model,
  adapter,
  trainData,
  evalData,
  maxSteps: o.maxSteps,
  batchSize: o.batchSize,
  gradientAccumulationSteps: o.accumulation ?? 1,
  learningRate: o.learningRate ?? 1e-3,
  maxGradNorm: 0.5,
  outputDir: o.outputDir,
  saveSteps: o.saveSteps ?? 0,
  seed: 3,
  distributed: o.distributed,
  signal: controller.signal,
});
const losses = [];
trainer.on('step', (s) => {
  losses.push({ step: s.step, loss: s.loss, tokens: s.tokens, reduceMs: s.reduceMs });
  process.stdout.write(`step ${s.step}\n`);
  if (s.step === o.abortAtStep) controller.abort();  // this rank alone, as a Ctrl-C that reaches it first
});
let r;
try {
  r = await trainer.fit(o.resumeFrom ? { resumeFrom: o.resumeFrom } : {});
} catch (e) {
  if (e.code !== 'E_ABORTED') throw e;
  process.stdout.write(`aborted ${e.message}\n`);
  process.exit(3);
}
const tensors = {};
for (const [k, t] of await adapter.tensors()) tensors[k] = Array.from(t.data);
writeFileSync(`${o.result}.${trainer.rank}.json`, JSON.stringify({ rank: trainer.rank, worldSize: trainer.worldSize, losses, evalLoss: r.evalLoss, tensors }));
await model.dispose();
