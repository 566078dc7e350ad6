// Shared plumbing of the examples: arguments, the embedded default model, small helpers.
// Every example takes --short (few steps, for CI), --model DIR (default: the embedded default
// model) and --out DIR, prints what it does and writes DIR/summary.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { data, Model, Tokenizer } from '../lib/index.js';
import type { ChatMessage } from '../lib/chat-template.js';
import type { TokenizedExample } from '../lib/data/tokenize.js';

export const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const DATA = join(ROOT, 'examples', 'data');
export const DEFAULT_MODEL = join(ROOT, 'models', 'lorafit-tiny');

export interface ExampleArgs {
  short: boolean;
  model: string;
  out: string;
}

export function parseArgs(name: string): ExampleArgs {
  const argv = process.argv.slice(2);
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const out = resolve(value('--out') ?? join(ROOT, 'examples', 'out', name));
  mkdirSync(out, { recursive: true });
  return { short: argv.includes('--short'), model: resolve(value('--model') ?? DEFAULT_MODEL), out };
}

export async function load(dir: string): Promise<{ model: Model; tokenizer: Tokenizer }> {
  const [model, tokenizer] = await Promise.all([Model.load(dir), Tokenizer.fromDir(dir)]);
  return { model, tokenizer };
}

/** Raw text -> training examples (loss on every token, eos appended). */
export async function textExamples(tokenizer: Tokenizer, texts: string[], maxSeqLength = 256): Promise<TokenizedExample[]> {
  const { examples } = await data.tokenizeDataset(texts.map((text) => ({ kind: 'text' as const, text })), tokenizer, { maxSeqLength });
  return examples;
}

/** Conversations -> training examples (loss on assistant turns and their end-of-turn token). */
export async function chatExamples(tokenizer: Tokenizer, conversations: ChatMessage[][], maxSeqLength = 256): Promise<TokenizedExample[]> {
  const { examples } = await data.tokenizeDataset(conversations.map((messages) => ({ kind: 'conversation' as const, messages })), tokenizer, { maxSeqLength });
  return examples;
}

/** Continues a text prompt. */
export async function complete(model: Model, tokenizer: Tokenizer, prompt: string, options: { adapter?: string | null; maxNewTokens?: number } = {}): Promise<string> {
  const ids = await tokenizer.encode(prompt, { addSpecialTokens: false });
  const [out] = await model.generate(ids, { maxNewTokens: options.maxNewTokens ?? 48, repetitionPenalty: 1.2, adapter: options.adapter, eosTokenId: [...tokenizer.stopTokenIds] });
  return tokenizer.decode(out, { skipSpecialTokens: true });
}

/** One chat turn through the model's chat template; returns the answer only. */
export async function answer(model: Model, tokenizer: Tokenizer, messages: ChatMessage[], options: { adapter?: string | null; maxNewTokens?: number } = {}): Promise<string> {
  const ids = await tokenizer.encodeChat(messages, { addGenerationPrompt: true });
  const [out] = await model.generate(ids, { maxNewTokens: options.maxNewTokens ?? 48, repetitionPenalty: 1.2, adapter: options.adapter, eosTokenId: [...tokenizer.stopTokenIds] });
  return (await tokenizer.decode(out, { skipSpecialTokens: true })).trim();
}

/** Mean negative log-likelihood per token of examples (streamed in batches). */
export async function meanNll(model: Model, examples: TokenizedExample[], batchSize = 8): Promise<number> {
  const { collate } = await import('../lib/train/batches.js');
  let sum = 0;
  let tokens = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const r = await model.evalLoss([collate(examples.slice(i, i + batchSize))]);
    sum += r.sum;
    tokens += r.tokens;
  }
  return sum / Math.max(1, tokens);
}

export function writeSummary(out: string, summary: Record<string, unknown>): void {
  writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`summary: ${join(out, 'summary.json')}`);
}
