import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectFormat, normalizeRow, type ConversationRecord } from '../../lib/data/formats.js';
import { emptyDatasetStats, iterateDataset, loadDataset } from '../../lib/data/load-dataset.js';
import { FIXTURES } from './helpers.js';

const FORMATS = join(FIXTURES, 'data', 'formats');

function tmpFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lorafit-formats-'));
  writeFileSync(join(dir, name), content);
  return join(dir, name);
}

const conv = (r: unknown) => r as ConversationRecord;

describe('format detection', () => {
  it.each([
    [{ text: 'x' }, 'text'],
    [{ prompt: 'p', completion: 'c' }, 'prompt-completion'],
    [{ instruction: 'i', input: '', output: 'o' }, 'alpaca'],
    [{ conversations: [{ from: 'human', value: 'h' }] }, 'sharegpt'],
    [{ messages: [{ role: 'user', content: 'u' }] }, 'messages'],
    [{ conversations: [{ role: 'user', content: 'u' }] }, 'conversations'],
    [{ question: 'q' }, null],
  ])('%j -> %s', (row, format) => {
    expect(detectFormat(row)).toBe(format);
  });

  it('uses the column mapping', () => {
    expect(detectFormat({ Q: 'q', A: 'a' }, { prompt: 'Q', completion: 'A' })).toBe('prompt-completion');
    expect(detectFormat({ body: 'b' }, { text: 'body' })).toBe('text');
  });
});

describe('real datasets normalise to conversations', () => {
  it('alpaca (English and Chinese): instruction + input joined by a newline', async () => {
    const en = (await loadDataset(join(FORMATS, 'alpaca_en_demo.json'))).map(conv);
    expect(en).toHaveLength(20);
    const raw = (await import(join(FORMATS, 'alpaca_en_demo.json'), { with: { type: 'json' } })).default as Array<
      Record<string, string>
    >;
    const withInput = raw.findIndex((r) => r.input !== '');
    expect(withInput).toBeGreaterThanOrEqual(0);
    expect(en[withInput].messages).toEqual([
      { role: 'user', content: `${raw[withInput].instruction}\n${raw[withInput].input}` },
      { role: 'assistant', content: raw[withInput].output },
    ]);
    const zh = (await loadDataset(join(FORMATS, 'alpaca_zh_demo.json'))).map(conv);
    expect(zh[0].messages[1].role).toBe('assistant');
    expect(zh[0].source).toEqual({ file: join(FORMATS, 'alpaca_zh_demo.json'), line: 2 });
  });

  it('alpaca with system and history', () => {
    const rec = conv(
      normalizeRow(
        { instruction: '再来一个', input: '', output: '好的', system: '你是诗人', history: [['写诗', '床前明月光']] },
        'alpaca',
      ),
    );
    expect(rec.messages.map((m) => [m.role, m.content])).toEqual([
      ['system', '你是诗人'],
      ['user', '写诗'],
      ['assistant', '床前明月光'],
      ['user', '再来一个'],
      ['assistant', '好的'],
    ]);
  });

  it('sharegpt with function calls, observations and a JSON-string tools column (glaive)', async () => {
    const records = (await loadDataset(join(FORMATS, 'glaive_toolcall_en_demo.json'))).map(conv);
    expect(records).toHaveLength(10);
    const first = records[0];
    expect(first.messages[0]).toEqual({
      role: 'user',
      content: 'Hi, I have some ingredients and I want to cook something. Can you help me find a recipe?',
    });
    expect(new Set(records.flatMap((r) => r.messages.map((m) => m.role)))).toEqual(new Set(['user', 'assistant', 'tool']));
    expect(Array.isArray(first.tools)).toBe(true);
    expect((first.tools as Array<{ name: string }>)[0].name).toBe('search_recipes');
  });

  it('OpenAI messages, filtering on another column (KTO label)', async () => {
    const all = await loadDataset(join(FORMATS, 'kto_en_demo.json'));
    const good = await loadDataset(join(FORMATS, 'kto_en_demo.json'), { filter: (row) => row.label === true });
    expect(all).toHaveLength(20);
    expect(good.length).toBeGreaterThan(0);
    expect(good.length).toBeLessThan(20);
    expect(conv(good[0]).messages.every((m) => typeof m.content === 'string')).toBe(true);
    expect(conv(good[0]).messages[0]).not.toHaveProperty('label');
  });

  it('column mapping with dotted paths (self-instruct seed tasks)', async () => {
    const records = (
      await loadDataset(join(FORMATS, 'seed_tasks.jsonl'), {
        format: 'alpaca',
        columns: { input: 'instances.0.input', output: 'instances.0.output' },
      })
    ).map(conv);
    expect(records).toHaveLength(20);
    expect(records[1].messages).toEqual([
      { role: 'user', content: 'What is the relation between the given pairs?\nNight : Day :: Right : Left' },
      { role: 'assistant', content: 'The relation between the given pairs is that they are opposites.' },
    ]);
  });

  it('CSV columns mapped to prompt/completion (Korean chatbot Q/A) and to text', async () => {
    const qa = (await loadDataset(join(FORMATS, 'korean_chatbot_qa.csv'), { columns: { prompt: 'Q', completion: 'A' } })).map(conv);
    expect(qa).toHaveLength(50);
    expect(qa[0].messages).toEqual([
      { role: 'user', content: '12시 땡!' },
      { role: 'assistant', content: '하루가 또 가네요.' },
    ]);
    const prompts = await loadDataset(join(FORMATS, 'awesome_chatgpt_prompts.csv'), { columns: { text: 'prompt' }, limit: 5 });
    expect(prompts).toHaveLength(5);
    expect(prompts[0]).toMatchObject({ kind: 'text' });
  });

  it('plain text lines and Parquet messages', async () => {
    const yoda = await loadDataset(join(FIXTURES, 'data', 'styles', 'yoda.txt'));
    expect(yoda).toHaveLength(40);
    expect(yoda[0].kind).toBe('text');
    const pq = (await loadDataset(join(FIXTURES, 'data', 'parquet', 'messages.zstd.parquet'))).map(conv);
    expect(pq[1].messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
  });

  it('joins array text columns (poem lines) and OpenAI content parts', () => {
    expect(normalizeRow({ paragraphs: ['床前明月光，', '疑是地上霜。'] }, 'text', { columns: { text: 'paragraphs' } })).toMatchObject({
      text: '床前明月光，\n疑是地上霜。',
    });
    const rec = conv(
      normalizeRow(
        { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }, { role: 'assistant', content: 'c' }] },
        'messages',
      ),
    );
    expect(rec.messages[0].content).toBe('ab');
  });
});

describe('errors name the file, line and key at fault', () => {
  it('unknown format', async () => {
    const file = tmpFile('x.jsonl', '{"question": "q", "answer": "a"}\n');
    await expect(loadDataset(file)).rejects.toMatchObject({ code: 'E_DATA_FORMAT', file, line: 1 });
    await expect(loadDataset(file)).rejects.toThrow(/unknown dataset format: columns \["question","answer"\]/);
  });

  it('missing column on a later line', async () => {
    const file = tmpFile('x.jsonl', '{"prompt": "p", "completion": "c"}\n{"prompt": "p2"}\n');
    await expect(loadDataset(file)).rejects.toMatchObject({ code: 'E_DATA_FORMAT', file, line: 2, key: 'completion' });
  });

  it('unknown sharegpt role, with its path as the key', async () => {
    const file = tmpFile('x.jsonl', '{"conversations": [{"from": "human", "value": "h"}, {"from": "robot", "value": "r"}]}\n');
    await expect(loadDataset(file)).rejects.toMatchObject({ key: 'conversations[1].from', line: 1 });
    const ok = await loadDataset(file, { roleMap: { robot: 'assistant' } });
    expect(conv(ok[0]).messages[1]).toEqual({ role: 'assistant', content: 'r' });
  });

  it('a conversation with no assistant turn, and an unknown forced format', async () => {
    const file = tmpFile('x.jsonl', '{"messages": [{"role": "user", "content": "u"}]}\n');
    await expect(loadDataset(file)).rejects.toThrow(/no assistant message/);
    await expect(loadDataset(file, { format: 'nope' as never })).rejects.toThrow(/unknown format "nope"/);
  });

  it('streams: records before a broken line are delivered first', async () => {
    const file = tmpFile('x.jsonl', '{"text": "a"}\n{"text": "b"}\n{broken\n');
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const r of iterateDataset(file)) seen.push((r as { text: string }).text);
      })(),
    ).rejects.toMatchObject({ code: 'E_DATA_PARSE', line: 3 });
    expect(seen).toEqual(['a', 'b']);
  });
});

describe('skipInvalid', () => {
  const lines = [
    '{"prompt": "p1", "completion": "c1"}',
    '{broken',
    '{"prompt": "p2"}',
    '[1, 2]',
    '',
    '{"prompt": "p3", "completion": "c3"}',
    '"just a string"',
  ];

  it('without it, the first bad row is an error naming file:line', async () => {
    const file = tmpFile('mixed.jsonl', lines.join('\n'));
    await expect(loadDataset(file)).rejects.toThrow(`${file}:2: malformed JSON line`);
  });

  it('skips malformed rows of JSONL, reporting each as file:line with the count (stats and logger)', async () => {
    const file = tmpFile('mixed.jsonl', lines.join('\n'));
    const stats = emptyDatasetStats();
    const warnings: string[] = [];
    const logger = { warn: (_o: object, msg: string) => warnings.push(msg) };
    const records = await loadDataset(file, { skipInvalid: true, stats, logger });
    expect(records.map((r) => conv(r).messages.at(-1)!.content)).toEqual(['c1', 'c3']);
    expect(records.map((r) => r.source?.line)).toEqual([1, 6]);
    expect(stats.records).toBe(2);
    expect(stats.skipped).toBe(4);
    expect(stats.invalid.map((i) => i.where)).toEqual([`${file}:2`, `${file}:3`, `${file}:4`, `${file}:7`]);
    expect(stats.invalid[1].message).toMatch(/completion/);
    expect(warnings.filter((w) => w.startsWith('skipped invalid row')).length).toBe(4);
    expect(warnings.at(-1)).toMatch(new RegExp(`skipped 4 invalid row\\(s\\) of .*first: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2`));
  });

  it('skips CSV rows with the wrong field count and JSON-array elements that are not objects', async () => {
    const csv = tmpFile('x.csv', 'prompt,completion\np1,c1\np2\np3,c3,extra\np4,c4\n');
    const stats = emptyDatasetStats();
    const records = await loadDataset(csv, { skipInvalid: true, stats });
    expect(records.length).toBe(2);
    expect(stats.invalid.map((i) => i.line)).toEqual([3, 4]);
    await expect(loadDataset(csv)).rejects.toMatchObject({ code: 'E_DATA_PARSE', file: csv, line: 3 });
    const json = tmpFile('x.json', '[\n{"text": "a"},\n7,\n{"text": "b"}\n]');
    const js = emptyDatasetStats();
    expect((await loadDataset(json, { skipInvalid: true, stats: js })).length).toBe(2);
    expect(js.invalid.map((i) => i.where)).toEqual([`${json}:3`]);
  });

  it('a file whose every row is invalid is still an error, not an empty dataset', async () => {
    const file = tmpFile('x.jsonl', '{"question": "q"}\n{broken\n');
    await expect(loadDataset(file, { skipInvalid: true })).rejects.toMatchObject({ code: 'E_DATA_EMPTY' });
    await expect(loadDataset(file, { skipInvalid: true })).rejects.toThrow(/every row was invalid \(2 skipped\)/);
  });
});

describe('.json files', () => {
  it('an object holding an array is refused, naming the file, its keys and the accepted shape', async () => {
    const file = tmpFile('wrapped.json', '{"x": [{"text": "a"}, {"text": "b"}]}');
    const err = await loadDataset(file).catch((e) => e);
    expect(err.code).toBe('E_DATA_FORMAT');
    expect(err.file).toBe(file);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/top-level array of records/);
    expect(err.message).toMatch(/keys: "x"/);
    expect(err.message).toMatch(/\.jsonl/);
    // skipInvalid skips rows, not a file of the wrong shape.
    await expect(loadDataset(file, { skipInvalid: true })).rejects.toMatchObject({ code: 'E_DATA_FORMAT' });
    expect(await loadDataset(tmpFile('ok.json', '[{"text": "a"}, {"text": "b"}]'))).toHaveLength(2);
  });
});
