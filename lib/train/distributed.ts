// Data-parallel training over torch.distributed (c10d): the Trainer's `distributed` option, read
// from the environment exactly as torchrun sets it (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), and the sharding of every global batch.
//
// Semantics (what makes N ranks equal one process):
// - The global batch of a step is batchSize x gradientAccumulationSteps x worldSize examples, taken
//   from the same seeded order one process uses. Rank r takes the examples at positions r, r + N,
//   r + 2N, ... of it (torch's DistributedSampler interleaving) and cuts them into its micro-batches.
//   A last, short global batch is split the same way (a rank may get fewer examples, or none),
//   instead of DistributedSampler's padding by repetition, so that it too equals the 1-rank step.
// - The native step normalises the loss by the step's global label-token count and sums the
//   gradients over the ranks (native/data_parallel.h), before clipping and the update.
import { LorafitError } from '../errors.js';
import { native, type NativeProcessGroup } from '../model/native.js';
import type { BatchPlan } from './batches.js';

export type DistributedBackend = 'gloo' | 'nccl';

/** The Trainer's `distributed` option; every field left out comes from the environment (torchrun's variables). */
export interface DistributedOptions {
  /** gloo (CPU tensors) or nccl (CUDA; needs an addon built with LORAFIT_NCCL); default LORAFIT_DIST_BACKEND, else gloo. */
  backend?: DistributedBackend;
  rank?: number;        // RANK
  localRank?: number;   // LOCAL_RANK (this machine's rank; picks the CUDA device with nccl)
  worldSize?: number;   // WORLD_SIZE
  masterAddr?: string;  // MASTER_ADDR: where rank 0 serves the rendezvous (a TCPStore)
  masterPort?: number;  // MASTER_PORT
  /** Rendezvous and every collective give up after this long, with an error naming the rank: LORAFIT_DIST_TIMEOUT, else 300. */
  timeoutSeconds?: number;
  /** Gradient all-reduce bucket size in MiB: 25 (as DDP's bucket_cap_mb). */
  bucketMb?: number;
}

export interface DistributedConfig {
  backend: DistributedBackend;
  rank: number;
  localRank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  bucketBytes: number;
}

function distError(message: string): LorafitError {
  return new LorafitError('E_DISTRIBUTED', message);
}

function intFrom(name: string, option: number | undefined, env: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < min || option > max) throw distError(`option 'distributed.${name}' must be an integer in [${min}, ${max}], got ${String(option)}`);
    return option;
  }
  if (env === undefined || env === '') return undefined;
  const v = Number(env);
  const variable = { rank: 'RANK', localRank: 'LOCAL_RANK', worldSize: 'WORLD_SIZE', masterPort: 'MASTER_PORT' }[name] ?? name;
  if (!/^\d+$/.test(env.trim()) || v < min || v > max) throw distError(`${variable} must be an integer in [${min}, ${max}], got '${env}'`);
  return v;
}

const HOW = 'torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; `lorafit train --nproc-per-node N` sets them for N local ranks';

/**
 * The process group this process joins: `distributed` (true: all from the environment) over the
 * environment. undefined when distributed training is off.
 */
export function resolveDistributed(option: boolean | DistributedOptions | undefined, env: NodeJS.ProcessEnv = process.env): DistributedConfig | undefined {
  if (option === undefined || option === false) return undefined;
  if (option !== true && (typeof option !== 'object' || option === null || Array.isArray(option))) {
    throw new LorafitError('E_OPTION', `option 'distributed' must be true or an object { backend, rank, worldSize, masterAddr, masterPort, ... }, got ${JSON.stringify(option)}`);
  }
  const o: DistributedOptions = option === true ? {} : option;
  const backend = o.backend ?? ((env.LORAFIT_DIST_BACKEND || 'gloo') as DistributedBackend);
  if (backend !== 'gloo' && backend !== 'nccl') throw distError(`the distributed backend must be 'gloo' or 'nccl', got '${String(backend)}'`);
  const worldSize = intFrom('worldSize', o.worldSize, env.WORLD_SIZE, 1);
  if (worldSize === undefined) throw distError(`WORLD_SIZE is not set (${HOW}; or pass distributed.worldSize)`);
  const rank = intFrom('rank', o.rank, env.RANK, 0);
  if (rank === undefined) throw distError(`RANK is not set (${HOW}; or pass distributed.rank)`);
  if (rank >= worldSize) throw distError(`RANK ${rank} is not below WORLD_SIZE ${worldSize} (ranks are 0 .. ${worldSize - 1})`);
  const localRank = intFrom('localRank', o.localRank, env.LOCAL_RANK, 0) ?? rank;
  const masterAddr = o.masterAddr ?? env.MASTER_ADDR;
  if (masterAddr === undefined || masterAddr === '') throw distError(`MASTER_ADDR is not set: the address where rank 0 serves the rendezvous (${HOW}; or pass distributed.masterAddr)`);
  if (typeof masterAddr !== 'string') throw distError(`option 'distributed.masterAddr' must be a string, got ${JSON.stringify(masterAddr)}`);
  const masterPort = intFrom('masterPort', o.masterPort, env.MASTER_PORT, 1, 65535);
  if (masterPort === undefined) throw distError(`MASTER_PORT is not set (${HOW}; or pass distributed.masterPort)`);
  const timeoutSeconds = o.timeoutSeconds ?? (env.LORAFIT_DIST_TIMEOUT ? Number(env.LORAFIT_DIST_TIMEOUT) : 300);
  if (!(timeoutSeconds > 0) || !Number.isFinite(timeoutSeconds)) throw distError(`the distributed timeout (distributed.timeoutSeconds or LORAFIT_DIST_TIMEOUT) must be a positive number of seconds, got ${String(timeoutSeconds)}`);
  const bucketMb = o.bucketMb ?? 25;
  if (!(bucketMb > 0) || !Number.isFinite(bucketMb)) throw distError(`option 'distributed.bucketMb' must be a positive number, got ${String(bucketMb)}`);
  return { backend, rank, localRank, worldSize, masterAddr, masterPort, timeoutMs: Math.round(timeoutSeconds * 1000), bucketBytes: Math.round(bucketMb * 1024 * 1024) };
}

/** Examples in one optimizer step over all ranks. */
export function globalBatchSize(plan: BatchPlan, worldSize: number): number {
  return plan.batchSize * plan.accumulation * worldSize;
}

/** Optimizer steps in an epoch of n examples at `worldSize` ranks (worldSize 1: stepsPerEpoch). */
export function globalStepsPerEpoch(n: number, plan: BatchPlan, worldSize: number): number {
  return Math.ceil(n / globalBatchSize(plan, worldSize));
}

/**
 * This rank's examples of optimizer step `step` (0-based in the epoch), in epoch order: the
 * positions rank, rank + N, ... of the step's global batch. Cut into micro-batches of batchSize.
 */
export function rankShare(order: number[], step: number, plan: BatchPlan, rank: number, worldSize: number): number[] {
  const size = globalBatchSize(plan, worldSize);
  const global = order.slice(step * size, (step + 1) * size);
  return global.filter((_, i) => i % worldSize === rank);
}

/** The examples (indices) this rank evaluates: every worldSize-th, from its rank. */
export function evalShare(count: number, rank: number, worldSize: number): number[] {
  const out: number[] = [];
  for (let i = rank; i < count; i += worldSize) out.push(i);
  return out;
}

/** This process's rank in a joined process group. */
export class ProcessGroup {
  private constructor(
    readonly config: DistributedConfig,
    private nativeGroup: NativeProcessGroup | undefined,
  ) {}

  /** Rendezvous with the other ranks; resolves when all have joined (E_DISTRIBUTED after the timeout). */
  static async join(config: DistributedConfig): Promise<ProcessGroup> {
    const addon = native();
    if (!addon.distributedAvailable) {
      throw new LorafitError('E_DISTRIBUTED_UNAVAILABLE', 'this lorafit addon was built without distributed training (the gloo headers were missing at build time): apt-get install libgloo-dev, then npm run build:native');
    }
    const { backend, rank, localRank, worldSize, masterAddr, masterPort, timeoutMs, bucketBytes } = config;
    try {
      return new ProcessGroup(config, await addon.createProcessGroup({ backend, rank, localRank, worldSize, masterAddr, masterPort, timeoutMs, bucketBytes }));
    } catch (e) {
      const err = e as { code?: string; message?: string };
      throw new LorafitError(err.code ?? 'E_DISTRIBUTED', err.message ?? String(e), { cause: e });
    }
  }

  get rank(): number {
    return this.config.rank;
  }

  get worldSize(): number {
    return this.config.worldSize;
  }

  /** The native group (for TrainState.step); E_DISPOSED after dispose(). */
  get native(): NativeProcessGroup {
    if (!this.nativeGroup) throw new LorafitError('E_DISPOSED', 'this process group was disposed');
    return this.nativeGroup;
  }

  /** Element-wise sum over all ranks. */
  async allReduce(values: number[]): Promise<number[]> {
    return Array.from(await this.call(() => this.native.allReduce(Float64Array.from(values))));
  }

  async barrier(): Promise<void> {
    await this.call(() => this.native.barrier());
  }

  /** Milliseconds this rank has spent in collectives. */
  collectiveMs(): number {
    return this.native.collectiveMs();
  }

  dispose(): void {
    this.nativeGroup?.dispose();
    this.nativeGroup = undefined;
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = e as { code?: string; message?: string };
      throw new LorafitError(err.code ?? 'E_DISTRIBUTED', err.message ?? String(e), { cause: e });
    }
  }
}
