// Shared plumbing of the examples: arguments, the default model, small helpers.
// Every example takes --short (few steps, for CI), --model SPEC (a .gguf file, an HF folder or
// ollama:NAME; default: SmolLM2-135M-Instruct from ~/.cache/lorafit, else the embedded tiny model),
// --dtype (default bfloat16: measured ~3.5x faster than float32 for LoRA steps on 2 AMD EPYC cores)
// and --out DIR, prints what it does and writes DIR/summary.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { data, Model, Tokenizer } from '../lib/index.js';
import type { Dtype, ModelLoadOptions } from '../lib/index.js';
import type { ChatMessage } from '../lib/text/chat-template.js';
import type { TokenizedExample } from '../lib/data/tokenize.js';
import { STYLE_REQUESTS } from '../lib/train/default-job.js';
import { defaultModel } from '../lib/model/default-model.js';

export const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const DATA = join(ROOT, 'examples', 'data');

export interface ExampleArgs {
  short: boolean;
  /** Model spec for Model.load / Tokenizer.load. */
  model: string;
  /** 'smollm2' or 'tiny' for the default model, 'custom' for --model. */
  modelKind: 'smollm2' | 'tiny' | 'custom';
  dtype: Dtype;
  out: string;
  /** Raw argv after the script name (for example-specific flags). */
  argv: string[];
}

const started = Date.now();

export function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

export function parseArgs(name: string): ExampleArgs {
  const argv = process.argv.slice(2);
  const out = resolve(flag(argv, '--out') ?? join(ROOT, 'examples', 'out', name));
  mkdirSync(out, { recursive: true });
  const given = flag(argv, '--model');
  let model: string;
  let modelKind: ExampleArgs['modelKind'];
  if (given) {
    model = given.startsWith('ollama:') ? given : resolve(given);
    modelKind = 'custom';
  } else {
    const d = defaultModel();
    if (d.note) console.log(`note: ${d.note}`);
    model = d.path;
    modelKind = d.kind;
  }
  const dtype = (flag(argv, '--dtype') ?? 'bfloat16') as Dtype;
  const short = argv.includes('--short');
  console.log(`${name}: model ${model} (${modelKind}), ${dtype}, ${short ? 'short' : 'full'} mode, out ${out}`);
  return { short, model, modelKind, dtype, out, argv };
}

export async function load(spec: string, options: ModelLoadOptions = {}): Promise<{ model: Model; tokenizer: Tokenizer }> {
  const [model, tokenizer] = await Promise.all([Model.load(spec, options), Tokenizer.load(spec)]);
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

/**
 * Answer-only lines (the style files hold answers without their questions) as chats whose user
 * turns are lib/train/default-job.ts's generic requests, round robin, as its styleConversations does.
 */
export { STYLE_REQUESTS };

export function styleChats(lines: string[], offset = 0): ChatMessage[][] {
  return lines.map((line, i) => [
    { role: 'user', content: STYLE_REQUESTS[(i + offset) % STYLE_REQUESTS.length] },
    { role: 'assistant', content: line },
  ]);
}

const GEN = { repetitionPenalty: 1.2 };

async function decodeAll(tokenizer: Tokenizer, rows: number[][]): Promise<string[]> {
  return Promise.all(rows.map(async (r) => (await tokenizer.decode(r, { skipSpecialTokens: true })).trim()));
}

/** Continues text prompts (one batched, greedy generate call). */
export async function completeAll(model: Model, tokenizer: Tokenizer, prompts: string[], options: { adapter?: string | null; maxNewTokens?: number } = {}): Promise<string[]> {
  const ids = await Promise.all(prompts.map((p) => tokenizer.encode(p, { addSpecialTokens: false })));
  const rows = await model.generate(ids, { maxNewTokens: options.maxNewTokens ?? 48, ...GEN, adapter: options.adapter, eosTokenId: [...tokenizer.stopTokenIds] });
  return decodeAll(tokenizer, rows);
}

export async function complete(model: Model, tokenizer: Tokenizer, prompt: string, options: { adapter?: string | null; maxNewTokens?: number } = {}): Promise<string> {
  return (await completeAll(model, tokenizer, [prompt], options))[0];
}

/** One chat turn per conversation through the model's chat template (batched, greedy); the answers only. */
export async function answerAll(model: Model, tokenizer: Tokenizer, conversations: ChatMessage[][], options: { adapter?: string | null; maxNewTokens?: number } = {}): Promise<string[]> {
  const ids = await Promise.all(conversations.map((m) => tokenizer.encodeChat(m, { addGenerationPrompt: true })));
  const rows = await model.generate(ids, { maxNewTokens: options.maxNewTokens ?? 48, ...GEN, adapter: options.adapter, eosTokenId: [...tokenizer.stopTokenIds] });
  return decodeAll(tokenizer, rows);
}

export async function answer(model: Model, tokenizer: Tokenizer, messages: ChatMessage[], options: { adapter?: string | null; maxNewTokens?: number } = {}): Promise<string> {
  return (await answerAll(model, tokenizer, [messages], options))[0];
}

/** Single-turn questions -> answers (a user message each). */
export async function ask(model: Model, tokenizer: Tokenizer, questions: string[], options: { adapter?: string | null; maxNewTokens?: number } = {}): Promise<string[]> {
  return answerAll(model, tokenizer, questions.map((q) => [{ role: 'user', content: q }]), options);
}

/** Mean negative log-likelihood per label token of examples (streamed in batches). */
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

/** The machine, for the summaries and READMEs: cores and CPU model. */
export function machine(): { cores: number; cpu: string } {
  const c = cpus();
  return { cores: c.length, cpu: c[0]?.model ?? 'unknown' };
}

export function elapsedSeconds(): number {
  return Math.round((Date.now() - started) / 100) / 10;
}

export function writeSummary(out: string, summary: Record<string, unknown>): void {
  const full = { ...summary, machine: machine(), wallSeconds: elapsedSeconds() };
  writeFileSync(join(out, 'summary.json'), `${JSON.stringify(full, null, 2)}\n`);
  console.log(`wall time ${full.wallSeconds} s on ${full.machine.cores} cores (${full.machine.cpu})`);
  console.log(`summary: ${join(out, 'summary.json')}`);
}
