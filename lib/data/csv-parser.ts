/**
 * Streaming RFC 4180 CSV parser: quoted fields, doubled quotes, commas and newlines inside quotes,
 * CRLF or LF line ends, a UTF-8 BOM. Feeds on chunks so large files never sit in memory whole.
 * Each record reports the 1-based line it starts on, for error messages.
 */
import { LorafitDataError } from './errors.js';

export interface CsvRecord {
  fields: string[];
  line: number;
}

export class CsvParser {
  private field = '';
  private fields: string[] = [];
  private inQuotes = false;
  /** A quote just closed a quoted section; the next char decides ("" escape or end of quoting). */
  private quotePending = false;
  private fieldStarted = false;
  private line = 1;
  private recordLine = 1;
  private sawAnything = false;
  private first = true;
  private pendingCr = false;

  constructor(
    private readonly delimiter = ',',
    private readonly file?: string,
  ) {}

  /** Parse a chunk; returns the records completed by it. */
  push(chunk: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    let text = chunk;
    if (this.first) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (this.pendingCr) {
        this.pendingCr = false; // a CR ended the previous chunk; skip the LF of its CRLF
        if (ch === '\n') continue;
      }
      if (this.quotePending) {
        this.quotePending = false;
        if (ch === '"') {
          this.field += '"';
          this.inQuotes = true;
          continue;
        }
        // fall through: the quoted section ended, handle ch as an ordinary character
      } else if (this.inQuotes) {
        if (ch === '"') {
          this.inQuotes = false;
          this.quotePending = true;
        } else {
          if (ch === '\n') this.line++;
          this.field += ch;
        }
        continue;
      }
      if (ch === '"') {
        if (!this.fieldStarted) {
          this.inQuotes = true;
          this.fieldStarted = true;
          this.sawAnything = true;
        } else {
          throw new LorafitDataError('E_DATA_PARSE', 'CSV quote in the middle of an unquoted field', {
            file: this.file,
            line: this.line,
          });
        }
      } else if (ch === this.delimiter) {
        this.endField();
        this.sawAnything = true;
      } else if (ch === '\n' || ch === '\r') {
        if (ch === '\r') {
          if (i + 1 === text.length) this.pendingCr = true;
          else if (text[i + 1] === '\n') i++;
        }
        const record = this.endRecord();
        if (record) out.push(record);
        this.line++;
        this.recordLine = this.line;
      } else {
        this.field += ch;
        this.fieldStarted = true;
        this.sawAnything = true;
      }
    }
    return out;
  }

  /** Flush the last record; throws if a quoted field never closed. */
  end(): CsvRecord[] {
    if (this.inQuotes) {
      throw new LorafitDataError('E_DATA_PARSE', 'CSV quoted field is never closed', {
        file: this.file,
        line: this.recordLine,
      });
    }
    this.quotePending = false;
    const record = this.endRecord();
    return record ? [record] : [];
  }

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.fieldStarted = false;
  }

  private endRecord(): CsvRecord | null {
    if (!this.sawAnything) return null; // blank line
    this.endField();
    const record = { fields: this.fields, line: this.recordLine };
    this.fields = [];
    this.sawAnything = false;
    return record;
  }
}
