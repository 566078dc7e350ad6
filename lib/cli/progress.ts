// Progress output: a redrawn bar when the stream is a terminal, plain lines otherwise (logs, CI,
// pipes), so a captured log reads the same as what a person saw.
export interface ProgressOptions {
  /** Print a plain line on every update when not a terminal (else only the final line). */
  lines?: boolean;
  out?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Force terminal mode on or off (default: out.isTTY). */
  tty?: boolean;
}

export class Progress {
  private readonly out: NodeJS.WritableStream;
  private readonly tty: boolean;
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly label: string,
    private total: number,
    private readonly options: ProgressOptions = {},
  ) {
    this.out = options.out ?? process.stdout;
    this.tty = options.tty ?? Boolean((this.out as NodeJS.WriteStream).isTTY);
  }

  setTotal(total: number): void {
    this.total = total;
  }

  update(done: number, info = ''): void {
    if (this.tty) {
      const now = Date.now();
      if (now - this.lastDraw < 80 && done < this.total) return;
      this.lastDraw = now;
      const width = 24;
      const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
      const filled = Math.round(frac * width);
      const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
      const eta = done > 0 && this.total > done ? ` eta ${formatMs(((Date.now() - this.started) / done) * (this.total - done))}` : '';
      this.out.write(`\r\x1b[2K${this.label} ${bar} ${done}/${this.total}${info ? ` ${info}` : ''}${eta}`);
      this.drawn = true;
    } else if (this.options.lines) {
      this.out.write(`${this.label} ${done}/${this.total}${info ? ` ${info}` : ''}\n`);
    }
  }

  /** Ends the bar (a newline on a terminal) and prints a closing line, if any. */
  done(line?: string): void {
    if (this.tty && this.drawn) this.out.write("\n");
    this.drawn = false;
    if (line) this.out.write(`${line}\n`);
  }
}

export function formatMs(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
