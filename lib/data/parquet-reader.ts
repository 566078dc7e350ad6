/**
 * Parquet rows (the format of datasets on the Hugging Face hub) through `hyparquet`, a maintained
 * pure-JS reader, with `hyparquet-compressors` for zstd/gzip/brotli/lz4 pages. Reads one row group
 * at a time, so memory follows the row-group size and not the file size. Nested columns
 * (`messages: list<struct<role, content>>`) come back as arrays of objects.
 */
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { LorafitDataError } from './errors.js';
import type { RawRow } from './readers.js';

export async function* readParquetRows(file: string): AsyncGenerator<RawRow> {
  let buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    throw new LorafitDataError('E_DATA_PARSE', `not a readable parquet file: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = (await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors })) as Record<
        string,
        unknown
      >[];
    } catch (err) {
      throw new LorafitDataError('E_DATA_PARSE', `parquet row group cannot be decoded: ${(err as Error).message}`, {
        file,
        line: rowStart + 1,
        cause: err,
      });
    }
    for (let i = 0; i < rows.length; i++) yield { value: plain(rows[i]) as Record<string, unknown>, file, line: rowStart + i + 1 };
    rowStart = rowEnd;
  }
}

/** BigInt (INT64 columns) to number where it is exact, recursively; everything else unchanged. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}
