/**
 * Evaluation report writer: Markdown and a self-contained HTML page (inline
 * CSS and SVG, no scripts, no external resources) with a metrics table and,
 * when loss histories are given, the loss curve from `loss-curve-svg.ts`.
 *
 * Markdown cannot inline SVG portably, so `renderMarkdownReport` links an
 * image file (`lossCurveFile`, default `loss-curve.svg`); `writeReport` writes
 * that file next to the Markdown.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { assertArg } from './errors.js';
import { escapeXml, renderLossCurveSvg, type EvalLossPoint, type TrainLossPoint } from './loss-curve-svg.js';

export type MetricValue = number | string | null | undefined;

export interface MetricRow {
  /** Metric name, e.g. "ROUGE-L F". */
  metric: string;
  /** Value per column (system), e.g. { base: 0.31, tuned: 0.42 }. */
  values: Readonly<Record<string, MetricValue>>;
  /** Decimal places for numbers in this row (default: report `digits`). */
  digits?: number;
  /** If set, the best numeric value of the row is shown in bold. */
  higherIsBetter?: boolean;
}

export interface ReportInput {
  title: string;
  /** Column order of the metrics table, e.g. ['base', 'tuned']. */
  columns: readonly string[];
  rows: readonly MetricRow[];
  /** Training loss history. */
  trainLoss?: readonly TrainLossPoint[];
  /** Evaluation loss history. */
  evalLoss?: readonly EvalLossPoint[];
  /** Free-text paragraphs (plain text; escaped) after the table. */
  notes?: readonly string[];
  /** Key/value facts shown under the title (model, adapter, dataset, date…). */
  meta?: Readonly<Record<string, string | number>>;
}

export interface ReportOptions {
  /** Default decimal places for numbers. Default 4. */
  digits?: number;
  /** Relative path of the loss-curve image in Markdown. Default 'loss-curve.svg'. */
  lossCurveFile?: string;
  /** Extra options for the SVG. */
  svgWidth?: number;
  svgHeight?: number;
}

function cell(v: MetricValue, digits: number): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return Number.isFinite(v) ? v.toFixed(digits) : String(v);
  return v;
}

function bestColumns(row: MetricRow, columns: readonly string[]): Set<string> {
  if (row.higherIsBetter === undefined) return new Set();
  const nums = columns.filter((c) => typeof row.values[c] === 'number' && Number.isFinite(row.values[c]));
  if (nums.length < 2) return new Set();
  const vals = nums.map((c) => row.values[c] as number);
  const best = row.higherIsBetter ? Math.max(...vals) : Math.min(...vals);
  return new Set(nums.filter((c) => row.values[c] === best));
}

function hasLoss(input: ReportInput): boolean {
  return (input.trainLoss?.length ?? 0) > 0 || (input.evalLoss?.length ?? 0) > 0;
}

function validate(input: ReportInput): void {
  assertArg(typeof input?.title === 'string', 'report: title must be a string');
  assertArg(Array.isArray(input.columns) && input.columns.length > 0, 'report: columns must list at least one system');
  assertArg(Array.isArray(input.rows), 'report: rows must be an array');
}

/** Plain text for Markdown: HTML-significant characters become entities, so renderers show them literally. */
function mdText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escape Markdown table cell content. */
function mdCell(text: string): string {
  return mdText(text).replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

/** Render the loss-curve SVG for a report (or undefined without loss data). */
export function renderReportSvg(input: ReportInput, options: ReportOptions = {}): string | undefined {
  if (!hasLoss(input)) return undefined;
  return renderLossCurveSvg(input.trainLoss ?? [], input.evalLoss ?? [], {
    title: 'Loss',
    width: options.svgWidth,
    height: options.svgHeight,
  });
}

export function renderMarkdownReport(input: ReportInput, options: ReportOptions = {}): string {
  validate(input);
  const digits = options.digits ?? 4;
  const out: string[] = [`# ${mdText(input.title.replace(/\r?\n/g, ' '))}`, ''];
  if (input.meta && Object.keys(input.meta).length > 0) {
    for (const [k, v] of Object.entries(input.meta)) out.push(`- **${mdCell(k)}**: ${mdCell(String(v))}`);
    out.push('');
  }
  out.push('## Metrics', '');
  out.push(`| Metric | ${input.columns.map(mdCell).join(' | ')} |`);
  out.push(`|---|${input.columns.map(() => '---:').join('|')}|`);
  for (const row of input.rows) {
    const best = bestColumns(row, input.columns);
    const cells = input.columns.map((c) => {
      const t = mdCell(cell(row.values[c], row.digits ?? digits));
      return best.has(c) ? `**${t}**` : t;
    });
    out.push(`| ${mdCell(row.metric)} | ${cells.join(' | ')} |`);
  }
  out.push('');
  if (hasLoss(input)) out.push('## Loss', '', `![Loss curve](${options.lossCurveFile ?? 'loss-curve.svg'})`, '');
  if (input.notes && input.notes.length > 0) {
    out.push('## Notes', '');
    for (const n of input.notes) out.push(mdText(n), '');
  }
  return out.join('\n');
}

const CSS = `body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Noto Sans CJK SC",sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.35rem .7rem}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:700}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}
figure{margin:1rem 0}`;

export function renderHtmlReport(input: ReportInput, options: ReportOptions = {}): string {
  validate(input);
  const digits = options.digits ?? 4;
  const e = escapeXml;
  const out: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${e(input.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<h1>${e(input.title)}</h1>`,
  ];
  if (input.meta && Object.keys(input.meta).length > 0) {
    out.push('<dl>');
    for (const [k, v] of Object.entries(input.meta)) out.push(`<dt>${e(k)}</dt><dd>${e(String(v))}</dd>`);
    out.push('</dl>');
  }
  out.push('<h2>Metrics</h2>', '<table class="metrics">', `<thead><tr><th>Metric</th>${input.columns.map((c) => `<th>${e(c)}</th>`).join('')}</tr></thead>`, '<tbody>');
  for (const row of input.rows) {
    const best = bestColumns(row, input.columns);
    const tds = input.columns.map((c) => {
      const v = row.values[c];
      const cls = [typeof v === 'number' ? 'num' : '', best.has(c) ? 'best' : ''].filter(Boolean).join(' ');
      return `<td${cls ? ` class="${cls}"` : ''}>${e(cell(v, row.digits ?? digits))}</td>`;
    });
    out.push(`<tr><th scope="row">${e(row.metric)}</th>${tds.join('')}</tr>`);
  }
  out.push('</tbody>', '</table>');
  const svg = renderReportSvg(input, options);
  if (svg) out.push('<h2>Loss</h2>', `<figure class="loss-curve">${svg}</figure>`);
  if (input.notes && input.notes.length > 0) {
    out.push('<h2>Notes</h2>');
    for (const n of input.notes) out.push(`<p>${e(n)}</p>`);
  }
  out.push('</body>', '</html>', '');
  return out.join('\n');
}

/**
 * Write the report. `path` ending in `.html`/`.htm` writes HTML only;
 * otherwise Markdown plus, when there is loss data, the SVG next to it.
 * Returns the paths written.
 */
export async function writeReport(path: string, input: ReportInput, options: ReportOptions = {}): Promise<string[]> {
  await mkdir(dirname(path), { recursive: true });
  if (/\.html?$/i.test(path)) {
    await writeFile(path, renderHtmlReport(input, options), 'utf8');
    return [path];
  }
  const svgName = options.lossCurveFile ?? `${basename(path).replace(/\.[^.]*$/, '')}-loss-curve.svg`;
  await writeFile(path, renderMarkdownReport(input, { ...options, lossCurveFile: svgName }), 'utf8');
  const svg = renderReportSvg(input, options);
  if (!svg) return [path];
  const svgPath = join(dirname(path), svgName);
  await writeFile(svgPath, svg + '\n', 'utf8');
  return [path, svgPath];
}
