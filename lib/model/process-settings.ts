// Process-wide settings of the native runtime. They hold for every model in the process (libtorch
// has one intra-op thread pool, glibc one allocator), so they are set here, not per model.
//   configureProcess({ threads: 2, mallocTrim: true });
//   processSettings();   // { threads: 2, mallocArenaMax: 1, mallocTrim: true }
import { optionError } from '../errors.js';
import { native } from './native.js';

export interface ProcessSettings {
  /** libtorch intra-op threads (default: all cores). `Model.load({ threads })` sets the same thing. */
  threads: number;
  /**
   * glibc's M_ARENA_MAX: 1 by default (native calls run on libuv's pool threads; one arena per
   * thread kept freed memory per thread). `MALLOC_ARENA_MAX` in the environment wins at start-up.
   */
  mallocArenaMax: number;
  /**
   * Return free heap pages to the OS after each training step and evaluation (malloc_trim). Default
   * true: SmolLM2 LoRA training held 5.6 GB of RSS without it, 0.9 GB with (bench/rss-steps.ts).
   * `LORAFIT_MALLOC_TRIM=0` in the environment turns it off at start-up.
   */
  mallocTrim: boolean;
}

/** Changes the given process settings; returns them all. */
export function configureProcess(settings: Partial<ProcessSettings>): ProcessSettings {
  const { threads, mallocArenaMax, mallocTrim, ...rest } = settings;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw optionError(unknown, 'is not a process setting (threads, mallocArenaMax, mallocTrim)');
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw optionError('threads', `must be a positive integer, got ${String(threads)}`);
  if (mallocArenaMax !== undefined && (!Number.isInteger(mallocArenaMax) || mallocArenaMax < 1)) throw optionError('mallocArenaMax', `must be a positive integer, got ${String(mallocArenaMax)}`);
  if (mallocTrim !== undefined && typeof mallocTrim !== 'boolean') throw optionError('mallocTrim', `must be a boolean, got ${String(mallocTrim)}`);
  return native().configureProcess({ threads, mallocArenaMax, mallocTrim });
}

/** The current process settings. */
export function processSettings(): ProcessSettings {
  return native().processSettings();
}
