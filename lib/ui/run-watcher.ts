// Follows one run folder while the dashboard shows it: polls metrics.jsonl from the byte offset
// it has read up to (a half-written last line waits for its newline), re-reads the summary, and
// tells its listeners what changed:
//   { type: 'snapshot', rows, summary }   everything so far (on subscribe, and after a reset)
//   { type: 'rows', from, rows }          new rows; `from` is the index of the first one
//   { type: 'summary', summary }          status, step, checkpoints, problems changed
//   { type: 'gone', message }             the folder was deleted (the watcher keeps polling: a
//                                         new training into the same folder shows up as a snapshot)
// Polling, not fs.watch: it works the same on every file system and sees a deleted folder.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { METRICS_FILE, readMetricsFrom, type MetricsRow } from './metrics-file.js';
import { summarizeRun, type RunRef, type RunSummary } from './runs.js';

export type RunEvent =
  | { type: 'snapshot'; run: string; rows: MetricsRow[]; summary: RunSummary }
  | { type: 'rows'; run: string; from: number; rows: MetricsRow[] }
  | { type: 'summary'; run: string; summary: RunSummary }
  | { type: 'gone'; run: string; message: string };

type Listener = (event: RunEvent) => void;

export class RunWatcher {
  private rows: MetricsRow[] = [];
  private offset = 0;
  private lines = 0;
  private inode = -1;
  private metricsProblem: string | undefined;
  private summaryJson = '';
  private gone = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<Listener>();

  constructor(
    readonly ref: RunRef,
    private readonly intervalMs = 500,
  ) {}

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Adds a listener and hands it a snapshot at once; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.poll();
    this.listeners.add(listener);
    listener(this.gone ? { type: 'gone', run: this.ref.id, message: this.goneMessage() } : { type: 'snapshot', run: this.ref.id, rows: this.rows, summary: this.summary() });
    if (!this.timer) {
      this.timer = setInterval(() => this.poll(), this.intervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The rows read so far (after a fresh poll). */
  current(): { rows: MetricsRow[]; summary: RunSummary } {
    this.poll();
    return { rows: this.rows, summary: this.summary() };
  }

  private goneMessage(): string {
    return `the run folder ${this.ref.dir} is gone (deleted while watched); the dashboard keeps watching for it`;
  }

  private summary(): RunSummary {
    const s = summarizeRun(this.ref, this.rows);
    if (this.metricsProblem) s.problems.unshift(this.metricsProblem);
    return s;
  }

  private emit(e: RunEvent): void {
    for (const l of [...this.listeners]) l(e);
  }

  private reset(): void {
    this.rows = [];
    this.offset = 0;
    this.lines = 0;
    this.inode = -1;
    this.metricsProblem = undefined;
  }

  /** Reads what is new and tells the listeners. Never throws. */
  private poll(): void {
    let dirThere = true;
    try {
      statSync(this.ref.dir);
    } catch {
      dirThere = false;
    }
    if (!dirThere) {
      if (!this.gone && (this.rows.length || this.summaryJson)) {
        this.gone = true;
        this.reset();
        this.summaryJson = '';
        this.emit({ type: 'gone', run: this.ref.id, message: this.goneMessage() });
      }
      return;
    }
    const file = join(this.ref.dir, METRICS_FILE);
    let fresh: MetricsRow[] = [];
    let rewound = this.gone;
    this.gone = false;
    try {
      const ino = statSync(file).ino;
      if (ino !== this.inode && this.inode !== -1) {
        this.reset();
        rewound = true;
      }
      this.inode = ino;
      let chunk = readMetricsFrom(file, this.offset, this.lines);
      if (chunk.truncated) {
        this.reset();
        rewound = true;
        chunk = readMetricsFrom(file, 0, 0);
      }
      fresh = chunk.rows;
      this.offset = chunk.offset;
      this.lines = chunk.lines;
      this.metricsProblem = chunk.error;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        if (this.rows.length) rewound = true;
        this.reset();
      } else {
        this.metricsProblem = `${METRICS_FILE}: ${(e as Error).message}`;
      }
    }
    const from = this.rows.length;
    if (fresh.length) this.rows = this.rows.concat(fresh);
    const summary = this.summary();
    const json = JSON.stringify(summary);
    const changed = json !== this.summaryJson;
    this.summaryJson = json;
    if (rewound) this.emit({ type: 'snapshot', run: this.ref.id, rows: this.rows, summary });
    else {
      if (fresh.length) this.emit({ type: 'rows', run: this.ref.id, from, rows: fresh });
      if (changed) this.emit({ type: 'summary', run: this.ref.id, summary });
    }
  }
}
