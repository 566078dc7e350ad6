// An HF tokenizer.json built from a GGUF file's tokenizer.ggml.* metadata, giving the same ids as
// transformers' own GGUF conversion (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`, which is
// the reference here; transformers 5.x: integrations/gguf/gguf_tokenizer_mapping.py):
//
// - `gpt2` (byte-level BPE: SmolLM2, Qwen2, Llama 3): GPT2Tokenizer's shape. Tokens outside the
//   byte alphabet are respelled byte by byte; the merges come from the file; the pre-tokenizer is
//   ByteLevel's GPT-2 regex unless `tokenizer.ggml.pre` names a split transformers knows.
// - `llama` (SentencePiece BPE with byte fallback: Llama 2, Mistral): LlamaTokenizer's shape
//   (Metaspace, prepend "first"); merges from the file, else rebuilt from the vocabulary ordered by
//   `tokenizer.ggml.scores` (transformers' generate_merges). Architectures gemma/gemma2/gemma3 use
//   GemmaTokenizer's shape (spaces replaced by U+2581, split after each), with all-space tokens
//   respelled and merges ordered by position; phi3 prepends U+2581 in the normalizer.
// - `gemma4`: SentencePiece with GemmaTokenizer's shape and scores from the file, never BOS.
// Tokens typed CONTROL become special added tokens, USER_DEFINED ones plain added tokens; then the
// named bos/eos/unk/pad tokens are added as special where they are not yet, as transformers'
// TokenizersBackend does.
//
// Where llama.cpp tokenizes differently, this follows transformers:
// - llama.cpp picks its pre-tokenizer regex from `tokenizer.ggml.pre` for many more names (e.g.
//   "smollm" splits digits one by one, as SmolLM2's own tokenizer.json does); transformers only
//   maps the names in PRE_TOKENIZER_SPLITS below and falls back to GPT-2's regex, where a digit run
//   (with its leading space) is one pre-token. SmolLM2's vocabulary has no multi-digit tokens, so
//   its ids come out the same; a vocabulary with such merges would tokenize numbers differently.
// - llama.cpp honours `tokenizer.ggml.add_space_prefix`; transformers ignores it (LlamaTokenizer
//   always prepends U+2581 to the first word, GemmaTokenizer never does).
// - llama.cpp treats CONTROL tokens in a byte-level vocabulary whatever their spelling; transformers
//   skips those that use characters outside the byte alphabet (a mislabel), and so do we.
import { LorafitDataError } from '../data/errors.js';
import { TokenType } from './token-type.js';
import { metaBool, metaNumber, metaNumbers, metaString, metaStrings, type GgufFile } from './reader.js';

export const GGUF_TOKENIZER_MODELS = ['gpt2', 'llama', 'gemma4'] as const;

export interface GgufTokenizer {
  /** tokenizer.json text, ready for `tokenizers.Tokenizer.fromString`. */
  json: string;
  /** Its `added_tokens` (by id). */
  addedTokens: Array<{ id: number; content: string; special: boolean }>;
  /** `tokenizer.ggml.model`. */
  model: string;
  /** `tokenizer.ggml.pre` (null when absent). */
  pre: string | null;
  /** Which transformers shape was built: 'gpt2' | 'llama' | 'gemma' | 'phi3' | 'gemma4'. */
  shape: 'gpt2' | 'llama' | 'gemma' | 'phi3' | 'gemma4';
  /** Special tokens as their text (tokens[id] as the file spells them), null when the id is absent. */
  bosToken: string | null;
  eosToken: string | null;
  unkToken: string | null;
  padToken: string | null;
  /** Whether encoding adds BOS/EOS (metadata, else transformers' default: true for `llama`, false otherwise). */
  addBosToken: boolean;
  addEosToken: boolean;
  /** Ids llama.cpp also stops at: `tokenizer.ggml.eot_token_id`, `eom_token_id` (for stop tokens; no effect on ids). */
  endOfGenerationIds: number[];
  /** `tokenizer.chat_template` (named templates `tokenizer.chat_template.NAME` are not read, as in transformers). */
  chatTemplate: string | null;
}

// Split regexes transformers maps from `tokenizer.ggml.pre` (gguf_tokenizer_mapping.py GGUF_PRE_TOKENIZER_SPLITS).
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN35_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const TEKKEN_SPLIT =
  '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+' +
  '|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*' +
  '|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';
const GPT4O_SPLIT =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
  "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?" +
  '|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

export const PRE_TOKENIZER_SPLITS: Readonly<Record<string, string>> = {
  llama3: LLAMA3_SPLIT, 'llama-v3': LLAMA3_SPLIT, 'llama-bpe': LLAMA3_SPLIT, falcon3: LLAMA3_SPLIT,
  'falcon-h1': LLAMA3_SPLIT, pixtral: LLAMA3_SPLIT, 'midm-2.0': LLAMA3_SPLIT, lfm2: LLAMA3_SPLIT,
  'jina-v5-nano': LLAMA3_SPLIT, dbrx: LLAMA3_SPLIT, 'smaug-bpe': LLAMA3_SPLIT,
  tekken: TEKKEN_SPLIT,
  qwen2: QWEN2_SPLIT, 'deepseek-r1-qwen': QWEN2_SPLIT, kormo: QWEN2_SPLIT, f2llmv2: QWEN2_SPLIT, megrez: QWEN2_SPLIT,
  qwen35: QWEN35_SPLIT,
  'gpt-4o': GPT4O_SPLIT, llama4: GPT4O_SPLIT, kanana2: GPT4O_SPLIT, talkie: GPT4O_SPLIT, 'minimax-m2': GPT4O_SPLIT,
};

// Architectures whose SentencePiece vocabulary transformers builds differently (GGUF_SENTENCEPIECE_BUILDERS).
const GEMMA_ARCHS = new Set(['gemma', 'gemma2', 'gemma3']);
// Architectures whose final tokenizer class is GemmaTokenizer, which names `<mask>` as its mask token.
const GEMMA_CLASS_ARCHS = new Set(['gemma', 'gemma2', 'gemma3', 'gemma3n']);

const SPACE = '\u2581';

// The special tokens each transformers class names by default (bos, eos, unk, pad, mask order); the
// builder adds them to the vocabulary before the file's own (transformers' TokenizersBackend.__init__).
const BUILDER_SPECIAL_TOKENS: Record<GgufTokenizer['shape'], readonly string[]> = {
  gpt2: ['<|endoftext|>'],
  llama: ['<s>', '</s>', '<unk>'],
  phi3: ['<s>', '</s>', '<unk>'],
  gemma: ['<bos>', '<eos>', '<unk>', '<pad>', '<mask>'],
  gemma4: ['<bos>', '<eos>', '<unk>', '<pad>', '<mask>'],
};
// Python's str.isspace() characters (`not t.strip()`), which differ from JavaScript's trim().
const PY_ALL_SPACE = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** GPT-2's bytes_to_unicode: byte -> the printable character byte-level BPE spells it with. */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const direct = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(direct(b) ? b : 256 + n++);
  return out;
})();
// The alphabet is U+0021-007E, U+00A1-00AC and U+00AE-0143 (the 68 remapped bytes follow U+00FF).
const BYTE_ALPHABET = /^[\x21-\x7e\xa1-\xac\xae-\u0143]*$/;

function inByteAlphabet(token: string): boolean {
  return BYTE_ALPHABET.test(token);
}

const utf8 = new TextEncoder();
function respellBytes(token: string): string {
  let s = '';
  for (const b of utf8.encode(token)) s += BYTE_TO_CHAR[b];
  return s;
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: false;
  lstrip: false;
  rstrip: false;
  normalized: false;
  special: boolean;
}

type Vocab = Map<string, number>;

function tokError(f: GgufFile, key: string, message: string): never {
  throw new LorafitDataError('E_TOKENIZER', message, { file: f.path, key });
}

/** Builds the tokenizer a GGUF file describes. Throws LorafitDataError('E_TOKENIZER') naming the key at fault. */
export function buildGgufTokenizer(f: GgufFile): GgufTokenizer {
  const model = metaString(f, 'tokenizer.ggml.model');
  if (model === undefined) tokError(f, 'tokenizer.ggml.model', 'the file has no tokenizer (metadata is missing)');
  if (!(GGUF_TOKENIZER_MODELS as readonly string[]).includes(model)) {
    tokError(
      f,
      'tokenizer.ggml.model',
      `tokenizer model '${model}' is not supported (supported: ${GGUF_TOKENIZER_MODELS.join(', ')})`,
    );
  }
  const arch = metaString(f, 'general.architecture') ?? '';
  const pre = metaString(f, 'tokenizer.ggml.pre') ?? null;
  const tokens = metaStrings(f, 'tokenizer.ggml.tokens');
  if (tokens === undefined || tokens.length === 0) tokError(f, 'tokenizer.ggml.tokens', 'the vocabulary is missing or empty');
  const types = metaNumbers(f, 'tokenizer.ggml.token_type') ?? null;
  if (types !== null && types.length !== tokens.length) {
    tokError(f, 'tokenizer.ggml.token_type', `has ${types.length} entries for ${tokens.length} tokens`);
  }
  const scores = metaNumbers(f, 'tokenizer.ggml.scores') ?? null;
  if (scores !== null && scores.length !== tokens.length) {
    tokError(f, 'tokenizer.ggml.scores', `has ${scores.length} entries for ${tokens.length} tokens`);
  }
  const fileMerges = metaStrings(f, 'tokenizer.ggml.merges') ?? null;

  const shape: GgufTokenizer['shape'] =
    model === 'gpt2' ? 'gpt2'
      : model === 'gemma4' ? 'gemma4'
        : GEMMA_ARCHS.has(arch) ? 'gemma'
          : arch === 'phi3' ? 'phi3'
            : 'llama';

  // The vocabulary as the builder spells it. Later duplicates win, as in a Python dict comprehension.
  let spelled: readonly string[] = tokens;
  if (shape === 'gpt2') spelled = tokens.map((t) => (inByteAlphabet(t) ? t : respellBytes(t)));
  else if (shape === 'gemma') spelled = tokens.map((t) => (t.includes(' ') && PY_ALL_SPACE.test(t) ? SPACE.repeat(t.length) : t));
  const vocab: Vocab = new Map();
  spelled.forEach((t, i) => vocab.set(t, i));

  let merges: Array<[string, string]>;
  if (fileMerges !== null) {
    merges = parseMerges(f, fileMerges, vocab);
  } else if (shape === 'gpt2') {
    // transformers would derive them from scores, which a byte-level file never has (KeyError there).
    tokError(f, 'tokenizer.ggml.merges', 'a gpt2 (byte-level BPE) vocabulary needs its merges, and they are missing');
  } else if (shape === 'gemma') {
    // Gemma's scores do not follow its merge order; the token order does.
    const positions = new Map<string, number>();
    spelled.forEach((t, i) => positions.set(t, -i));
    merges = generateMerges(vocab, positions);
  } else {
    if (scores === null) tokError(f, 'tokenizer.ggml.scores', 'a SentencePiece vocabulary without merges needs its scores, and they are missing');
    const byToken = new Map<string, number>();
    spelled.forEach((t, i) => byToken.set(t, scores[i]));
    merges = generateMerges(vocab, byToken);
  }

  const special = (key: string): string | null => {
    const id = metaNumber(f, `tokenizer.ggml.${key}`);
    if (id === undefined) return null;
    if (!Number.isInteger(id) || id < 0 || id >= tokens.length) {
      tokError(f, `tokenizer.ggml.${key}`, `token id ${id} is outside the vocabulary (${tokens.length} tokens)`);
    }
    return tokens[id];
  };
  const bosToken = special('bos_token_id');
  const eosToken = special('eos_token_id');
  const unkToken = special('unknown_token_id');
  const padToken = special('padding_token_id');

  // transformers: a `llama` file without the flag adds BOS (llama.cpp's default); gemma4 never does.
  let addBos = metaBool(f, 'tokenizer.ggml.add_bos_token') ?? model === 'llama';
  if (model === 'gemma4') addBos = false;
  let addEos = metaBool(f, 'tokenizer.ggml.add_eos_token') ?? false;
  if (bosToken === null) addBos = false;
  if (eosToken === null) addEos = false;

  // Added tokens, in transformers' order: the builder class's own default special tokens (GPT2Tokenizer
  // names `<|endoftext|>`, LlamaTokenizer `<s>` `</s>` `<unk>`, GemmaTokenizer `<bos>` ... `<mask>`;
  // one the vocabulary lacks gets a new id, as in transformers), then CONTROL tokens as special and
  // USER_DEFINED ones as plain (a later add with other flags replaces the earlier, as in tokenizers),
  // then the file's named bos/eos/unk/pad where not yet added.
  const added: AddedTokenJson[] = [];
  const addedByContent = new Map<string, AddedTokenJson>();
  let nextId = vocab.size; // tokenizers: a token the model lacks gets the id after the model's and the added ones
  const add = (content: string, isSpecial: boolean, replace: boolean): void => {
    const had = addedByContent.get(content);
    if (had !== undefined) {
      if (replace) had.special = isSpecial;
      return;
    }
    let id = vocab.get(content);
    if (id === undefined) id = nextId++;
    else if (id >= nextId) nextId = id + 1;
    const t: AddedTokenJson = { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: isSpecial };
    added.push(t);
    addedByContent.set(content, t);
  };
  for (const t of BUILDER_SPECIAL_TOKENS[shape]) add(t, true, false);
  if (types !== null) {
    for (let i = 0; i < tokens.length; i++) {
      if (types[i] === TokenType.CONTROL && (shape !== 'gpt2' || inByteAlphabet(tokens[i]))) add(tokens[i], true, true);
    }
    for (let i = 0; i < tokens.length; i++) {
      if (types[i] === TokenType.USER_DEFINED && (vocab.has(tokens[i]) || addedByContent.has(tokens[i]))) add(tokens[i], false, true);
    }
  }
  const maskToken = GEMMA_CLASS_ARCHS.has(arch) ? '<mask>' : null;
  for (const t of [bosToken, eosToken, unkToken, padToken, maskToken]) if (t !== null) add(t, true, false);
  added.sort((a, b) => a.id - b.id);

  const pipeline = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: normalizerJson(shape),
    pre_tokenizer: preTokenizerJson(shape, pre),
    post_processor: postProcessorJson(addBos ? bosToken : null, addEos ? eosToken : null, addedByContent),
    decoder: decoderJson(shape),
  };
  return {
    json: `${JSON.stringify(pipeline).slice(0, -1)},"model":${modelJson(shape, vocab, merges)}}`,
    addedTokens: added.map(({ id, content, special: isSpecial }) => ({ id, content, special: isSpecial })),
    model,
    pre,
    shape,
    bosToken,
    eosToken,
    unkToken,
    padToken,
    addBosToken: addBos,
    addEosToken: addEos,
    endOfGenerationIds: ['eot_token_id', 'eom_token_id']
      .map((k) => metaNumber(f, `tokenizer.ggml.${k}`))
      .filter((id): id is number => id !== undefined && Number.isInteger(id) && id >= 0 && id < tokens.length),
    chatTemplate: metaString(f, 'tokenizer.chat_template') ?? null,
  };
}

/** "a b" -> ["a", "b"], checked the way tokenizers' BPE checks them (both parts and the result in the vocabulary). */
function parseMerges(f: GgufFile, lines: readonly string[], vocab: Vocab): Array<[string, string]> {
  const out: Array<[string, string]> = new Array(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const m = lines[i];
    const sp = m.indexOf(' ');
    if (sp < 0 || m.indexOf(' ', sp + 1) >= 0) {
      tokError(f, 'tokenizer.ggml.merges', `merge #${i} ${JSON.stringify(m)} is not two tokens separated by one space`);
    }
    const a = m.slice(0, sp);
    const b = m.slice(sp + 1);
    for (const t of [a, b, a + b]) {
      if (!vocab.has(t)) {
        tokError(f, 'tokenizer.ggml.merges', `merge #${i} ${JSON.stringify(m)} uses ${JSON.stringify(t)}, which is not in tokenizer.ggml.tokens (merges and tokens do not match)`);
      }
    }
    out[i] = [a, b];
  }
  return out;
}

/**
 * transformers' generate_merges(vocab, vocab_scores): every split of every token into two
 * vocabulary pieces, each token's splits ordered by the pieces' ids, then all of them by score,
 * left length and right length, all descending (a stable sort, lengths in code points).
 */
export function generateMerges(vocab: Vocab, scores: ReadonlyMap<string, number>): Array<[string, string]> {
  const all: Array<{ l: string; r: string; score: number; ll: number; rl: number }> = [];
  const local: Array<{ l: string; r: string; score: number; ll: number; rl: number; li: number; ri: number }> = [];
  for (const [merge, score] of scores) {
    const cps = Array.from(merge);
    if (cps.length < 2) continue;
    local.length = 0;
    let left = '';
    let right = merge;
    for (let i = 1; i < cps.length; i++) {
      left += cps[i - 1];
      right = right.slice(cps[i - 1].length);
      const li = vocab.get(left);
      if (li === undefined) continue;
      const ri = vocab.get(right);
      if (ri === undefined) continue;
      local.push({ l: left, r: right, score, ll: i, rl: cps.length - i, li, ri });
    }
    if (local.length > 1) local.sort((x, y) => x.li - y.li || x.ri - y.ri);
    for (const m of local) all.push({ l: m.l, r: m.r, score: m.score, ll: m.ll, rl: m.rl });
  }
  all.sort((x, y) => y.score - x.score || y.ll - x.ll || y.rl - x.rl);
  return all.map((m) => [m.l, m.r]);
}

function normalizerJson(shape: GgufTokenizer['shape']): unknown {
  const replace = { type: 'Replace', pattern: { String: ' ' }, content: SPACE };
  if (shape === 'gemma' || shape === 'gemma4') return replace;
  if (shape === 'phi3') return { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: SPACE }, replace] };
  return null;
}

function preTokenizerJson(shape: GgufTokenizer['shape'], pre: string | null): unknown {
  if (shape === 'gpt2') {
    const split = pre === null ? undefined : PRE_TOKENIZER_SPLITS[pre];
    if (split === undefined) return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    return {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: split }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    };
  }
  if (shape === 'llama') return { type: 'Metaspace', replacement: SPACE, prepend_scheme: 'first', split: false };
  if (shape === 'phi3') return null;
  return { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithPrevious', invert: false };
}

function decoderJson(shape: GgufTokenizer['shape']): unknown {
  if (shape === 'gpt2') return { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  const decoders: unknown[] = [
    { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
  ];
  if (shape === 'llama' || shape === 'phi3') decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  return { type: 'Sequence', decoders };
}

/** TemplateProcessing as transformers' update_post_processor writes it. */
function postProcessorJson(bos: string | null, eos: string | null, added: ReadonlyMap<string, AddedTokenJson>): unknown {
  const seq = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const sp = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const single: unknown[] = [];
  const pair: unknown[] = [];
  if (bos !== null) single.push(sp(bos, 0));
  single.push(seq('A', 0));
  if (eos !== null) single.push(sp(eos, 0));
  pair.push(...single);
  if (bos !== null) pair.push(sp(bos, 1));
  pair.push(seq('B', 1));
  if (eos !== null) pair.push(sp(eos, 1));
  const specialTokens: Record<string, unknown> = {};
  for (const t of [bos, eos]) {
    if (t !== null) specialTokens[t] = { id: t, ids: [(added.get(t) as AddedTokenJson).id], tokens: [t] };
  }
  return { type: 'TemplateProcessing', single, pair, special_tokens: specialTokens };
}

/** The BPE model as JSON text; the vocabulary is written directly (an object of 10^5 keys is slow to build). */
function modelJson(shape: GgufTokenizer['shape'], vocab: Vocab, merges: Array<[string, string]>): string {
  const head =
    shape === 'gpt2'
      ? { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false }
      : {
        type: 'BPE', dropout: null, unk_token: shape === 'llama' || shape === 'phi3' ? null : '<unk>',
        continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
      };
  const parts: string[] = new Array(vocab.size);
  let i = 0;
  for (const [t, id] of vocab) parts[i++] = `${JSON.stringify(t)}:${id}`;
  return `${JSON.stringify(head).slice(0, -1)},"vocab":{${parts.join(',')}},"merges":${JSON.stringify(merges)}}`;
}
