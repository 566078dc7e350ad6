// CsvParser (csv-parse underneath) on generated CSV: quoted fields holding delimiters, doubled
// quotes and line breaks, LF/CRLF/CR line ends mixed, blank lines, a BOM, fed in random chunks.
// Every record must come back with its fields and the line it starts on, whatever the chunking;
// malformed quoting must be E_DATA_PARSE naming the line.
import { describe, expect, it } from 'vitest';
import { CsvParser, type CsvRecord } from '../../lib/data/csv-parser.js';
import { LorafitDataError } from '../../lib/data/errors.js';
import { mulberry32 } from '../../lib/util/random.js';

const PIECES = ['a', 'b', 'xyz', ' ', ',', '\t', '"', '\n', '\r\n', '\r', 'é', '你好', '😀', ''];
const ENDS = ['\n', '\r\n', '\r'];

function parseChunked(text: string, delimiter: string, r: () => number): CsvRecord[] {
  const p = new CsvParser(delimiter, 'fuzz.csv');
  const chars = Array.from(text);
  const out: CsvRecord[] = [];
  for (let i = 0; i < chars.length; ) {
    const n = 1 + Math.floor(r() * (r() < 0.5 ? 3 : 40));
    out.push(...p.push(chars.slice(i, i + n).join('')));
    i += n;
  }
  out.push(...p.end());
  return out;
}

function generate(r: () => number, delimiter: string): { text: string; expected: CsvRecord[] } {
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  const lineEnd = () => (text.endsWith('\r') ? pick(['\r\n', '\r']) : pick(ENDS)); // "\r" + "\n" would be one CRLF
  let text = r() < 0.3 ? '\ufeff' : '';
  let line = 1;
  const expected: CsvRecord[] = [];
  const records = Math.floor(r() * 8);
  for (let k = 0; k < records; k++) {
    while (r() < 0.2) {
      text += lineEnd(); // a blank line
      line++;
    }
    const fields: string[] = [];
    const nFields = 1 + Math.floor(r() * 4);
    for (let f = 0; f < nFields; f++) {
      let v = '';
      const len = Math.floor(r() * 5);
      for (let i = 0; i < len; i++) v += pick(PIECES);
      fields.push(v);
    }
    const cells = fields.map((v) => {
      const special = v.includes('"') || v.includes(delimiter) || /[\r\n]/.test(v) || (nFields === 1 && v === '');
      return special || r() < 0.2 ? `"${v.replace(/"/g, '""')}"` : v;
    });
    expected.push({ fields, line });
    text += cells.join(delimiter);
    line += fields.reduce((n, v) => n + (v.match(/\n/g)?.length ?? 0), 0); // a break inside quotes is a "\n"
    if (k < records - 1 || r() < 0.7) {
      text += lineEnd();
      line++;
    }
  }
  return { text, expected };
}

describe('CSV fuzz', () => {
  it('parses 1500 generated files the same whatever the chunking', () => {
    const r = mulberry32(20260101);
    for (let n = 0; n < 1500; n++) {
      const delimiter = r() < 0.8 ? ',' : '\t';
      const { text, expected } = generate(r, delimiter);
      const a = parseChunked(text, delimiter, r);
      expect(a, JSON.stringify(text)).toEqual(expected);
      expect(parseChunked(text, delimiter, () => 0.999), JSON.stringify(text)).toEqual(expected); // large chunks
    }
  });

  const bad: [string, string, number][] = [
    ['a,b\n1,2\n"open,3\n', 'CSV quoted field is never closed', 3],
    ['a,b\n\n"x\ny\n', 'CSV quoted field is never closed', 3],
    ['a,b\n1,x"y\n', 'CSV quote in the middle of an unquoted field', 2],
    ['a,b\n"multi\nline",x"y\n', 'CSV quote in the middle of an unquoted field', 3],
    ['a,b\r\n\r\n1, "2"\r\n', 'CSV quote in the middle of an unquoted field', 3],
    ['a,b\n"1"2,3\n', 'CSV closing quote is followed by more characters (not a delimiter or line end)', 2],
  ];
  it.each(bad)('%j: E_DATA_PARSE naming the line', (text, message, line) => {
    for (const chunk of [1, 3, 1000]) {
      let err: unknown;
      try {
        parseChunked(text, ',', () => (chunk - 1) / 40);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(LorafitDataError);
      expect(err).toMatchObject({ code: 'E_DATA_PARSE', file: 'fuzz.csv', line, message: `fuzz.csv:${line}: ${message}` });
    }
  });
});
