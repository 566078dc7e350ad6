// Chat on a loaded model: render the conversation with the tokenizer's chat template (plus the
// assistant header), generate until an end-of-turn / eos id or a stop string, and return only the
// answer's text.
//
//   const { model, tokenizer } = await loadModelAndTokenizer('Qwen/Qwen2.5-0.5B-Instruct');
//   const answer = await chat(model, tokenizer, [{ role: 'user', content: 'Hi!' }], { maxNewTokens: 64 });
//   for await (const piece of chatStream(model, tokenizer, messages, { adapter: null })) process.stdout.write(piece);
//
// `adapter` picks the adapter per call (a name, or null for the base model), so base and tuned
// answers come from one loaded model.
import type { ChatMessage } from '../text/chat-template.js';
import { LorafitError, optionError } from '../errors.js';
import { streamText, type GenerateOptions } from './generation.js';
import type { Logger } from '../util/logger.js';
import type { ResolveOptions } from '../hub/index.js';
import { Model, type ModelLoadOptions } from './model.js';
import { resolveModelSource } from './model-source.js';
import { Tokenizer, type TokenizerOptions } from '../text/tokenizer.js';

export type { ChatMessage } from '../text/chat-template.js';

export interface ChatOptions extends GenerateOptions {
  /** One of the model's named chat templates (`tool_use`, ...). */
  templateName?: string;
  /** Tool definitions passed to the template. */
  tools?: unknown[];
  /** Further template variables (`enable_thinking: false`, ...). */
  templateVariables?: Record<string, unknown>;
}

/** What one generation did; filled in while a stream runs, final once it has ended. */
export interface GenerationStats {
  promptTokens: number;
  completionTokens: number;
  /** 'stop': an end-of-turn / eos id or a stop string ended it; 'length': maxNewTokens (or the context) did. */
  finishReason: 'stop' | 'length' | null;
}

/** The ids a chat call feeds the model: the template with the generation prompt, no extra BOS. */
export async function chatPromptIds(tokenizer: Tokenizer, messages: ChatMessage[], options: ChatOptions = {}): Promise<number[]> {
  if (!Array.isArray(messages) || messages.length === 0) throw optionError('messages', 'must be a non-empty array of { role, content }');
  for (const [i, m] of messages.entries()) {
    if (!m || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw optionError(`messages[${i}]`, 'must be { role: string, content: string }');
    }
  }
  return tokenizer.encodeChat(messages, {
    addGenerationPrompt: true,
    templateName: options.templateName,
    tools: options.tools,
    extra: options.templateVariables,
  });
}

/** Default stop ids: the tokenizer's (eos, end-of-turn, generation_config) and the model's eos. */
export function chatStopIds(model: Model, tokenizer: Tokenizer): number[] {
  return [...new Set([...tokenizer.stopTokenIds, ...model.eosTokenIds])];
}

/**
 * Streams the text of a completion of `promptIds` (no template applied): pieces never split a
 * character, and end before the first stop id or stop string. `stats` is updated as it runs.
 */
export async function* completionStream(
  model: Model,
  tokenizer: Tokenizer,
  promptIds: number[],
  options: GenerateOptions = {},
  stats: GenerationStats = { promptTokens: 0, completionTokens: 0, finishReason: null },
): AsyncGenerator<string> {
  const stopIds = options.eosTokenId === undefined ? chatStopIds(model, tokenizer) : [options.eosTokenId].flat();
  const stop = options.stop ?? [];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s.length === 0)) throw optionError('stop', 'must be an array of non-empty strings');
  stats.promptTokens = promptIds.length;
  stats.completionTokens = 0;
  stats.finishReason = null;
  let sawStopId = false;
  let exhausted = false;
  // Stop strings are cut here, on the decoded text (streamText), not by the model's token loop.
  const source = model.generateStream(promptIds, { ...options, stop: undefined, eosTokenId: stopIds });
  async function* counted(): AsyncGenerator<number> {
    for await (const t of source) {
      stats.completionTokens++;
      if (stopIds.includes(t)) sawStopId = true;
      yield t;
    }
    exhausted = true;
  }
  yield* streamText(counted(), tokenizer, stop, stopIds);
  // streamText returned: after a stop id, at a stop string (the token source left unfinished), or
  // when the source ran out (maxNewTokens or the context).
  stats.finishReason = sawStopId || !exhausted ? 'stop' : 'length';
}

/** Streams the answer to a conversation as text pieces (correct across multi-byte characters). */
export async function* chatStream(
  model: Model,
  tokenizer: Tokenizer,
  messages: ChatMessage[],
  options: ChatOptions = {},
  stats?: GenerationStats,
): AsyncGenerator<string> {
  const ids = await chatPromptIds(tokenizer, messages, options);
  const { templateName: _t, tools: _tools, templateVariables: _v, ...generate } = options;
  yield* completionStream(model, tokenizer, ids, generate, stats);
}

/** The answer to a conversation (special tokens skipped, stop strings cut off). */
export async function chat(model: Model, tokenizer: Tokenizer, messages: ChatMessage[], options: ChatOptions = {}, stats?: GenerationStats): Promise<string> {
  let text = '';
  for await (const piece of chatStream(model, tokenizer, messages, options, stats)) text += piece;
  return text;
}

export interface LoadModelAndTokenizerOptions extends ModelLoadOptions {
  /** Chat template override and selection. */
  tokenizer?: TokenizerOptions;
  /** Hub download options (revision, cacheDir, offline, token, ...) for repo ids. */
  hub?: ResolveOptions;
  /** 4-bit NF4 or 8-bit base weights (passed to Model.load, which validates it). */
  quantize?: 'nf4' | 'int8';
  /** Gets one info line `model loaded` ({ dir, ms, modelType }) once the weights are in. */
  logger?: Logger;
}

/**
 * A model and its tokenizer from a local folder or a hub repo id (`org/name`, downloaded into
 * the Hugging Face cache when missing). The folder must hold tokenizer.json.
 */
export async function loadModelAndTokenizer(
  idOrDir: string,
  options: LoadModelAndTokenizerOptions = {},
): Promise<{ model: Model; tokenizer: Tokenizer; dir: string }> {
  if (typeof idOrDir !== 'string' || idOrDir.length === 0) throw new LorafitError('E_OPTION', 'loadModelAndTokenizer: give a model folder or a hub repo id');
  const { tokenizer: tokenizerOptions, hub, logger, ...loadOptions } = options;
  const dir = (await resolveModelSource(idOrDir, hub)).path;
  // The tokenizer first: it is cheap and its absence should fail before a large model loads.
  const tokenizer = await Tokenizer.load(dir, tokenizerOptions);
  const t0 = Date.now();
  const model = await Model.load(dir, loadOptions as ModelLoadOptions);
  logger?.info({ dir, ms: Date.now() - t0, modelType: model.config.modelType }, 'model loaded');
  return { model, tokenizer, dir };
}
