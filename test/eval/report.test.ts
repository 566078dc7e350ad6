import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { renderHtmlReport, renderMarkdownReport, writeReport, type ReportInput } from '../../lib/eval/report.js';

const input: ReportInput = {
  title: 'Qwen2.5-0.5B + LoRA r=8 <style>',
  meta: { dataset: 'lu-xun-essays', steps: 300 },
  columns: ['base', 'tuned'],
  rows: [
    { metric: 'ROUGE-L F', values: { base: 0.31234, tuned: 0.42 }, higherIsBetter: true },
    { metric: 'Perplexity', values: { base: 12.5, tuned: 9.75 }, higherIsBetter: false, digits: 2 },
    { metric: 'Judge | style', values: { base: null, tuned: 'n/a' } },
  ],
  trainLoss: [
    { step: 0, loss: 2 },
    { step: 100, loss: 1 },
  ],
  evalLoss: [{ step: 100, evalLoss: 1.2 }],
  notes: ['Base model scored <b>without</b> adapter.'],
};

let dir: string | undefined;
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('renderMarkdownReport', () => {
  it('renders a table with bold best values, escaped pipes/HTML and a linked loss curve', () => {
    expect(renderMarkdownReport(input)).toBe(
      [
        '# Qwen2.5-0.5B + LoRA r=8 &lt;style&gt;',
        '',
        '- **dataset**: lu-xun-essays',
        '- **steps**: 300',
        '',
        '## Metrics',
        '',
        '| Metric | base | tuned |',
        '|---|---:|---:|',
        '| ROUGE-L F | 0.3123 | **0.4200** |',
        '| Perplexity | 12.50 | **9.75** |',
        '| Judge \\| style | – | n/a |',
        '',
        '## Loss',
        '',
        '![Loss curve](loss-curve.svg)',
        '',
        '## Notes',
        '',
        'Base model scored &lt;b&gt;without&lt;/b&gt; adapter.',
        '',
      ].join('\n'),
    );
  });

  it('omits the loss section without loss data', () => {
    const md = renderMarkdownReport({ title: 't', columns: ['x'], rows: [{ metric: 'm', values: { x: 1 } }] }, { digits: 1 });
    expect(md).not.toContain('## Loss');
    expect(md).toContain('| m | 1.0 |');
  });
});

describe('renderHtmlReport', () => {
  it('is self-contained: escaped text, metrics table, inline well-formed SVG, no scripts or external resources', () => {
    const html = renderHtmlReport(input);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<title>Qwen2.5-0.5B + LoRA r=8 &lt;style&gt;</title>');
    expect(html).toContain('<th scope="row">ROUGE-L F</th><td class="num">0.3123</td><td class="num best">0.4200</td>');
    expect(html).toContain('<td class="num best">9.75</td>');
    expect(html).toContain('<th scope="row">Judge | style</th><td>–</td><td>n/a</td>');
    expect(html).toContain('<p>Base model scored &lt;b&gt;without&lt;/b&gt; adapter.</p>');
    expect(html).not.toMatch(/<script|\ssrc=|<link|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    const svg = /<svg[\s\S]*<\/svg>/.exec(html)![0];
    expect(XMLValidator.validate(svg)).toBe(true);
    expect(svg).toContain('class="train"');
    expect(svg).toContain('class="eval"');
  });
});

describe('writeReport', () => {
  it('writes Markdown plus SVG, or a single HTML file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'lorafit-report-'));
    const md = await writeReport(join(dir, 'sub', 'eval.md'), input);
    expect(md).toEqual([join(dir, 'sub', 'eval.md'), join(dir, 'sub', 'eval-loss-curve.svg')]);
    expect(await readFile(md[0]!, 'utf8')).toContain('![Loss curve](eval-loss-curve.svg)');
    expect(XMLValidator.validate(await readFile(md[1]!, 'utf8'))).toBe(true);
    const html = await writeReport(join(dir, 'eval.html'), input);
    expect(html).toEqual([join(dir, 'eval.html')]);
    expect(await readFile(html[0]!, 'utf8')).toContain('<figure class="loss-curve"><svg');
  });
});
