// The dashboard's HTTP side, without a model: the token on a non-loopback host (called through
// this machine's own outside address, as another machine would), path traversal refused, 20
// concurrent SSE clients served and freed, and bad run folders (a metrics.jsonl mid-write, a
// corrupt line, a missing folder, a folder deleted while watched) reported while the server stays up.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUi, type RunningUi } from '../../lib/ui/start.js';
import { tallyVotes } from '../../lib/ui/ab-votes.js';
import { CLI, ensureBuilt, ROOT, tempDir } from '../cli/helpers.js';
import { jsonl, outsideAddress, raw, sse, stepRow, until, writeRun, type SseClient } from './helpers.js';

const work = tempDir('lorafit-ui-http-');
const runsDir = join(work, 'runs');
const portOf = (ui: RunningUi) => (ui.server.address() as { port: number }).port;

beforeAll(() => {
  ensureBuilt(); // the page's compiled script is one of the assets
  writeRun(runsDir, 'good', jsonl([stepRow(1, 4, 3.0), stepRow(2, 4, 2.5), { type: 'eval', step: 2, evalLoss: 2.4, perplexity: Math.exp(2.4), tokens: 50, best: true }]));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('token on a non-loopback host', () => {
  let ui: RunningUi;
  let outside: string;
  beforeAll(async () => {
    outside = outsideAddress();
    ui = await startUi({ sources: { runsDir }, host: '0.0.0.0', port: 0, playground: false });
  });
  afterAll(() => ui.stop());

  it('makes a token, puts it in the URL, and refuses every request without it', async () => {
    expect(ui.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(ui.url).toBe(`http://0.0.0.0:${portOf(ui)}/?token=${ui.token}`);
    const port = portOf(ui);
    for (const path of ['/', '/assets/app.js', '/api/runs', '/api/metrics?run=good', '/api/events?run=good', '/api/status']) {
      const r = await raw(outside, port, path);
      expect(r.status, path).toBe(401);
      expect(JSON.parse(r.body).error.code).toBe('E_UI_TOKEN');
    }
    // a wrong token, of the right length too
    expect((await raw(outside, port, '/api/runs', { headers: { Authorization: `Bearer ${'x'.repeat(32)}` } })).status).toBe(401);
    expect((await raw(outside, port, `/api/runs?token=${ui.token!.slice(0, -1)}`)).status).toBe(401);
    // checked on every request: from this machine's loopback too
    expect((await raw('127.0.0.1', port, '/api/runs')).status).toBe(401);
  });

  it('accepts the token as a bearer header, a query parameter or the cookie the page gets', async () => {
    const port = portOf(ui);
    const bearer = await raw(outside, port, '/api/runs', { headers: { Authorization: `Bearer ${ui.token}` } });
    expect(bearer.status).toBe(200);
    expect(JSON.parse(bearer.body).runs.map((r: { id: string }) => r.id)).toEqual(['good']);
    const page = await raw(outside, port, `/?token=${ui.token}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('<script type="module" src="/assets/app.js">');
    const cookie = String(page.headers['set-cookie']).split(';')[0];
    expect(cookie).toBe(`lorafit_ui_token=${ui.token}`);
    expect((await raw(outside, port, '/api/metrics?run=good', { headers: { Cookie: cookie } })).status).toBe(200);
  });

  it('lorafit ui --host 0.0.0.0 prints the token once and enforces it', async () => {
    const child = spawn(process.execPath, [CLI, 'ui', '--runs', runsDir, '--host', '0.0.0.0', '--port', '0', '--no-playground'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      await until(() => /dashboard: http:\/\/0\.0\.0\.0:\d+\/\?token=\S+\n/.test(out), 20_000, `the dashboard URL in:\n${out}`);
      const [, port, token] = /:(\d+)\/\?token=(\S+)/.exec(out)!;
      expect(out.split(token).length - 1).toBe(1);
      expect((await raw(outside, Number(port), '/api/runs')).status).toBe(401);
      expect((await raw(outside, Number(port), `/api/runs?token=${token}`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    await new Promise((r) => child.once('close', r));
    expect(out).toContain('shutting down');
  });
});

describe('on 127.0.0.1 (the default)', () => {
  let ui: RunningUi;
  let port: number;
  beforeAll(async () => {
    ui = await startUi({ sources: { runsDir, runs: [join(work, 'absent-run')] }, port: 0, playground: false });
    port = portOf(ui);
  });
  afterAll(() => ui.stop());

  it('binds loopback only, needs no token, and refuses a foreign Host header (DNS rebinding)', async () => {
    expect(ui.url).toBe(`http://127.0.0.1:${port}/`);
    expect(ui.token).toBeUndefined();
    expect((ui.server.address() as { address: string }).address).toBe('127.0.0.1');
    expect((await raw('127.0.0.1', port, '/api/status')).status).toBe(200);
    const r = await raw('127.0.0.1', port, '/api/runs', { headers: { Host: 'attacker.example:80' } });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error.code).toBe('E_UI_HOST');
  });

  it('refuses path traversal: .., encoded, absolute, and run ids that are paths', async () => {
    const secret = readFileSync(join(ROOT, 'package.json'), 'utf8').slice(0, 40);
    const attempts = [
      '/assets/../package.json',
      '/assets/../../package.json',
      '/../package.json',
      '/assets/%2e%2e/package.json',
      '/assets/%2E%2E/%2e%2e/package.json',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/assets/..%2fpackage.json',
      '/assets/%2e%2e%5cpackage.json',
      '/assets/./app.js',
      '//etc/passwd',
      `/${join(ROOT, 'package.json')}`,
      `http://127.0.0.1:${port}/../package.json`,
      '/api/metrics?run=..',
      '/api/metrics?run=../good',
      '/api/metrics?run=%2e%2e',
      '/api/metrics?run=%2Fetc',
      `/api/metrics?run=${encodeURIComponent(join(runsDir, 'good'))}`,
      `/api/events?run=${encodeURIComponent('../../etc')}`,
      `/api/ab/tally?run=${encodeURIComponent(runsDir)}`,
    ];
    for (const path of attempts) {
      const r = await raw('127.0.0.1', port, path);
      expect(r.status, path).toBe(400);
      expect(JSON.parse(r.body).error.message, path).toMatch(/is refused|is not a run id/);
      expect(r.body, path).not.toContain(secret);
    }
    // a path outside the page's fixed table is simply not there
    for (const path of ['/etc/passwd', '/package.json', '/lib/ui/server.ts', '/assets/index.html']) {
      const r = await raw('127.0.0.1', port, path);
      expect(r.status, path).toBe(404);
      expect(r.body, path).not.toContain(secret);
      expect(r.body, path).not.toMatch(/root:.*:0:0:/);
    }
    // the real ones still answer
    expect((await raw('127.0.0.1', port, '/assets/app.js')).status).toBe(200);
    expect((await raw('127.0.0.1', port, '/api/metrics?run=good')).status).toBe(200);
  });

  it('serves 20 concurrent SSE clients, and frees them when they go', async () => {
    const clients: SseClient[] = await Promise.all(Array.from({ length: 20 }, () => sse('127.0.0.1', port, '/api/events?run=good')));
    for (const c of clients) {
      expect(c.status).toBe(200);
      const snap = await c.next((e) => e.type === 'snapshot');
      expect((snap.rows as unknown[]).length).toBe(3);
    }
    expect(ui.streams.count).toBe(20);
    expect(JSON.parse((await raw('127.0.0.1', port, '/api/status')).body)).toMatchObject({ streams: 20, subscriptions: 20 });
    // a new row reaches every one of them
    appendFileSync(join(runsDir, 'good', 'metrics.jsonl'), jsonl([stepRow(3, 4, 2.2)]));
    for (const c of clients) {
      const e = await c.next((x) => x.type === 'rows');
      expect(e.from).toBe(3);
      expect((e.rows as { loss: number }[])[0].loss).toBe(2.2);
    }
    for (const c of clients) c.close();
    await until(() => ui.streams.count === 0, 5000, 'the server to free the 20 streams');
    expect(JSON.parse((await raw('127.0.0.1', port, '/api/status')).body)).toMatchObject({ streams: 0, subscriptions: 0 });
  });

  it('GET /api/metrics answers a JSON array of the complete rows; /api/runs sums them up', async () => {
    const rows = JSON.parse((await raw('127.0.0.1', port, '/api/metrics?run=good')).body) as { type: string; step: number }[];
    expect(rows.map((r) => `${r.type}${r.step}`)).toEqual(['step1', 'step2', 'eval2', 'step3']);
    const steps = JSON.parse((await raw('127.0.0.1', port, '/api/metrics?run=good&type=step')).body) as unknown[];
    expect(steps).toHaveLength(3);
    const runs = JSON.parse((await raw('127.0.0.1', port, '/api/runs')).body).runs as Record<string, unknown>[];
    const good = runs.find((r) => r.id === 'good')!;
    expect(good).toMatchObject({ step: 3, totalSteps: 4, loss: 2.2, bestEvalLoss: 2.4, bestEvalStep: 2, problems: [] });
  });

  it('a metrics.jsonl mid-write: the partial last line waits for its newline', async () => {
    const full = JSON.stringify(stepRow(3, 10, 1.5));
    writeRun(runsDir, 'midwrite', jsonl([stepRow(1, 10, 2), stepRow(2, 10, 1.8)]) + full.slice(0, 25));
    const rows = JSON.parse((await raw('127.0.0.1', port, '/api/metrics?run=midwrite')).body) as unknown[];
    expect(rows).toHaveLength(2);
    const c = await sse('127.0.0.1', port, '/api/events?run=midwrite');
    const snap = await c.next((e) => e.type === 'snapshot');
    expect((snap.rows as unknown[]).length).toBe(2);
    expect((snap.summary as { problems: string[] }).problems).toEqual([]);
    appendFileSync(join(runsDir, 'midwrite', 'metrics.jsonl'), `${full.slice(25)}\n`);
    const e = await c.next((x) => x.type === 'rows');
    expect(e.from).toBe(2);
    expect(e.rows).toEqual([stepRow(3, 10, 1.5)]);
    c.close();
  });

  it('a corrupt metrics line, a corrupt lorafit-run.json, a missing folder, a missing --runs folder: said, server up', async () => {
    writeRun(runsDir, 'corrupt', jsonl([stepRow(1, 4, 2)]) + '{"type":"step","step":2,\n' + jsonl([stepRow(3, 4, 1)]));
    writeFileSync(join(runsDir, 'corrupt', 'lorafit-run.json'), '{"status": "running", ');
    const runs = JSON.parse((await raw('127.0.0.1', port, '/api/runs')).body).runs as { id: string; status: string; step: number | null; problems: string[] }[];
    const corrupt = runs.find((r) => r.id === 'corrupt')!;
    expect(corrupt.step).toBe(1);
    expect(corrupt.problems.join('\n')).toMatch(/metrics\.jsonl line 2: not JSON/);
    expect(corrupt.problems.join('\n')).toMatch(/lorafit-run\.json is not valid JSON/);
    const absent = runs.find((r) => r.id === 'absent-run')!;
    expect(absent.status).toBe('missing');
    expect(absent.problems[0]).toContain(`${join(work, 'absent-run')} does not exist`);
    const c = await sse('127.0.0.1', port, '/api/events?run=absent-run');
    expect(((await c.next((e) => e.type === 'snapshot')).summary as { status: string }).status).toBe('missing');
    c.close();

    const other = await startUi({ sources: { runsDir: join(work, 'no-such-runs') }, port: 0, playground: false });
    try {
      const body = JSON.parse((await raw('127.0.0.1', portOf(other), '/api/runs')).body);
      expect(body.runs).toEqual([]);
      expect(body.problems).toEqual([`the runs folder ${join(work, 'no-such-runs')} does not exist`]);
    } finally {
      await other.stop();
    }
    expect((await raw('127.0.0.1', port, '/api/status')).status).toBe(200);
  });

  it('a run deleted while watched: its stream says gone; recreated, it comes back as a snapshot', async () => {
    const dir = writeRun(runsDir, 'doomed', jsonl([stepRow(1, 4, 2), stepRow(2, 4, 1.9)]));
    const c = await sse('127.0.0.1', port, '/api/events?run=doomed');
    await c.next((e) => e.type === 'snapshot');
    rmSync(dir, { recursive: true });
    const gone = await c.next((e) => e.type === 'gone');
    expect(gone.message).toContain(`${dir} is gone`);
    expect((await raw('127.0.0.1', port, '/api/status')).status).toBe(200);
    // the run is no longer discovered under --runs: a request for it now says so
    expect((await raw('127.0.0.1', port, '/api/metrics?run=doomed')).status).toBe(404);
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), jsonl([stepRow(1, 8, 3)]));
    const back = await c.next((e) => e.type === 'snapshot' && (e.rows as unknown[]).length === 1);
    expect((back.summary as { totalSteps: number }).totalSteps).toBe(8);
    c.close();
  });

  it('bad playground requests are answered with what is wrong', async () => {
    const post = (path: string, body: unknown) => raw('127.0.0.1', port, path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const off = await post('/api/chat', { run: 'good', prompt: 'hi' });
    expect(off.status).toBe(503); // this server has --no-playground
    expect((await post('/api/chat', { run: 'nope', prompt: 'hi' })).status).toBe(404);
    const vote = await post('/api/ab/vote', { run: 'good', trial: 'no-such-trial', rating: 'A' });
    expect(vote.status).toBe(404);
    const rating = await post('/api/ab/vote', { run: 'good', trial: 'x', rating: 'C' });
    expect(rating.status).toBe(400);
    expect(JSON.parse(rating.body).error.message).toContain("'rating' must be A, B or tie");
    const notJson = await raw('127.0.0.1', port, '/api/chat', { method: 'POST', body: '{"run":' });
    expect(notJson.status).toBe(400);
    expect((await raw('127.0.0.1', port, '/api/nothing')).status).toBe(404);
  });
});

describe('playground errors', () => {
  it('a run without a base model is a 400; a recorded model that is gone is an error event; the server stays up', async () => {
    const parent = join(work, 'play');
    writeRun(parent, 'nomodel', jsonl([stepRow(1, 2, 2)]));
    const lost = writeRun(parent, 'lostmodel', jsonl([stepRow(1, 2, 2)]));
    writeFileSync(join(lost, 'lorafit-run.json'), JSON.stringify({ version: 1, status: 'completed', pid: 1, startedAt: '', config: { model: join(work, 'deleted-model') } }));
    const ui = await startUi({ sources: { runsDir: parent }, port: 0 });
    const port = portOf(ui);
    try {
      const post = (body: unknown) => raw('127.0.0.1', port, '/api/chat', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      const none = await post({ run: 'nomodel', prompt: 'hi' });
      expect(none.status).toBe(400);
      expect(JSON.parse(none.body).error).toMatchObject({ code: 'E_UI_MODEL' });
      expect(JSON.parse(none.body).error.message).toContain("run 'nomodel' names no base model");
      const bad = await post({ run: 'lostmodel', prompt: 'hi', temperature: 3 });
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.body).error.message).toBe("'temperature' must be a number in [0, 2], got 3");
      expect((await post({ run: 'lostmodel', prompt: 'hi', adapter: 'checkpoint-9' })).status).toBe(404);
      const gone = await post({ run: 'lostmodel', prompt: 'hi' });
      expect(gone.status).toBe(200);
      const events = gone.body.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
      expect(events).toHaveLength(1);
      expect(events[0].type).toBe('error');
      expect(events[0].message).toContain(join(work, 'deleted-model'));
      expect((await raw('127.0.0.1', port, '/api/status')).status).toBe(200);
      expect(ui.streams.count).toBe(0);
    } finally {
      await ui.stop();
    }
  });
});

describe('A/B tally', () => {
  it("counts the tuned model's picks from ab-votes.jsonl, holding back a half-written last line", () => {
    const dir = join(work, 'votes');
    mkdirSync(dir, { recursive: true });
    const vote = (a: 'base' | 'tuned', rating: 'A' | 'B' | 'tie', adapter = 'adapter') => ({ time: '', trial: 't', adapter, prompt: 'p', a, rating, answers: { A: 'x', B: 'y' } });
    // tuned on A picked A (tuned), tuned on B picked A (base), tie, base on A picked B (tuned), another adapter's vote
    const votes = [vote('tuned', 'A'), vote('tuned', 'A', 'checkpoint-2'), vote('tuned', 'B'), vote('base', 'tie'), vote('base', 'B')];
    writeFileSync(join(dir, 'ab-votes.jsonl'), jsonl(votes) + '{"a":"tuned","rat');
    const all = tallyVotes(dir);
    expect(all).toMatchObject({ votes: 5, tuned: 3, base: 1, ties: 1, tunedRate: 3 / 5, score: 3.5 / 5 });
    expect(all.problem).toBeUndefined();
    expect(tallyVotes(dir, 'adapter')).toMatchObject({ votes: 4, tuned: 2, base: 1, ties: 1 });
    // sign test, 3 wins vs 1 loss: p = 2 * (C(4,3) + C(4,4)) / 16 = 0.625
    expect(all.signTestP).toBeCloseTo(0.625, 12);
    appendFileSync(join(dir, 'ab-votes.jsonl'), 'ing":"A"}\nnot json\n');
    const more = tallyVotes(dir);
    expect(more.votes).toBe(6);
    expect(more.problem).toMatch(/^ab-votes\.jsonl line 7: /);
  });
});
