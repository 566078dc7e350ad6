// The dashboard page (compiled by tsc with lib/ui/page/tsconfig.json; uPlot is the global the
// page's <script src="/assets/uplot.min.js"> defines). One run at a time: its /api/events stream
// gives a snapshot and then new metrics rows and summary changes, which redraw the curves and the
// stats. The playground posts to /api/chat (base and adapter, one after the other, streamed) or
// /api/ab (blind: answers A and B in random order) and reads the SSE answer from the response body.
/// <reference types="uplot" />

interface Row {
  type: string;
  step: number;
  loss?: number;
  learningRate?: number;
  tokensPerSecond?: number;
  evalLoss?: number;
}

interface Summary {
  id: string;
  dir: string;
  status: string;
  step: number | null;
  totalSteps: number | null;
  loss: number | null;
  learningRate: number | null;
  tokensPerSecond: number | null;
  etaMs: number | null;
  lastEvalLoss: number | null;
  bestEvalLoss: number | null;
  bestEvalStep: number | null;
  checkpoints: { name: string; step: number; hasAdapter: boolean }[];
  adapters: string[];
  config: Record<string, unknown> | null;
  model: string | null;
  updatedAt: string | null;
  problems: string[];
}

type RunEvent =
  | { type: 'snapshot'; rows: Row[]; summary: Summary }
  | { type: 'rows'; from: number; rows: Row[] }
  | { type: 'summary'; summary: Summary }
  | { type: 'gone'; message: string };

interface Tally {
  votes: number;
  tuned: number;
  base: number;
  ties: number;
  tunedRate: number;
  signTestP: number;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let runs: Summary[] = [];
let selected: string | null = null;
let rows: Row[] = [];
let summary: Summary | null = null;
let events: EventSource | null = null;
let gone: string | null = null;
let charts: { loss: uPlot; lr: uPlot; tps: uPlot } | null = null;
let playing: AbortController | null = null;
let trial: string | null = null;

// ---- runs list ----

async function loadRuns(): Promise<void> {
  try {
    const r = await fetch('/api/runs');
    const body = (await r.json()) as { runs: Summary[]; problems: string[]; error?: { message: string } };
    if (!r.ok) throw new Error(body.error?.message ?? r.statusText);
    runs = body.runs;
    const problems = $('runs-problems');
    problems.hidden = body.problems.length === 0;
    problems.textContent = body.problems.join('; ');
    renderRuns();
    if (selected === null && runs.length) select(runs[0].id);
    if (selected !== null && !runs.some((x) => x.id === selected)) showProblems([`the run '${selected}' is no longer listed`]);
  } catch (e) {
    setConnection(`cannot list runs: ${(e as Error).message}`, true);
  }
}

function renderRuns(): void {
  const ul = $('runs');
  ul.replaceChildren(
    ...runs.map((run) => {
      const li = document.createElement('li');
      li.dataset.run = run.id;
      li.className = run.id === selected ? 'selected' : '';
      const step = run.step === null ? '' : ` · step ${run.step}${run.totalSteps ? `/${run.totalSteps}` : ''}`;
      const best = run.bestEvalLoss === null ? '' : ` · best eval ${run.bestEvalLoss.toFixed(4)}`;
      li.append(document.createTextNode(run.id));
      const small = document.createElement('small');
      small.textContent = `${run.status}${step}${best}`;
      li.append(small);
      li.onclick = () => select(run.id);
      return li;
    }),
  );
}

// ---- one run ----

function select(id: string): void {
  selected = id;
  renderRuns();
  events?.close();
  rows = [];
  summary = null;
  gone = null;
  $('run-view').hidden = false;
  $('empty-view').hidden = true;
  $('run-title').textContent = id;
  resetCharts();
  events = new EventSource(`/api/events?run=${encodeURIComponent(id)}`);
  events.onopen = () => setConnection('live', false);
  events.onerror = () => setConnection('connection lost; retrying…', true);
  events.onmessage = (m) => onEvent(JSON.parse(m.data) as RunEvent);
  loadTally();
}

function onEvent(e: RunEvent): void {
  if (e.type === 'snapshot') {
    gone = null;
    rows = e.rows;
    summary = e.summary;
  } else if (e.type === 'rows') {
    rows = rows.slice(0, e.from).concat(e.rows);
  } else if (e.type === 'summary') {
    summary = e.summary;
  } else if (e.type === 'gone') {
    gone = e.message;
    rows = [];
  }
  render();
}

function render(): void {
  const s = summary;
  const status = gone ? 'deleted' : (s?.status ?? 'unknown');
  const badge = $('run-status');
  badge.textContent = status;
  badge.className = `status ${gone ? 'missing' : status}`;
  showProblems(gone ? [gone] : (s?.problems ?? []));
  const stats: [string, string][] = s
    ? [
        ['step', s.step === null ? '–' : `${s.step}${s.totalSteps ? ` / ${s.totalSteps}` : ''}`],
        ['loss', fmt(s.loss, 4)],
        ['learning rate', s.learningRate === null ? '–' : s.learningRate.toExponential(2)],
        ['tokens/s', fmt(s.tokensPerSecond, 0)],
        ['ETA', s.status === 'running' && s.etaMs !== null ? duration(s.etaMs) : '–'],
        ['last eval', fmt(s.lastEvalLoss, 4)],
        ['best eval', s.bestEvalLoss === null ? '–' : `${s.bestEvalLoss.toFixed(4)} (step ${s.bestEvalStep})`],
        ['base model', s.model ?? '–'],
      ]
    : [];
  $('run-stats').replaceChildren(
    ...stats.map(([k, v]) => {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      div.append(dt, dd);
      return div;
    }),
  );
  const tbody = $('checkpoints').querySelector('tbody')!;
  tbody.replaceChildren(
    ...(s?.checkpoints ?? []).map((c) => {
      const tr = document.createElement('tr');
      for (const text of [c.name, String(c.step), c.hasAdapter ? 'yes' : 'no']) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }),
  );
  $('config').textContent = s?.config ? JSON.stringify(s.config, null, 2) : 'no config recorded';
  renderAdapters(s?.adapters ?? []);
  drawCharts();
  const i = runs.findIndex((r) => r.id === s?.id);
  if (s && i >= 0) {
    runs[i] = s;
    renderRuns();
  }
}

function showProblems(problems: string[]): void {
  const banner = $('run-problems');
  banner.hidden = problems.length === 0;
  banner.replaceChildren(...problems.map((p) => Object.assign(document.createElement('div'), { textContent: p })));
}

function renderAdapters(adapters: string[]): void {
  const select = $<HTMLSelectElement>('adapter');
  const before = select.value;
  const names = adapters.join('\n');
  if (select.dataset.names === names) return;
  select.dataset.names = names;
  select.replaceChildren(...adapters.map((a) => Object.assign(document.createElement('option'), { value: a, textContent: a })));
  if (adapters.includes(before)) select.value = before;
  const none = adapters.length === 0;
  $<HTMLButtonElement>('compare').title = none ? 'no adapter yet: only the base model answers' : '';
  $<HTMLButtonElement>('blind').disabled = none;
}

// ---- charts ----

function resetCharts(): void {
  if (charts) for (const c of Object.values(charts)) c.destroy();
  charts = null;
  $('loss-chart').dataset.points = '0';
}

function chart(el: HTMLElement, series: uPlot.Series[], yValues?: (v: number) => string): uPlot {
  const width = Math.max(280, el.clientWidth || 320);
  const y: uPlot.Axis = yValues ? { values: (_u, splits) => splits.map(yValues), size: 60 } : {};
  return new uPlot({ width, height: 200, scales: { x: { time: false } }, axes: [{ label: 'step' }, y], series: [{ label: 'step' }, ...series] }, [[]], el);
}

function drawCharts(): void {
  if (!charts) {
    charts = {
      loss: chart($('loss-chart'), [
        { label: 'train', stroke: '#3056d3', width: 1.5 },
        { label: 'eval', stroke: '#d92d20', width: 2, spanGaps: true, points: { show: true, size: 6 } },
      ]),
      lr: chart($('lr-chart'), [{ label: 'lr', stroke: '#7a5af8', width: 1.5, value: (_u, v) => (v === null ? '--' : v.toExponential(2)) }], (v) => (v === 0 ? '0' : v.toExponential(1))),
      tps: chart($('tps-chart'), [{ label: 'tok/s', stroke: '#079455', width: 1.5 }]),
    };
  }
  const byStep = new Map<number, { loss?: number; evalLoss?: number; lr?: number; tps?: number }>();
  for (const r of rows) {
    const at = byStep.get(r.step) ?? {};
    if (r.type === 'step') Object.assign(at, { loss: r.loss, lr: r.learningRate, tps: r.tokensPerSecond });
    else if (r.type === 'eval') at.evalLoss = r.evalLoss;
    byStep.set(r.step, at);
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  const col = (k: 'loss' | 'evalLoss' | 'lr' | 'tps') => steps.map((s) => byStep.get(s)![k] ?? null);
  charts.loss.setData([steps, col('loss'), col('evalLoss')] as uPlot.AlignedData);
  charts.lr.setData([steps, col('lr')] as uPlot.AlignedData);
  charts.tps.setData([steps, col('tps')] as uPlot.AlignedData);
  $('loss-chart').dataset.points = String(col('loss').filter((v) => v !== null).length);
}

// ---- playground ----

function samplingBody(): Record<string, unknown> {
  const n = (id: string) => {
    const v = $<HTMLInputElement>(id).value.trim();
    return v === '' ? undefined : Number(v);
  };
  const topK = n('top-k');
  const topP = n('top-p');
  return {
    run: selected,
    prompt: $<HTMLTextAreaElement>('prompt').value,
    system: $<HTMLInputElement>('system').value || undefined,
    maxNewTokens: n('max-new-tokens'),
    temperature: n('temperature'),
    topP: topP === 1 ? undefined : topP,
    topK: topK === 0 ? undefined : topK,
    repetitionPenalty: n('repetition-penalty'),
    seed: n('seed'),
  };
}

/** POSTs and hands each SSE event of the answer to `onEvent`; throws the server's error message. */
async function postStream(url: string, body: unknown, signal: AbortSignal, onEvent: (e: Record<string, unknown>) => void): Promise<void> {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal });
  if (!r.ok || !r.body) {
    const err = (await r.json().catch(() => ({}))) as { error?: { message?: string } };
    throw new Error(err.error?.message ?? `${r.status} ${r.statusText}`);
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const e = JSON.parse(line.slice(6)) as Record<string, unknown>;
        if (e.type === 'error') throw new Error(String(e.message));
        onEvent(e);
      }
    }
  }
}

async function play(kind: 'compare' | 'blind'): Promise<void> {
  if (!selected || playing) return;
  const error = $('play-error');
  error.hidden = true;
  const left = $('left');
  const right = $('right');
  left.textContent = '';
  right.textContent = '';
  $('vote').hidden = true;
  trial = null;
  const adapter = $<HTMLSelectElement>('adapter').value || null;
  playing = new AbortController();
  setPlaying(true);
  try {
    if (kind === 'compare') {
      $('left-label').textContent = 'base';
      $('right-label').textContent = adapter ?? 'no adapter yet';
      await postStream('/api/chat', { ...samplingBody(), adapter: null }, playing.signal, (e) => {
        if (e.type === 'text') left.textContent += String(e.text);
      });
      if (adapter) {
        await postStream('/api/chat', { ...samplingBody(), adapter }, playing.signal, (e) => {
          if (e.type === 'text') right.textContent += String(e.text);
        });
      }
    } else {
      $('left-label').textContent = 'A';
      $('right-label').textContent = 'B';
      await postStream('/api/ab', { ...samplingBody(), adapter }, playing.signal, (e) => {
        if (e.type === 'start') trial = String(e.trial);
        if (e.type === 'text') (e.side === 'A' ? left : right).textContent += String(e.text);
        if (e.type === 'done') $('vote').hidden = false;
      });
    }
  } catch (e) {
    if ((e as Error).name !== 'AbortError') {
      error.hidden = false;
      error.textContent = (e as Error).message;
    }
  } finally {
    playing = null;
    setPlaying(false);
  }
}

function setPlaying(on: boolean): void {
  $<HTMLButtonElement>('compare').disabled = on;
  $<HTMLButtonElement>('blind').disabled = on || (summary?.adapters.length ?? 0) === 0;
  $<HTMLButtonElement>('stop').disabled = !on;
}

async function vote(rating: string): Promise<void> {
  if (!trial || !selected) return;
  const r = await fetch('/api/ab/vote', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ run: selected, trial, rating }) });
  const body = (await r.json()) as { tally?: Tally; revealed?: { A: string; B: string }; error?: { message: string } };
  if (!r.ok) {
    const error = $('play-error');
    error.hidden = false;
    error.textContent = body.error?.message ?? r.statusText;
    return;
  }
  trial = null;
  $('vote').hidden = true;
  $('left-label').textContent = `A: ${body.revealed!.A}`;
  $('right-label').textContent = `B: ${body.revealed!.B}`;
  showTally(body.tally!);
}

async function loadTally(): Promise<void> {
  if (!selected) return;
  const r = await fetch(`/api/ab/tally?run=${encodeURIComponent(selected)}`);
  if (r.ok) showTally(((await r.json()) as { tally: Tally }).tally);
}

function showTally(t: Tally): void {
  $('tally').textContent = t.votes
    ? `blind A/B: ${t.votes} vote${t.votes === 1 ? '' : 's'}; tuned picked ${t.tuned}, base ${t.base}, ties ${t.ties}: tuned preferred ${(100 * t.tunedRate).toFixed(0)}% (sign test p = ${t.signTestP.toFixed(3)})`
    : 'blind A/B: no votes yet';
  $('tally').dataset.votes = String(t.votes);
}

// ---- helpers ----

function setConnection(text: string, lost: boolean): void {
  const el = $('connection');
  el.textContent = text;
  el.className = `connection${lost ? ' lost' : ''}`;
}

function fmt(v: number | null, digits: number): string {
  return v === null ? '–' : v.toFixed(digits);
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

$('playground').addEventListener('submit', (e) => {
  e.preventDefault();
  void play('compare');
});
$('blind').addEventListener('click', () => void play('blind'));
$('stop').addEventListener('click', () => playing?.abort());
for (const b of $('vote').querySelectorAll('button')) b.addEventListener('click', () => void vote(b.dataset.rating!));
void loadRuns();
setInterval(() => void loadRuns(), 5000);
