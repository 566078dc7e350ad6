// Dataset-row fuzz: 1,200 mutated rows each of JSONL, CSV and Parquet (written by hyparquet-writer)
// through loadDataset. Every mutation knows what it should give: a record (checked field by field
// against what the row says, with its line) or an error. Each row is read twice:
//  - alone between two good rows, strictly: a valid row gives exactly its record; an invalid one
//    gives a LorafitDataError naming the file and the row's line (nothing else may escape);
//  - all rows of a format in one file with skipInvalid: exactly the valid records come back, in
//    order with their lines, and exactly the invalid rows are skipped (file:line) and counted.
// Errors of a whole file (broken CSV quoting, a truncated Parquet file) stay errors under
// skipInvalid; they are checked alone. The counts are printed (console.log) for the record.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, describe, expect, it } from 'vitest';
import { LorafitDataError } from '../../lib/data/errors.js';
import type { DataRecord } from '../../lib/data/formats.js';
import { emptyDatasetStats, loadDataset } from '../../lib/data/load-dataset.js';
import { mulberry32 } from '../../lib/util/random.js';

const ROWS = 1200;
const work = mkdtempSync(join(tmpdir(), 'lorafit-row-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Msg = { role: string; content: string; [k: string]: unknown };
/** What a case should give: the record's content (kind + messages/text), or an error code. */
type Expect =
  | { ok: true; record: Omit<DataRecord, 'source'> }
  /** `at`: lines from the row's start to the character at fault (a CSV quote after quoted line breaks). */
  | { ok: false; code: 'E_DATA_FORMAT' | 'E_DATA_PARSE'; fileLevel?: boolean; at?: number };
interface Case<Row> {
  mutation: string;
  row: Row;
  expect: Expect;
}

const STRINGS = ['plain', 'é', '你好，世界', '😀👨‍👩‍👧', 'a,b;c', 'say "hi"', 'two\nlines', 'crlf\r\ninside', 'tab\there', '\\back\\slash', '{"x": 1}', 'U+2028 \u2028 here', '  padded  ', 'null', 'true', '42', "it's", '<|im_end|>', 'x'.repeat(300)];

function rng(seed: number) {
  const r = mulberry32(seed);
  return {
    r,
    pick: <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!,
    str: (): string => (r() < 0.5 ? STRINGS[Math.floor(r() * STRINGS.length)]! : `${STRINGS[Math.floor(r() * STRINGS.length)]} ${STRINGS[Math.floor(r() * STRINGS.length)]}`),
  };
}

const conv = (messages: Msg[], tools?: unknown[]): Expect => ({ ok: true, record: tools ? { kind: 'conversation', messages, tools } : { kind: 'conversation', messages } });
const text = (t: string): Expect => ({ ok: true, record: { kind: 'text', text: t } });
const bad = (code: 'E_DATA_FORMAT' | 'E_DATA_PARSE', fileLevel = false, at = 0): Expect => ({ ok: false, code, fileLevel, at });

interface Tally {
  rows: number;
  valid: number;
  errors: Record<string, number>;
  fileLevel: number;
  skipped: number;
  mutations: Set<string>;
}

/** Reads `file` strictly and checks the row at `line` against `expect` (rows before/after are good anchors). */
async function checkAlone(file: string, line: number, expect_: Expect, anchors: number, tally: Tally, what: string): Promise<void> {
  let records: DataRecord[] | undefined;
  let error: unknown;
  try {
    records = await loadDataset(file);
  } catch (e) {
    error = e;
  }
  if (expect_.ok) {
    expect(error, `${what}: ${String(error)}`).toBeUndefined();
    expect(records, what).toHaveLength(anchors + 1);
    const got = records!.find((r) => r.source?.line === line);
    expect(got, what).toEqual({ ...expect_.record, source: { file, line } });
    tally.valid++;
  } else {
    expect(error, what).toBeInstanceOf(LorafitDataError);
    const e = error as LorafitDataError;
    const at = line + (expect_.at ?? 0);
    expect({ code: e.code, file: e.file, line: e.line }, `${what}: ${e.message}`).toEqual({ code: expect_.code, file, line: at });
    expect(e.message.startsWith(`${file}:${at}`), e.message).toBe(true);
    tally.errors[e.code] = (tally.errors[e.code] ?? 0) + 1;
    if (expect_.fileLevel) {
      tally.fileLevel++;
      // Not a row that can be skipped: under skipInvalid it is still the same clear error.
      await expect(loadDataset(file, { skipInvalid: true }), what).rejects.toMatchObject({ code: expect_.code, file, line: at });
    }
  }
}

/** All row-level cases in one file under skipInvalid: exactly the valid records, exactly the invalid lines skipped. */
async function checkSkipping(file: string, expected: { line: number; expect: Expect }[], tally: Tally): Promise<void> {
  const stats = emptyDatasetStats();
  const warned: number[] = [];
  const records = await loadDataset(file, { skipInvalid: true, stats, logger: { warn: (o: { line?: number }) => void (o.line !== undefined && warned.push(o.line)) } });
  const valid = expected.filter((c) => c.expect.ok);
  const invalid = expected.filter((c) => !c.expect.ok).map((c) => c.line);
  expect(records.map((r) => r.source?.line)).toEqual(valid.map((c) => c.line));
  expect(records).toEqual(valid.map((c) => ({ ...(c.expect as { record: object }).record, source: { file, line: c.line } })));
  expect(stats.skipped).toBe(invalid.length);
  expect(stats.invalid.map((i) => i.line)).toEqual(invalid.slice(0, 100));
  expect(stats.invalid.every((i) => i.where === `${file}:${i.line}`)).toBe(true);
  expect(warned).toEqual(invalid);
  tally.skipped += stats.skipped;
}

function report(format: string, t: Tally): void {
  const errors = Object.entries(t.errors).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(
    `row fuzz ${format}: ${t.rows} mutated rows (${t.mutations.size} mutation kinds): ${t.valid} valid records equal to what the row says, ` +
      `${t.rows - t.valid} clear errors (${errors}; ${t.fileLevel} of them whole-file errors that skipInvalid keeps), ` +
      `${t.skipped} skipped with file:line under skipInvalid; 0 crashes, 0 wrong rows`,
  );
}

const newTally = (): Tally => ({ rows: 0, valid: 0, errors: {}, fileLevel: 0, skipped: 0, mutations: new Set() });

// ---------------------------------------------------------------- JSON rows (JSONL, Parquet)

type Fmt = 'text' | 'prompt-completion' | 'alpaca' | 'messages' | 'sharegpt';
const FMTS: Fmt[] = ['text', 'prompt-completion', 'alpaca', 'messages', 'sharegpt'];

/** A good row of the format and what it gives. */
function goodRow(fmt: Fmt, g: ReturnType<typeof rng>): { row: Record<string, unknown>; expect: Expect } {
  const a = g.str();
  const b = g.str();
  switch (fmt) {
    case 'text':
      return { row: { text: a }, expect: text(a) };
    case 'prompt-completion':
      return { row: { prompt: a, completion: b }, expect: conv([{ role: 'user', content: a }, { role: 'assistant', content: b }]) };
    case 'alpaca':
      return { row: { instruction: a, input: '', output: b }, expect: conv([{ role: 'user', content: a }, { role: 'assistant', content: b }]) };
    case 'messages':
      return { row: { messages: [{ role: 'user', content: a }, { role: 'assistant', content: b }] }, expect: conv([{ role: 'user', content: a }, { role: 'assistant', content: b }]) };
    case 'sharegpt':
      return { row: { conversations: [{ from: 'human', value: a }, { from: 'gpt', value: b }] }, expect: conv([{ role: 'user', content: a }, { role: 'assistant', content: b }]) };
  }
}

/** A mutated row of the format (an object; the JSONL side adds syntax mutations of its own). */
function mutateRow(fmt: Fmt, g: ReturnType<typeof rng>): Case<Record<string, unknown>> {
  const s = g.str();
  const u = g.str();
  const muts: [string, () => Case<Record<string, unknown>>['row'], Expect][] = [];
  const add = (name: string, row: Record<string, unknown>, e: Expect) => muts.push([name, () => row, e]);
  const extra = { id: Math.floor(g.r() * 1000), meta: { source: 'fuzz' } };
  switch (fmt) {
    case 'text':
      add('tricky text', { text: s }, text(s));
      add('extra columns', { ...extra, text: s }, text(s));
      add('number text', { text: 42.5 }, text('42.5'));
      add('boolean text', { text: false }, text('false'));
      add('list of strings', { text: [s, u] }, text(`${s}\n${u}`));
      add('empty string', { text: '' }, text(''));
      add('null text', { text: null }, bad('E_DATA_FORMAT'));
      add('missing text', { ...extra, body: s }, bad('E_DATA_FORMAT'));
      add('object text', { text: { s } }, bad('E_DATA_FORMAT'));
      add('list of numbers', { text: [1, 2] }, bad('E_DATA_FORMAT'));
      add('mixed list', { text: [s, 3] }, bad('E_DATA_FORMAT'));
      break;
    case 'prompt-completion':
      add('tricky', { prompt: s, completion: u }, conv([{ role: 'user', content: s }, { role: 'assistant', content: u }]));
      add('number prompt', { prompt: 7, completion: u }, conv([{ role: 'user', content: '7' }, { role: 'assistant', content: u }]));
      add('null completion', { prompt: s, completion: null }, bad('E_DATA_FORMAT'));
      add('missing completion', { prompt: s }, bad('E_DATA_FORMAT'));
      add('object prompt', { prompt: { s }, completion: u }, bad('E_DATA_FORMAT'));
      add('conversational', { prompt: [{ role: 'user', content: s }], completion: [{ role: 'assistant', content: u }] }, conv([{ role: 'user', content: s }, { role: 'assistant', content: u }]));
      add('conversational, no assistant', { prompt: [{ role: 'user', content: s }], completion: [{ role: 'user', content: u }] }, bad('E_DATA_FORMAT'));
      add('conversational, role missing', { prompt: [{ content: s }], completion: [{ role: 'assistant', content: u }] }, bad('E_DATA_FORMAT'));
      break;
    case 'alpaca':
      add('with input', { instruction: s, input: u, output: s }, conv([{ role: 'user', content: u ? `${s}\n${u}` : s }, { role: 'assistant', content: s }]));
      add('with system', { system: u, instruction: s, output: s }, conv([{ role: 'system', content: u }, { role: 'user', content: s }, { role: 'assistant', content: s }]));
      add('with history', { instruction: s, output: u, history: [[u, s]] }, conv([{ role: 'user', content: u }, { role: 'assistant', content: s }, { role: 'user', content: s }, { role: 'assistant', content: u }]));
      add('null history', { instruction: s, output: u, history: null }, conv([{ role: 'user', content: s }, { role: 'assistant', content: u }]));
      add('missing output', { instruction: s, input: u, output_: s }, bad('E_DATA_FORMAT'));
      add('null instruction', { instruction: null, output: u }, bad('E_DATA_FORMAT'));
      add('history not a list', { instruction: s, output: u, history: 'q/a' }, bad('E_DATA_FORMAT'));
      add('history pair of one', { instruction: s, output: u, history: [[s]] }, bad('E_DATA_FORMAT'));
      add('history pair with a number', { instruction: s, output: u, history: [[s, 3]] }, bad('E_DATA_FORMAT'));
      add('list output', { instruction: s, output: [s, u] }, conv([{ role: 'user', content: s }, { role: 'assistant', content: `${s}\n${u}` }]));
      add('object output', { instruction: s, output: { u } }, bad('E_DATA_FORMAT'));
      break;
    case 'messages':
      add('tricky', { messages: [{ role: 'system', content: u }, { role: 'user', content: s }, { role: 'assistant', content: u }] }, conv([{ role: 'system', content: u }, { role: 'user', content: s }, { role: 'assistant', content: u }]));
      add('extra message key', { messages: [{ role: 'user', content: s, name: 'bob' }, { role: 'assistant', content: u }] }, conv([{ role: 'user', content: s, name: 'bob' }, { role: 'assistant', content: u }]));
      add('text parts', { messages: [{ role: 'user', content: [{ type: 'text', text: s }, { type: 'text', text: u }] }, { role: 'assistant', content: u }] }, conv([{ role: 'user', content: `${s}${u}` }, { role: 'assistant', content: u }]));
      add('null content', { messages: [{ role: 'user', content: s }, { role: 'assistant', content: null }] }, conv([{ role: 'user', content: s }, { role: 'assistant', content: '' }]));
      add('tools list', { messages: [{ role: 'user', content: s }, { role: 'assistant', content: u }], tools: [{ name: 'f' }] }, conv([{ role: 'user', content: s }, { role: 'assistant', content: u }], [{ name: 'f' }]));
      add('tools as JSON text', { messages: [{ role: 'user', content: s }, { role: 'assistant', content: u }], tools: '[{"name":"g"}]' }, conv([{ role: 'user', content: s }, { role: 'assistant', content: u }], [{ name: 'g' }]));
      add('tools not JSON', { messages: [{ role: 'user', content: s }, { role: 'assistant', content: u }], tools: '[{name' }, bad('E_DATA_FORMAT'));
      add('tools an object', { messages: [{ role: 'user', content: s }, { role: 'assistant', content: u }], tools: { name: 'f' } }, bad('E_DATA_FORMAT'));
      add('messages a string', { messages: s }, bad('E_DATA_FORMAT'));
      add('messages empty', { messages: [] }, bad('E_DATA_FORMAT'));
      add('no assistant', { messages: [{ role: 'user', content: s }] }, bad('E_DATA_FORMAT'));
      add('message a number', { messages: [{ role: 'user', content: s }, 5] }, bad('E_DATA_FORMAT'));
      add('message null', { messages: [null, { role: 'assistant', content: u }] }, bad('E_DATA_FORMAT'));
      add('role missing', { messages: [{ content: s }, { role: 'assistant', content: u }] }, bad('E_DATA_FORMAT'));
      add('role a number', { messages: [{ role: 1, content: s }, { role: 'assistant', content: u }] }, bad('E_DATA_FORMAT'));
      add('content a number', { messages: [{ role: 'user', content: 3 }, { role: 'assistant', content: u }] }, bad('E_DATA_FORMAT'));
      add('image part', { messages: [{ role: 'user', content: [{ type: 'image', url: 'x' }] }, { role: 'assistant', content: u }] }, bad('E_DATA_FORMAT'));
      add('missing messages', { msgs: [] }, bad('E_DATA_FORMAT'));
      break;
    case 'sharegpt':
      add('tricky', { conversations: [{ from: 'system', value: u }, { from: 'human', value: s }, { from: 'gpt', value: u }] }, conv([{ role: 'system', content: u }, { role: 'user', content: s }, { role: 'assistant', content: u }]));
      add('row system', { system: s, conversations: [{ from: 'human', value: s }, { from: 'gpt', value: u }] }, conv([{ role: 'system', content: s }, { role: 'user', content: s }, { role: 'assistant', content: u }]));
      add('observation', { conversations: [{ from: 'human', value: s }, { from: 'function_call', value: u }, { from: 'observation', value: s }, { from: 'gpt', value: u }] }, conv([{ role: 'user', content: s }, { role: 'assistant', content: u }, { role: 'tool', content: s }, { role: 'assistant', content: u }]));
      add('unknown role', { conversations: [{ from: 'wizard', value: s }, { from: 'gpt', value: u }] }, bad('E_DATA_FORMAT'));
      add('value a number', { conversations: [{ from: 'human', value: 9 }, { from: 'gpt', value: u }] }, bad('E_DATA_FORMAT'));
      add('from missing', { conversations: [{ value: s }, { from: 'gpt', value: u }] }, bad('E_DATA_FORMAT'));
      add('no gpt turn', { conversations: [{ from: 'human', value: s }] }, bad('E_DATA_FORMAT'));
      add('conversations an object', { conversations: { from: 'human', value: s } }, bad('E_DATA_FORMAT'));
      break;
  }
  const [mutation, row, e] = g.pick(muts);
  return { mutation: `${fmt}: ${mutation}`, row: row(), expect: e };
}

// ---------------------------------------------------------------- JSONL

describe('row fuzz: JSONL', () => {
  /** A row's JSONL line: the object serialised, or a syntax mutation of it. */
  function jsonlCase(g: ReturnType<typeof rng>, fmt: Fmt): Case<string> {
    const roll = g.r();
    if (roll < 0.6) {
      const c = mutateRow(fmt, g);
      return { mutation: c.mutation, row: JSON.stringify(c.row), expect: c.expect };
    }
    const gr = goodRow(fmt, g);
    const good = JSON.stringify(gr.row);
    const syntax: [string, string, Expect][] = [
      ['truncated', good.slice(0, 1 + Math.floor(g.r() * (good.length - 1))), bad('E_DATA_PARSE')],
      ['trailing comma', `${good.slice(0, -1)},}`, bad('E_DATA_PARSE')],
      ['extra brace', `${good}}`, bad('E_DATA_PARSE')],
      ['trailing text', `${good} x`, bad('E_DATA_PARSE')],
      ['single quotes', good.replace(/"/g, "'"), bad('E_DATA_PARSE')],
      ['unquoted value', '{"text": oops}', bad('E_DATA_PARSE')],
      ['raw tab in a string', '{"text": "a\tb"}', bad('E_DATA_PARSE')],
      ['bad escape', '{"text": "a\\x"}', bad('E_DATA_PARSE')],
      ['NaN', '{"text": NaN}', bad('E_DATA_PARSE')],
      ['two objects', `${good}${good}`, bad('E_DATA_PARSE')],
      ['an array', `[${good}]`, bad('E_DATA_FORMAT')],
      ['a string', JSON.stringify(good), bad('E_DATA_FORMAT')],
      ['a number', '42', bad('E_DATA_FORMAT')],
      ['null', 'null', bad('E_DATA_FORMAT')],
      ['true', 'true', bad('E_DATA_FORMAT')],
      ['spaces around', `  \t${good}  `, gr.expect],
    ];
    const [name, row, e] = g.pick(syntax);
    return { mutation: `syntax: ${name}`, row, expect: e };
  }

  it(`${ROWS} mutated JSONL rows: each a record equal to the row, or an error naming file:line; skipInvalid skips exactly the bad ones`, async () => {
    const g = rng(15_2026);
    const tally = newTally();
    for (const fmt of FMTS) {
      const cases: Case<string>[] = [];
      for (let i = 0; i < ROWS / FMTS.length; i++) cases.push(jsonlCase(g, fmt));
      // Alone, strictly: good row, the case, good row.
      for (let i = 0; i < cases.length; i++) {
        const c = cases[i];
        const file = join(work, `alone-${fmt}-${i}.jsonl`);
        writeFileSync(file, `${JSON.stringify(goodRow(fmt, g).row)}\n${c.row}\n${JSON.stringify(goodRow(fmt, g).row)}\n`);
        await checkAlone(file, 2, c.expect, 2, tally, `${c.mutation} ${JSON.stringify(c.row).slice(0, 200)}`);
        tally.rows++;
        tally.mutations.add(c.mutation);
      }
      // All together under skipInvalid, with blank lines and CRLF ends between them.
      const anchor = goodRow(fmt, g);
      let body = `${JSON.stringify(anchor.row)}\n`;
      let line = 2;
      const expected: { line: number; expect: Expect }[] = [{ line: 1, expect: anchor.expect }];
      for (const c of cases) {
        while (g.r() < 0.1) {
          body += g.r() < 0.5 ? '\n' : '  \r\n';
          line++;
        }
        body += `${c.row}${g.r() < 0.3 ? '\r\n' : '\n'}`;
        expected.push({ line, expect: c.expect });
        line++;
      }
      const file = join(work, `all-${fmt}.jsonl`);
      writeFileSync(file, body);
      await checkSkipping(file, expected, tally);
    }
    report('JSONL', tally);
    expect(tally.rows).toBeGreaterThanOrEqual(1000);
    expect(tally.valid).toBeGreaterThan(100);
    expect(tally.rows - tally.valid).toBeGreaterThan(100);
  }, 300_000);
});

// ---------------------------------------------------------------- CSV

const newlines = (s: string) => (s.match(/\n/g) ?? []).length;

describe('row fuzz: CSV', () => {
  const HEADERS: Record<string, string[]> = { text: ['text'], 'prompt-completion': ['prompt', 'completion'], alpaca: ['instruction', 'input', 'output'] };
  const quote = (v: string) => `"${v.replace(/"/g, '""')}"`;
  const cell = (v: string, g: ReturnType<typeof rng>, single: boolean) =>
    /[",\r\n]/.test(v) || (single && v === '') || g.r() < 0.2 ? quote(v) : v;
  const expectFor = (fmt: string, f: string[]): Expect =>
    fmt === 'text'
      ? text(f[0])
      : fmt === 'prompt-completion'
        ? conv([{ role: 'user', content: f[0] }, { role: 'assistant', content: f[1] }])
        : conv([{ role: 'user', content: f[1] ? `${f[0]}\n${f[1]}` : f[0] }, { role: 'assistant', content: f[2] }]);
  const values = (fmt: string, g: ReturnType<typeof rng>) => HEADERS[fmt].map(() => (g.r() < 0.1 ? '' : g.str()));

  /** A CSV row (its text without the line end) and what it gives. */
  function csvCase(fmt: string, g: ReturnType<typeof rng>): Case<string> {
    const n = HEADERS[fmt].length;
    const f = values(fmt, g);
    const join_ = (fields: string[]) => fields.map((v) => cell(v, g, fields.length === 1)).join(',');
    const muts: [string, () => [string, Expect]][] = [
      ['tricky fields', () => [join_(f), expectFor(fmt, f)]],
      ['all quoted', () => [f.map(quote).join(','), expectFor(fmt, f)]],
      ['spaces kept', () => {
        const sp = f.map((v) => ` ${v.replace(/[",\r\n]/g, '')} `);
        return [sp.join(','), expectFor(fmt, sp)];
      }],
      ['one field too many', () => [join_([...f, g.str()]), bad('E_DATA_PARSE')]],
      ['one field too few', () => (n > 1 ? [join_(f.slice(0, -1)), bad('E_DATA_PARSE')] : [join_([f[0], 'x']), bad('E_DATA_PARSE')])],
      ['quote inside an unquoted field', () => {
        const before = f.slice(0, -1).map(quote);
        return [[...before, `ab"cd`].join(','), bad('E_DATA_PARSE', true, newlines(before.join(',')))];
      }],
      ['text after a closing quote', () => {
        const before = f.slice(0, -1).map(quote);
        return [[...before, `"ab"cd`].join(','), bad('E_DATA_PARSE', true, newlines(before.join(',')))];
      }],
      ['quote never closed', () => [[...f.slice(0, -1).map(quote), `"open ${f[n - 1].replace(/"/g, '')}`].join(','), bad('E_DATA_PARSE', true)]],
    ];
    const [mutation, make] = g.pick(muts);
    const [row, e] = make();
    return { mutation: `${fmt}: ${mutation}`, row, expect: e };
  }
  it(`${ROWS} mutated CSV rows: each a record equal to the row, or an error naming file:line; skipInvalid skips exactly the bad rows`, async () => {
    const g = rng(15_2027);
    const tally = newTally();
    const fmts = Object.keys(HEADERS);
    for (const fmt of fmts) {
      const header = HEADERS[fmt].join(',');
      const good = () => {
        const f = values(fmt, g);
        return { row: f.map(quote).join(','), expect: expectFor(fmt, f) };
      };
      const cases: Case<string>[] = [];
      for (let i = 0; i < ROWS / fmts.length; i++) cases.push(csvCase(fmt, g));
      for (let i = 0; i < cases.length; i++) {
        const c = cases[i];
        const file = join(work, `alone-${fmt}-${i}.csv`);
        const before = good();
        const eol = g.pick(['\n', '\r\n']);
        // The last row has no quotes, so a quote left open by the case is never closed.
        const tail = HEADERS[fmt].map(() => 'tail').join(',');
        writeFileSync(file, `${g.r() < 0.2 ? '\ufeff' : ''}${header}${eol}${before.row}${eol}${c.row}${eol}${tail}${eol}`);
        // The case starts after the header and the first row (and the line breaks inside its quotes).
        const line = 2 + newlines(before.row) + 1;
        await checkAlone(file, line, c.expect, 2, tally, `${c.mutation} ${JSON.stringify(c.row).slice(0, 200)}`);
        tally.rows++;
        tally.mutations.add(c.mutation);
      }
      // The row-level cases together under skipInvalid (whole-file errors would stop the file).
      let body = `${header}\n`;
      let line = 2;
      const expected: { line: number; expect: Expect }[] = [];
      for (const c of cases) {
        if (!c.expect.ok && c.expect.fileLevel) continue;
        while (g.r() < 0.1) {
          body += '\n';
          line++;
        }
        body += `${c.row}${g.r() < 0.3 ? '\r\n' : '\n'}`;
        expected.push({ line, expect: c.expect });
        line += newlines(c.row) + 1;
      }
      const file = join(work, `all-${fmt}.csv`);
      writeFileSync(file, body);
      await checkSkipping(file, expected, tally);
    }
    report('CSV', tally);
    expect(tally.rows).toBeGreaterThanOrEqual(1000);
    expect(tally.fileLevel).toBeGreaterThan(50);
  }, 300_000);
});

// ---------------------------------------------------------------- Parquet

describe('row fuzz: Parquet', () => {
  const STR = { type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' } as const;
  type PRow = Record<string, unknown>;

  /** A Parquet file of rows in one of three schemas (nullable strings; messages as list<struct<role, content>>). */
  function writeParquet(file: string, fmt: 'text' | 'prompt-completion' | 'messages', rows: PRow[], rowGroupSize: number): void {
    const col = (name: string) => ({ name, data: rows.map((r) => (r[name] === undefined ? null : r[name])) });
    const schema =
      fmt === 'messages'
        ? [
            { name: 'root', num_children: 2 },
            { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
            { name: 'messages', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
            { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
            { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
            { name: 'role', ...STR },
            { name: 'content', ...STR },
          ]
        : [{ name: 'root', num_children: fmt === 'text' ? 2 : 3 }, { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' }, ...(fmt === 'text' ? ['text'] : ['prompt', 'completion']).map((name) => ({ name, ...STR }))];
    const names = fmt === 'messages' ? ['messages'] : fmt === 'text' ? ['text'] : ['prompt', 'completion'];
    const columnData = [{ name: 'id', data: rows.map((_, i) => BigInt(i)) }, ...names.map(col)];
    writeFileSync(file, new Uint8Array(parquetWriteBuffer({ columnData, schema: schema as never, rowGroupSize })));
  }

  function parquetCase(fmt: 'text' | 'prompt-completion' | 'messages', g: ReturnType<typeof rng>): Case<PRow> {
    const s = g.str();
    const u = g.str();
    const muts: [string, PRow, Expect][] =
      fmt === 'text'
        ? [
            ['tricky text', { text: s }, text(s)],
            ['empty text', { text: '' }, text('')],
            ['null text', { text: null }, bad('E_DATA_FORMAT')],
          ]
        : fmt === 'prompt-completion'
          ? [
              ['tricky', { prompt: s, completion: u }, conv([{ role: 'user', content: s }, { role: 'assistant', content: u }])],
              ['null prompt', { prompt: null, completion: u }, bad('E_DATA_FORMAT')],
              ['null completion', { prompt: s, completion: null }, bad('E_DATA_FORMAT')],
              ['both null', { prompt: null, completion: null }, bad('E_DATA_FORMAT')],
            ]
          : [
              ['tricky', { messages: [{ role: 'user', content: s }, { role: 'assistant', content: u }] }, conv([{ role: 'user', content: s }, { role: 'assistant', content: u }])],
              ['null content', { messages: [{ role: 'user', content: s }, { role: 'assistant', content: null }] }, conv([{ role: 'user', content: s }, { role: 'assistant', content: '' }])],
              ['system turn', { messages: [{ role: 'system', content: u }, { role: 'user', content: s }, { role: 'assistant', content: s }] }, conv([{ role: 'system', content: u }, { role: 'user', content: s }, { role: 'assistant', content: s }])],
              ['null messages', { messages: null }, bad('E_DATA_FORMAT')],
              ['empty list', { messages: [] }, bad('E_DATA_FORMAT')],
              ['no assistant', { messages: [{ role: 'user', content: s }] }, bad('E_DATA_FORMAT')],
              ['null role', { messages: [{ role: null, content: s }, { role: 'assistant', content: u }] }, bad('E_DATA_FORMAT')],
              ['null element', { messages: [null, { role: 'assistant', content: u }] }, bad('E_DATA_FORMAT')],
            ];
    const [mutation, row, e] = g.pick(muts);
    return { mutation: `${fmt}: ${mutation}`, row, expect: e };
  }
  const goodP = (fmt: 'text' | 'prompt-completion' | 'messages', g: ReturnType<typeof rng>): { row: PRow; expect: Expect } => {
    const s = g.str();
    const c = conv([{ role: 'user', content: s }, { role: 'assistant', content: s }]);
    return fmt === 'text' ? { row: { text: s }, expect: text(s) } : fmt === 'prompt-completion' ? { row: { prompt: s, completion: s }, expect: c } : { row: { messages: [{ role: 'user', content: s }, { role: 'assistant', content: s }] }, expect: c };
  };

  it(`${ROWS} mutated Parquet rows: each a record equal to the row, or an error naming file:row; skipInvalid skips exactly the bad ones; truncated files are E_DATA_PARSE`, async () => {
    const g = rng(15_2028);
    const tally = newTally();
    const fmts = ['text', 'prompt-completion', 'messages'] as const;
    for (const fmt of fmts) {
      const cases: Case<PRow>[] = [];
      for (let i = 0; i < ROWS / fmts.length; i++) cases.push(parquetCase(fmt, g));
      for (let i = 0; i < cases.length; i++) {
        const c = cases[i];
        const file = join(work, `alone-${fmt}-${i}.parquet`);
        writeParquet(file, fmt, [goodP(fmt, g).row, c.row, goodP(fmt, g).row], 1 + Math.floor(g.r() * 3));
        await checkAlone(file, 2, c.expect, 2, tally, `${c.mutation} ${JSON.stringify(c.row).slice(0, 200)}`);
        tally.rows++;
        tally.mutations.add(c.mutation);
      }
      const anchor = goodP(fmt, g);
      const file = join(work, `all-${fmt}.parquet`);
      writeParquet(file, fmt, [anchor.row, ...cases.map((c) => c.row)], 97); // several row groups
      await checkSkipping(file, [{ line: 1, expect: anchor.expect }, ...cases.map((c, i) => ({ line: i + 2, expect: c.expect }))], tally);
    }
    // Whole-file damage: every truncation of a small file, and a broken magic number.
    const file = join(work, 'whole.parquet');
    writeParquet(file, 'messages', [goodP('messages', g).row, goodP('messages', g).row], 1);
    const bytes = readFileSync(file);
    let truncations = 0;
    for (let cut = 0; cut < bytes.length; cut += 1 + Math.floor(g.r() * 7)) {
      const damaged = join(work, `cut-${cut}.parquet`);
      writeFileSync(damaged, bytes.subarray(0, cut));
      const err = await loadDataset(damaged, { skipInvalid: true }).then(() => null, (e: unknown) => e);
      expect(err, `cut at ${cut}`).toBeInstanceOf(LorafitDataError);
      expect((err as LorafitDataError).code).toBe('E_DATA_PARSE');
      expect((err as LorafitDataError).file).toBe(damaged);
      truncations++;
    }
    const magic = Buffer.from(bytes);
    magic.write('PAR0', bytes.length - 4, 'latin1');
    writeFileSync(file, magic);
    await expect(loadDataset(file)).rejects.toMatchObject({ code: 'E_DATA_PARSE', file });
    report('Parquet', tally);
    console.log(`row fuzz Parquet: ${truncations} truncated files and a broken magic number: all E_DATA_PARSE naming the file`);
    expect(tally.rows).toBeGreaterThanOrEqual(1000);
  }, 300_000);
});
