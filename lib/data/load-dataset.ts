/**
 * Loading a dataset: read rows from a file or folder, detect each file's format from its first
 * row (or use the one given), and normalise every row to a text or conversation record.
 *
 * A malformed row is an error naming its `file:line`, unless `skipInvalid` is set: then the row is
 * skipped, logged (warn) and counted in `stats`; a dataset whose every row is invalid is still an
 * error, never an empty success.
 */
import { DATASET_FORMATS, detectFormat, normalizeRow, type DataRecord, type DatasetFormat, type FormatOptions } from './formats.js';
import { LorafitDataError } from './errors.js';
import { readRows, type ReadOptions } from './readers.js';

/** What loading did: records produced, and the rows skipped with `skipInvalid`. */
export interface DatasetStats {
  records: number;
  skipped: number;
  /** The first 100 skipped rows: `where` is `file:line`. */
  invalid: { where: string; file?: string; line?: number; message: string }[];
}

export function emptyDatasetStats(): DatasetStats {
  return { records: 0, skipped: 0, invalid: [] };
}

const KEPT_INVALID = 100;

export interface LoadDatasetOptions extends Omit<ReadOptions, 'onInvalidRow'>, FormatOptions {
  /** Stop after this many records. */
  limit?: number;
  /** Keep only rows for which this returns true (sees the raw row, before normalisation). */
  filter?: (row: Record<string, unknown>) => boolean;
  /** Skip malformed rows (reported in `stats` and as warnings) instead of stopping at the first. */
  skipInvalid?: boolean;
  /** Filled in while loading. */
  stats?: DatasetStats;
  /** Gets one warn per skipped row (`file:line: message`) and a summary at the end. */
  logger?: { warn(obj: object, msg: string): void };
}

/** Records of a dataset file or folder, streamed. */
export async function* iterateDataset(path: string, options: LoadDatasetOptions = {}): AsyncGenerator<DataRecord> {
  const forced = options.format !== undefined && options.format !== 'auto' ? options.format : null;
  if (forced !== null && !DATASET_FORMATS.includes(forced)) {
    throw new LorafitDataError('E_DATA_FORMAT', `unknown format "${forced}"; expected one of ${DATASET_FORMATS.join(', ')} or auto`);
  }
  const stats = options.stats ?? emptyDatasetStats();
  let first: LorafitDataError | undefined;
  const skip = (err: LorafitDataError): void => {
    first ??= err;
    stats.skipped++;
    const where = err.file !== undefined ? (err.line !== undefined ? `${err.file}:${err.line}` : err.file) : '?';
    if (stats.invalid.length < KEPT_INVALID) stats.invalid.push({ where, file: err.file, line: err.line, message: err.message });
    options.logger?.warn({ file: err.file, line: err.line, code: err.code }, `skipped invalid row: ${err.message}`);
  };
  const { skipInvalid, stats: _s, logger: _l, ...readOptions } = options;
  const formatByFile = new Map<string, DatasetFormat>();
  let count = 0;
  for await (const row of readRows(path, { ...readOptions, onInvalidRow: skipInvalid ? skip : undefined })) {
    if (options.limit !== undefined && count >= options.limit) break;
    if (options.filter && !options.filter(row.value)) continue;
    let record: DataRecord;
    try {
      let format = forced ?? formatByFile.get(row.file);
      if (format === undefined) {
        const detected = detectFormat(row.value, options.columns);
        if (detected === null) {
          throw new LorafitDataError(
            'E_DATA_FORMAT',
            `unknown dataset format: columns ${JSON.stringify(Object.keys(row.value))} match none of ` +
              `${DATASET_FORMATS.join(', ')}; pass format and a columns mapping`,
            { file: row.file, line: row.line },
          );
        }
        format = detected;
        formatByFile.set(row.file, format);
      }
      record = normalizeRow(row.value, format, options, { file: row.file, line: row.line });
    } catch (err) {
      if (!skipInvalid || !(err instanceof LorafitDataError)) throw err;
      skip(err.file === undefined ? new LorafitDataError(err.code, err.message, { file: row.file, line: row.line, cause: err }) : err);
      continue;
    }
    yield record;
    count++;
    stats.records = count;
  }
  if (stats.skipped > 0) {
    if (count === 0) {
      throw new LorafitDataError('E_DATA_EMPTY', `every row was invalid (${stats.skipped} skipped); the first: ${first!.message}`, { file: path });
    }
    options.logger?.warn({ skipped: stats.skipped, records: count }, `skipped ${stats.skipped} invalid row(s) of ${path} (first: ${stats.invalid[0].where})`);
  }
}

/** All records of a dataset in memory. */
export async function loadDataset(path: string, options: LoadDatasetOptions = {}): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const record of iterateDataset(path, options)) out.push(record);
  return out;
}
