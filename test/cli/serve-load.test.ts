// `lorafit serve` (the real CLI process) under 50 concurrent clients a round, a fifth of them
// disconnecting mid-stream and a fifth while queued or running: every request that is not
// abandoned is answered 200 (a whole JSON body or an SSE stream ending in [DONE]) or refused 503
// (the queue is full) in OpenAI's error shape, nothing else; the server stays up and idle
// afterwards, answers a plain request, and its resident memory stays bounded near the baseline
// taken after a warm-up round (no climb round after round). The figures are printed.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTinyQwen3Model } from '../helpers/tiny-qwen3.js';
import { ensureBuilt, startServer, tempDir } from './helpers.js';

const CLIENTS = 50;
const ROUNDS = Number(process.env.SERVE_LOAD_ROUNDS ?? 10);
const MAX_QUEUE = 24;

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

type Outcome = 'ok' | 'refused' | 'abandoned';

describe('lorafit serve under load', () => {
  let work: string;
  let server: ChildProcess | undefined;
  let url: string;
  let logFile: string;

  beforeAll(async () => {
    ensureBuilt();
    work = tempDir('lorafit-serve-load-');
    const modelDir = (await makeTinyQwen3Model({ dir: join(work, 'tiny-qwen3') })).dir;
    logFile = join(work, 'serve.log');
    const started = await startServer(['--model', modelDir, '--model-name', 'tiny', '--max-queue', String(MAX_QUEUE), '--log-file', logFile]);
    server = started.child;
    url = started.url;
  }, 120_000);
  afterAll(() => {
    server?.kill('SIGKILL');
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const body = (kind: 'chat' | 'completion', stream: boolean, i: number) =>
    JSON.stringify(
      kind === 'chat'
        ? { model: 'tiny', messages: [{ role: 'user', content: `Client ${i}: say something about the moon.` }], max_tokens: 12, stream }
        : { model: 'tiny', prompt: `Client ${i} writes:`, max_tokens: 12, stream },
    );

  /** A refusal must be 503 in OpenAI's error shape. */
  async function refused(r: Response): Promise<Outcome> {
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    const j = (await r.json()) as { error: { code: string; message: string } };
    expect(j.error.code).toBe('queue_full');
    return 'refused';
  }

  /** One client; `i % 5` picks what it does. */
  async function client(i: number): Promise<Outcome> {
    const mode = i % 5;
    const kind = mode % 2 === 0 ? 'chat' : 'completion';
    const path = kind === 'chat' ? '/v1/chat/completions' : '/v1/completions';
    const ac = new AbortController();
    const post = (stream: boolean) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(kind, stream, i), signal: ac.signal });
    if (mode === 0 || mode === 1) {
      // Streams, read to the end.
      const r = await post(true);
      if (r.status !== 200) return refused(r);
      expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const text = await r.text();
      const events = text.split('\n\n').filter(Boolean);
      expect(events[events.length - 1]).toBe('data: [DONE]');
      for (const e of events.slice(0, -1)) expect(() => JSON.parse(e.replace(/^data: /, ''))).not.toThrow();
      expect(text).not.toContain('"error"');
      return 'ok';
    }
    if (mode === 2) {
      // Whole JSON answers.
      const r = await post(false);
      if (r.status !== 200) return refused(r);
      const j = (await r.json()) as { choices: { finish_reason: string }[]; usage: { completion_tokens: number } };
      expect(j.choices).toHaveLength(1);
      expect(['stop', 'length']).toContain(j.choices[0].finish_reason);
      expect(j.usage.completion_tokens).toBeGreaterThan(0);
      return 'ok';
    }
    if (mode === 3) {
      // Disconnects mid-stream: after the first chunk.
      const r = await post(true);
      if (r.status !== 200) return refused(r);
      const reader = r.body!.getReader();
      await reader.read();
      ac.abort();
      await reader.cancel().catch(() => {});
      return 'abandoned';
    }
    // Disconnects while queued or generating (a non-streamed answer is not sent before the end).
    const timer = setTimeout(() => ac.abort(), 5 + (i % 7) * 10);
    try {
      const r = await post(false);
      if (r.status === 503) return refused(r);
      expect(r.status).toBe(200);
      await r.json();
      return 'ok';
    } catch (e) {
      expect((e as Error).name).toBe('AbortError');
      return 'abandoned';
    } finally {
      clearTimeout(timer);
    }
  }

  const health = async () => (await (await fetch(`${url}/health`)).json()) as { status: string; running: number; queued: number };
  async function idle(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      const h = await health();
      if (h.running === 0 && h.queued === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`server still busy: ${JSON.stringify(await health())}`);
  }
  const settle = async () => {
    await idle();
    await new Promise((r) => setTimeout(r, 1500));
  };

  it(`${CLIENTS} concurrent clients x ${ROUNDS} rounds, some disconnecting: 200 or 503 only, the server stays up, RSS bounded near the baseline`, async () => {
    const pid = server!.pid!;
    const rssAtStart = rssMiB(pid);
    // Warm-up round: the allocator and the caches reach their working size.
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
    await settle();
    const baseline = rssMiB(pid);
    const counts: Record<Outcome, number> = { ok: 0, refused: 0, abandoned: 0 };
    let peak = baseline;
    const perRound: number[] = [];
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
    const t0 = Date.now();
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const outcomes = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(round * CLIENTS + i)));
        for (const o of outcomes) counts[o]++;
        expect(server!.exitCode, 'the server exited').toBeNull();
        await settle();
        perRound.push(rssMiB(pid));
      }
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - t0) / 1000;
    await settle();
    const after = rssMiB(pid);
    // Still up and idle, and it answers.
    expect(server!.exitCode).toBeNull();
    expect(await health()).toMatchObject({ status: 'ok', running: 0, queued: 0 });
    const last = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body('completion', false, -1) });
    expect(last.status).toBe(200);
    // What the server logged: only 200, 503 and 499 (a client that went away).
    const statuses: Record<string, number> = {};
    for (const l of readFileSync(logFile, 'utf8').trim().split('\n')) {
      const j = JSON.parse(l) as { status?: number; url?: string };
      if (j.status !== undefined && j.url !== '/health') statuses[j.status] = (statuses[j.status] ?? 0) + 1;
    }
    expect(Object.keys(statuses).sort()).toEqual(expect.arrayContaining(['200']));
    for (const s of Object.keys(statuses)) expect(['200', '499', '503']).toContain(s);
    const total = CLIENTS * ROUNDS;
    console.log(
      `serve under load: ${total} requests (${ROUNDS} rounds of ${CLIENTS} concurrent, max-queue ${MAX_QUEUE}) in ${seconds.toFixed(1)} s: ` +
        `${counts.ok} answered 200, ${counts.refused} refused 503, ${counts.abandoned} abandoned by their client (mid-stream or while waiting); ` +
        `statuses the server logged (warm-up round included; a client gone before its request arrived leaves none): ${Object.entries(statuses).map(([k, v]) => `${k} x${v}`).join(', ')}; ` +
        `RSS ${rssAtStart.toFixed(0)} MiB at start, ${baseline.toFixed(0)} MiB after the warm-up round, peak ${peak.toFixed(0)} MiB, after each round ${perRound.map((x) => x.toFixed(0)).join(', ')} MiB, ${after.toFixed(0)} MiB at the end (${(after - baseline >= 0 ? '+' : '')}${(after - baseline).toFixed(1)} MiB)`,
    );
    expect(counts.ok + counts.refused + counts.abandoned).toBe(total);
    expect(counts.ok).toBeGreaterThan(0);
    expect(counts.refused).toBeGreaterThan(0); // 50 at once against a queue of 24: some are refused
    // Bounded, not climbing: the RSS after the last round and at its highest stays within 48 MiB of
    // the warm-up baseline (it rises over the first rounds, levels off, and falls back when V8
    // shrinks its heap: 289 -> 323 -> 252 MiB over 12 rounds on the shared 2-core machine). A leak
    // of 100 kB a request would add ~50 MiB over these rounds.
    expect(after - baseline).toBeLessThan(48);
    expect(Math.max(...perRound) - baseline).toBeLessThan(48);
  }, 600_000);
});
