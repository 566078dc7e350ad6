// Trainer: the LoRA training loop. One `await` per optimizer step (the micro-batches of a step run
// inside one native call, off the main thread); between steps it logs, emits events, checks the
// abort signal, evaluates and writes checkpoints.
//
//   const trainer = new Trainer({ model, adapter, trainData, evalData, learningRate: 2e-4, maxSteps: 100, outputDir: 'out' });
//   trainer.on('step', (s) => console.log(s.step, s.loss));
//   const result = await trainer.fit();          // or fit({ resumeFrom: 'latest' })
import { EventEmitter } from 'node:events';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { renderLossCurveSvg } from '../eval/loss-curve-svg.js';
import { LorafitError } from '../errors.js';
import { writeFileAtomicSync } from '../util/fs-atomic.js';
import { LoraAdapter, nativeAdapterOf, PEFT_PREFIX } from '../lora/lora-adapter.js';
import { defaultLogger, type Logger } from '../util/logger.js';
import { channelOf } from '../model/channel.js';
import { toNativeBatch } from '../model/micro-batch.js';
import type { MicroBatch, Model } from '../model/model.js';
import type { NativeTrainState } from '../model/native.js';
import { epochOrder, stepBatches, stepsPerEpoch, type BatchPlan, type Example } from './batches.js';
import { evalShare, globalBatchSize, globalStepsPerEpoch, ProcessGroup, rankShare, resolveDistributed, type DistributedConfig } from './distributed.js';
import { latestCheckpoint, pruneCheckpoints, readCheckpoint, writeCheckpoint, type TrainerState } from './checkpoint.js';
import { resolveOptions, serialisableOptions, type ResolvedOptions, type TrainerOptions } from './options.js';
import { mixSeed } from './random.js';
import { learningRateAt } from './schedule.js';

export type { TrainerOptions } from './options.js';

export interface StepEvent {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  learningRate: number;
  gradNorm: number;
  clipped: boolean;
  /** Label tokens of this step (the loss's denominator). */
  tokens: number;
  /** Input tokens (not padding) per second over this step. */
  tokensPerSecond: number;
  elapsedMs: number;
  etaMs: number;
  /** Data parallelism only: milliseconds of this step in the gradient and loss all-reduce. */
  reduceMs?: number;
}

export interface EvalEvent {
  step: number;
  evalLoss: number;
  perplexity: number;
  tokens: number;
  best: boolean;
}

export interface CheckpointEvent {
  step: number;
  dir: string;
}

export interface FitResult {
  status: 'completed' | 'early-stopped';
  globalStep: number;
  trainLoss: number;
  evalLoss?: number;
  bestCheckpoint?: string;
  outputDir?: string;
  history: Record<string, unknown>[];
}

export interface TrainerInit extends TrainerOptions {
  model: Model;
  /** The adapter to train (omit with fullParameter: true). */
  adapter?: LoraAdapter;
  trainData: Example[];
  evalData?: Example[];
}

type TrainerEvents = {
  step: [StepEvent];
  eval: [EvalEvent];
  checkpoint: [CheckpointEvent];
  skip: [{ step: number; reason: string }];
  end: [FitResult];
};

export class Trainer extends EventEmitter<TrainerEvents> {
  readonly model: Model;
  readonly adapter: LoraAdapter | undefined;
  readonly options: ResolvedOptions;
  private readonly trainData: Example[];
  private readonly evalData: Example[];
  private readonly log: Logger;
  private running = false;
  /** Data parallelism (options.distributed): this process's rank and the group's size. */
  readonly distributed: DistributedConfig | undefined;
  #group: ProcessGroup | undefined;

  constructor(init: TrainerInit) {
    super();
    const { model, adapter, trainData, evalData, ...options } = init;
    if (!model) throw new LorafitError('E_OPTION', "Trainer needs 'model'");
    if (options.fullParameter && adapter) throw new LorafitError('E_OPTION', "options 'fullParameter' and 'adapter' exclude each other");
    if (!options.fullParameter && !adapter) throw new LorafitError('E_OPTION', "Trainer needs 'adapter' (or fullParameter: true)");
    if (adapter && adapter.model !== model) throw new LorafitError('E_OPTION', "option 'adapter' belongs to another model");
    if (!Array.isArray(trainData) || trainData.length === 0) throw new LorafitError('E_OPTION', "option 'trainData' must be a non-empty array of { inputIds, labels }");
    this.options = resolveOptions(options);
    this.model = model;
    this.adapter = adapter;
    this.trainData = trainData;
    this.evalData = evalData ?? [];
    this.distributed = resolveDistributed(this.options.distributed);
    const log = this.options.logger ?? defaultLogger;
    // Ranks other than 0 log warnings and errors only (rank 0 logs the run).
    this.log = this.rank > 0 && log.levelVal < 40 ? log.child({ rank: this.rank }, { level: 'warn' }) : log;
  }

  /** This process's rank (0 without distributed training); rank 0 alone writes files. */
  get rank(): number {
    return this.distributed?.rank ?? 0;
  }

  get worldSize(): number {
    return this.distributed?.worldSize ?? 1;
  }

  /** Examples per optimizer step over all ranks: batchSize x gradientAccumulationSteps x worldSize. */
  get globalBatchSize(): number {
    return globalBatchSize(this.plan, this.worldSize);
  }

  /** The process group, joined on first use (every rank must call fit/evaluateLoss alike). */
  private async group(): Promise<ProcessGroup | undefined> {
    if (!this.distributed) return undefined;
    this.#group ??= await ProcessGroup.join(this.distributed);
    return this.#group;
  }

  /** Leaves the process group (after a barrier when the run succeeded, so no rank is left waiting on rank 0's rendezvous). */
  private async leaveGroup(ok: boolean): Promise<void> {
    const g = this.#group;
    this.#group = undefined;
    if (!g) return;
    try {
      if (ok) await g.barrier();
    } finally {
      g.dispose();
    }
  }

  /** The optimizer state of the fit() in progress (native: moments, step count). */
  #trainState: NativeTrainState | undefined;

  /** What the checkpoint's trainer_state.json calls the trained weights. */
  private get targetName(): string {
    return this.adapter?.name ?? 'full-model';
  }

  get plan(): BatchPlan {
    const o = this.options;
    return { batchSize: o.batchSize, accumulation: o.gradientAccumulationSteps, seed: o.seed, groupByLength: o.groupByLength, shuffle: o.shuffle, paddingFree: o.paddingFree };
  }

  get totalSteps(): number {
    return this.options.maxSteps ?? this.options.epochs * this.stepsPerEpoch;
  }

  private get stepsPerEpoch(): number {
    return this.distributed ? globalStepsPerEpoch(this.trainData.length, this.plan, this.worldSize) : stepsPerEpoch(this.trainData.length, this.plan);
  }

  /** Every event as an async iterator (ends after 'end', throws if fit() fails). */
  async *events(): AsyncGenerator<{ type: keyof TrainerEvents; data: unknown }> {
    const queue: { type: keyof TrainerEvents; data: unknown }[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const names: (keyof TrainerEvents)[] = ['step', 'eval', 'checkpoint', 'skip', 'end'];
    const handlers = names.map((type) => {
      const h = (data: unknown) => {
        queue.push({ type, data });
        if (type === 'end') done = true;
        wake?.();
      };
      this.on(type, h as never);
      return [type, h] as const;
    });
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (done) return;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      for (const [type, h] of handlers) this.off(type, h as never);
    }
  }

  async fit(options: { resumeFrom?: string } = {}): Promise<FitResult> {
    if (this.running) throw new LorafitError('E_BUSY', 'fit() is already running on this trainer');
    this.running = true;
    let ok = false;
    try {
      if (this.options.fullParameter) {
        await LoraAdapter.disableAll(this.model);
        await this.model.setFullTraining(true);
      }
      const o = this.options;
      const channel = channelOf(this.model);
      const optimizer = { kind: o.optimizer, beta1: o.adamBeta1, beta2: o.adamBeta2, eps: o.adamEpsilon, weightDecay: o.weightDecay, momentum: o.momentum, loraBLrRatio: o.loraplusLrRatio };
      const target = this.adapter ? nativeAdapterOf(this.adapter) : null;
      this.#trainState = channel.own(channel.sync((h) => h.createTrainState(target, optimizer)), this);
      await this.group();
      const result = await this.run(options.resumeFrom);
      ok = true;
      return result;
    } finally {
      await this.leaveGroup(ok);
      const ts = this.#trainState;
      this.#trainState = undefined;
      if (ts && !this.model.disposed) {
        ts.dispose();  // the moments are freed now, not at GC
        channelOf(this.model).release(ts);
      }
      if (this.options.fullParameter && !this.model.disposed) await this.model.setFullTraining(false);
      this.running = false;
    }
  }

  private async run(resumeFrom?: string): Promise<FitResult> {
    const o = this.options;
    const outputDir = o.outputDir ? resolve(o.outputDir) : undefined;
    const total = this.totalSteps;
    const perEpoch = this.stepsPerEpoch;
    const warmup = o.warmupSteps ?? Math.ceil(o.warmupRatio * total);
    const lengths = this.trainData.map((e) => e.inputIds.length);
    let state: TrainerState = {
      globalStep: 0,
      epoch: 0,
      stepInEpoch: 0,
      bestEvalLoss: null,
      bestCheckpoint: null,
      evalsWithoutImprovement: 0,
      history: [],
      options: serialisableOptions(o),
      adapterName: this.targetName,
      worldSize: this.worldSize,
      globalBatchSize: this.globalBatchSize,
    };
    await this.adapter?.activate();
    if (resumeFrom) state = await this.resume(resumeFrom, outputDir);
    if (outputDir && this.rank === 0) mkdirSync(outputDir, { recursive: true });
    this.log.info({ totalSteps: total, examples: this.trainData.length, resumedAt: state.globalStep, worldSize: this.worldSize }, 'training starts');

    const started = Date.now();
    const startStep = state.globalStep;
    let order = epochOrder(lengths, state.epoch, this.plan);
    let lastLoss = NaN;
    let status: FitResult['status'] = 'completed';
    let skipsInARow = 0;
    while (state.globalStep < total) {
      if (await this.abortRequested()) await this.abort(state, outputDir);
      if (state.stepInEpoch >= perEpoch) {
        state.epoch += 1;
        state.stepInEpoch = 0;
        order = epochOrder(lengths, state.epoch, this.plan);
      }
      const batches = this.distributed
        ? stepBatches(this.trainData, rankShare(order, state.stepInEpoch, this.plan, this.rank, this.worldSize), 0, this.plan, o.padTokenId)
        : stepBatches(this.trainData, order, state.stepInEpoch, this.plan, o.padTokenId);
      const t0 = Date.now();
      const lr = learningRateAt(state.globalStep, { base: o.learningRate, scheduler: o.lrScheduler, warmupSteps: warmup, totalSteps: total });
      // The whole optimizer step (micro-batches, one gradient-norm pass, non-finite check,
      // clipping, update) is this one native call.
      // Each rank draws its own dropout masks (rank 0's are those of a single process).
      const r = await this.step(batches, lr, mixSeed(o.seed, state.globalStep, 0xd409 + this.rank));
      if (!r.applied) {
        const reason = `non-finite ${Number.isFinite(r.loss) ? 'gradient norm' : 'loss'} (loss ${r.loss}, grad norm ${r.gradNorm}) at step ${state.globalStep + 1}`;
        if (o.onNonFinite === 'error') throw new LorafitError('E_NON_FINITE', `${reason}; training stopped, the adapter keeps its last finite weights (onNonFinite: 'skip' skips such steps)`);
        skipsInARow += 1;
        // Weights an update has overflowed make every later step non-finite: skipping cannot help.
        const bad = r.nonFiniteWeight && this.adapter ? PEFT_PREFIX + r.nonFiniteWeight : r.nonFiniteWeight;
        if (bad) {
          throw new LorafitError('E_NON_FINITE', `${reason}, and the trained weight ${bad} is itself non-finite (an earlier update overflowed it), so no later step can be finite; training stopped (lower learningRate, or clip with maxGradNorm)`);
        }
        if (skipsInARow >= o.maxConsecutiveSkips) {
          throw new LorafitError('E_NON_FINITE', `${skipsInARow} non-finite steps in a row (the last: ${reason}); training stopped (maxConsecutiveSkips: ${o.maxConsecutiveSkips}; lower learningRate, or clip with maxGradNorm)`);
        }
        this.log.warn({ step: state.globalStep + 1, skipsInARow }, reason);
        this.emit('skip', { step: state.globalStep + 1, reason });
        state.globalStep += 1;
        state.stepInEpoch += 1;
        continue;
      }
      skipsInARow = 0;
      const step = r;
      state.globalStep += 1;
      state.stepInEpoch += 1;
      lastLoss = r.loss;
      const now = Date.now();
      const inputTokens = countInputTokens(batches);
      const elapsedMs = now - started;
      const done = state.globalStep - startStep;
      const event: StepEvent = {
        step: state.globalStep,
        totalSteps: total,
        epoch: state.epoch + state.stepInEpoch / perEpoch,
        loss: r.loss,
        learningRate: lr,
        gradNorm: step.gradNorm,
        clipped: step.clipped,
        tokens: r.tokens,
        tokensPerSecond: inputTokens / Math.max(1e-3, (now - t0) / 1000),
        elapsedMs,
        etaMs: (elapsedMs / done) * (total - state.globalStep),
        ...(this.distributed ? { reduceMs: r.reduceMs } : {}),
      };
      state.history.push({ type: 'step', ...event });
      this.writeMetrics(outputDir, { type: 'step', ...event });
      if (state.globalStep % o.loggingSteps === 0 || state.globalStep === total) {
        this.log.info(event, 'step');
        this.emit('step', event);
      }
      const evalNow = this.evalData.length > 0 && ((o.evalSteps > 0 && state.globalStep % o.evalSteps === 0) || state.globalStep === total);
      let improved = false;
      if (evalNow) {
        const ev = await this.evaluate(state);
        improved = ev.best;
        if (o.earlyStoppingPatience > 0 && state.evalsWithoutImprovement >= o.earlyStoppingPatience) status = 'early-stopped';
      }
      const saveNow = outputDir && ((o.saveSteps > 0 && state.globalStep % o.saveSteps === 0) || state.globalStep === total || status === 'early-stopped');
      if (saveNow) await this.checkpoint(state, outputDir, improved);
      if (status === 'early-stopped') break;
    }
    const last = [...state.history].reverse().find((h) => h.type === 'eval') as { evalLoss?: number } | undefined;
    const result: FitResult = {
      status,
      globalStep: state.globalStep,
      trainLoss: lastLoss,
      evalLoss: last?.evalLoss,
      bestCheckpoint: state.bestCheckpoint ?? undefined,
      outputDir,
      history: state.history,
    };
    if (outputDir && this.rank === 0) this.writeLossCurve(outputDir, state);
    this.log.info({ globalStep: state.globalStep, status }, 'training ends');
    this.emit('end', result);
    return result;
  }

  /**
   * Eval loss over evalData, streamed in micro-batches (logits never held). Data-parallel: each
   * rank evaluates every worldSize-th example and the sums are all-reduced.
   */
  async evaluateLoss(): Promise<{ evalLoss: number; perplexity: number; tokens: number }> {
    let sum = 0;
    let tokens = 0;
    const group = await this.group();
    const order = group ? evalShare(this.evalData.length, this.rank, this.worldSize) : this.evalData.map((_, i) => i);
    const plan = { ...this.plan, batchSize: this.options.evalBatchSize, accumulation: 1 };
    for (let s = 0; s * plan.batchSize < order.length; s++) {
      const r = await this.model.evalLoss(stepBatches(this.evalData, order, s, plan, this.options.padTokenId));
      sum += r.sum;
      tokens += r.tokens;
    }
    if (group) [sum, tokens] = await group.allReduce([sum, tokens]);
    const evalLoss = sum / Math.max(1, tokens);
    return { evalLoss, perplexity: Math.exp(evalLoss), tokens };
  }

  private async evaluate(state: TrainerState): Promise<EvalEvent> {
    const r = await this.evaluateLoss();
    const best = state.bestEvalLoss === null || r.evalLoss < state.bestEvalLoss - this.options.earlyStoppingThreshold;
    if (best) {
      state.bestEvalLoss = r.evalLoss;
      state.evalsWithoutImprovement = 0;
    } else {
      state.evalsWithoutImprovement += 1;
    }
    const event: EvalEvent = { step: state.globalStep, ...r, best };
    state.history.push({ type: 'eval', ...event });
    this.writeMetrics(this.options.outputDir ? resolve(this.options.outputDir) : undefined, { type: 'eval', ...event });
    this.log.info(event, 'eval');
    this.emit('eval', event);
    return event;
  }

  private async step(batches: MicroBatch[], lr: number, dropoutSeed: number) {
    const o = this.options;
    const ts = this.#trainState!;
    const native = batches.map(toNativeBatch);
    const group = this.#group?.native;
    const options = { lr, maxGradNorm: o.maxGradNorm, dropoutSeed, gradientCheckpointing: o.gradientCheckpointing };
    return channelOf(this.model).call(() => ts.step(native, options, group));
  }

  private async checkpoint(state: TrainerState, outputDir: string, best: boolean): Promise<string> {
    const name = join(outputDir, `checkpoint-${state.globalStep}`);
    if (best) state.bestCheckpoint = name;
    // Every rank holds the same weights and moments: rank 0 alone writes them.
    if (this.rank > 0) return name;
    const ts = this.#trainState!;
    const optimizer = await channelOf(this.model).call(() => ts.state());
    const adapter = this.adapter;
    const writeWeights = adapter ? (d: string) => adapter.save(join(d, 'adapter')) : (d: string) => this.model.save(join(d, 'model'), { dtype: 'float32' });
    const dir = await writeCheckpoint(outputDir, state, writeWeights, optimizer);
    if (this.options.saveTotalLimit) pruneCheckpoints(outputDir, this.options.saveTotalLimit, state.bestCheckpoint);
    this.emit('checkpoint', { step: state.globalStep, dir });
    return dir;
  }

  private async resume(from: string, outputDir?: string): Promise<TrainerState> {
    let dir = from;
    if (from === 'latest') {
      if (!outputDir) throw new LorafitError('E_OPTION', "resumeFrom: 'latest' needs outputDir");
      const latest = latestCheckpoint(outputDir);
      if (!latest) throw new LorafitError('E_CHECKPOINT', `no complete checkpoint in ${outputDir}`);
      dir = latest;
    }
    const ck = readCheckpoint(resolve(dir));
    this.checkResumable(dir, ck.state);
    if (this.adapter) {
      // the model already holds this adapter (and, after PiSSA / OLoRA, its residual base)
      const saved = await LoraAdapter.load(this.model, ck.adapterDir, { name: `${this.adapter.name}.resume`, activate: false, initBase: false });
      try {
        await this.adapter.setTensors(await saved.tensors());
      } finally {
        await saved.delete();
      }
    } else {
      await this.model.loadWeights(ck.modelDir);
    }
    const ts = this.#trainState!;
    const prefix = 'base_model.model.';
    const entries = ck.optimizer.entries.map((e) => ({ ...e, key: e.key.startsWith(prefix) ? e.key.slice(prefix.length) : e.key }));
    if (entries.length) await channelOf(this.model).call(() => ts.setState(ck.optimizer.step, entries));
    this.log.info({ dir, step: ck.state.globalStep }, 'resumed');
    return { ...ck.state, options: serialisableOptions(this.options), adapterName: this.targetName, worldSize: this.worldSize, globalBatchSize: this.globalBatchSize };
  }

  /** A run resumes where the data order left off only at the same global batch. */
  private checkResumable(dir: string, saved: TrainerState): void {
    const opts = saved.options ?? {};
    const savedWorld = saved.worldSize ?? 1;
    const savedGlobal = saved.globalBatchSize ?? Number(opts.batchSize) * Number(opts.gradientAccumulationSteps) * savedWorld;
    if (!Number.isFinite(savedGlobal) || savedGlobal === this.globalBatchSize) return;
    throw new LorafitError(
      'E_CHECKPOINT',
      `${dir} was written with a global batch of ${savedGlobal} examples per step (${savedWorld} rank(s)); this run's is ${this.globalBatchSize} ` +
        `(batchSize ${this.options.batchSize} x gradientAccumulationSteps ${this.options.gradientAccumulationSteps} x ${this.worldSize} rank(s)): ` +
        `choose batchSize and gradientAccumulationSteps so that their product times the world size is ${savedGlobal}`,
    );
  }

  /** The abort signal; data-parallel: any rank's (one scalar all-reduce), so that every rank stops at the same step. */
  private async abortRequested(): Promise<boolean> {
    const local = this.options.signal?.aborted ?? false;
    if (!this.#group) return local;
    const [ranks] = await this.#group.allReduce([local ? 1 : 0]);
    return ranks > 0;
  }

  private async abort(state: TrainerState, outputDir?: string): Promise<never> {
    let dir: string | undefined;
    if (outputDir && state.globalStep > 0) dir = await this.checkpoint(state, outputDir, false);
    const err = new LorafitError('E_ABORTED', `training aborted at step ${state.globalStep}${dir ? `; resume with fit({ resumeFrom: '${dir}' })` : ''}`);
    (err as LorafitError & { checkpoint?: string }).checkpoint = dir;
    throw err;
  }

  private writeMetrics(outputDir: string | undefined, record: Record<string, unknown>): void {
    if (!outputDir || this.rank > 0) return;
    if (!existsSync(outputDir)) mkdirSync(outputDir, { recursive: true });
    appendFileSync(join(outputDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
  }

  private writeLossCurve(outputDir: string, state: TrainerState): void {
    const train = state.history.filter((h) => h.type === 'step').map((h) => ({ step: h.step as number, loss: h.loss as number }));
    const evals = state.history.filter((h) => h.type === 'eval').map((h) => ({ step: h.step as number, evalLoss: h.evalLoss as number }));
    if (train.length === 0) return;
    writeFileAtomicSync(join(outputDir, 'loss-curve.svg'), renderLossCurveSvg(train, evals, { title: 'lorafit training loss' }));
  }
}

function countInputTokens(batches: MicroBatch[]): number {
  let n = 0;
  for (const b of batches) {
    const mask = b.attentionMask as { data: ArrayLike<number> } | undefined;
    if (mask && 'data' in mask) for (let i = 0; i < mask.data.length; i++) n += mask.data[i] ? 1 : 0;
    else if (!mask) {
      // Padding-free: every token of the row is an input token.
      const ids = b.inputIds as { data?: ArrayLike<number> } | number[][];
      n += Array.isArray(ids) ? ids.reduce((s, r) => s + r.length, 0) : (ids.data?.length ?? 0);
    }
  }
  return n;
}
