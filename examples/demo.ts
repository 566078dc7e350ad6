// The main job on the embedded default (README): until the embedded default model and the
// Trainer land, this loads the tiny Llama fixture and prints its next-token predictions.
import { fileURLToPath } from 'node:url';
import { Model, torchInfo } from '../lib/index.js';

const dir = fileURLToPath(new URL('../../test/fixtures/hf/llama/model', import.meta.url));
const info = torchInfo();
console.log(`libtorch ${info.version}, ${info.threads} threads, cuda: ${info.cuda}`);
await using model = await Model.load(dir);
console.log(`${model.config.modelType}: ${model.numParameters()} parameters, ${model.config.numHiddenLayers} layers`);
const prompt = [17, 42, 99, 128, 7, 64];
const { logits, shape } = await model.forward([prompt], { lastOnly: true });
const vocab = shape[2];
const top = [...logits.subarray(0, vocab)].map((v, id) => ({ id, v })).sort((a, b) => b.v - a.v).slice(0, 5);
console.log(`prompt ids ${JSON.stringify(prompt)} -> top next tokens:`);
for (const t of top) console.log(`  id ${t.id}  logit ${t.v.toFixed(4)}`);
