// Real text (Yoda lines from ../shared/data, copied into test/fixtures) as byte-level tokens, for
// the vocab-256 fixture models: token = UTF-8 byte (ids < 3 do not occur in text).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './golden.js';

export interface ByteExample {
  inputIds: Int32Array;
  labels: Int32Array;
}

export function yodaLines(): string[] {
  return readFileSync(join(FIXTURES, 'data', 'styles', 'yoda.txt'), 'utf8').split('\n').filter((l) => l.trim().length > 0);
}

export function byteExamples(lines: string[], maxLen = 64): ByteExample[] {
  return lines.map((line) => {
    const bytes = Buffer.from(line, 'utf8').subarray(0, maxLen);
    const ids = Int32Array.from(bytes);
    return { inputIds: ids, labels: Int32Array.from(ids) };
  });
}
