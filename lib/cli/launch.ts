// `lorafit train --nproc-per-node N`: starts N ranks of the same command on this machine with the
// environment torchrun would give them (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
// MASTER_ADDR=127.0.0.1, MASTER_PORT, OMP_NUM_THREADS=1 unless set), waits for them, and names
// the first rank that fails. The children see RANK and so train instead of launching again.
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../util/free-port.js';
import { LorafitError } from '../errors.js';

/** After one rank fails, the others get this long to stop on their own (their error names the rank) before they are killed. */
const GRACE_MS = 15_000;

/** True when this process is itself a rank (launched by torchrun or by launchRanks). */
export function isRank(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.RANK !== undefined && env.RANK !== '';
}

/**
 * Runs this process's command line as `n` ranks. Rejects with E_DISTRIBUTED naming the first rank
 * that failed (each rank prints its own error too).
 */
export async function launchRanks(n: number, options: { masterPort?: number; say: (line: string) => void }): Promise<void> {
  const port = options.masterPort ?? (process.env.MASTER_PORT ? Number(process.env.MASTER_PORT) : await freePort());
  options.say(`starting ${n} ranks on this machine (rendezvous 127.0.0.1:${port}; rank 0 reports)`);
  const argv = [...process.execArgv, process.argv[1], ...process.argv.slice(2)];
  const children: ChildProcess[] = [];
  let failed: { rank: number; how: string } | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Ctrl-C reaches every rank (one process group): each checkpoints and stops; the launcher waits.
  const onSigint = () => {};
  process.on('SIGINT', onSigint);
  try {
    const exits = Array.from({ length: n }, (_, rank) => {
      const env = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(n),
        LOCAL_WORLD_SIZE: String(n),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1',
        LORAFIT_LAUNCHED: '1',
      };
      const child = spawn(process.execPath, argv, { env, stdio: 'inherit' });
      children.push(child);
      return new Promise<void>((resolve) => {
        child.on('error', (e) => {
          failed ??= { rank, how: `could not start (${e.message})` };
          resolve();
        });
        child.on('exit', (code, signal) => {
          if ((code !== 0 || signal) && !failed) {
            failed = { rank, how: signal ? `was killed by ${signal}` : `exited with code ${code}` };
            timer = setTimeout(() => {
              for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
            }, GRACE_MS);
          }
          resolve();
        });
      });
    });
    await Promise.all(exits);
  } finally {
    if (timer) clearTimeout(timer);
    process.off('SIGINT', onSigint);
  }
  const f = failed as { rank: number; how: string } | undefined;
  if (f) throw new LorafitError('E_DISTRIBUTED', `rank ${f.rank} of ${n} ${f.how}; the run stopped (see that rank's error above)`);
}

/** nprocPerNode from the config, checked against a torchrun environment. */
export function ranksToLaunch(nprocPerNode: number | undefined): number {
  if (nprocPerNode === undefined || nprocPerNode <= 1) return 1;
  if (isRank()) return 1;  // torchrun (or launchRanks) already started this rank
  if (!Number.isInteger(nprocPerNode)) throw new LorafitError('E_CONFIG', `--nproc-per-node must be a positive integer, got ${nprocPerNode}`);
  return nprocPerNode;
}
