/**
 * lorafit evaluation: reference-based metrics (EM/F1, ROUGE, BLEU), perplexity
 * from streamed NLL sums, style indicators and distances, an LLM judge for
 * OpenAI-compatible endpoints, blind human A/B files, and report writers.
 */
export { LorafitEvalError, type LorafitEvalErrorCode } from './errors.js';
export {
  normalizeAnswer,
  answerTokens,
  splitCjkAware,
  splitPyWhitespace,
  isCjkChar,
  isCjkCodePoint,
  containsCjk,
  type NormalizeAnswerOptions,
} from './normalize.js';
export { exactMatch, tokenF1, f1EmCorpus, f1FromTokens, type F1EmOptions, type F1EmResult } from './f1-em.js';
export {
  rouge,
  rougeCorpus,
  rougeDefaultTokenize,
  rougeZhCharTokenize,
  type RougeOptions,
  type RougeScore,
  type RougeType,
  type RougeTokenizer,
  type RougeCorpusResult,
} from './rouge.js';
export { corpusBleu, sentenceBleu, computeBleu, formatBleu, type BleuOptions, type BleuResult, type BleuSmoothMethod } from './bleu.js';
export { tokenize13a, tokenizeZh, tokenizeChar, bleuTokenizer, type BleuTokenizerName } from './bleu-tokenizers.js';
export {
  PerplexityAccumulator,
  perplexityFromBatches,
  perplexityFromTokenNlls,
  type NllBatch,
  type PerplexityResult,
} from './perplexity.js';
export {
  styleProfile,
  splitSentences,
  sentenceUnits,
  percentile,
  histogram,
  movingAverageTtr,
  DEFAULT_HISTOGRAM_EDGES,
  type StyleProfile,
  type StyleProfileOptions,
  type StyleRatios,
  type SentenceLengthStats,
  type Histogram,
  type NgramCount,
} from './style.js';
export {
  styleDistance,
  compareStyle,
  jensenShannon,
  DEFAULT_RATIO_KEYS,
  type StyleDistance,
  type StyleDistanceOptions,
  type StyleComparison,
} from './style-distance.js';
export { buildRubricMessages, JUDGE_SYSTEM_PROMPT, type ChatMessage, type StyleRubric } from './judge-prompt.js';
export { parseJudgeScore, type ParsedJudgeScore } from './judge-parse.js';
export {
  JudgeClient,
  summarize as summarizeJudgeItems,
  type JudgeClientOptions,
  type JudgeItemResult,
  type JudgeBatchResult,
  type JudgeLogEvent,
} from './judge.js';
export { judgeWithControls, type JudgeControlsInput, type JudgeControlsReport } from './judge-controls.js';
export {
  createAbTest,
  writeAbTest,
  formatAbRows,
  parseAbRatings,
  scoreAbTest,
  scoreAbFiles,
  signTest,
  type AbInput,
  type AbFormat,
  type AbRating,
  type AbRow,
  type AbKey,
  type AbTest,
  type RatedRow,
  type AbResult,
} from './ab-test.js';
export {
  renderLossCurveSvg,
  niceTicks,
  emaSmooth,
  escapeXml,
  type TrainLossPoint,
  type EvalLossPoint,
  type LossCurveOptions,
} from './loss-curve-svg.js';
export {
  renderMarkdownReport,
  renderHtmlReport,
  renderReportSvg,
  writeReport,
  type ReportInput,
  type ReportOptions,
  type MetricRow,
  type MetricValue,
} from './report.js';
