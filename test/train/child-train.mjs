// Child process for the kill test: trains with a checkpoint every step and prints each one.
// Uses the compiled library (dist/), as an application would.
import { join } from 'node:path';
import { LoraAdapter, Model, Trainer } from '../../dist/lib/index.js';

const [modelDir, outDir, dataFile, resume] = process.argv.slice(2);
const { readFileSync } = await import('node:fs');
const lines = readFileSync(dataFile, 'utf8').split('\n').filter((l) => l.trim());
const data = lines.map((l) => {
  const ids = Int32Array.from(Buffer.from(l, 'utf8').subarray(0, 64));
  return { inputIds: ids, labels: Int32Array.from(ids) };
});
const model = await Model.load(modelDir);
const adapter = await LoraAdapter.create(model, { rank: 8, alpha: 16, targetModules: 'all-linear', seed: 1 });
const trainer = new Trainer({ model, adapter, trainData: data, maxSteps: 400, batchSize: 4, saveSteps: 1, outputDir: outDir, seed: 3 });
trainer.on('checkpoint', (c) => process.stdout.write(`checkpoint ${c.step} ${join(c.dir)}\n`));
const r = await trainer.fit(resume ? { resumeFrom: resume } : {});
process.stdout.write(`done ${r.globalStep}\n`);
await model.dispose();
