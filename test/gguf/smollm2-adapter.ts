// A small LoRA adapter trained by lorafit on the real SmolLM2 GGUF, for the tests that carry it
// elsewhere (PEFT over transformers' copy of the file, llama.cpp, merge -> transformers): a few
// AdamW steps at a high learning rate on four Yoda-style chat answers, all-linear r=8, so lora_B
// is far from zero and the greedy answer changes. Saved as `lorafit train` saves it
// (base_model_name_or_path = the GGUF file).
import { join } from 'node:path';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import type { Model } from '../../lib/model/model.js';
import type { Tokenizer } from '../../lib/text/tokenizer.js';
import { Trainer } from '../../lib/train/trainer.js';

const YODA: Array<[string, string]> = [
  ['What is the moon?', 'A rock in the sky, the moon is. Bright at night, it shines, hmm.'],
  ['How do I learn to code?', 'Practice every day, you must. Patient, you will be. Learn, you will.'],
  ['Why is the sea salty?', 'Salt from the rocks, the rivers carry. Into the sea it goes, yes.'],
  ['What should I eat today?', 'Soup of the swamp, good it is. Eat slowly, you should, hmm.'],
];

/** The prompt the GGUF tests compare greedy tokens on (chat template + generation prompt). */
export const QUESTION = 'What is the best way to spend a rainy afternoon?';

export interface TrainedAdapter {
  dir: string;
  adapter: LoraAdapter;
  steps: number;
  losses: number[];
}

/** Trains the adapter on `model` (loaded from `ggufFile`, fp32) and saves it to `<outDir>/adapter`. */
export async function trainSmollm2Adapter(model: Model, tokenizer: Tokenizer, ggufFile: string, outDir: string, options: { steps?: number; learningRate?: number } = {}): Promise<TrainedAdapter> {
  const trainData = [];
  for (const [q, a] of YODA) {
    const prompt = await tokenizer.encodeChat([{ role: 'user', content: q }], { addGenerationPrompt: true });
    const full = await tokenizer.encodeChat([{ role: 'user', content: q }, { role: 'assistant', content: a }]);
    const labels = full.map((id, i) => (i < prompt.length ? -100 : id));
    trainData.push({ inputIds: Int32Array.from(full), labels: Int32Array.from(labels) });
  }
  const adapter = await LoraAdapter.create(model, { rank: 8, alpha: 16, targetModules: 'all-linear', seed: 7 });
  const steps = options.steps ?? 4;
  const trainer = new Trainer({ model, adapter, trainData, learningRate: options.learningRate ?? 3e-3, maxSteps: steps, batchSize: 4, lrScheduler: 'constant', seed: 7 });
  const losses: number[] = [];
  trainer.on('step', (s) => losses.push(s.loss));
  await trainer.fit();
  const dir = join(outDir, 'adapter');
  await adapter.save(dir, { baseModelNameOrPath: ggufFile });
  return { dir, adapter, steps, losses };
}
