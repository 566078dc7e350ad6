import { XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { emaSmooth, formatTick, niceTicks, renderLossCurveSvg } from '../../lib/eval/loss-curve-svg.js';

describe('niceTicks / formatTick / emaSmooth', () => {
  it('chooses round steps covering the range (hand-computed)', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(2.31, 3.87)).toEqual([2, 2.5, 3, 3.5, 4]);
    expect(niceTicks(0, 1000, 6)).toEqual([0, 200, 400, 600, 800, 1000]);
    const flat = niceTicks(5, 5);
    expect(flat[0]!).toBeLessThan(5);
    expect(flat[flat.length - 1]!).toBeGreaterThan(5);
  });

  it('formats tick labels compactly', () => {
    expect(formatTick(0.30000000000000004)).toBe('0.3');
    expect(formatTick(1200)).toBe('1200');
    expect(formatTick(250000)).toBe('2.5e5');
    expect(formatTick(0)).toBe('0');
  });

  it('debiased EMA like TensorBoard', () => {
    expect(emaSmooth([1, 1, 1], 0.6)).toEqual([1, 1, 1]);
    const s = emaSmooth([0, 10], 0.5); // last: 0 -> 5, weight: .5 -> .75
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo(20 / 3, 12);
  });
});

describe('renderLossCurveSvg', () => {
  const train = [
    { step: 0, loss: 2 },
    { step: 50, loss: 1.5 },
    { step: 100, loss: 1 },
  ];
  const evalL = [
    { step: 100, evalLoss: 1.2 },
    { step: 50, evalLoss: 1.8 },
  ];

  it('maps points to pixel coordinates (640x360, plot area 568x300 at (56,16))', () => {
    const svg = renderLossCurveSvg(train, evalL);
    expect(XMLValidator.validate(svg)).toBe(true);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360" viewBox="0 0 640 360"')).toBe(true);
    // x ticks 0..100 step 20, y ticks 1..2 step 0.2: x = 56 + step/100*568, y = 316 - (loss-1)*300
    expect(svg).toContain('class="train" fill="none" stroke="#1f77b4" stroke-width="1.5" points="56,16 340,166 624,316"');
    expect(svg).toContain('points="340,76 624,256"'); // eval sorted by step
    expect(svg).toContain('<circle cx="340" cy="76" r="2.5"/>');
    expect(svg).toContain('>train loss</text>');
    expect(svg).toContain('>eval loss</text>');
    expect(svg).toContain('>1.2</text>');
    expect(svg).not.toContain('<script');
    expect(renderLossCurveSvg(train, evalL)).toBe(svg); // deterministic
  });

  it('skips non-finite points, escapes the title, handles no data and log scale', () => {
    const svg = renderLossCurveSvg([...train, { step: 150, loss: Number.NaN }], [], { title: 'Run <a & "b">' });
    expect(XMLValidator.validate(svg)).toBe(true);
    expect(svg).toContain('Run &lt;a &amp; &quot;b&quot;&gt;');
    expect(svg).not.toContain('NaN');
    expect(svg).not.toContain('eval loss');
    const empty = renderLossCurveSvg([], []);
    expect(XMLValidator.validate(empty)).toBe(true);
    expect(empty).toContain('no loss data');
    const logSvg = renderLossCurveSvg([{ step: 1, loss: 10 }, { step: 2, loss: 0.1 }, { step: 3, loss: 0 }], [], { logScale: true });
    expect(XMLValidator.validate(logSvg)).toBe(true);
    expect(logSvg).toContain('loss (log)');
    expect((/class="train"[^>]*points="([^"]*)"/.exec(logSvg)![1]!).split(' ')).toHaveLength(2); // loss 0 skipped
  });

  it('adds a faint raw curve under the smoothed one', () => {
    const svg = renderLossCurveSvg(train, [], { smoothing: 0.6 });
    expect(svg).toContain('class="train-raw"');
    expect(svg).toContain('stroke-opacity="0.3"');
    expect(XMLValidator.validate(svg)).toBe(true);
  });
});
