// `lorafit train [config.yaml|json] [--key value ...]`: load the model and tokenizer, read and
// tokenize the dataset, hold out an eval split, LoRA-train with progress output, save the PEFT
// adapter to <outputDir>/adapter and print the eval-loss drop.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { iterateDataset, type LoadDatasetOptions } from '../data/load-dataset.js';
import { shuffle } from '../data/markdown-corpus.js';
import { emptyStats, tokenizeStream, type TokenizedExample, type TokenizeStats } from '../data/tokenize.js';
import type { DataRecord, DatasetFormat } from '../data/formats.js';
import { chat } from '../model/chat.js';
import { styleConversations } from '../train/default-job.js';
import { LorafitError } from '../errors.js';
import { LoraAdapter } from '../lora/lora-adapter.js';
import { Trainer } from '../train/trainer.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { cliLogger, globalOptions, openModel, type GlobalArgs } from './common.js';
import { Progress, formatMs } from './progress.js';
import { TRAIN_KEYS, kebabKey, readConfigFile, resolveTrainConfig, type TrainConfig, type TrainKey } from './train-config.js';

export const command = 'train [config]';
export const describe = 'LoRA-tune a model (config file keys, overridden by flags)';

export function builder(y: Argv) {
  let out = globalOptions(y).positional('config', { type: 'string', describe: 'YAML or JSON config file' });
  for (const [key, spec] of Object.entries(TRAIN_KEYS) as [TrainKey, (typeof TRAIN_KEYS)[TrainKey]][]) {
    const flag = kebabKey(key);
    const values = 'values' in spec ? ` [${spec.values.join(', ')}]` : '';
    // Non-boolean flags are read as strings so the config check reports a bad value by name.
    out = out.option(flag, { type: spec.kind === 'boolean' ? 'boolean' : 'string', describe: `${spec.describe}${values}`, group: 'Training keys:' }) as typeof out;
  }
  return out;
}

interface TrainArgs extends GlobalArgs {
  config?: string;
  [key: string]: unknown;
}

export async function handler(argv: TrainArgs): Promise<void> {
  const file = argv.config ? readConfigFile(argv.config) : {};
  const flags: Record<string, unknown> = {};
  for (const key of Object.keys(TRAIN_KEYS)) flags[key] = argv[key];
  const cfg = resolveTrainConfig(file, argv.config, flags);
  const log = cliLogger(argv, 'train');
  log.info({ config: cfg }, 'train config');
  await train(cfg, log);
}

async function train(cfg: TrainConfig, log: ReturnType<typeof cliLogger>): Promise<void> {
  const outputDir = resolve(cfg.outputDir ?? 'lorafit-output');
  const seed = cfg.seed ?? 42;
  const say = (line: string) => process.stdout.write(`${line}\n`);

  if (cfg.modelNote) say(`note: ${cfg.modelNote}`);
  if (cfg.defaultJob) say(`the default job: LoRA-tune ${basename(cfg.model)} to answer in Yoda's style (set --model and --dataset for your own)`);
  say(`loading ${cfg.model}`);
  const { model, tokenizer } = await openModel(cfg.model, { dtype: cfg.dtype, device: cfg.device, threads: cfg.threads, loadIn4bit: cfg.loadIn4bit, loadIn8bit: cfg.loadIn8bit }, log);
  try {
    const c = model.config;
    say(`model: ${c.modelType}, ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${(model.numParameters() / 1e6).toFixed(2)}M parameters, ${model.dtype} on ${model.device}`);

    const readOptions: LoadDatasetOptions = {
      format: cfg.format as DatasetFormat | 'auto' | undefined,
      textMode: cfg.textMode as LoadDatasetOptions['textMode'],
      textColumn: cfg.textColumn,
      columns: { text: cfg.textColumn, prompt: cfg.promptColumn, completion: cfg.completionColumn, messages: cfg.messagesColumn },
      limit: cfg.limit,
    };
    let records: DataRecord[] = [];
    for await (const r of iterateDataset(cfg.dataset, readOptions)) records.push(r);
    if (cfg.defaultJob) records = styleConversations(records);
    if (records.length === 0) throw new LorafitError('E_DATA_EMPTY', `${cfg.dataset}: no records`);
    let trainRecords = records;
    let evalRecords: DataRecord[] = [];
    if (cfg.evalDataset) {
      for await (const r of iterateDataset(cfg.evalDataset, { ...readOptions, limit: undefined })) evalRecords.push(r);
    } else {
      const split = cfg.evalSplit ?? 0.1;
      const count = split >= 1 ? split : Math.round(records.length * split);
      const n = split > 0 && records.length >= 2 ? Math.min(records.length - 1, Math.max(1, count)) : 0;
      const order = shuffle(records.map((_, i) => i), seed);
      const held = new Set(order.slice(0, n));
      evalRecords = records.filter((_, i) => held.has(i));
      trainRecords = records.filter((_, i) => !held.has(i));
    }
    say(`dataset: ${records.length} records from ${cfg.dataset}; ${trainRecords.length} train, ${evalRecords.length} eval`);

    const tokenizeOptions = { maxSeqLength: cfg.maxSeqLength ?? 512, packing: cfg.packing ?? false, trainOn: cfg.trainOn as 'all-assistant' | undefined };
    const train = await tokenizeWithProgress('tokenizing train', trainRecords, tokenizer, tokenizeOptions);
    const evalSet = evalRecords.length ? await tokenizeWithProgress('tokenizing eval', evalRecords, tokenizer, tokenizeOptions) : { examples: [], stats: emptyStats() };
    if (train.examples.length === 0) throw new LorafitError('E_DATA_EMPTY', 'no training example is left after tokenizing (are the answers truncated away? raise maxSeqLength)');

    const rank = cfg.loraRank ?? 16;
    const targets = cfg.targetModules;
    const adapter = await LoraAdapter.create(model, {
      rank,
      alpha: cfg.loraAlpha ?? 2 * rank,
      dropout: cfg.loraDropout ?? 0,
      targetModules: targets === undefined ? undefined : targets.length === 1 && targets[0] === 'all-linear' ? 'all-linear' : targets,
      useRslora: cfg.useRslora ?? false,
      seed,
    });
    const share = adapter.trainableParameters();
    say(`LoRA r=${rank} alpha=${adapter.config.lora_alpha} on ${adapter.modules.length} modules: ${share.trainable} trainable of ${share.total} parameters (${share.percent.toFixed(3)}%)`);

    const ac = new AbortController();
    const trainer = new Trainer({
      model,
      adapter,
      trainData: train.examples,
      evalData: evalSet.examples,
      outputDir,
      learningRate: cfg.learningRate,
      epochs: cfg.epochs,
      maxSteps: cfg.maxSteps,
      batchSize: cfg.batchSize,
      gradientAccumulationSteps: cfg.gradientAccumulationSteps,
      lrScheduler: cfg.lrScheduler as 'linear' | undefined,
      warmupSteps: cfg.warmupSteps,
      warmupRatio: cfg.warmupRatio,
      weightDecay: cfg.weightDecay,
      maxGradNorm: cfg.maxGradNorm,
      seed,
      evalSteps: cfg.evalSteps,
      saveSteps: cfg.saveSteps,
      loggingSteps: cfg.loggingSteps,
      gradientCheckpointing: cfg.gradientCheckpointing,
      paddingFree: cfg.paddingFree,
      padTokenId: tokenizer.padTokenId ?? 0,
      logger: log,
      signal: ac.signal,
    });
    const onSigint = () => {
      process.stdout.write('\ninterrupted: stopping after this step (a checkpoint is written)\n');
      ac.abort();
    };
    process.once('SIGINT', onSigint);

    let before: number | undefined;
    if (evalSet.examples.length) {
      before = (await trainer.evaluateLoss()).evalLoss;
      say(`held-out NLL before training: ${before.toFixed(4)} per trained token (${evalSet.examples.length} examples, ${evalSet.stats.trainedTokens} tokens)`);
    }
    const total = trainer.totalSteps;
    const bar = new Progress('training', total, { lines: true });
    trainer.on('step', (s) => bar.update(s.step, `loss ${s.loss.toFixed(4)} lr ${s.learningRate.toExponential(2)} ${Math.round(s.tokensPerSecond)} tok/s`));
    trainer.on('eval', (e) => {
      bar.done();
      say(`eval at step ${e.step}: loss ${e.evalLoss.toFixed(4)} (perplexity ${e.perplexity.toFixed(2)})`);
    });
    const t0 = Date.now();
    const result = await trainer.fit().finally(() => process.off('SIGINT', onSigint));
    bar.done(`trained ${result.globalStep} steps in ${formatMs(Date.now() - t0)}; last train loss ${result.trainLoss.toFixed(4)}`);

    const adapterDir = join(outputDir, 'adapter');
    await adapter.save(adapterDir, { baseModelNameOrPath: existsSync(cfg.model) ? resolve(cfg.model) : cfg.model });
    say(`adapter saved to ${adapterDir}`);
    if (before !== undefined && result.evalLoss !== undefined) {
      const drop = before - result.evalLoss;
      say(`held-out NLL ${before.toFixed(4)} -> ${result.evalLoss.toFixed(4)} (${drop >= 0 ? 'down' : 'up'} ${Math.abs(drop).toFixed(4)}, perplexity ${Math.exp(before).toFixed(2)} -> ${Math.exp(result.evalLoss).toFixed(2)})`);
    }
    for (const question of cfg.samplePrompts ?? []) {
      const ask = (name: string | null) => chat(model, tokenizer, [{ role: 'user', content: question }], { adapter: name, maxNewTokens: 48, repetitionPenalty: 1.1 });
      say(`\n> ${question}\nbase:  ${oneLine(await ask(null))}\ntuned: ${oneLine(await ask(adapter.name))}`);
    }
    log.info({ adapterDir, evalLossBefore: before, evalLossAfter: result.evalLoss, steps: result.globalStep }, 'train done');
  } finally {
    await model.dispose();
  }
}

const oneLine = (text: string) => text.trim().replace(/\s*\n+\s*/g, ' / ');

async function tokenizeWithProgress(
  label: string,
  records: DataRecord[],
  tokenizer: Tokenizer,
  options: { maxSeqLength: number; packing: boolean; trainOn?: 'all-assistant' },
): Promise<{ examples: TokenizedExample[]; stats: TokenizeStats }> {
  const stats = emptyStats();
  const bar = new Progress(label, records.length);
  const examples: TokenizedExample[] = [];
  for await (const ex of tokenizeStream(records, tokenizer, options, stats)) {
    examples.push(ex);
    bar.update(stats.records);
  }
  const notes = [stats.truncated && `${stats.truncated} truncated`, stats.droppedNoLabels && `${stats.droppedNoLabels} without trained tokens dropped`].filter(Boolean);
  bar.done(`${label}: ${stats.records} records -> ${stats.examples} examples, ${stats.tokens} tokens (${stats.trainedTokens} trained, longest ${stats.longest})${notes.length ? `; ${notes.join(', ')}` : ''}`);
  return { examples, stats };
}
