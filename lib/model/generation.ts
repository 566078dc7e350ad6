// Generation on a Model: token ids in, token ids out (native KV cache, a few tokens per native
// call so JavaScript can stream, stop and cancel), plus text streaming with stop strings that
// works when a multi-byte character or a stop string spans several tokens.
import { LorafitError, optionError } from '../errors.js';
import type { Model } from './model.js';
import { channelOf } from './channel.js';
import type { NativeSamplingOptions } from './native.js';

export interface GenerateOptions {
  /** Default 64. */
  maxNewTokens?: number;
  /** Sample instead of greedy decoding (default: generation_config.json's do_sample, else false). */
  doSample?: boolean;
  /** Softmax temperature when sampling; 0 means greedy decoding (whatever doSample says). */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  /** Seed of this call's sampler (sampling is reproducible per seed). */
  seed?: number;
  /** Stop after these ids (default: generation_config.json / config.json eos, and the tokenizer's end-of-turn). */
  eosTokenId?: number | number[];
  /**
   * Text that ends generation. At the id level (Model.generate / generateStream) a row ends with
   * the token that completes a stop string (that token included, as transformers' stop_strings),
   * which needs `decoder`; streamText / chat() cut the text before the string.
   */
  stop?: string[];
  /** Decodes the new ids to find `stop` strings (a Tokenizer). */
  decoder?: TextDecoderLike;
  /** Token-id sequences that end a row when its new ids end with one (the sequence included). */
  stopSequences?: number[][];
  /** Adapter for this call: a name, or null for the base model (default: the active adapters). */
  adapter?: string | { name: string } | null;
  signal?: AbortSignal;
}

/** Decodes ids to text (a Tokenizer, or anything with the same decode). */
export interface TextDecoderLike {
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): Promise<string>;
}

const STEP_TOKENS = 1;

export function samplingOptions(model: Model, o: GenerateOptions): NativeSamplingOptions {
  const g = model.generationConfig;
  const doSample = o.doSample ?? (g.do_sample as boolean | undefined) ?? false;
  const temperature = o.temperature ?? (g.temperature as number | undefined) ?? 1.0;
  const topK = o.topK ?? (g.top_k as number | undefined) ?? 0;
  const topP = o.topP ?? (g.top_p as number | undefined) ?? 1.0;
  const repetitionPenalty = o.repetitionPenalty ?? (g.repetition_penalty as number | undefined) ?? 1.0;
  // 0 is greedy decoding, as OpenAI clients send it (transformers ignores temperature when greedy).
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw optionError('temperature', 'must be a number >= 0 (0: greedy decoding)');
  if (!Number.isInteger(topK) || topK < 0) throw optionError('topK', 'must be a non-negative integer');
  if (!(topP > 0 && topP <= 1)) throw optionError('topP', 'must be in (0, 1]');
  if (!(repetitionPenalty > 0)) throw optionError('repetitionPenalty', 'must be > 0');
  const eos = o.eosTokenId === undefined ? model.eosTokenIds : Array.isArray(o.eosTokenId) ? o.eosTokenId : [o.eosTokenId];
  const adapters = o.adapter === undefined ? undefined : o.adapter === null ? [] : [typeof o.adapter === 'string' ? o.adapter : o.adapter.name];
  const greedy = !doSample || temperature === 0;
  return { greedy, temperature: greedy ? 1.0 : temperature, topK, topP, repetitionPenalty, seed: o.seed ?? 0, eosTokenIds: eos, adapters };
}

/** Streams new token ids for one prompt. Ends after an eos id (included) or maxNewTokens. */
export async function* generateTokens(model: Model, prompt: number[], o: GenerateOptions = {}): AsyncGenerator<number> {
  for await (const row of generateRows(model, [prompt], o)) yield row[0];
}

/** Streams one token per row per step for a batch of prompts (left-padded). -1 after a row ended. */
export async function* generateRows(model: Model, prompts: number[][], o: GenerateOptions = {}): AsyncGenerator<number[]> {
  const maxNew = o.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw optionError('maxNewTokens', 'must be a positive integer');
  if (prompts.length === 0 || prompts.some((p) => p.length === 0)) throw new LorafitError('E_INPUT', 'generate: every prompt needs at least one token');
  const sampling = samplingOptions(model, o);
  const stopper = rowStopper(o, prompts.length);
  const T = Math.max(...prompts.map((p) => p.length));
  const ids = new Int32Array(prompts.length * T);
  const mask = new Int32Array(prompts.length * T);
  prompts.forEach((p, b) => {
    ids.set(p, b * T + T - p.length);
    mask.fill(1, b * T + T - p.length, (b + 1) * T);
  });
  const channel = channelOf(model);
  const session = await channel.call((h) => h.generate(ids, [prompts.length, T], mask, sampling));
  channel.own(session, session);
  const ended = prompts.map(() => false);
  try {
    for (let produced = 0; produced < maxNew; ) {
      if (o.signal?.aborted) throw new LorafitError('E_ABORTED', 'generation aborted');
      const n = Math.min(STEP_TOKENS, maxNew - produced);
      const r = await channel.call(() => session.next(n));
      for (const step of r.tokens) {
        const row = step.map((t, b) => (ended[b] ? -1 : t));
        step.forEach((t, b) => {
          if (sampling.eosTokenIds.includes(t)) ended[b] = true;
        });
        if (stopper) for (const b of await stopper(row)) ended[b] = true;
        yield row;
        produced++;
      }
      if (r.done || ended.every(Boolean)) return;
    }
  } finally {
    session.dispose();  // frees the KV cache now, not at GC
    channel.release(session);
  }
}

// Stop-string arrays that a streamText consumer cuts on decoded text: chat() hands the same
// array to the model and to streamText, so the id level need not decode them a second time.
const textLevelStops = new WeakMap<readonly string[], number>();

/**
 * Checks `stop` / `stopSequences` / `decoder` and returns a function that, given the tokens of
 * one step (-1: row already ended), says which rows a stop string or sequence has just ended.
 * Strings without a decoder are refused, never ignored.
 */
function rowStopper(o: GenerateOptions, rows: number): ((step: number[]) => Promise<number[]>) | null {
  const stop = o.stop ?? [];
  if (!Array.isArray(stop) || stop.some((x) => typeof x !== 'string' || x.length === 0)) throw optionError('stop', 'must be an array of non-empty strings');
  const sequences = o.stopSequences ?? [];
  if (!Array.isArray(sequences) || sequences.some((q) => !Array.isArray(q) || q.length === 0 || q.some((t) => !Number.isInteger(t) || t < 0))) {
    throw optionError('stopSequences', 'must be an array of non-empty arrays of token ids');
  }
  const decoder = o.decoder;
  if (decoder !== undefined && typeof decoder?.decode !== 'function') throw optionError('decoder', 'must have decode(ids) (a Tokenizer)');
  const strings = stop.length > 0 && !textLevelStops.has(stop) ? stop : [];
  if (strings.length > 0 && !decoder) {
    throw optionError('stop', 'stop strings need the text of the new tokens: pass decoder: tokenizer, give token ids as stopSequences, or use chat() / streamText');
  }
  if (strings.length === 0 && sequences.length === 0) return null;
  const produced: number[][] = Array.from({ length: rows }, () => []);
  return async (step) => {
    const hits: number[] = [];
    for (let b = 0; b < rows; b++) {
      if (step[b] < 0) continue;
      const ids = produced[b];
      ids.push(step[b]);
      if (sequences.some((q) => q.length <= ids.length && q.every((t, i) => ids[ids.length - q.length + i] === t))) {
        hits.push(b);
        continue;
      }
      if (strings.length > 0) {
        const text = await decoder!.decode(ids, { skipSpecialTokens: true });
        if (strings.some((x) => text.includes(x))) hits.push(b);
      }
    }
    return hits;
  };
}

/** Generates for a batch of prompts; returns the new tokens of each row (eos included). */
export async function generateBatch(model: Model, prompts: number[][], o: GenerateOptions = {}): Promise<number[][]> {
  const out: number[][] = prompts.map(() => []);
  for await (const row of generateRows(model, prompts, o)) row.forEach((t, b) => t >= 0 && out[b].push(t));
  return out;
}

/**
 * Streams text pieces: decodes the growing id list and emits only complete characters (a piece
 * never ends in half a UTF-8 sequence), and stops before any stop string, even one split across
 * tokens. When the tokens run out, the rest is emitted as decoded: a trailing U+FFFD (a character
 * cut off by maxNewTokens, or one the model wrote) is kept, never dropped.
 */
export async function* streamText(tokens: AsyncIterable<number>, decoder: TextDecoderLike, stop: string[] = [], skipIds: number[] = []): AsyncGenerator<string> {
  // While this runs, the id level leaves these stop strings to it (see rowStopper).
  textLevelStops.set(stop, (textLevelStops.get(stop) ?? 0) + 1);
  try {
    yield* textPieces(tokens, decoder, stop, skipIds);
  } finally {
    const n = (textLevelStops.get(stop) ?? 1) - 1;
    if (n > 0) textLevelStops.set(stop, n);
    else textLevelStops.delete(stop);
  }
}

async function* textPieces(tokens: AsyncIterable<number>, decoder: TextDecoderLike, stop: string[], skipIds: number[]): AsyncGenerator<string> {
  const ids: number[] = [];
  let emitted = 0;  // characters of `text` already emitted
  const holdBack = stop.length ? Math.max(...stop.map((s) => s.length)) - 1 : 0;
  for await (const t of tokens) {
    if (skipIds.includes(t)) break;
    ids.push(t);
    const text = await decoder.decode(ids, { skipSpecialTokens: true });
    if (text.endsWith('\uFFFD')) continue;  // an incomplete multi-byte character: wait for more
    const hit = firstStop(text, stop, Math.max(0, emitted - holdBack));
    if (hit >= 0) {
      if (hit > emitted) yield text.slice(emitted, hit);
      return;
    }
    const safe = text.length - holdBack;
    if (safe > emitted) {
      yield text.slice(emitted, safe);
      emitted = safe;
    }
  }
  const text = await decoder.decode(ids, { skipSpecialTokens: true });
  const hit = firstStop(text, stop, 0);
  const end = hit >= 0 ? hit : text.length;
  if (end > emitted) yield text.slice(emitted, end);
}

function firstStop(text: string, stop: string[], from: number): number {
  let best = -1;
  for (const s of stop) {
    const i = text.indexOf(s, from);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}
