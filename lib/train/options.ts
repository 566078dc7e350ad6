// Trainer options: names and defaults as users of TRL / transformers' TrainingArguments expect,
// validated with messages that name the option at fault.
import { optionError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { DistributedOptions } from './distributed.js';
import type { LrScheduler } from './schedule.js';

export interface TrainerOptions {
  learningRate?: number;            // 2e-4
  epochs?: number;                  // 1 (ignored when maxSteps is set)
  maxSteps?: number;                // optimizer steps; overrides epochs
  batchSize?: number;               // examples per micro-batch: 4
  gradientAccumulationSteps?: number; // micro-batches per optimizer step: 1
  maxGradNorm?: number;             // 1.0; 0 disables clipping
  weightDecay?: number;             // 0
  adamBeta1?: number;               // 0.9
  adamBeta2?: number;               // 0.999
  adamEpsilon?: number;             // 1e-8
  optimizer?: 'adamw' | 'sgd';      // adamw
  momentum?: number;                // sgd momentum: 0
  loraplusLrRatio?: number;         // LoRA+ (PEFT's loraplus_lr_ratio): lora_B learns at learningRate x this; 1 (off). LoRA+ suggests 16
  lrScheduler?: LrScheduler;        // linear
  warmupSteps?: number;             // 0
  warmupRatio?: number;             // 0 (used when warmupSteps is not given)
  seed?: number;                    // 42
  shuffle?: boolean;                // true
  groupByLength?: boolean;          // false
  evalSteps?: number;               // evaluate every N steps (0: only at the end)
  evalBatchSize?: number;           // batchSize
  saveSteps?: number;               // checkpoint every N steps (0: only at the end)
  saveTotalLimit?: number;          // keep at most N checkpoints (the best one is always kept)
  loggingSteps?: number;            // emit 'step' every N steps: 1
  outputDir?: string;               // checkpoints, metrics.jsonl, loss curve; none: nothing written
  earlyStoppingPatience?: number;   // stop after N evals without improvement (0: off)
  earlyStoppingThreshold?: number;  // minimum improvement of eval loss: 0
  onNonFinite?: 'error' | 'skip';   // a NaN/inf loss or gradient: stop with an error, or skip the step
  maxConsecutiveSkips?: number;     // onNonFinite 'skip': stop with E_NON_FINITE after N non-finite steps in a row: 10
  padTokenId?: number;              // 0 (masked anyway)
  fullParameter?: boolean;          // train every base weight instead of an adapter (pretraining, full fine-tuning)
  gradientCheckpointing?: boolean;  // recompute each decoder layer in backward: less memory, ~30% more compute
  paddingFree?: boolean;            // true: each micro-batch's examples run as one row, isolated per example (no pad token computed); false: rows padded to the longest
  /**
   * Data-parallel training over torch.distributed (lib/train/distributed.ts): true takes everything
   * from torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); an object overrides
   * it field by field. batchSize is per rank: a step is batchSize x gradientAccumulationSteps x
   * worldSize examples. Rank 0 alone writes checkpoints, metrics and logs.
   */
  distributed?: boolean | DistributedOptions;
  signal?: AbortSignal;
  logger?: Logger;
}

export type ResolvedOptions = Required<Omit<TrainerOptions, 'maxSteps' | 'outputDir' | 'signal' | 'logger' | 'warmupSteps' | 'saveTotalLimit' | 'evalBatchSize' | 'distributed'>> & {
  distributed?: boolean | DistributedOptions;
  maxSteps?: number;
  outputDir?: string;
  signal?: AbortSignal;
  logger?: Logger;
  warmupSteps?: number;
  saveTotalLimit?: number;
  evalBatchSize: number;
};

export function resolveOptions(o: TrainerOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    learningRate: o.learningRate ?? 2e-4,
    epochs: o.epochs ?? 1,
    maxSteps: o.maxSteps,
    batchSize: o.batchSize ?? 4,
    gradientAccumulationSteps: o.gradientAccumulationSteps ?? 1,
    maxGradNorm: o.maxGradNorm ?? 1.0,
    weightDecay: o.weightDecay ?? 0,
    adamBeta1: o.adamBeta1 ?? 0.9,
    adamBeta2: o.adamBeta2 ?? 0.999,
    adamEpsilon: o.adamEpsilon ?? 1e-8,
    optimizer: o.optimizer ?? 'adamw',
    momentum: o.momentum ?? 0,
    loraplusLrRatio: o.loraplusLrRatio ?? 1,
    lrScheduler: o.lrScheduler ?? 'linear',
    warmupSteps: o.warmupSteps,
    warmupRatio: o.warmupRatio ?? 0,
    seed: o.seed ?? 42,
    shuffle: o.shuffle ?? true,
    groupByLength: o.groupByLength ?? false,
    evalSteps: o.evalSteps ?? 0,
    evalBatchSize: o.evalBatchSize ?? o.batchSize ?? 4,
    saveSteps: o.saveSteps ?? 0,
    saveTotalLimit: o.saveTotalLimit,
    loggingSteps: o.loggingSteps ?? 1,
    outputDir: o.outputDir,
    earlyStoppingPatience: o.earlyStoppingPatience ?? 0,
    earlyStoppingThreshold: o.earlyStoppingThreshold ?? 0,
    onNonFinite: o.onNonFinite ?? 'error',
    maxConsecutiveSkips: o.maxConsecutiveSkips ?? 10,
    padTokenId: o.padTokenId ?? 0,
    fullParameter: o.fullParameter ?? false,
    gradientCheckpointing: o.gradientCheckpointing ?? false,
    paddingFree: o.paddingFree ?? true,
    distributed: o.distributed,
    signal: o.signal,
    logger: o.logger,
  };
  const positiveInt = ['batchSize', 'gradientAccumulationSteps', 'loggingSteps', 'evalBatchSize'] as const;
  for (const k of positiveInt) if (!Number.isInteger(r[k]) || r[k] < 1) throw optionError(k, `must be a positive integer, got ${r[k]}`);
  const nonNegInt = ['evalSteps', 'saveSteps', 'earlyStoppingPatience', 'seed'] as const;
  for (const k of nonNegInt) if (!Number.isInteger(r[k]) || r[k] < 0) throw optionError(k, `must be a non-negative integer, got ${r[k]}`);
  if (r.maxSteps !== undefined && (!Number.isInteger(r.maxSteps) || r.maxSteps < 1)) throw optionError('maxSteps', `must be a positive integer, got ${r.maxSteps}`);
  if (!Number.isInteger(r.epochs) || r.epochs < 1) throw optionError('epochs', `must be a positive integer, got ${r.epochs}`);
  if (r.warmupSteps !== undefined && (!Number.isInteger(r.warmupSteps) || r.warmupSteps < 0)) throw optionError('warmupSteps', 'must be a non-negative integer');
  if (r.saveTotalLimit !== undefined && (!Number.isInteger(r.saveTotalLimit) || r.saveTotalLimit < 1)) throw optionError('saveTotalLimit', 'must be a positive integer');
  if (!(r.learningRate > 0) || !Number.isFinite(r.learningRate)) throw optionError('learningRate', `must be a positive number, got ${r.learningRate}`);
  if (!(r.warmupRatio >= 0 && r.warmupRatio < 1)) throw optionError('warmupRatio', 'must be in [0, 1)');
  if (!(r.maxGradNorm >= 0)) throw optionError('maxGradNorm', 'must be >= 0');
  if (!(r.weightDecay >= 0)) throw optionError('weightDecay', 'must be >= 0');
  for (const k of ['adamBeta1', 'adamBeta2'] as const) if (!(r[k] >= 0 && r[k] < 1)) throw optionError(k, 'must be in [0, 1)');
  if (!(r.adamEpsilon > 0)) throw optionError('adamEpsilon', 'must be > 0');
  if (!(typeof r.loraplusLrRatio === 'number' && r.loraplusLrRatio > 0 && Number.isFinite(r.loraplusLrRatio))) throw optionError('loraplusLrRatio', `must be a positive number, got ${String(r.loraplusLrRatio)}`);
  if (r.fullParameter && r.loraplusLrRatio !== 1) throw optionError('loraplusLrRatio', 'applies to LoRA adapters, not to fullParameter training');
  if (!['adamw', 'sgd'].includes(r.optimizer)) throw optionError('optimizer', `must be 'adamw' or 'sgd', got '${r.optimizer}'`);
  if (!['constant', 'linear', 'cosine'].includes(r.lrScheduler)) throw optionError('lrScheduler', `must be 'constant', 'linear' or 'cosine', got '${r.lrScheduler}'`);
  if (typeof r.paddingFree !== 'boolean') throw optionError('paddingFree', `must be a boolean, got ${String(r.paddingFree)}`);
  if (!['error', 'skip'].includes(r.onNonFinite)) throw optionError('onNonFinite', "must be 'error' or 'skip'");
  if (!Number.isInteger(r.maxConsecutiveSkips) || r.maxConsecutiveSkips < 1) {
    throw optionError('maxConsecutiveSkips', `must be a positive integer (non-finite steps in a row before onNonFinite: 'skip' gives up), got ${r.maxConsecutiveSkips}`);
  }
  return r;
}

/** The options as saved in a checkpoint (JSON-safe, no signal/logger). */
export function serialisableOptions(r: ResolvedOptions): Record<string, unknown> {
  const { signal: _s, logger: _l, ...rest } = r;
  return rest;
}
