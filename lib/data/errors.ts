/**
 * Errors raised by the data pipeline (tokenizer, chat templates, dataset files).
 *
 * Every error carries a stable `code` that callers can switch on, and where it applies the
 * `file`, 1-based `line` (or row) and `key` at fault, so a message can point a user at the exact
 * spot in a large dataset. It is a LorafitError (the library's one error root); the codes are the
 * contract.
 */
import { LorafitError } from '../errors.js';

export type LorafitDataErrorCode =
  | 'E_DATA_FORMAT' // a record has the wrong shape, or its format cannot be detected
  | 'E_DATA_PARSE' // a file cannot be parsed (malformed JSON line, broken CSV quoting, bad parquet)
  | 'E_DATA_IO' // a file or folder cannot be read or written
  | 'E_DATA_EMPTY' // nothing usable was found
  | 'E_TOKENIZER' // tokenizer files missing or inconsistent
  | 'E_CHAT_TEMPLATE'; // a chat template failed to render or raised an exception

export interface LorafitDataErrorDetails {
  file?: string;
  line?: number;
  key?: string;
  cause?: unknown;
}

export class LorafitDataError extends LorafitError {
  declare readonly code: LorafitDataErrorCode;
  readonly file?: string;
  readonly line?: number;
  readonly key?: string;

  constructor(code: LorafitDataErrorCode, message: string, details: LorafitDataErrorDetails = {}) {
    super(code, formatMessage(message, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'LorafitDataError';
    this.file = details.file;
    this.line = details.line;
    this.key = details.key;
  }
}

function formatMessage(message: string, { file, line, key }: LorafitDataErrorDetails): string {
  const where: string[] = [];
  if (file !== undefined) where.push(line !== undefined ? `${file}:${line}` : file);
  else if (line !== undefined) where.push(`line ${line}`);
  if (key !== undefined) where.push(`key "${key}"`);
  return where.length > 0 ? `${where.join(', ')}: ${message}` : message;
}
