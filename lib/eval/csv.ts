/**
 * RFC 4180 CSV for A/B rating files: every field quoted on output; input goes through csv-parse
 * (quoted fields may hold commas, doubled quotes and line breaks; CRLF or LF; a UTF-8 BOM).
 */
import { CsvParser } from '../data/csv-parser.js';
import { LorafitDataError } from '../data/errors.js';
import { LorafitEvalError } from './errors.js';

export function csvField(value: string | number): string {
  return `"${String(value).replaceAll('"', '""')}"`;
}

export function csvLine(values: readonly (string | number)[]): string {
  return values.map(csvField).join(',');
}

export type { CsvRecord } from '../data/csv-parser.js';
import type { CsvRecord } from '../data/csv-parser.js';

/**
 * Parse CSV text into records (through lib/data's csv-parse reader). Blank lines are skipped.
 * Throws `E_AB_FILE` naming the line for an unterminated quote or text after a closing quote.
 */
export function parseCsv(text: string, fileLabel = 'CSV'): CsvRecord[] {
  const parser = new CsvParser(',');
  try {
    return [...parser.push(text), ...parser.end()];
  } catch (e) {
    if (!(e instanceof LorafitDataError)) throw e;
    const code = (e.cause as { code?: string } | undefined)?.code;  // csv-parse's error code
    const what = code === 'CSV_QUOTE_NOT_CLOSED' ? 'unterminated quoted field' : code === 'CSV_INVALID_CLOSING_QUOTE' ? 'unexpected text after a closing quote' : 'malformed CSV';
    throw new LorafitEvalError('E_AB_FILE', `${fileLabel} line ${e.line ?? '?'}: ${what}`, { cause: e });
  }
}
