/**
 * Minimal RFC 4180 CSV: every field quoted on output; on input quoted fields
 * may hold commas, doubled quotes and line breaks. Accepts CRLF or LF and a
 * leading UTF-8 BOM (as written by spreadsheet programs).
 */
import { LorafitEvalError } from './errors.js';

export function csvField(value: string | number): string {
  return `"${String(value).replaceAll('"', '""')}"`;
}

export function csvLine(values: readonly (string | number)[]): string {
  return values.map(csvField).join(',');
}

export interface CsvRecord {
  /** 1-based line number where the record starts. */
  line: number;
  fields: string[];
}

/**
 * Parse CSV text into records. Blank lines are skipped. Throws `E_AB_FILE`
 * naming the line for an unterminated quote or text after a closing quote.
 */
export function parseCsv(text: string, fileLabel = 'CSV'): CsvRecord[] {
  const s = text.startsWith('\ufeff') ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let line = 1;
  let i = 0;
  while (i < s.length) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let blank = true;
    for (;;) {
      if (s[i] === '"') {
        blank = false;
        i++;
        for (;;) {
          if (i >= s.length) throw new LorafitEvalError('E_AB_FILE', `${fileLabel} line ${start}: unterminated quoted field`);
          const c = s[i]!;
          if (c === '"') {
            if (s[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (i < s.length && s[i] !== ',' && s[i] !== '\n' && s[i] !== '\r') {
          throw new LorafitEvalError('E_AB_FILE', `${fileLabel} line ${line}: unexpected text after a closing quote`);
        }
      } else {
        while (i < s.length && s[i] !== ',' && s[i] !== '\n' && s[i] !== '\r') {
          field += s[i];
          i++;
        }
        if (field !== '') blank = false;
      }
      fields.push(field);
      field = '';
      if (s[i] === ',') {
        blank = false;
        i++;
        continue;
      }
      if (s[i] === '\r') i++;
      if (s[i] === '\n') i++;
      line++;
      break;
    }
    if (!blank) records.push({ line: start, fields });
  }
  return records;
}
