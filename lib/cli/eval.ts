// `lorafit eval --model M [--adapter A ...] --dataset D`: perplexity (model.evalLoss streamed in
// micro-batches, logits never held) for the base model and each adapter, plus token F1 / exact
// match of greedy answers when the records end with a reference assistant answer.
import type { Argv } from 'yargs';
import { chat } from '../model/chat.js';
import { loadDataset, type LoadDatasetOptions } from '../data/load-dataset.js';
import type { ConversationRecord, DataRecord, DatasetFormat } from '../data/formats.js';
import { emptyStats, tokenizeStream, type TokenizedExample } from '../data/tokenize.js';
import { LorafitError } from '../errors.js';
import { f1EmCorpus } from '../eval/f1-em.js';
import { PerplexityAccumulator, type PerplexityResult } from '../eval/perplexity.js';
import { LoraAdapter } from '../lora/lora-adapter.js';
import { stepBatches } from '../train/batches.js';
import {
  cliLogger,
  generationOptions,
  globalOptions,
  loadAdapters,
  modelOptions,
  openModel,
  parseAdapterSpecs,
  samplingFromArgs,
  type GenerationArgs,
  type GlobalArgs,
  type ModelArgs,
  warningPrinter,
} from './common.js';
import { Progress } from './progress.js';

export const command = 'eval';
export const describe = 'Perplexity (and F1/EM against reference answers) of a model and its adapters';

export function builder(y: Argv) {
  return generationOptions(modelOptions(globalOptions(y)))
    .option('model', { type: 'string', demandOption: true, describe: 'Model folder or hub id' })
    .option('adapter', { type: 'string', array: true, describe: 'Adapter folders (name=dir or dir)' })
    .option('dataset', { type: 'string', demandOption: true, describe: 'Held-out data file or folder' })
    .option('format', { type: 'string', describe: 'Dataset format (default: detected)' })
    .option('text-column', { type: 'string', describe: 'Column holding raw text' })
    .option('limit', { type: 'number', describe: 'Use at most this many records' })
    .option('skip-invalid', { type: 'boolean', default: false, describe: 'Skip malformed dataset rows (each printed as file:line, then the count) instead of stopping at the first' })
    .option('max-seq-length', { type: 'number', default: 1024, describe: 'Longest example in tokens (longer ones are cut)' })
    .option('batch-size', { type: 'number', default: 4, describe: 'Examples per evalLoss call' })
    .option('base', { type: 'boolean', default: true, describe: 'Also evaluate the base model when adapters are given (--no-base skips it)' })
    .option('max-answers', { type: 'number', default: 32, describe: 'Reference answers to generate for F1/EM (0 = none)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print JSON' });
}

interface EvalArgs extends GlobalArgs, ModelArgs, GenerationArgs {
  model: string;
  adapter?: string[];
  dataset: string;
  format?: string;
  textColumn?: string;
  limit?: number;
  skipInvalid?: boolean;
  maxSeqLength: number;
  batchSize: number;
  base: boolean;
  maxAnswers: number;
  json: boolean;
}

export interface VariantResult {
  name: string;
  perplexity: PerplexityResult;
  f1?: number;
  exactMatch?: number;
  answers?: number;
}

export async function handler(argv: EvalArgs): Promise<void> {
  const log = cliLogger(argv, 'eval');
  if (!Number.isInteger(argv.batchSize) || argv.batchSize < 1) throw new LorafitError('E_OPTION', `--batch-size must be a positive integer, got ${argv.batchSize}`);
  const specs = parseAdapterSpecs(argv.adapter);
  // The data first: a malformed row is reported (file:line) before the model loads.
  const readOptions: LoadDatasetOptions = {
    format: argv.format as DatasetFormat | undefined,
    textColumn: argv.textColumn,
    columns: { text: argv.textColumn },
    limit: argv.limit,
    skipInvalid: argv.skipInvalid ?? false,
    logger: warningPrinter(log),
  };
  const records: DataRecord[] = await loadDataset(argv.dataset, readOptions);
  if (records.length === 0) throw new LorafitError('E_DATA_EMPTY', `${argv.dataset}: no records`);
  const { model, tokenizer } = await openModel(argv.model, argv, log);
  try {
    const adapters = await loadAdapters(model, specs, log);
    const stats = emptyStats();
    const examples: TokenizedExample[] = [];
    for await (const ex of tokenizeStream(records, tokenizer, { maxSeqLength: argv.maxSeqLength }, stats)) examples.push(ex);
    if (examples.length === 0) throw new LorafitError('E_DATA_EMPTY', `${argv.dataset}: no example with scored tokens`);
    const qa = records
      .filter((r): r is ConversationRecord => r.kind === 'conversation' && r.messages.length >= 2 && r.messages[r.messages.length - 1].role === 'assistant')
      .slice(0, Math.max(0, argv.maxAnswers));
    if (!argv.json) process.stdout.write(`${records.length} records, ${examples.length} examples, ${stats.trainedTokens} scored tokens${qa.length ? `, ${qa.length} reference answers` : ''}\n`);

    const variants: (string | null)[] = [...(specs.length === 0 || argv.base ? [null] : []), ...specs.map((s) => s.name)];
    const results: VariantResult[] = [];
    for (const name of variants) {
      const label = name ?? 'base';
      if (name === null) await LoraAdapter.disableAll(model);
      else await adapters.get(name)!.activate();
      const acc = new PerplexityAccumulator();
      const order = examples.map((_, i) => i);
      const plan = { batchSize: argv.batchSize, accumulation: 1, seed: 0, groupByLength: false, shuffle: false };
      const steps = Math.ceil(examples.length / argv.batchSize);
      const bar = new Progress(`${label}: perplexity`, steps, { out: argv.json ? process.stderr : process.stdout });
      for (let s = 0; s < steps; s++) {
        const r = await model.evalLoss(stepBatches(examples, order, s, plan, tokenizer.padTokenId ?? 0));
        acc.add({ sumNll: r.sum, tokens: r.tokens });
        bar.update(s + 1);
      }
      bar.done();
      const result: VariantResult = { name: label, perplexity: acc.result() };
      if (qa.length) {
        const answers: string[] = [];
        const abar = new Progress(`${label}: answers`, qa.length, { out: argv.json ? process.stderr : process.stdout });
        for (const r of qa) {
          answers.push(await chat(model, tokenizer, r.messages.slice(0, -1), { ...samplingFromArgs(argv), adapter: name }));
          abar.update(answers.length);
        }
        abar.done();
        const scores = f1EmCorpus(answers, qa.map((r) => r.messages[r.messages.length - 1].content));
        Object.assign(result, { f1: scores.f1, exactMatch: scores.exactMatch, answers: scores.count });
      }
      results.push(result);
      log.info(result, 'eval');
      if (!argv.json) {
        const p = result.perplexity;
        const qaText = result.f1 !== undefined ? `; F1 ${(100 * result.f1).toFixed(1)} EM ${(100 * result.exactMatch!).toFixed(1)} over ${result.answers} answers` : '';
        process.stdout.write(`${label}: perplexity ${p.perplexity.toFixed(3)} (mean NLL ${p.meanNll.toFixed(4)} nats/token over ${p.tokens} tokens)${qaText}\n`);
      }
    }
    if (argv.json) process.stdout.write(`${JSON.stringify({ dataset: argv.dataset, records: records.length, examples: examples.length, results }, null, 2)}\n`);
  } finally {
    await model.dispose();
  }
}
