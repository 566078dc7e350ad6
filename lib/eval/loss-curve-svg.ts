/**
 * Self-contained SVG line chart of training and evaluation loss against step.
 * No dependencies and no scripts: the string can be inlined in HTML, written
 * to a `.svg` file, or re-used by the trainer for live reports. Output is
 * deterministic for the same input.
 *
 * Points with a non-finite step or loss are skipped. Y ticks are "nice"
 * (1, 2, 2.5, 5 × 10^k); with `logScale` the y axis is log10 (losses must be
 * > 0; non-positive points are skipped).
 */

export interface TrainLossPoint {
  step: number;
  loss: number;
}

export interface EvalLossPoint {
  step: number;
  evalLoss: number;
}

export interface LossCurveOptions {
  /** Default 640. */
  width?: number;
  /** Default 360. */
  height?: number;
  /** Chart title (escaped). */
  title?: string;
  /** Log-scale y axis. Default false. */
  logScale?: boolean;
  /**
   * Exponential moving average factor in [0, 1) for an extra smoothed train
   * curve (TensorBoard-style, debiased). 0 or undefined: no smoothed curve.
   */
  smoothing?: number;
  /** Colours. */
  trainColor?: string;
  evalColor?: string;
}

/** XML-escape text for element content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round to a short decimal string for coordinates. */
function fmt(x: number): string {
  const r = Math.round(x * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** Tick label: up to 4 significant digits, no trailing zeros. */
export function formatTick(x: number): string {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(1).replace('e+', 'e');
  return String(Number(x.toPrecision(4)));
}

/** About `count` evenly spaced round tick values covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const first = Math.floor(min / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = first; v <= max + step * 1e-9 || ticks.length < 2; v += step) {
    ticks.push(Number((Math.round(v / step) * step).toPrecision(12)));
    if (ticks.length > 50) break;
  }
  if (ticks[ticks.length - 1]! < max - step * 1e-9) ticks.push(ticks[ticks.length - 1]! + step);
  return ticks;
}

/** Debiased exponential moving average (as TensorBoard's smoothing slider). */
export function emaSmooth(values: readonly number[], factor: number): number[] {
  let last = 0;
  let weight = 0;
  return values.map((v) => {
    last = last * factor + (1 - factor) * v;
    weight = weight * factor + (1 - factor);
    return last / weight;
  });
}

/** Render the loss curve(s) as an SVG document string. */
export function renderLossCurveSvg(
  train: readonly TrainLossPoint[],
  evalPoints: readonly EvalLossPoint[] = [],
  options: LossCurveOptions = {},
): string {
  const W = options.width ?? 640;
  const H = options.height ?? 360;
  const log = options.logScale ?? false;
  const ok = (s: number, y: number) => Number.isFinite(s) && Number.isFinite(y) && (!log || y > 0);
  const tr = train.filter((p) => ok(p.step, p.loss)).map((p) => ({ x: p.step, y: p.loss }));
  const ev = evalPoints.filter((p) => ok(p.step, p.evalLoss)).map((p) => ({ x: p.step, y: p.evalLoss }));
  const tc = options.trainColor ?? '#1f77b4';
  const ec = options.evalColor ?? '#d62728';
  const m = { left: 56, right: 16, top: options.title ? 34 : 16, bottom: 44 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" font-family="system-ui, sans-serif" font-size="11">`,
    `<title>${escapeXml(options.title ?? 'Loss curve')}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
  ];
  if (options.title) {
    parts.push(`<text x="${fmt(W / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(options.title)}</text>`);
  }
  const all = [...tr, ...ev];
  if (all.length === 0) {
    parts.push(`<text x="${fmt(W / 2)}" y="${fmt(H / 2)}" text-anchor="middle" fill="#666">no loss data</text>`, '</svg>');
    return parts.join('\n');
  }
  const ty = (y: number) => (log ? Math.log10(y) : y);
  const xTicks = niceTicks(Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x)), 6);
  const yTicks = niceTicks(Math.min(...all.map((p) => ty(p.y))), Math.max(...all.map((p) => ty(p.y))), 5);
  const x0 = xTicks[0]!;
  const x1 = xTicks[xTicks.length - 1]!;
  const y0 = yTicks[0]!;
  const y1 = yTicks[yTicks.length - 1]!;
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.top + ph - ((ty(y) - y0) / (y1 - y0)) * ph;

  parts.push(`<g class="grid" stroke="#e5e5e5" stroke-width="1">`);
  for (const t of yTicks) parts.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${fmt(sy(log ? 10 ** t : t))}" y2="${fmt(sy(log ? 10 ** t : t))}"/>`);
  parts.push('</g>');
  parts.push(`<g class="axes" stroke="#333" stroke-width="1"><line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}"/><line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}"/></g>`);
  parts.push('<g class="y-ticks" text-anchor="end" fill="#333">');
  for (const t of yTicks) {
    const v = log ? 10 ** t : t;
    parts.push(`<text x="${m.left - 6}" y="${fmt(sy(v) + 4)}">${escapeXml(formatTick(v))}</text>`);
  }
  parts.push('</g>', '<g class="x-ticks" text-anchor="middle" fill="#333">');
  for (const t of xTicks) parts.push(`<text x="${fmt(sx(t))}" y="${m.top + ph + 16}">${escapeXml(formatTick(t))}</text>`);
  parts.push('</g>');
  parts.push(`<text x="${fmt(m.left + pw / 2)}" y="${H - 8}" text-anchor="middle" fill="#333">step</text>`);
  parts.push(`<text transform="translate(14 ${fmt(m.top + ph / 2)}) rotate(-90)" text-anchor="middle" fill="#333">loss${log ? ' (log)' : ''}</text>`);

  const poly = (pts: { x: number; y: number }[], color: string, cls: string, extra = '') =>
    `<polyline class="${cls}" fill="none" stroke="${color}" stroke-width="1.5"${extra} points="${pts.map((p) => `${fmt(sx(p.x))},${fmt(sy(p.y))}`).join(' ')}"/>`;
  const byStep = (a: { x: number }, b: { x: number }) => a.x - b.x;
  tr.sort(byStep);
  ev.sort(byStep);
  const smoothing = options.smoothing ?? 0;
  if (tr.length > 0) {
    if (smoothing > 0 && smoothing < 1) {
      parts.push(poly(tr, tc, 'train-raw', ' stroke-opacity="0.3"'));
      const sm = emaSmooth(tr.map((p) => p.y), smoothing);
      parts.push(poly(tr.map((p, i) => ({ x: p.x, y: sm[i]! })), tc, 'train'));
    } else {
      parts.push(poly(tr, tc, 'train'));
    }
  }
  if (ev.length > 0) {
    parts.push(poly(ev, ec, 'eval', ' stroke-dasharray="5 3"'));
    parts.push(`<g class="eval-points" fill="${ec}">`);
    for (const p of ev) parts.push(`<circle cx="${fmt(sx(p.x))}" cy="${fmt(sy(p.y))}" r="2.5"/>`);
    parts.push('</g>');
  }
  const legend: string[] = [];
  let lx = m.left + pw - 8;
  for (const [label, color, show] of [['eval loss', ec, ev.length > 0], ['train loss', tc, tr.length > 0]] as const) {
    if (!show) continue;
    lx -= 84;
    legend.push(`<line x1="${lx}" x2="${lx + 18}" y1="${m.top + 10}" y2="${m.top + 10}" stroke="${color}" stroke-width="2"/>`);
    legend.push(`<text x="${lx + 22}" y="${m.top + 14}" fill="#333">${label}</text>`);
  }
  parts.push(`<g class="legend">${legend.join('')}</g>`, '</svg>');
  return parts.join('\n');
}
