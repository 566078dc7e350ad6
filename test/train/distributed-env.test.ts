// A bad distributed environment gets a clear error naming the variable, the rank or the port
// at fault, within the timeout, never a hang: checked in this process (two groups can join from
// one process: each rendezvous runs on its own worker thread).
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ProcessGroup, resolveDistributed, type DistributedConfig } from '../../lib/train/distributed.js';
import { freePort } from './dist-helpers.js';

const env = (over: Record<string, string | undefined>) => ({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500', ...over });

describe('the torchrun environment', () => {
  it('is read as torchrun sets it; options override it', () => {
    expect(resolveDistributed(true, env({ RANK: '1', LOCAL_RANK: '1', LORAFIT_DIST_TIMEOUT: '7' }))).toEqual({
      backend: 'gloo', rank: 1, localRank: 1, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 29500, timeoutMs: 7000, bucketBytes: 25 << 20,
    });
    expect(resolveDistributed({ rank: 0, worldSize: 1, masterPort: 1234 }, env({}))).toMatchObject({ rank: 0, worldSize: 1, masterPort: 1234 });
    expect(resolveDistributed(undefined, env({}))).toBeUndefined();
  });

  it.each([
    [{ MASTER_ADDR: undefined }, /E_DISTRIBUTED|MASTER_ADDR is not set/],
    [{ MASTER_PORT: undefined }, /MASTER_PORT is not set/],
    [{ MASTER_PORT: '70000' }, /MASTER_PORT must be an integer in \[1, 65535\], got '70000'/],
    [{ WORLD_SIZE: undefined }, /WORLD_SIZE is not set/],
    [{ RANK: 'x' }, /RANK must be an integer/],
    [{ RANK: '2' }, /RANK 2 is not below WORLD_SIZE 2/],
    [{ LORAFIT_DIST_BACKEND: 'mpi' }, /backend must be 'gloo' or 'nccl', got 'mpi'/],
  ])('%o is refused', (over, message) => {
    let err: unknown;
    try {
      resolveDistributed(true, env(over));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'E_DISTRIBUTED' });
    expect((err as Error).message).toMatch(message);
  });
});

async function config(over: Partial<DistributedConfig>): Promise<DistributedConfig> {
  return { backend: 'gloo', rank: 0, localRank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: await freePort(), timeoutMs: 3000, bucketBytes: 1 << 20, ...over };
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

describe('joining a process group', () => {
  it('two ranks join and all-reduce', async () => {
    const c = await config({});
    const [g0, g1] = await Promise.all([ProcessGroup.join(c), ProcessGroup.join({ ...c, rank: 1 })]);
    const sums = await Promise.all([g0.allReduce([1, 2.5]), g1.allReduce([10, 0.25])]);
    expect(sums).toEqual([[11, 2.75], [11, 2.75]]);
    await Promise.all([g0.barrier(), g1.barrier()]);
    g0.dispose();
    g1.dispose();
    await expect(g0.allReduce([1])).rejects.toMatchObject({ code: 'E_DISPOSED' });
  }, 30_000);

  it('a port in use', async () => {
    const server: Server = createServer();
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    try {
      const e = await rejection(ProcessGroup.join(await config({ worldSize: 1, masterPort: port })));
      expect(e.code).toBe('E_DISTRIBUTED');
      expect(e.message).toContain(`MASTER_PORT ${port} is already in use on 127.0.0.1`);
    } finally {
      server.close();
    }
  }, 30_000);

  it('mismatched world sizes: both ranks name the difference', async () => {
    const c = await config({});
    const [e0, e1] = await Promise.all([rejection(ProcessGroup.join(c)), rejection(ProcessGroup.join({ ...c, rank: 1, worldSize: 3 }))]);
    for (const e of [e0, e1]) {
      expect(e.code).toBe('E_DISTRIBUTED');
      expect(e.message).toContain('WORLD_SIZE is 3 on rank 1 but 2 on rank 0');
    }
  }, 30_000);

  it('a rank that never joins, and a rank 0 that is not there, time out naming the rank', async () => {
    const t0 = Date.now();
    const alone = await rejection(ProcessGroup.join(await config({ timeoutMs: 2000 })));
    expect(alone.message).toMatch(/rank 1 did not join the rendezvous at 127\.0\.0\.1:\d+ within 2 s/);
    const orphan = await rejection(ProcessGroup.join(await config({ rank: 1, timeoutMs: 2000 })));
    expect(orphan.message).toMatch(/rank 1 cannot reach the rendezvous at 127\.0\.0\.1:\d+/);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 30_000);
});
