// Process-wide native settings through their API (configureProcess / processSettings), and CUDA:
// a device the build cannot use is E_DEVICE saying why (the dlopen error text, or no device).
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Model, torchInfo } from '../../lib/model/model.js';
import { native } from '../../lib/model/native.js';
import { configureProcess, processSettings } from '../../lib/model/process-settings.js';
import { rejects } from '../helpers/rejects.js';
import { HF } from '../helpers/golden.js';

const initial = processSettings();
afterAll(() => configureProcess({ threads: initial.threads, mallocTrim: initial.mallocTrim }));

describe('process settings', () => {
  it('start as documented: one malloc arena, trimming on, every core', () => {
    expect(initial.mallocArenaMax).toBe(process.env.MALLOC_ARENA_MAX ? Number(process.env.MALLOC_ARENA_MAX) : 1);
    expect(initial.mallocTrim).toBe(process.env.LORAFIT_MALLOC_TRIM !== '0');
    expect(initial.threads).toBeGreaterThanOrEqual(1);
  });

  it('configureProcess changes what it is given and returns every setting; models see the thread count', async () => {
    const s = configureProcess({ threads: 1, mallocTrim: false });
    expect(s).toEqual({ threads: 1, mallocArenaMax: initial.mallocArenaMax, mallocTrim: false });
    expect(processSettings()).toEqual(s);
    expect(torchInfo().threads).toBe(1);
    await using model = await Model.load(join(HF, 'llama', 'model'));
    expect((await model.forward([[1, 2, 3]])).shape).toEqual([1, 3, model.config.vocabSize]);
    expect(configureProcess({ mallocTrim: true, threads: initial.threads })).toMatchObject({ mallocTrim: true, threads: initial.threads });
  });

  it('every native job runs with the configured thread count, on whichever pool thread it lands', async () => {
    // MKL's team size is per thread: libuv pool threads kept their own (every core) unless each
    // job applies the setting; fp32 matmuls ignored configureProcess before it did.
    // parallel: the threads that ran a parallel loop compiled into the addon (lorafit's own
    // kernels). Built without OpenMP, ATen's header-only parallel_for runs on one thread whatever
    // the setting: every kernel of native/ ran on one core that way until session 10.
    const jobs = async (n: number) => {
      const counts = await Promise.all(Array.from({ length: n }, () => native().workerThreads()));
      return counts.flatMap((c) => (c.blas ? [c.intraOp, c.parallel, c.blas] : [c.intraOp, c.parallel]));
    };
    await jobs(8);
    configureProcess({ threads: 1 });
    expect(new Set(await jobs(8))).toEqual(new Set([1]));
    configureProcess({ threads: 2 });
    expect(new Set(await jobs(8))).toEqual(new Set([2]));
    configureProcess({ threads: initial.threads });
    expect(new Set(await jobs(8))).toEqual(new Set([initial.threads]));
  });

  it('refuses bad values naming the setting', async () => {
    await rejects(() => configureProcess({ threads: 0 }), 'E_OPTION', 'threads');
    await rejects(() => configureProcess({ mallocArenaMax: 1.5 }), 'E_OPTION', 'mallocArenaMax');
    await rejects(() => configureProcess({ mallocTrim: 'yes' as unknown as boolean }), 'E_OPTION', 'mallocTrim');
    await rejects(() => configureProcess({ thread: 2 } as never), 'E_OPTION', "'thread'", 'is not a process setting');
  });

  it("device 'cuda' loads where CUDA works, else E_DEVICE says why", async () => {
    if (torchInfo().cuda) {
      await using m = await Model.load(join(HF, 'llama', 'model'), { device: 'cuda' });
      expect(m.device).toBe('cuda');
      return;
    }
    const e = await rejects(Model.load(join(HF, 'llama', 'model'), { device: 'cuda' }), 'E_DEVICE', 'has no usable CUDA: ');
    // the reason: dlopen's own text (a missing libcudart...) or no visible device
    expect(e.message).toMatch(/\.so|no CUDA device is visible/);
  });
});
