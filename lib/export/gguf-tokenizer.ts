// Tokenizer metadata for GGUF (tokenizer.ggml.*) from an HF fast tokenizer (tokenizer.json plus
// tokenizer_config.json), following convert_hf_to_gguf.py:
// - byte-level BPE (Llama 3, Qwen2, GPT-2 style) -> `gpt2`: tokens, token_type, merges, `pre`;
// - BPE with byte_fallback (SentencePiece converted: Llama 2, Mistral, Gemma) -> `llama`: tokens,
//   scores, token_type (<0xXX> pieces are BYTE tokens).
// The token list has exactly `vocabSize` entries (the embedding's rows): ids the tokenizer does not
// define become `[PAD<id>]` UNUSED tokens, as the converter does.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LorafitError } from '../errors.js';
import { Tokenizer } from '../text/tokenizer.js';
import { TokenType } from '../gguf/token-type.js';
import { GgufValueType, type GgufWriter } from './gguf-writer.js';

export { TokenType };

export interface TokenizerExportOptions {
  /** Rows of the model's embedding; default: the tokenizer's own size. */
  vocabSize?: number;
  /** Override `tokenizer.ggml.pre` (llama.cpp's pre-tokenizer name) for gpt2-type vocabularies. */
  pre?: string;
  /** Chat template to store instead of the tokenizer's; `null` stores none. */
  chatTemplate?: string | null;
  /** Fallback special ids (e.g. from the model's config.json) where the tokenizer names none. */
  fallbackIds?: { bos?: number | null; eos?: number | null; pad?: number | null };
}

export interface TokenizerMetadata {
  model: 'gpt2' | 'llama';
  pre: string | null;
  tokens: string[];
  tokenTypes: number[];
  scores: number[] | null;
  merges: string[] | null;
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  unkId: number | null;
  eotId: number | null;
  addBos: boolean;
  /** SentencePiece-style vocabularies: whether a leading space is added (llama.cpp `add_space_prefix`). */
  addSpacePrefix: boolean | null;
  addEos: boolean;
  chatTemplate: string | null;
  /** End-of-turn text of the chat template (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`), if any. */
  endOfTurn: string | null;
}

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number> | Array<[string, number]>; merges?: Array<string | [string, string]>; byte_fallback?: boolean; unk_token?: string };
  added_tokens?: Array<{ id: number; content: string; special: boolean }>;
  pre_tokenizer?: unknown;
  normalizer?: unknown;
}

/** Whether a SentencePiece-converted tokenizer prepends '▁' (normalizer Prepend or Metaspace prepend_scheme). */
function detectSpacePrefix(json: TokenizerJson): boolean {
  let found = false;
  const walk = (p: unknown): void => {
    if (!p || typeof p !== 'object') return;
    const o = p as Record<string, unknown>;
    for (const k of ['normalizers', 'pretokenizers']) if (Array.isArray(o[k])) (o[k] as unknown[]).forEach(walk);
    if (o.type === 'Prepend' && o.prepend === '\u2581') found = true;
    if (o.type === 'Metaspace' && o.prepend_scheme !== 'never' && o.add_prefix_space !== false) found = true;
  };
  walk(json.normalizer);
  walk(json.pre_tokenizer);
  return found;
}

// Pre-tokenizer regexes of tokenizer.json -> llama.cpp's `tokenizer.ggml.pre` (convert_hf_to_gguf
// identifies them by hashing an encoding of a test text; the regex identifies the same families).
const PRE_BY_REGEX: Array<[string, string]> = [
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'llama-bpe'],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'qwen2'],
];

function detectPre(pre: unknown, file: string): string {
  const regexes: string[] = [];
  let byteLevelRegex = false;
  const walk = (p: unknown): void => {
    if (!p || typeof p !== 'object') return;
    const o = p as Record<string, unknown>;
    if (o.type === 'Sequence' && Array.isArray(o.pretokenizers)) o.pretokenizers.forEach(walk);
    if (o.type === 'Split') {
      const pat = o.pattern as { Regex?: string } | undefined;
      if (pat?.Regex) regexes.push(pat.Regex);
    }
    if (o.type === 'ByteLevel' && o.use_regex !== false) byteLevelRegex = true;
  };
  walk(pre);
  for (const r of regexes) for (const [re, name] of PRE_BY_REGEX) if (r === re) return name;
  if (regexes.length === 0 && byteLevelRegex) return 'gpt-2';
  throw new LorafitError(
    'E_EXPORT',
    `${file}: unknown pre-tokenizer ${JSON.stringify(pre).slice(0, 200)}; pass the llama.cpp pre-tokenizer name (tokenizer.ggml.pre) with the 'pre' option`,
  );
}

/** Reads tokenizer.json (+ tokenizer_config.json) from `dir` into the values GGUF stores. */
export async function readTokenizerMetadata(dir: string, options: TokenizerExportOptions = {}): Promise<TokenizerMetadata> {
  const file = join(dir, 'tokenizer.json');
  let json: TokenizerJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as TokenizerJson;
  } catch (e) {
    throw new LorafitError('E_EXPORT', `${file}: cannot read the tokenizer (${(e as Error).message})`, { cause: e });
  }
  const tok = await Tokenizer.fromDir(dir);
  const m = json.model;
  let kind: 'gpt2' | 'llama';
  if (m.type === 'BPE' && m.byte_fallback) kind = 'llama';
  else if (m.type === 'BPE') kind = 'gpt2';
  else throw new LorafitError('E_EXPORT', `${file}: tokenizer model '${m.type}' cannot be exported to GGUF (only BPE tokenizers: byte-level or SentencePiece-converted)`);

  const vocabEntries: Array<[string, number]> = Array.isArray(m.vocab) ? m.vocab : Object.entries(m.vocab);
  const byId = new Map<number, string>();
  for (const [t, id] of vocabEntries) byId.set(id, t);
  const added = new Map<number, { content: string; special: boolean }>();
  for (const a of json.added_tokens ?? []) {
    added.set(a.id, a);
    byId.set(a.id, a.content);
  }
  let maxId = -1;
  for (const id of byId.keys()) if (id > maxId) maxId = id;
  const vocabSize = options.vocabSize ?? maxId + 1;
  if (maxId >= vocabSize) {
    throw new LorafitError('E_EXPORT', `${file}: the tokenizer has token id ${maxId} but the model's vocabulary has only ${vocabSize} rows`);
  }

  const merges = (m.merges ?? []).map((x) => (Array.isArray(x) ? `${x[0]} ${x[1]}` : x));
  const tokens: string[] = new Array(vocabSize);
  const tokenTypes: number[] = new Array(vocabSize);
  const unkText = m.unk_token ?? tok.unkToken;
  for (let id = 0; id < vocabSize; id++) {
    const t = byId.get(id);
    if (t === undefined) {
      tokens[id] = `[PAD${id}]`;
      tokenTypes[id] = TokenType.UNUSED;
      continue;
    }
    tokens[id] = t;
    const a = added.get(id);
    if (kind === 'llama' && t === unkText) tokenTypes[id] = TokenType.UNKNOWN;
    else if (a) tokenTypes[id] = a.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
    else if (kind === 'llama' && /^<0x[0-9A-Fa-f]{2}>$/.test(t)) tokenTypes[id] = TokenType.BYTE;
    else tokenTypes[id] = TokenType.NORMAL;
  }

  // SentencePiece picks the highest-scoring bigram; the merge rank gives the same order.
  let scores: number[] | null = null;
  if (kind === 'llama') {
    const rank = new Map<string, number>();
    merges.forEach((mg, i) => {
      const sp = mg.indexOf(' ', 1);
      const joined = mg.slice(0, sp) + mg.slice(sp + 1);
      if (!rank.has(joined)) rank.set(joined, i);
    });
    scores = tokens.map((t, id) => (tokenTypes[id] === TokenType.NORMAL ? -(rank.get(t) ?? 0) : 0));
  }

  const fb = options.fallbackIds ?? {};
  const bosId = tok.bosTokenId ?? fb.bos ?? null;
  const eosId = tok.eosTokenId ?? fb.eos ?? null;
  const eotText = tok.endOfTurn?.trim() ?? null;
  const eotId = eotText ? tok.tokenToId(eotText) : null;
  let chatTemplate: string | null = tok.usesFallbackChatTemplate ? null : tok.chatTemplate;
  if (options.chatTemplate !== undefined) chatTemplate = options.chatTemplate;
  return {
    model: kind,
    pre: kind === 'gpt2' ? options.pre ?? detectPre(json.pre_tokenizer, file) : null,
    tokens,
    tokenTypes,
    scores,
    merges: kind === 'gpt2' ? merges : null,
    bosId,
    eosId,
    padId: tok.padTokenId ?? fb.pad ?? null,
    unkId: tok.unkTokenId,
    eotId: eotId !== null && eotId !== eosId && !tok.usesFallbackChatTemplate ? eotId : null,
    addBos: tok.addBosToken,
    addSpacePrefix: kind === 'llama' ? detectSpacePrefix(json) : null,
    addEos: tok.addEosToken,
    chatTemplate,
    endOfTurn: tok.usesFallbackChatTemplate ? null : eotText,
  };
}

/** Writes the tokenizer.ggml.* keys (and tokenizer.chat_template). */
export function writeTokenizerMetadata(w: GgufWriter, t: TokenizerMetadata): void {
  w.addString('tokenizer.ggml.model', t.model);
  if (t.pre !== null) w.addString('tokenizer.ggml.pre', t.pre);
  w.addArray('tokenizer.ggml.tokens', GgufValueType.STRING, t.tokens);
  if (t.scores) w.addArray('tokenizer.ggml.scores', GgufValueType.FLOAT32, t.scores);
  w.addArray('tokenizer.ggml.token_type', GgufValueType.INT32, t.tokenTypes);
  if (t.merges) w.addArray('tokenizer.ggml.merges', GgufValueType.STRING, t.merges);
  if (t.bosId !== null) w.addUint32('tokenizer.ggml.bos_token_id', t.bosId);
  if (t.eosId !== null) w.addUint32('tokenizer.ggml.eos_token_id', t.eosId);
  if (t.unkId !== null) w.addUint32('tokenizer.ggml.unknown_token_id', t.unkId);
  if (t.padId !== null) w.addUint32('tokenizer.ggml.padding_token_id', t.padId);
  if (t.eotId !== null) w.addUint32('tokenizer.ggml.eot_token_id', t.eotId);
  w.addBool('tokenizer.ggml.add_bos_token', t.addBos);
  w.addBool('tokenizer.ggml.add_eos_token', t.addEos);
  if (t.addSpacePrefix !== null) w.addBool('tokenizer.ggml.add_space_prefix', t.addSpacePrefix);
  if (t.chatTemplate !== null) w.addString('tokenizer.chat_template', t.chatTemplate);
}
