/**
 * Records to training examples: `{ inputIds, labels }` with labels -100 where the model is not
 * trained, `maxSeqLength` truncation (counted, or dropping instead), and packing.
 *
 * Conversations are rendered whole with the chat template and encoded once with offsets, so the
 * ids are exactly what `apply_chat_template(..., tokenize=True)` gives at inference; the assistant
 * spans found in the rendered string (see assistant-spans.ts) become the trained labels through
 * the token offsets (code points converted to UTF-16 units by the Tokenizer). Encoding the split
 * pieces separately instead would change tokens at every boundary for tokenizers that prepend a
 * space marker to each input (Llama 2's sentencepiece normaliser) and for BPE merges across it.
 */
import { detectEndOfTurn } from '../text/chat-template.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { labelsFromSpans, locateAssistantSpans } from './assistant-spans.js';
import { LorafitDataError } from './errors.js';
import type { ConversationRecord, DataRecord, TextRecord } from './formats.js';

export const IGNORE_INDEX = -100;

/** Which tokens carry a loss: every assistant turn (default), only the last one, or everything. */
export type TrainOn = 'all-assistant' | 'last-assistant' | 'all';

export interface TokenizeOptions {
  /** Longest example in tokens. Default 2048. */
  maxSeqLength?: number;
  /** Longer examples are cut at maxSeqLength (default) or dropped; both are counted in the stats. */
  overflow?: 'truncate' | 'drop';
  trainOn?: TrainOn;
  /**
   * Concatenate examples (text: `[bos] text eos`) and cut the stream into maxSeqLength blocks. The
   * documents of a block stay isolated in training (segmentLengths): no token attends across them.
   */
  packing?: boolean;
  /** Append EOS to raw text records. Default true. */
  addEos?: boolean;
  /** Chat template selection and extra variables (`enable_thinking`, ...). */
  templateName?: string;
  templateVariables?: Record<string, unknown>;
  /** Records encoded concurrently (the Rust tokenizer runs on libuv's thread pool). Default 16. */
  concurrency?: number;
}

export interface TokenizedExample {
  inputIds: Int32Array;
  /** Same length as inputIds; IGNORE_INDEX (-100) where no loss is computed. */
  labels: Int32Array;
  /**
   * Packed blocks only: the lengths of the documents (or pieces of documents) in the block, in
   * order, summing to its length. Training isolates them: each attends only to itself and its
   * positions restart at 0, so packing changes no document's numbers (a document cut at a block
   * boundary continues in the next block as a piece of its own).
   */
  segmentLengths?: Int32Array;
}

export interface TokenizeStats {
  records: number;
  examples: number;
  /** Examples cut to maxSeqLength. */
  truncated: number;
  /** Examples dropped for being longer than maxSeqLength (overflow: 'drop'). */
  dropped: number;
  /** Examples dropped because no trained token was left (e.g. the answer was truncated away). */
  droppedNoLabels: number;
  tokens: number;
  trainedTokens: number;
  longest: number;
}

export function emptyStats(): TokenizeStats {
  return { records: 0, examples: 0, truncated: 0, dropped: 0, droppedNoLabels: 0, tokens: 0, trainedTokens: 0, longest: 0 };
}

/** One record to ids and labels, without truncation. */
export async function tokenizeRecord(
  tokenizer: Tokenizer,
  record: DataRecord,
  options: TokenizeOptions = {},
): Promise<TokenizedExample> {
  try {
    return record.kind === 'text'
      ? await tokenizeText(tokenizer, record, options)
      : await tokenizeConversation(tokenizer, record, options);
  } catch (err) {
    if (err instanceof LorafitDataError && err.file === undefined && record.source?.file !== undefined) {
      throw new LorafitDataError(err.code, err.message, { ...record.source, key: err.key, cause: err });
    }
    throw err;
  }
}

async function tokenizeText(tokenizer: Tokenizer, record: TextRecord, options: TokenizeOptions): Promise<TokenizedExample> {
  const ids = await tokenizer.encode(record.text, { addSpecialTokens: true });
  const eos = tokenizer.eosTokenId;
  if ((options.addEos ?? true) && eos !== null && ids[ids.length - 1] !== eos) ids.push(eos);
  const inputIds = Int32Array.from(ids);
  return { inputIds, labels: inputIds.slice() };
}

const endOfTurnCache = new WeakMap<Tokenizer, Map<string, string | null>>();

function endOfTurnFor(tokenizer: Tokenizer, source: string): string | null {
  if (source === tokenizer.chatTemplate) return tokenizer.endOfTurn;
  let cache = endOfTurnCache.get(tokenizer);
  if (!cache) endOfTurnCache.set(tokenizer, (cache = new Map()));
  if (!cache.has(source)) cache.set(source, detectEndOfTurn(tokenizer.template(source), tokenizer.specialTokens));
  return cache.get(source) as string | null;
}

async function tokenizeConversation(
  tokenizer: Tokenizer,
  record: ConversationRecord,
  options: TokenizeOptions,
): Promise<TokenizedExample> {
  const renderOptions = { tools: record.tools, templateName: options.templateName, extra: options.templateVariables };
  const source = tokenizer.templateSource(renderOptions);
  const template = tokenizer.template(source);
  const render = (messages: typeof record.messages) => template.render(messages, renderOptions);
  const rendered = render(record.messages);
  const { ids, offsets } = await tokenizer.encodeWithOffsets(rendered, { addSpecialTokens: false });
  const inputIds = Int32Array.from(ids);
  const trainOn = options.trainOn ?? 'all-assistant';
  if (trainOn === 'all') return { inputIds, labels: inputIds.slice() };
  let spans = locateAssistantSpans(rendered, record.messages, { render, endOfTurn: endOfTurnFor(tokenizer, source) });
  if (trainOn === 'last-assistant') spans = spans.slice(-1);
  else if (trainOn !== 'all-assistant') {
    throw new LorafitDataError('E_DATA_FORMAT', `unknown trainOn "${String(trainOn)}"; expected all-assistant, last-assistant or all`);
  }
  return { inputIds, labels: labelsFromSpans(inputIds, offsets, spans, IGNORE_INDEX) };
}

/** Tokenize a stream of records; `stats` (if given) is updated as examples are produced. */
export async function* tokenizeStream(
  records: AsyncIterable<DataRecord> | Iterable<DataRecord>,
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
  stats: TokenizeStats = emptyStats(),
): AsyncGenerator<TokenizedExample> {
  checkMaxSeqLength(options);
  yield* finishExamples(encodeRecords(records, tokenizer, options), options, stats);
}

/**
 * One example per record, in order, untruncated (tokenizeRecord's output), `concurrency` records
 * encoded at a time. This is what the tokenization cache (token-cache.ts) stores.
 */
export async function* encodeRecords(
  records: AsyncIterable<DataRecord> | Iterable<DataRecord>,
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): AsyncGenerator<TokenizedExample> {
  const concurrency = Math.max(1, options.concurrency ?? 16);
  let batch: DataRecord[] = [];
  for await (const record of records) {
    batch.push(record);
    if (batch.length >= concurrency) {
      const encoded = await Promise.all(batch.map((r) => tokenizeRecord(tokenizer, r, options)));
      batch = [];
      yield* encoded;
    }
  }
  if (batch.length > 0) yield* await Promise.all(batch.map((r) => tokenizeRecord(tokenizer, r, options)));
}

/**
 * Examples encoded one per record (encodeRecords, or a cache hit) to training examples:
 * `maxSeqLength` truncation or dropping, dropping examples without trained tokens, packing, and
 * the stats (`records` counts the encoded examples consumed).
 */
export async function* finishExamples(
  encoded: AsyncIterable<TokenizedExample> | Iterable<TokenizedExample>,
  options: TokenizeOptions = {},
  stats: TokenizeStats = emptyStats(),
): AsyncGenerator<TokenizedExample> {
  const maxSeqLength = checkMaxSeqLength(options);
  const packer = options.packing ? new Packer(maxSeqLength) : null;

  const emit = function* (example: TokenizedExample): Generator<TokenizedExample> {
    let { inputIds, labels } = example;
    if (packer === null && inputIds.length > maxSeqLength) {
      if ((options.overflow ?? 'truncate') === 'drop') {
        stats.dropped++;
        return;
      }
      inputIds = inputIds.subarray(0, maxSeqLength);
      labels = labels.subarray(0, maxSeqLength);
      stats.truncated++;
    }
    const trained = countTrained(labels);
    if (trained === 0) {
      stats.droppedNoLabels++;
      return;
    }
    if (packer !== null) {
      for (const block of packer.push(inputIds, labels)) {
        if (countTrained(block.labels) === 0) stats.droppedNoLabels++;
        else yield account(block);
      }
      return;
    }
    yield account({ inputIds: inputIds.slice(), labels: labels.slice() });
  };
  const account = (example: TokenizedExample): TokenizedExample => {
    stats.examples++;
    stats.tokens += example.inputIds.length;
    stats.trainedTokens += countTrained(example.labels);
    stats.longest = Math.max(stats.longest, example.inputIds.length);
    return example;
  };

  for await (const example of encoded) {
    stats.records++;
    yield* emit(example);
  }
  if (packer !== null) {
    const last = packer.finish();
    if (last !== null) yield account(last);
  }
}

function checkMaxSeqLength(options: TokenizeOptions): number {
  const maxSeqLength = options.maxSeqLength ?? 2048;
  if (!Number.isInteger(maxSeqLength) || maxSeqLength < 2) {
    throw new LorafitDataError('E_DATA_FORMAT', `maxSeqLength must be an integer >= 2, got ${maxSeqLength}`);
  }
  return maxSeqLength;
}

/** Tokenize everything into memory and report what truncation and filtering did. */
export async function tokenizeDataset(
  records: AsyncIterable<DataRecord> | Iterable<DataRecord>,
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): Promise<{ examples: TokenizedExample[]; stats: TokenizeStats }> {
  const stats = emptyStats();
  const examples: TokenizedExample[] = [];
  for await (const example of tokenizeStream(records, tokenizer, options, stats)) examples.push(example);
  return { examples, stats };
}

function countTrained(labels: Int32Array): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/**
 * Concatenates examples and hands out full blocks of `size` tokens; the remainder comes last.
 * Each block records the lengths of the document pieces it holds (segmentLengths).
 */
class Packer {
  private ids: number[] = [];
  private labels: number[] = [];
  private pieces: number[] = [];  // lengths of the documents (pieces) in ids, summing to ids.length
  constructor(private readonly size: number) {}

  *push(ids: Int32Array, labels: Int32Array): Generator<TokenizedExample> {
    if (ids.length === 0) return;
    for (let i = 0; i < ids.length; i++) {
      this.ids.push(ids[i]);
      this.labels.push(labels[i]);
    }
    this.pieces.push(ids.length);
    while (this.ids.length >= this.size) {
      const segments: number[] = [];
      let room = this.size;
      while (room > 0) {
        const take = Math.min(room, this.pieces[0]);
        segments.push(take);
        room -= take;
        if (take === this.pieces[0]) this.pieces.shift();
        else this.pieces[0] -= take;
      }
      yield {
        inputIds: Int32Array.from(this.ids.splice(0, this.size)),
        labels: Int32Array.from(this.labels.splice(0, this.size)),
        segmentLengths: Int32Array.from(segments),
      };
    }
  }

  finish(): TokenizedExample | null {
    if (this.ids.length === 0 || !this.labels.some((l) => l !== IGNORE_INDEX)) return null;
    const out = { inputIds: Int32Array.from(this.ids), labels: Int32Array.from(this.labels), segmentLengths: Int32Array.from(this.pieces) };
    this.ids = [];
    this.labels = [];
    this.pieces = [];
    return out;
  }
}
