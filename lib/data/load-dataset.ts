/**
 * Loading a dataset: read rows from a file or folder, detect each file's format from its first
 * row (or use the one given), and normalise every row to a text or conversation record.
 */
import { DATASET_FORMATS, detectFormat, normalizeRow, type DataRecord, type DatasetFormat, type FormatOptions } from './formats.js';
import { LorafitDataError } from './errors.js';
import { readRows, type ReadOptions } from './readers.js';

export interface LoadDatasetOptions extends ReadOptions, FormatOptions {
  /** Stop after this many records. */
  limit?: number;
  /** Keep only rows for which this returns true (sees the raw row, before normalisation). */
  filter?: (row: Record<string, unknown>) => boolean;
}

/** Records of a dataset file or folder, streamed. */
export async function* iterateDataset(path: string, options: LoadDatasetOptions = {}): AsyncGenerator<DataRecord> {
  const forced = options.format !== undefined && options.format !== 'auto' ? options.format : null;
  if (forced !== null && !DATASET_FORMATS.includes(forced)) {
    throw new LorafitDataError('E_DATA_FORMAT', `unknown format "${forced}"; expected one of ${DATASET_FORMATS.join(', ')} or auto`);
  }
  const formatByFile = new Map<string, DatasetFormat>();
  let count = 0;
  for await (const row of readRows(path, options)) {
    if (options.limit !== undefined && count >= options.limit) return;
    if (options.filter && !options.filter(row.value)) continue;
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
    yield normalizeRow(row.value, format, options, { file: row.file, line: row.line });
    count++;
  }
}

/** All records of a dataset in memory. */
export async function loadDataset(path: string, options: LoadDatasetOptions = {}): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const record of iterateDataset(path, options)) out.push(record);
  return out;
}
