// The on-disk tokenization cache (lib/data/token-cache.ts) against fresh tokenizations with the
// real Qwen3 and Llama 3.1 tokenizers: a hit gives exactly the examples tokenizing again gives;
// a changed file, tokenizer or option misses; a corrupt or foreign cache file is ignored and
// rewritten.
import { appendFileSync, copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type LoadDatasetOptions } from '../../lib/data/load-dataset.js';
import { tokenizeFile, type EncodeFileOptions } from '../../lib/data/token-cache.js';
import { tokenizeDataset, type TokenizedExample, type TokenizeOptions } from '../../lib/data/tokenize.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { FIXTURES, loadTokenizer, modelDir } from './helpers.js';

const plain = (examples: TokenizedExample[]) =>
  examples.map((e) => ({ ids: Array.from(e.inputIds), labels: Array.from(e.labels), segments: e.segmentLengths ? Array.from(e.segmentLengths) : undefined }));

async function fresh(path: string, tok: Tokenizer, options: TokenizeOptions = {}, load: LoadDatasetOptions = {}) {
  const { examples, stats } = await tokenizeDataset(await loadDataset(path, load), tok, options);
  return { examples: plain(examples), stats };
}

describe('tokenization cache', () => {
  let work: string;
  let cacheDir: string;
  let data: string;
  let qwen: Tokenizer;
  const warnings: string[] = [];
  const logger = { warn: (_o: object, msg: string) => void warnings.push(msg) };
  const run = async (path: string, tok: Tokenizer, options: EncodeFileOptions = {}) => {
    const r = await tokenizeFile(path, tok, { cache: { dir: cacheDir }, logger, ...options });
    return { ...r, examples: plain(r.examples) };
  };
  const cacheFiles = () => readdirSync(cacheDir).sort();

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'lorafit-token-cache-'));
    cacheDir = join(work, 'cache');
    // The 20 alpaca demo records as JSONL (the appended record below is one more).
    data = join(work, 'alpaca.jsonl');
    const rows = JSON.parse(readFileSync(join(FIXTURES, 'data', 'formats', 'alpaca_en_demo.json'), 'utf8')) as unknown[];
    writeFileSync(data, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
    qwen = await loadTokenizer('qwen3');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('a hit returns exactly the examples and stats of a fresh tokenization, for other lengths and packing too', async () => {
    const want = await fresh(data, qwen, { maxSeqLength: 4096 });
    const first = await run(data, qwen, { maxSeqLength: 4096 });
    expect(first.cache.status).toBe('miss');
    expect(first.examples).toEqual(want.examples);
    expect(cacheFiles()).toHaveLength(1);
    expect(cacheFiles()[0]).toMatch(/^[0-9a-f]{40}\.tokens$/); // no temporary file left behind
    const second = await run(data, qwen, { maxSeqLength: 4096 });
    expect(second.cache).toEqual({ status: 'hit', file: first.cache.file });
    expect(second.examples).toEqual(want.examples);
    expect(second.stats).toEqual(want.stats);
    expect(second.datasetStats).toMatchObject({ records: 20, skipped: 0 });
    // Truncation, dropping and packing run after the cache: still a hit, still what a fresh run gives.
    for (const options of [{ maxSeqLength: 48 }, { maxSeqLength: 48, overflow: 'drop' as const }, { maxSeqLength: 64, packing: true }]) {
      const hit = await run(data, qwen, options);
      expect(hit.cache.status, JSON.stringify(options)).toBe('hit');
      const expected = await fresh(data, qwen, options);
      expect(hit.examples, JSON.stringify(options)).toEqual(expected.examples);
      expect(hit.stats, JSON.stringify(options)).toEqual(expected.stats);
    }
    expect(want.stats.truncated).toBe(0);
    expect((await fresh(data, qwen, { maxSeqLength: 48 })).stats.truncated).toBeGreaterThan(0); // the cases differ
    expect(cacheFiles()).toHaveLength(1);
  });

  it('a changed data file misses and gives the new file’s examples', async () => {
    const other = join(work, 'changed.jsonl');
    copyFileSync(data, other);
    expect((await run(other, qwen)).cache.status).toBe('hit'); // same bytes, other path: same key
    appendFileSync(other, `${JSON.stringify({ instruction: 'Name a colour.', input: '', output: 'Teal.' })}\n`);
    const changed = await run(other, qwen);
    expect(changed.cache.status).toBe('miss');
    expect(changed.examples).toEqual((await fresh(other, qwen)).examples);
    expect(changed.examples).toHaveLength(21);
    // One character changed, same length.
    const text = readFileSync(other, 'utf8');
    writeFileSync(other, text.replace('Teal.', 'Pink.'));
    const edited = await run(other, qwen);
    expect(edited.cache.status).toBe('miss');
    expect(edited.examples).toEqual((await fresh(other, qwen)).examples);
    expect(edited.examples).not.toEqual(changed.examples);
  });

  it('another tokenizer, an edited tokenizer folder or another chat template misses; a copied folder hits', async () => {
    await run(data, qwen);
    const llama = await loadTokenizer('llama3_1');
    const l = await run(data, llama);
    expect(l.cache.status).toBe('miss');
    expect(l.examples).toEqual((await fresh(data, llama)).examples);
    // The same tokenizer files in another folder: the fingerprint is the content, not the path.
    const copy = join(work, 'qwen-copy');
    cpSync(modelDir('qwen3'), copy, { recursive: true });
    expect((await run(data, await Tokenizer.fromDir(copy))).cache.status).toBe('hit');
    // A chat template edited in tokenizer_config.json.
    const cfgPath = join(copy, 'tokenizer_config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.chat_template = (cfg.chat_template as string).replace('<|im_start|>assistant', '<|im_start|>assistant ');
    writeFileSync(cfgPath, JSON.stringify(cfg));
    const edited = await Tokenizer.fromDir(copy);
    const e = await run(data, edited);
    expect(e.cache.status).toBe('miss');
    expect(e.examples).toEqual((await fresh(data, edited)).examples);
    // tokenizer.json edited (a merge dropped) with the configs unchanged.
    const copy2 = join(work, 'qwen-copy2');
    cpSync(modelDir('qwen3'), copy2, { recursive: true });
    const tj = JSON.parse(readFileSync(join(copy2, 'tokenizer.json'), 'utf8'));
    tj.model.merges = tj.model.merges.slice(0, -1);
    writeFileSync(join(copy2, 'tokenizer.json'), JSON.stringify(tj));
    expect((await run(data, await Tokenizer.fromDir(copy2))).cache.status).toBe('miss');
    // A chat template given as an option.
    const chatml = await Tokenizer.fromDir(modelDir('qwen3'), { chatTemplate: 'chatml' });
    const c = await run(data, chatml);
    expect(c.cache.status).toBe('miss');
    expect(c.examples).toEqual((await fresh(data, chatml)).examples);
  });

  it('options that change the records or their encoding miss', async () => {
    await run(data, qwen);
    const cases: [string, EncodeFileOptions, TokenizeOptions, LoadDatasetOptions][] = [
      ['trainOn all', { trainOn: 'all' }, { trainOn: 'all' }, {}],
      ['limit 5', { load: { limit: 5 } }, {}, { limit: 5 }],
      ['template variables', { templateVariables: { enable_thinking: false } }, { templateVariables: { enable_thinking: false } }, {}],
      ['a variant', { variant: 'something else' }, {}, {}],
    ];
    for (const [name, options, tokenize, load] of cases) {
      const r = await run(data, qwen, options);
      expect(r.cache.status, name).toBe('miss');
      if (name !== 'a variant') expect(r.examples, name).toEqual((await fresh(data, qwen, tokenize, load)).examples);
      expect((await run(data, qwen, options)).cache.status, name).toBe('hit');
    }
    const text = join(FIXTURES, 'data', 'styles', 'yoda.txt');
    const withEos = await run(text, qwen);
    const noEos = await run(text, qwen, { addEos: false });
    expect(noEos.cache.status).toBe('miss');
    expect(noEos.examples).toEqual((await fresh(text, qwen, { addEos: false })).examples);
    expect(noEos.examples).not.toEqual(withEos.examples);
  });

  it('a corrupt, truncated, foreign or garbage cache file is ignored and rewritten, never trusted', async () => {
    const want = (await fresh(data, qwen)).examples;
    const { cache } = await run(data, qwen);
    const file = cache.file!;
    const good = readFileSync(file);
    const foreignKey = (await run(data, qwen, { trainOn: 'all' })).cache.file!; // a valid file of another key
    const damage: [string, () => void, RegExp][] = [
      ['one payload byte flipped', () => {
        const b = Buffer.from(good);
        b[b.length - 5] ^= 0x01;
        writeFileSync(file, b);
      }, /checksum mismatch/],
      ['truncated', () => {
        writeFileSync(file, good);
        truncateSync(file, good.length - 7);
      }, /size \d+ bytes, expected/],
      ['another key’s file under this name', () => copyFileSync(foreignKey, file), /key mismatch/],
      ['garbage', () => writeFileSync(file, 'not a cache file at all'), /not a lorafit token cache file/],
      ['empty', () => writeFileSync(file, ''), /not a lorafit token cache file/],
      ['header cut', () => writeFileSync(file, good.subarray(0, 40)), /truncated header|corrupt header/],
    ];
    for (const [name, corrupt, reason] of damage) {
      corrupt();
      warnings.length = 0;
      const r = await run(data, qwen);
      expect(r.cache.status, name).toBe('miss');
      expect(r.examples, name).toEqual(want);
      expect(warnings.join('\n'), name).toMatch(reason);
      expect(readFileSync(file).equals(good), name).toBe(true); // rewritten
      expect((await run(data, qwen)).cache.status, name).toBe('hit');
    }
  });

  it('cache: false reads and writes nothing; by default the cache lives under LORAFIT_CACHE', async () => {
    const dir = join(work, 'unused');
    const off = await tokenizeFile(data, qwen, { cache: false });
    expect(off.cache.status).toBe('off');
    const r = await tokenizeFile(data, qwen, { cache: { dir } });
    expect(r.cache.status).toBe('miss');
    expect(plain(off.examples)).toEqual(plain(r.examples));
    const saved = process.env.LORAFIT_CACHE;
    process.env.LORAFIT_CACHE = join(work, 'env-cache');
    try {
      const d = await tokenizeFile(data, qwen);
      expect(d.cache.status).toBe('miss');
      expect(d.cache.file!.startsWith(join(work, 'env-cache', 'tokenized'))).toBe(true);
      expect((await tokenizeFile(data, qwen)).cache.status).toBe('hit');
    } finally {
      if (saved === undefined) delete process.env.LORAFIT_CACHE;
      else process.env.LORAFIT_CACHE = saved;
    }
  });
});
