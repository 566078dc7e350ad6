// Adapters: train two small style adapters, keep both on one model and switch between them per
// call, combine them, merge one into the base and export: an HF folder (transformers loads it),
// GGUF files for llama.cpp (the merged model, and the LoRA adapter on its own) and an Ollama Modelfile.
//
//   node dist/examples/adapters/run.js [--short] [--model DIR] [--out DIR]
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoraAdapter, Model, Trainer } from '../../lib/index.js';
import { exportGguf, exportLoraGguf, writeModelfile } from '../../lib/export/index.js';
import { styleLines } from '../default-model/corpus.js';
import { complete, DATA, load, parseArgs, textExamples, writeSummary } from '../common.js';

const args = parseArgs('adapters');
const steps = args.short ? 15 : 150;
const { model, tokenizer } = await load(args.model);
const prompt = 'The best way to learn';

async function trainStyle(name: 'yoda' | 'leprechaun'): Promise<LoraAdapter> {
  const adapter = await LoraAdapter.create(model, { name, rank: 8, alpha: 16, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], seed: 1 });
  const lines = styleLines(DATA, name).slice(0, 300);
  await new Trainer({ model, adapter, trainData: await textExamples(tokenizer, lines), learningRate: 2e-3, maxSteps: steps, batchSize: 8, seed: 1 }).fit();
  await adapter.save(join(args.out, name));
  return adapter;
}
const yoda = await trainStyle('yoda');
const leprechaun = await trainStyle('leprechaun');

// One model, three answers: no adapter, each adapter.
const outputs: Record<string, string> = {
  base: await complete(model, tokenizer, prompt, { adapter: null }),
  yoda: await complete(model, tokenizer, prompt, { adapter: 'yoda' }),
  leprechaun: await complete(model, tokenizer, prompt, { adapter: 'leprechaun' }),
};
// Combined ('cat': the exact sum of both adapters' deltas, halved).
await LoraAdapter.combine(model, [{ adapter: yoda, weight: 0.5 }, { adapter: leprechaun, weight: 0.5 }], { name: 'mix', combinationType: 'cat', activate: false });
outputs.mix = await complete(model, tokenizer, prompt, { adapter: 'mix' });
for (const [k, v] of Object.entries(outputs)) console.log(`${k.padEnd(10)} ${prompt}${v}`);

// Merge the Yoda adapter into a fresh copy of the base and export it.
await using merged = await Model.load(args.model);
const again = await LoraAdapter.load(merged, join(args.out, 'yoda'));
await again.mergeAndUnload();
const hfDir = join(args.out, 'merged-hf');
await merged.save(hfDir, { dtype: 'bfloat16' });
const gguf = await exportGguf(hfDir, join(args.out, 'merged.gguf'), { dtype: 'F16' });
const loraGguf = await exportLoraGguf(join(args.out, 'yoda'), join(args.out, 'yoda-lora.gguf'), { baseModelDir: args.model });
const chatTemplate = JSON.parse(readFileSync(join(args.model, 'tokenizer_config.json'), 'utf8')).chat_template as string;
await writeModelfile(join(args.out, 'Modelfile'), { from: './merged.gguf', chatTemplate, system: 'You speak like Yoda.' });
console.log(`merged HF folder: ${hfDir}\nGGUF: ${gguf.file} (${gguf.tensorCount} tensors)\nLoRA GGUF: ${loraGguf.file}\nOllama: ${join(args.out, 'Modelfile')} (ollama create yoda -f Modelfile)`);
writeSummary(args.out, { steps, prompt, outputs, files: { hf: hfDir, gguf: gguf.file, loraGguf: loraGguf.file, modelfile: join(args.out, 'Modelfile') }, exists: [hfDir, gguf.file, loraGguf.file].map((f) => existsSync(f)) });
await model.dispose();
