/** The data pipeline: dataset files -> normalised records -> tokenized training examples. */
export { LorafitDataError, type LorafitDataErrorCode, type LorafitDataErrorDetails } from './errors.js';
export { readRows, listDataFiles, fileTypeOf, type FileType, type RawRow, type ReadOptions } from './readers.js';
export { CsvParser, type CsvRecord } from './csv-parser.js';
export { readParquetRows } from './parquet-reader.js';
export {
  DATASET_FORMATS,
  detectFormat,
  normalizeRow,
  getPath,
  type ColumnMapping,
  type ConversationRecord,
  type DataRecord,
  type DatasetFormat,
  type FormatOptions,
  type RecordSource,
  type TextRecord,
} from './formats.js';
export { emptyDatasetStats, iterateDataset, loadDataset, type DatasetStats, type LoadDatasetOptions } from './load-dataset.js';
export { locateAssistantSpans, labelsFromSpans, type TextSpan, type LocateOptions } from './assistant-spans.js';
export {
  IGNORE_INDEX,
  emptyStats,
  encodeRecords,
  finishExamples,
  tokenizeDataset,
  tokenizeRecord,
  tokenizeStream,
  type TokenizeOptions,
  type TokenizeStats,
  type TokenizedExample,
  type TrainOn,
} from './tokenize.js';
export {
  encodeDatasetFile,
  tokenizeFile,
  type CacheStatus,
  type EncodeFileOptions,
  type EncodedDataset,
  type TokenCacheOptions,
} from './token-cache.js';
export { markdownToParagraphs, parseFrontMatter, cleanInline, isCjk, type FrontMatter } from './markdown-text.js';
export { chunkParagraphs, estimateTokens, joinSentences, splitSentences, type ChunkOptions } from './text-chunker.js';
export {
  buildMarkdownCorpus,
  readMarkdownPosts,
  shuffle,
  type MarkdownCorpusOptions,
  type MarkdownCorpusStats,
  type MarkdownPost,
  type StyleRecord,
  type StyleTask,
} from './markdown-corpus.js';
export { Tokenizer, type TokenizerOptions, type EncodeOptions, type Encoding, type AddedTokenInfo, type ApplyChatTemplateOptions } from '../text/tokenizer.js';
export {
  ChatTemplate,
  CHATML_TEMPLATE,
  detectEndOfTurn,
  namedChatTemplates,
  selectChatTemplate,
  type ChatMessage,
  type ChatTemplateSource,
  type RenderOptions,
} from '../text/chat-template.js';
