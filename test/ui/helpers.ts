// Helpers of the dashboard tests: raw HTTP requests (the path sent exactly as written, no client
// normalisation), an SSE client that collects events, and run folders written as the Trainer does.
import { request, type ClientRequest } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET (or another method) of `path` as given, to host:port, with optional headers and body. */
export function raw(host: string, port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface SseClient {
  events: Record<string, unknown>[];
  status: number;
  /** Resolves with the first event (already received or later) that `pred` accepts. */
  next(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): void;
  closed: Promise<void>;
}

/** Opens an SSE stream; resolves once the response headers are in. */
export function sse(host: string, port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const events: Record<string, unknown>[] = [];
    const waiters: { pred: (e: Record<string, unknown>) => boolean; done: (e: Record<string, unknown>) => void }[] = [];
    let req: ClientRequest;
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    req = request({ host, port, path, headers, agent: false }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          for (const line of block.split('\n')) {
            if (!line.startsWith('data: ')) continue;
            const e = JSON.parse(line.slice(6)) as Record<string, unknown>;
            events.push(e);
            for (const w of [...waiters]) if (w.pred(e)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.done(e);
            }
          }
        }
      });
      res.on('close', () => closedResolve());
      resolve({
        events,
        status: res.statusCode ?? 0,
        next: (pred, timeoutMs = 10_000) => {
          const have = events.find(pred);
          if (have) return Promise.resolve(have);
          return new Promise((done, fail) => {
            const t = setTimeout(() => fail(new Error(`no matching SSE event on ${path} within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.type))}`)), timeoutMs);
            waiters.push({ pred, done: (e) => (clearTimeout(t), done(e)) });
          });
        },
        close: () => req.destroy(),
        closed,
      });
    });
    req.on('error', (e) => {
      closedResolve();
      reject(e);
    });
    req.end();
  });
}

/** A step row as Trainer.writeMetrics writes it. */
export function stepRow(step: number, totalSteps: number, loss: number): Record<string, unknown> {
  return { type: 'step', step, totalSteps, epoch: step / totalSteps, loss, learningRate: 1e-4, gradNorm: 1, clipped: false, tokens: 100, tokensPerSecond: 500 + step, elapsedMs: step * 100, etaMs: (totalSteps - step) * 100 };
}

export const jsonl = (rows: unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

/** A run folder with the given metrics.jsonl text. */
export function writeRun(parent: string, name: string, metrics: string): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'metrics.jsonl'), metrics);
  return dir;
}

/** This machine's first non-loopback IPv4 address (the tests of the token need one). */
export function outsideAddress(): string {
  const a = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal);
  if (!a) throw new Error('this machine has no non-loopback IPv4 address: the dashboard token test needs one to call the server as another machine would');
  return a.address;
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
