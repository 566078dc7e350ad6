// Running the compiled CLI (dist/lib/cli/main.js) as a child process, as a user would.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeByteTokenizer } from '../export/helpers.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'lib', 'cli', 'main.js');
export const LLAMA = join(ROOT, 'test', 'fixtures', 'hf', 'llama', 'model');
export const LLAMA_ADAPTER = join(ROOT, 'test', 'fixtures', 'hf', 'llama', 'adapter');

function newestTs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

const PAGE_JS = join(ROOT, 'dist', 'lib', 'ui', 'page', 'app.js');

/**
 * Compiles lib/ to dist/ when dist is missing or older than a source file (npm test builds it
 * first), and the dashboard's page script (lib/ui/page, its own tsconfig) the same way.
 */
export function ensureBuilt(): void {
  const newest = newestTs(join(ROOT, 'lib'));
  for (const [out, project] of [[CLI, '.'], [PAGE_JS, 'lib/ui/page']]) {
    if (existsSync(out) && statSync(out).mtimeMs >= newest) continue;
    const r = spawnSync('npx', ['tsc', '-p', project], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tsc -p ${project} failed:\n${r.stdout}\n${r.stderr}`);
  }
}

export function tempDir(prefix = 'lorafit-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A copy of the vocab-256 llama fixture with a byte-level tokenizer.json (token id = byte). */
export function byteLevelLlama(): string {
  const dir = join(tempDir(), 'llama-bytes');
  cpSync(LLAMA, dir, { recursive: true });
  writeByteTokenizer(dir);
  return dir;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const childEnv = () => ({ ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2', FORCE_COLOR: '0', HF_HUB_OFFLINE: '1' });

export function runCli(args: string[], options: { input?: string; timeoutMs?: number; cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? ROOT, env: { ...childEnv(), ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lorafit ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Starts `lorafit serve ... --port 0` and resolves with its base URL once it listens. */
export function startServer(args: string[]): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--port', '0', ...args], { cwd: ROOT, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start:\n${out}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
}
