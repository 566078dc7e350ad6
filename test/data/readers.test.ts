import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CsvParser } from '../../lib/data/csv-parser.js';
import { readRows, topLevelElementLines, type RawRow } from '../../lib/data/readers.js';
import { FIXTURES } from './helpers.js';

const DATA = join(FIXTURES, 'data');

async function collect(path: string, options = {}): Promise<RawRow[]> {
  const out: RawRow[] = [];
  for await (const row of readRows(path, options)) out.push(row);
  return out;
}

function tmp(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'lorafit-readers-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

describe('JSONL', () => {
  it('streams records with their line numbers, skipping blank lines', async () => {
    const rows = await collect(join(DATA, 'formats', 'seed_tasks.jsonl'));
    expect(rows).toHaveLength(20);
    expect(rows[0].line).toBe(1);
    expect(rows[1].value.instruction).toBe('What is the relation between the given pairs?');
    const dir = tmp({ 'a.jsonl': '{"text":"a"}\n\n{"text":"b"}\r\n' });
    expect((await collect(join(dir, 'a.jsonl'))).map((r) => [r.value.text, r.line])).toEqual([
      ['a', 1],
      ['b', 3],
    ]);
  });

  it('a malformed line is an E_DATA_PARSE error naming file and line', async () => {
    const dir = tmp({ 'bad.jsonl': '{"text":"ok"}\n{"text":"ok"}\n{"text": oops}\n' });
    const file = join(dir, 'bad.jsonl');
    await expect(collect(file)).rejects.toMatchObject({ code: 'E_DATA_PARSE', file, line: 3 });
    await expect(collect(file)).rejects.toThrow(`${file}:3: malformed JSON line`);
  });

  it('a non-object line is an E_DATA_FORMAT error', async () => {
    const dir = tmp({ 'arr.jsonl': '[1,2]\n' });
    await expect(collect(join(dir, 'arr.jsonl'))).rejects.toMatchObject({ code: 'E_DATA_FORMAT', line: 1 });
  });

  it('reads gzip-compressed JSONL', async () => {
    const dir = tmp({ 'a.jsonl.gz': gzipSync('{"text":"壹"}\n{"text":"贰"}\n') });
    expect((await collect(join(dir, 'a.jsonl.gz'))).map((r) => r.value.text)).toEqual(['壹', '贰']);
  });
});

describe('JSON arrays', () => {
  it('reads the alpaca demo with each element’s starting line', async () => {
    const rows = await collect(join(DATA, 'formats', 'alpaca_zh_demo.json'));
    expect(rows).toHaveLength(20);
    expect(rows[0].line).toBe(2);
    expect(typeof rows[0].value.instruction).toBe('string');
    expect(rows[1].line).toBeGreaterThan(rows[0].line);
  });

  it('finds element lines without being fooled by brackets inside strings', () => {
    expect(topLevelElementLines('[\n {"a": "[x, ]"},\n\n {"b": [1, {"c": 2}]}\n]')).toEqual([2, 4]);
    expect(topLevelElementLines('{"data": [\n{"a":1},\n{"a":2}]}')).toEqual([2, 3]);
  });

  it('rejects a JSON file that is not an array', async () => {
    const dir = tmp({ 'o.json': '{"a": 1, "b": 2}' });
    await expect(collect(join(dir, 'o.json'))).rejects.toMatchObject({ code: 'E_DATA_FORMAT' });
  });
});

describe('CSV', () => {
  it('parses quoting, doubled quotes, delimiters and newlines inside fields, CRLF and BOM', () => {
    const p = new CsvParser(',');
    const text = '\ufeffa,b\r\n"x, y","say ""hi"""\r\n"multi\nline",2\n\nlast,"\r\n"\n';
    // feed one character at a time: the state machine must not depend on chunk boundaries
    const records = [...Array.from(text).flatMap((ch) => p.push(ch)), ...p.end()];
    expect(records.map((r) => r.fields)).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['multi\nline', '2'],
      ['last', '\r\n'],
    ]);
    expect(records.map((r) => r.line)).toEqual([1, 2, 3, 6]);
  });

  it('reads the awesome-chatgpt-prompts CSV (commas inside quoted prompts)', async () => {
    const rows = await collect(join(DATA, 'formats', 'awesome_chatgpt_prompts.csv'));
    expect(rows).toHaveLength(30);
    expect(Object.keys(rows[0].value)).toEqual(['act', 'prompt', 'for_devs', 'type', 'contributor']);
    expect(rows[1].value.act).toBe('Linux Terminal');
    expect(String(rows[1].value.prompt)).toContain('I want you to act as a linux terminal.');
  });

  it('reports an unclosed quote and a wrong field count with the line', async () => {
    const dir = tmp({ 'q.csv': 'a,b\n1,2\n"open,3\n', 'n.csv': 'a,b\n1,2\n1,2,3\n' });
    await expect(collect(join(dir, 'q.csv'))).rejects.toMatchObject({ code: 'E_DATA_PARSE', line: 3 });
    await expect(collect(join(dir, 'n.csv'))).rejects.toMatchObject({ code: 'E_DATA_PARSE', line: 3 });
  });

  it('reads TSV', async () => {
    const dir = tmp({ 'x.tsv': 'q\ta\n你好\t再见\n' });
    expect((await collect(join(dir, 'x.tsv')))[0].value).toEqual({ q: '你好', a: '再见' });
  });
});

describe('Parquet', () => {
  it('reads nested list<struct> messages across zstd row groups, with row numbers', async () => {
    const rows = await collect(join(DATA, 'parquet', 'messages.zstd.parquet'));
    expect(rows.map((r) => r.line)).toEqual([1, 2, 3, 4]);
    expect(rows[0].value.id).toBe(10);
    expect(rows[0].value.messages).toEqual([
      { role: 'user', content: '你好！🌟' },
      { role: 'assistant', content: '你好，有什么可以帮你？' },
    ]);
    expect((rows[3].value.messages as unknown[]).length).toBe(2);
  });

  it('reads snappy and gzip pages', async () => {
    const text = await collect(join(DATA, 'parquet', 'text.snappy.parquet'));
    expect(text.map((r) => r.value.text)).toEqual(['床前明月光，疑是地上霜。', 'The quick brown fox.', '😀 emoji line']);
    const pc = await collect(join(DATA, 'parquet', 'prompt_completion.gzip.parquet'));
    expect(pc[1].value).toEqual({ prompt: 'Q2', completion: 'A2' });
  });

  it('a corrupt parquet file is an E_DATA_PARSE error', async () => {
    const dir = tmp({ 'x.parquet': 'PAR1 this is not parquet PAR1' });
    await expect(collect(join(dir, 'x.parquet'))).rejects.toMatchObject({ code: 'E_DATA_PARSE' });
  });
});

describe('plain text and folders', () => {
  it('reads lines, paragraphs or whole files', async () => {
    const dir = tmp({ 't.txt': 'one\ntwo\n\nthree\n' });
    const file = join(dir, 't.txt');
    expect((await collect(file)).map((r) => r.value.text)).toEqual(['one', 'two', 'three']);
    expect((await collect(file, { textMode: 'paragraph' })).map((r) => [r.value.text, r.line])).toEqual([
      ['one\ntwo', 1],
      ['three', 4],
    ]);
    expect((await collect(file, { textMode: 'file', textColumn: 'body' }))[0].value).toEqual({
      body: 'one\ntwo\n\nthree\n',
    });
  });

  it('walks a folder recursively in sorted order, skipping hidden and unknown files', async () => {
    const dir = tmp({
      'b/2.jsonl': '{"text":"b2"}\n',
      'a.txt': 'a\n',
      'b/1.csv': 'text\nb1\n',
      '.hidden.jsonl': '{"text":"no"}\n',
      'notes.md': '# no',
    });
    expect((await collect(dir)).map((r) => r.value.text)).toEqual(['a', 'b1', 'b2']);
  });

  it('missing paths, empty folders and unknown extensions are clear errors', async () => {
    await expect(collect('/nonexistent/x.jsonl')).rejects.toMatchObject({ code: 'E_DATA_IO' });
    await expect(collect(tmp({ 'readme.md': 'x' }))).rejects.toMatchObject({ code: 'E_DATA_EMPTY' });
    const dir = tmp({ 'x.xml': '<a/>' });
    await expect(collect(join(dir, 'x.xml'))).rejects.toMatchObject({ code: 'E_DATA_FORMAT' });
    expect((await collect(join(dir, 'x.xml'), { fileType: 'text' }))[0].value.text).toBe('<a/>');
  });
});
