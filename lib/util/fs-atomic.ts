// Atomic writes: write a temporary sibling, fsync, rename. A reader (or a crash) never sees a
// half-written file, and a folder appears complete or not at all.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';

export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  writeFileAtomicSync(file, data);
}

export function writeFileAtomicSync(file: string, data: Uint8Array | string): void {
  writeFileAtomicStreamSync(file, (put) => put(typeof data === 'string' ? Buffer.from(data) : data));
}

/**
 * Writes a file atomically piece by piece, for files too large to build in memory: `fill` hands
 * each piece to `put`. If `fill` throws, the temporary file is removed and `file` is untouched.
 */
export function writeFileAtomicStreamSync(file: string, fill: (put: (bytes: Uint8Array) => void) => void): void {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    fill((bytes) => {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    });
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
}

/**
 * Writes a folder atomically: `fill` writes into a fresh temporary folder (`options.tmp`, default
 * `<dir>.tmp-<pid>-<ms>`), which then takes the place of `dir`; a folder already at `dir` is
 * moved aside first and removed after the swap. If anything fails the temporary folder is removed
 * and `dir` is left as it was. Returns the absolute path of `dir`.
 */
export async function writeDirAtomic(dir: string, fill: (tmp: string) => void | Promise<void>, options: { tmp?: string } = {}): Promise<string> {
  const abs = resolve(dir);
  const tmp = options.tmp ?? `${abs}.tmp-${process.pid}-${Date.now()}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await fill(tmp);
    replaceDir(tmp, abs);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return abs;
}

/** Moves folder `tmp` to `dir`, replacing (and then removing) any folder already there. */
export function replaceDir(tmp: string, dir: string): void {
  const old = existsSync(dir) ? `${dir}.old-${process.pid}-${Date.now()}` : undefined;
  if (old) renameSync(dir, old);
  try {
    renameSync(tmp, dir);
  } catch (e) {
    if (old) renameSync(old, dir);
    throw e;
  }
  if (old) rmSync(old, { recursive: true, force: true });
}
