/**
 * Streaming RFC 4180 CSV parsing through csv-parse: quoted fields, doubled quotes, commas and
 * newlines inside quotes, CRLF, LF or CR line ends (mixed too), a UTF-8 BOM, blank lines skipped.
 * Feeds on chunks so large files never sit in memory whole. Each record reports the 1-based line
 * it starts on, for error messages.
 *
 * csv-parse's stream parser is driven synchronously (write a chunk, read the records it
 * completed) so that `push` returns the records a chunk finished, whatever the chunk boundaries.
 * Line numbers are counted here: a line break inside a quoted field is a "\n" (as the reader
 * always counted), and the blank lines skipped before a record are read off its raw text.
 */
import { Parser, type CsvError } from 'csv-parse';
import { LorafitDataError } from './errors.js';

export interface CsvRecord {
  fields: string[];
  line: number;
}

export class CsvParser {
  private readonly parser: Parser;
  /** The line the next record would start on, were there no blank lines before it. */
  private nextLine = 1;

  constructor(
    delimiter = ',',
    private readonly file?: string,
  ) {
    this.parser = new Parser({
      delimiter,
      bom: true,
      record_delimiter: ['\n', '\r\n', '\r'],
      skip_empty_lines: true,
      relax_column_count: true, // the reader checks the field count per row (skipInvalid)
      raw: true, // each record's source text, to number its line (cheaper than `info`)
    });
    this.parser.on('error', () => {}); // errors are read from `errored` and thrown by push()/end()
  }

  /** Parse a chunk; returns the records completed by it. */
  push(chunk: string): CsvRecord[] {
    this.parser.write(chunk);
    return this.drain();
  }

  /** Flush the last record; throws if a quoted field never closed. */
  end(): CsvRecord[] {
    this.parser.end();
    return this.drain();
  }

  private drain(): CsvRecord[] {
    const out: CsvRecord[] = [];
    let item: { record: string[]; raw: string } | null;
    while ((item = this.parser.read() as { record: string[]; raw: string } | null) !== null) {
      const line = this.nextLine + blankLines(item.raw);
      let breaks = 0;
      for (const field of item.record) breaks += count(field, '\n');
      this.nextLine = line + breaks + 1;
      out.push({ fields: item.record, line });
    }
    const err = this.parser.errored;
    if (err) throw this.toDataError(err as CsvError);
    return out;
  }

  private toDataError(err: CsvError): LorafitDataError {
    const raw = (err as CsvError & { raw?: string }).raw ?? '';
    const recordLine = this.nextLine + blankLines(raw);
    // The offending character's line: the record's text so far can hold line breaks only
    // inside quoted fields.
    const here = recordLine + count(raw.slice(blankLines(raw)), '\n');
    const at = (line: number) => ({ file: this.file, line, cause: err });
    switch (err.code) {
      case 'CSV_QUOTE_NOT_CLOSED':
        return new LorafitDataError('E_DATA_PARSE', 'CSV quoted field is never closed', at(recordLine));
      case 'INVALID_OPENING_QUOTE':
        return new LorafitDataError('E_DATA_PARSE', 'CSV quote in the middle of an unquoted field', at(here));
      case 'CSV_INVALID_CLOSING_QUOTE':
        return new LorafitDataError('E_DATA_PARSE', 'CSV closing quote is followed by more characters (not a delimiter or line end)', at(here));
      default:
        return new LorafitDataError('E_DATA_PARSE', `CSV: ${err.message}`, at(here));
    }
  }
}

/**
 * The blank lines csv-parse skipped before a record: its raw text starts with one character per
 * skipped line end (the first of a CRLF).
 */
function blankLines(raw: string): number {
  let n = 0;
  while (n < raw.length && (raw[n] === '\n' || raw[n] === '\r')) n++;
  return n;
}

function count(text: string, ch: string): number {
  let n = 0;
  for (let i = text.indexOf(ch); i !== -1; i = text.indexOf(ch, i + 1)) n++;
  return n;
}
