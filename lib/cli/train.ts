// `lorafit train [config.yaml|json] [--key value ...]`: read and check the dataset and hold out an
// eval split (before the model loads, so a bad row fails fast), load the model and tokenizer,
// tokenize (through the on-disk tokenization cache), LoRA-train with progress output, save the
// PEFT adapter to <outputDir>/adapter and print the eval-loss drop.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { loadDataset, type LoadDatasetOptions } from '../data/load-dataset.js';
import { shuffle } from '../data/markdown-corpus.js';
import { encodeDatasetFile, type EncodeFileOptions } from '../data/token-cache.js';
import { emptyStats, finishExamples, type TokenizedExample, type TokenizeOptions, type TokenizeStats, type TrainOn } from '../data/tokenize.js';
import type { DataRecord, DatasetFormat } from '../data/formats.js';
import { chat } from '../model/chat.js';
import type { Dtype } from '../model/model.js';
import { styleConversations } from '../train/default-job.js';
import { LorafitError, optionError } from '../errors.js';
import { checkLoraInit, rewritesBase } from '../lora/init-weights.js';
import { LoraAdapter } from '../lora/lora-adapter.js';
import { Trainer } from '../train/trainer.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { cliLogger, globalOptions, openModel, warningPrinter, type GlobalArgs } from './common.js';
import { isRank, launchRanks, ranksToLaunch } from './launch.js';
import { Progress, formatMs } from './progress.js';
import { writeRunRecord, type RunRecord } from '../ui/run-record.js';
import { startUi } from '../ui/start.js';
import { printUrl, untilSignal } from './ui.js';
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
  return out
    .option('ui', { type: 'boolean', default: false, describe: 'Serve the web dashboard of this run (live curves, playground); it stays up after training until Ctrl-C', group: 'Dashboard:' })
    .option('ui-port', { type: 'number', default: 7860, describe: 'Dashboard port (0: any free port)', group: 'Dashboard:' })
    .option('ui-host', { type: 'string', default: '127.0.0.1', describe: 'Dashboard address; a non-loopback one requires the printed token', group: 'Dashboard:' })
    .option('ui-token', { type: 'string', describe: 'Dashboard token (default: a random one when the host is not loopback)', group: 'Dashboard:' });
}

interface TrainArgs extends GlobalArgs {
  config?: string;
  ui?: boolean;
  uiPort?: number;
  uiHost?: string;
  uiToken?: string;
  [key: string]: unknown;
}

export async function handler(argv: TrainArgs): Promise<void> {
  const file = argv.config ? readConfigFile(argv.config) : {};
  const flags: Record<string, unknown> = {};
  for (const key of Object.keys(TRAIN_KEYS)) flags[key] = argv[key];
  const cfg = resolveTrainConfig(file, argv.config, flags);
  const log = cliLogger(argv, 'train');
  log.info({ config: cfg }, 'train config');
  const ranks = ranksToLaunch(cfg.nprocPerNode);
  const run = () => (ranks > 1 ? launchRanks(ranks, { masterPort: cfg.masterPort, say: (line) => process.stdout.write(`${line}\n`) }) : train(cfg, log));
  // The dashboard runs in the launcher, or in rank 0 under torchrun; never in a launched rank.
  const uiHere = argv.ui && process.env.LORAFIT_LAUNCHED !== '1' && (!isRank() || process.env.RANK === '0');
  if (!uiHere) return run();
  // The dashboard first: it shows the run from its first metrics line on.
  const ui = await startUi({
    sources: { runs: [resolve(cfg.outputDir ?? 'lorafit-output')] },
    host: argv.uiHost,
    port: argv.uiPort,
    token: argv.uiToken,
    playground: { model: cfg.model, loadOptions: { dtype: cfg.dtype as Dtype | undefined, device: cfg.device, threads: cfg.threads, quantize: cfg.loadIn4bit ? 'nf4' : cfg.loadIn8bit ? 'int8' : undefined } },
    log,
  });
  printUrl(ui);
  try {
    await run();
  } catch (e) {
    await ui.stop();
    throw e;
  }
  process.stdout.write(`training finished; the dashboard stays up at ${ui.url} (Ctrl-C quits)\n`);
  await untilSignal();
  await ui.stop();
}

async function train(cfg: TrainConfig, log: ReturnType<typeof cliLogger>): Promise<void> {
  const outputDir = resolve(cfg.outputDir ?? 'lorafit-output');
  const baseModel = existsSync(cfg.model) ? resolve(cfg.model) : cfg.model;
  const seed = cfg.seed ?? 42;
  // A rank of a data-parallel run (torchrun's environment, or --nproc-per-node's): rank 0 alone
  // prints, saves the adapter and answers the sample prompts; threads follow OMP_NUM_THREADS.
  const distributed = isRank() ? { backend: cfg.distBackend as 'gloo' | 'nccl' | undefined, timeoutSeconds: cfg.distTimeout } : undefined;
  const main = !distributed || Number(process.env.RANK) === 0;
  const say = main ? (line: string) => process.stdout.write(`${line}\n`) : () => {};
  // A rank on CUDA takes the device of its LOCAL_RANK (as torchrun users set torch.cuda.set_device).
  const device = distributed && cfg.device === 'cuda' ? `cuda:${process.env.LOCAL_RANK ?? process.env.RANK}` : cfg.device;
  const threads = cfg.threads ?? (distributed && process.env.OMP_NUM_THREADS ? Number(process.env.OMP_NUM_THREADS) || undefined : undefined);

  if (cfg.modelNote) say(`note: ${cfg.modelNote}`);
  if (cfg.defaultJob) say(`the default job: LoRA-tune ${basename(cfg.model)} to answer in Yoda's style (set --model and --dataset for your own)`);
  // The data first: a malformed row is reported (file:line) in seconds, not after a large model loads.
  const data = await readTrainData(cfg, log, seed);
  say(`dataset: ${data.records.length} records from ${cfg.dataset}; ${data.trainIndices.length} train, ${data.evalRecords.length} eval`);
  say(`loading ${cfg.model}`);
  const { model, tokenizer } = await openModel(cfg.model, { dtype: cfg.dtype, device, threads, loadIn4bit: cfg.loadIn4bit, loadIn8bit: cfg.loadIn8bit }, log);
  try {
    const c = model.config;
    say(`model: ${c.modelType}, ${c.numHiddenLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${(model.numParameters() / 1e6).toFixed(2)}M parameters, ${model.dtype} on ${model.device}`);

    const tokenizeOptions: TokenizeOptions = { maxSeqLength: cfg.maxSeqLength ?? 512, packing: cfg.packing ?? false, trainOn: cfg.trainOn as TrainOn | undefined };
    const cache: EncodeFileOptions['cache'] = cfg.tokenCache === false ? false : { dir: cfg.tokenCacheDir };
    const encode = (label: string, path: string, records: DataRecord[], load: LoadDatasetOptions, variant?: string) =>
      encodeWithProgress(label, path, records, tokenizer, { ...tokenizeOptions, load, cache, variant, logger: log }, main);
    const all = await encode('tokenizing', cfg.dataset, data.records, data.readOptions, cfg.defaultJob ? 'default-job-style' : undefined);
    const held = new Set(data.heldIndices);
    const train = await finish('train', all.filter((_, i) => !held.has(i)), tokenizeOptions, main);
    const evalEncoded = cfg.evalDataset ? await encode('tokenizing eval', cfg.evalDataset, data.evalRecords, { ...data.readOptions, limit: undefined }) : all.filter((_, i) => held.has(i));
    const evalSet = evalEncoded.length ? await finish('eval', evalEncoded, tokenizeOptions, main) : { examples: [], stats: emptyStats() };
    if (train.examples.length === 0) throw new LorafitError('E_DATA_EMPTY', 'no training example is left after tokenizing (are the answers truncated away? raise maxSeqLength)');

    const rank = cfg.loraRank ?? 16;
    const init = checkLoraInit(cfg.initLoraWeights ?? 'kaiming', 'initLoraWeights');
    if (cfg.convertToLora && !rewritesBase(init)) throw optionError('convertToLora', `applies to the pissa / olora inits, not to '${init}'`);
    const targets = cfg.targetModules;
    const adapter = await LoraAdapter.create(model, {
      rank,
      alpha: cfg.loraAlpha ?? 2 * rank,
      dropout: cfg.loraDropout ?? 0,
      targetModules: targets === undefined ? undefined : targets.length === 1 && targets[0] === 'all-linear' ? 'all-linear' : targets,
      useRslora: cfg.useRslora ?? false,
      useDora: cfg.useDora ?? false,
      init,
      modulesToSave: cfg.modulesToSave,
      seed,
    });
    const share = adapter.trainableParameters();
    say(`${adapter.config.use_dora ? 'DoRA' : 'LoRA'} r=${rank} alpha=${adapter.config.lora_alpha}${init === 'kaiming' ? '' : ` init ${init}`} on ${adapter.modules.length} modules${cfg.modulesToSave?.length ? ` + ${cfg.modulesToSave.join(', ')} in full` : ''}: ${share.trainable} trainable of ${share.total} parameters (${share.percent.toFixed(3)}%)`);

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
      loraplusLrRatio: cfg.loraplusLrRatio,
      seed,
      evalSteps: cfg.evalSteps,
      saveSteps: cfg.saveSteps,
      saveTotalLimit: cfg.saveTotalLimit,
      earlyStoppingPatience: cfg.earlyStoppingPatience,
      onNonFinite: cfg.onNonFinite as 'error' | 'skip' | undefined,
      loggingSteps: cfg.loggingSteps,
      gradientCheckpointing: cfg.gradientCheckpointing,
      paddingFree: cfg.paddingFree,
      distributed,
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
    if (main) trainer.on('step', (s) => bar.update(s.step, `loss ${s.loss.toFixed(4)} lr ${s.learningRate.toExponential(2)} ${Math.round(s.tokensPerSecond)} tok/s`));
    if (main) trainer.on('eval', (e) => {
      bar.done();
      say(`eval at step ${e.step}: loss ${e.evalLoss.toFixed(4)} (perplexity ${e.perplexity.toFixed(2)})`);
    });
    const t0 = Date.now();
    // lorafit-run.json: the dashboard's record of this run (config, process, status); rank 0's.
    const record: RunRecord = { version: 1, status: 'running', pid: process.pid, startedAt: new Date().toISOString(), config: { ...cfg, model: baseModel } };
    const fit = () => trainer.fit(cfg.resumeFrom ? { resumeFrom: cfg.resumeFrom } : {}).finally(() => process.off('SIGINT', onSigint));
    if (!main) {
      await fit();
      return;
    }
    const adapterDir = join(outputDir, 'adapter');
    const result = await recordRun(outputDir, record, async () => {
      const r = await fit();
      bar.done(`trained ${r.globalStep} steps in ${formatMs(Date.now() - t0)}; last train loss ${r.trainLoss.toFixed(4)}`);
      await adapter.save(adapterDir, { baseModelNameOrPath: baseModel, convertToLora: cfg.convertToLora });
      return r;
    });
    say(`adapter saved to ${adapterDir}${cfg.convertToLora ? ` (converted to plain LoRA, rank ${2 * rank}, for the untouched base model)` : ''}`);
    if (rewritesBase(init) && !cfg.convertToLora) {
      say(`note: this ${init} adapter applies to the residual base: lorafit and PEFT recompute it from the base model when loading${init.startsWith('pissa_niter') ? ` (svd_lowrank is random: load it with the same seed, ${seed}, or train with --convert-to-lora)` : ''}`);
    }
    if (before !== undefined && result.evalLoss !== undefined) {
      const drop = before - result.evalLoss;
      say(`held-out NLL ${before.toFixed(4)} -> ${result.evalLoss.toFixed(4)} (${drop >= 0 ? 'down' : 'up'} ${Math.abs(drop).toFixed(4)}, perplexity ${Math.exp(before).toFixed(2)} -> ${Math.exp(result.evalLoss).toFixed(2)})`);
    }
    for (const question of cfg.samplePrompts ?? []) {
      const ask = (name: string | null) => chat(model, tokenizer, [{ role: 'user', content: question }], { adapter: name, maxNewTokens: 48, repetitionPenalty: 1.1 });
      say(`\n> ${question}\n${rewritesBase(init) ? 'residual base' : 'base'}:  ${oneLine(await ask(null))}\ntuned: ${oneLine(await ask(adapter.name))}`);
    }
    log.info({ adapterDir, evalLossBefore: before, evalLossAfter: result.evalLoss, steps: result.globalStep }, 'train done');
  } finally {
    await model.dispose();
  }
}

/** Runs the training with lorafit-run.json saying running, then completed, failed or interrupted. */
async function recordRun<T>(outputDir: string, record: RunRecord, fn: () => Promise<T>): Promise<T> {
  writeRunRecord(outputDir, record);
  try {
    const r = await fn();
    writeRunRecord(outputDir, { ...record, status: 'completed', endedAt: new Date().toISOString() });
    return r;
  } catch (e) {
    const code = (e as { code?: string }).code;
    writeRunRecord(outputDir, { ...record, status: code === 'E_ABORTED' ? 'interrupted' : 'failed', endedAt: new Date().toISOString(), error: `${code ?? 'error'}: ${(e as Error).message}` });
    throw e;
  }
}

const oneLine = (text: string) => text.trim().replace(/\s*\n+\s*/g, ' / ');

interface TrainData {
  readOptions: LoadDatasetOptions;
  /** Every record of the dataset (the default job: as styled conversations). */
  records: DataRecord[];
  trainIndices: number[];
  /** Indices into records held out for eval (none with evalDataset). */
  heldIndices: number[];
  /** The held-out records: those at heldIndices, or evalDataset's. */
  evalRecords: DataRecord[];
}

/**
 * Reads and checks the dataset (and evalDataset) and splits it; runs before the model loads. With
 * skipInvalid each skipped row is printed as `warning: file:line: ...` on stderr (and logged),
 * then the count.
 */
async function readTrainData(cfg: TrainConfig, log: ReturnType<typeof cliLogger>, seed: number): Promise<TrainData> {
  const readOptions: LoadDatasetOptions = {
    format: cfg.format as DatasetFormat | 'auto' | undefined,
    textMode: cfg.textMode as LoadDatasetOptions['textMode'],
    textColumn: cfg.textColumn,
    columns: { text: cfg.textColumn, prompt: cfg.promptColumn, completion: cfg.completionColumn, messages: cfg.messagesColumn },
    limit: cfg.limit,
    skipInvalid: cfg.skipInvalid ?? false,
  };
  const load = async (path: string, limit: number | undefined): Promise<DataRecord[]> =>
    loadDataset(path, { ...readOptions, limit, logger: warningPrinter(log) });
  let records = await load(cfg.dataset, cfg.limit);
  if (cfg.defaultJob) records = styleConversations(records);
  if (records.length === 0) throw new LorafitError('E_DATA_EMPTY', `${cfg.dataset}: no records`);
  const all = records.map((_, i) => i);
  if (cfg.evalDataset) {
    const evalRecords = await load(cfg.evalDataset, undefined);
    return { readOptions, records, trainIndices: all, heldIndices: [], evalRecords };
  }
  const split = cfg.evalSplit ?? 0.1;
  const count = split >= 1 ? split : Math.round(records.length * split);
  const n = split > 0 && records.length >= 2 ? Math.min(records.length - 1, Math.max(1, count)) : 0;
  const held = new Set(shuffle(all, seed).slice(0, n));
  const heldIndices = all.filter((i) => held.has(i));
  return { readOptions, records, trainIndices: all.filter((i) => !held.has(i)), heldIndices, evalRecords: heldIndices.map((i) => records[i]) };
}

/** One encoding per record, from the tokenization cache when it holds them; prints what the cache did. */
async function encodeWithProgress(label: string, path: string, records: DataRecord[], tokenizer: Tokenizer, options: EncodeFileOptions, print = true): Promise<TokenizedExample[]> {
  if (!print) return (await encodeDatasetFile(path, tokenizer, { ...options, records })).encoded;
  const bar = new Progress(label, records.length);
  const { encoded, cache } = await encodeDatasetFile(path, tokenizer, { ...options, records, onProgress: (n) => bar.update(n) });
  const note = cache.status === 'hit' ? `read from the tokenization cache ${cache.file}` : cache.status === 'miss' ? `cached in ${cache.file}` : 'tokenization cache off';
  bar.done(`${label}: ${records.length} records, ${note}`);
  return encoded;
}

/** Truncation, packing and the stats of one split, with its summary line. */
async function finish(label: string, encoded: TokenizedExample[], options: TokenizeOptions, print = true): Promise<{ examples: TokenizedExample[]; stats: TokenizeStats }> {
  const stats = emptyStats();
  const examples: TokenizedExample[] = [];
  for await (const ex of finishExamples(encoded, options, stats)) examples.push(ex);
  const notes = [stats.truncated && `${stats.truncated} truncated`, stats.droppedNoLabels && `${stats.droppedNoLabels} without trained tokens dropped`].filter(Boolean);
  if (print) process.stdout.write(`${label}: ${stats.records} records -> ${stats.examples} examples, ${stats.tokens} tokens (${stats.trainedTokens} trained, longest ${stats.longest})${notes.length ? `; ${notes.join(', ')}` : ''}\n`);
  return { examples, stats };
}
