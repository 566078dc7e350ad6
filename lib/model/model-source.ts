// What a model spec names, as a local path: an HF folder, a .gguf file, `ollama:NAME[:TAG]` (a
// blob in the Ollama models folder) or a hub id (`org/name`, downloaded into the HF cache).
// One resolver for the library, the chat helpers and every CLI --model.
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { LorafitError } from '../errors.js';
import { resolveOllamaModel } from '../gguf/ollama.js';
import { startsWithGgufMagic } from '../gguf/reader.js';
import { resolveModelPath, type ResolveOptions } from '../hub/resolve.js';

export type ModelFormat = 'hf' | 'gguf';

export interface ModelSource {
  /** A folder (hf) or a file (gguf). */
  path: string;
  format: ModelFormat;
  /** The spec as the user gave it (for names and messages). */
  spec: string;
}

/** True for a file that starts with the GGUF magic (whatever its extension: Ollama blobs have none). */
export function isGgufFile(path: string): boolean {
  try {
    return statSync(path).isFile() && startsWithGgufMagic(path);
  } catch {
    return false;
  }
}

export async function resolveModelSource(spec: string, hub: ResolveOptions = {}): Promise<ModelSource> {
  if (typeof spec !== 'string' || spec.length === 0) {
    throw new LorafitError('E_OPTION', 'give a model: a Hugging Face folder, a .gguf file, ollama:NAME[:TAG] or a hub id (org/name)');
  }
  if (spec.startsWith('ollama:')) return { path: await resolveOllamaModel(spec), format: 'gguf', spec };
  const local = resolve(spec.startsWith('~/') ? homedir() + spec.slice(1) : spec);
  if (existsSync(local) && statSync(local).isFile()) {
    if (isGgufFile(local)) return { path: local, format: 'gguf', spec };
    throw new LorafitError('E_GGUF', `${local}: a model file must be GGUF (it does not start with "GGUF"); for safetensors give the model folder`);
  }
  if (!existsSync(local) && /\.gguf$/i.test(spec)) throw new LorafitError('E_GGUF', `${local}: no such GGUF file`);
  return { path: await resolveModelPath(spec, hub), format: 'hf', spec };
}
