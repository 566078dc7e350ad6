// The dashboard in a real headless Chromium (Debian's chromium, driven by puppeteer-core): start a
// short training of models/lorafit-tiny with `lorafit train --ui`, open the page, watch the loss
// curve fill live, then chat with base and the adapter the run just trained (streamed), cast a
// blind A/B vote (recorded in the run's ab-votes.jsonl), and delete the run while it is watched.
// Screenshots go to test/.work/ui/ (git-ignored). No chromium is a failure, not a skip: scripts/setup.sh installs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt, ROOT, tempDir } from '../cli/helpers.js';
import { startUi } from '../../lib/ui/start.js';
import { outsideAddress, until } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test', '.work', 'ui');
const STEPS = 150;

describe('lorafit train --ui in Chromium', () => {
  const work = tempDir('lorafit-ui-browser-');
  const runDir = join(work, 'run');
  let child: ChildProcess;
  let out = '';
  let url = '';
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    ensureBuilt();
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run bash scripts/setup.sh (it installs Debian's chromium) or apt-get install chromium`);
    mkdirSync(ARTIFACTS, { recursive: true });
    child = spawn(
      process.execPath,
      [CLI, 'train', '--ui', '--ui-port', '0', '--model', join(ROOT, 'models', 'lorafit-tiny'), '--dataset', join(ROOT, 'examples', 'data', 'styles', 'yoda.txt'),
        '--limit', '80', '--max-seq-length', '64', '--batch-size', '2', '--max-steps', String(STEPS), '--eval-steps', '30', '--save-steps', '75',
        '--output-dir', runDir, '--token-cache-dir', join(work, 'token-cache')],
      { cwd: ROOT, env: { ...process.env, OMP_NUM_THREADS: '2', FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    await until(() => /dashboard: http:\/\/127\.0\.0\.1:\d+\/\n/.test(out), 30_000, `the dashboard URL in:\n${out}`);
    url = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)![1];
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push((e as Error).message));
    await page.setViewport({ width: 1280, height: 900 });
  });
  afterAll(async () => {
    await browser?.close();
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  const points = () => page.$eval('#loss-chart', (el) => Number((el as HTMLElement).dataset.points));
  const status = () => page.$eval('#run-status', (el) => el.textContent);

  it('shows the loss curve growing live, then the finished run', async () => {
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById('run-title')?.textContent === 'run', { timeout: 10_000 });
    await page.waitForFunction(() => Number(document.getElementById('loss-chart')!.dataset.points) >= 5, { timeout: 60_000 });
    const first = await points();
    expect(await status()).toBe('running');
    expect(first).toBeLessThan(STEPS);
    // the page is not reloaded: the new points come over the event stream
    await page.waitForFunction((n) => Number(document.getElementById('loss-chart')!.dataset.points) > n, { timeout: 30_000 }, first);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-live.png') });
    await until(() => out.includes('training finished; the dashboard stays up'), 60_000, `the end of training in:\n${out}`);
    await page.waitForFunction(() => document.getElementById('run-status')!.textContent === 'completed', { timeout: 10_000 });
    expect(await points()).toBe(STEPS);
    const record = JSON.parse(readFileSync(join(runDir, 'lorafit-run.json'), 'utf8'));
    expect(record).toMatchObject({ status: 'completed', pid: child.pid, config: { model: join(ROOT, 'models', 'lorafit-tiny'), maxSteps: STEPS } });
    const stats = await page.$eval('#run-stats', (el) => el.textContent);
    expect(stats).toContain(`${STEPS} / ${STEPS}`);
    expect(stats).toMatch(/best eval\d\.\d{4} \(step \d+\)/);
    const checkpoints = await page.$$eval('#checkpoints tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
    expect(checkpoints).toEqual(['checkpoint-75', 'checkpoint-150']);
    const adapters = await page.$$eval('#adapter option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(adapters).toEqual(['adapter', 'checkpoint-150', 'checkpoint-75']);
  });

  let baseAnswer = '';
  let tunedAnswer = '';

  it('streams the base and the trained adapter side by side', async () => {
    await page.type('#prompt', 'Tell me something about the stars.');
    await page.$eval('#max-new-tokens', (el) => ((el as HTMLInputElement).value = '24'));
    await page.select('#adapter', 'adapter');
    // count the pieces each answer grows by (one mutation record per piece the page appends) and
    // check both answers came as event streams
    await page.evaluate(() => {
      const w = window as unknown as { pieces: Record<string, number> };
      w.pieces = { left: 0, right: 0 };
      for (const id of ['left', 'right']) new MutationObserver((records) => (w.pieces[id] += records.length)).observe(document.getElementById(id)!, { childList: true, characterData: true, subtree: true });
    });
    const chatTypes: string[] = [];
    page.on('response', (r) => {
      if (r.url().endsWith('/api/chat')) chatTypes.push(r.headers()['content-type'] ?? '');
    });
    await page.click('#compare');
    await page.waitForFunction(() => !(document.getElementById('compare') as HTMLButtonElement).disabled && document.getElementById('right')!.textContent !== '', { timeout: 30_000 });
    baseAnswer = await page.$eval('#left', (el) => el.textContent ?? '');
    tunedAnswer = await page.$eval('#right', (el) => el.textContent ?? '');
    const pieces = await page.evaluate(() => (window as unknown as { pieces: Record<string, number> }).pieces);
    expect(await page.$eval('#play-error', (el) => (el as HTMLElement).hidden)).toBe(true);
    expect(baseAnswer.length).toBeGreaterThan(0);
    expect(tunedAnswer.length).toBeGreaterThan(0);
    expect(pieces.left).toBeGreaterThan(3);
    expect(pieces.right).toBeGreaterThan(3);
    expect(chatTypes).toEqual(['text/event-stream; charset=utf-8', 'text/event-stream; charset=utf-8']);
    expect(await page.$eval('#right-label', (el) => el.textContent)).toBe('adapter');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    const shot = statSync(join(ARTIFACTS, 'dashboard.png'));
    expect(shot.size).toBeGreaterThan(20_000);
    expect(readFileSync(join(ARTIFACTS, 'dashboard.png')).subarray(1, 4).toString()).toBe('PNG');
  });

  it('records a blind A/B vote in ab-votes.jsonl and shows the tally', async () => {
    await page.click('#blind');
    await page.waitForFunction(() => !document.getElementById('vote')!.hidden, { timeout: 30_000 });
    expect(await page.$eval('#left-label', (el) => el.textContent)).toBe('A');
    await page.click('#vote button[data-rating="A"]');
    await page.waitForFunction(() => document.getElementById('tally')!.dataset.votes === '1', { timeout: 10_000 });
    const lines = readFileSync(join(runDir, 'ab-votes.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    const vote = JSON.parse(lines[0]) as { adapter: string; rating: string; a: 'base' | 'tuned'; prompt: string; answers: { A: string; B: string } };
    expect(vote).toMatchObject({ adapter: 'adapter', rating: 'A', prompt: 'Tell me something about the stars.' });
    expect(['base', 'tuned']).toContain(vote.a);
    // greedy decoding: the blind answers are the side-by-side ones, on the sides the record says
    const [onA, onB] = vote.a === 'base' ? [baseAnswer, tunedAnswer] : [tunedAnswer, baseAnswer];
    expect(vote.answers).toEqual({ A: onA, B: onB });
    expect(await page.$eval('#left-label', (el) => el.textContent)).toBe(`A: ${vote.a}`);
    const tally = await page.$eval('#tally', (el) => el.textContent);
    expect(tally).toContain('1 vote;');
    expect(tally).toContain(vote.a === 'tuned' ? 'tuned picked 1, base 0' : 'tuned picked 0, base 1');
  });

  it('on 0.0.0.0, the page opened from its token URL works through the cookie; without the token it is refused', async () => {
    const ui = await startUi({ sources: { runs: [runDir] }, host: '0.0.0.0', port: 0, playground: false });
    try {
      const origin = `http://${outsideAddress()}:${(ui.server.address() as { port: number }).port}`;
      const tokenPage = await browser.newPage();
      await tokenPage.goto(`${origin}/?token=${ui.token}`);
      // the run list, the event stream and the tally are requests of their own: each carries the cookie
      await tokenPage.waitForFunction((n) => Number(document.getElementById('loss-chart')!.dataset.points) === n, { timeout: 10_000 }, STEPS);
      expect(await tokenPage.$eval('#tally', (el) => (el as HTMLElement).dataset.votes)).toBe('1');
      await tokenPage.close();
      const stranger = await browser.createBrowserContext();
      const refused = await (await stranger.newPage()).goto(`${origin}/`);
      expect(refused!.status()).toBe(401);
      await stranger.close();
    } finally {
      await ui.stop();
    }
  });

  it('says so when the run folder is deleted, and the server stays up', async () => {
    rmSync(runDir, { recursive: true, force: true });
    await page.waitForFunction(() => document.getElementById('run-status')!.textContent === 'deleted', { timeout: 10_000 });
    const banner = await page.$eval('#run-problems', (el) => el.textContent);
    expect(banner).toContain(`${runDir} is gone`);
    const r = await page.evaluate(async () => (await fetch('/api/status')).status);
    expect(r).toBe(200);
    expect(pageErrors).toEqual([]);
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
  });
});
