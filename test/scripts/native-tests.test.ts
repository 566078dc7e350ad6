// npm test counts ctest's results (scripts/native-tests.mjs) in its closing line.
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs script without types
import { junitCounts } from '../../scripts/native-tests.mjs';
// @ts-expect-error plain .mjs script without types
import { combine } from '../../scripts/test-summary.mjs';

const junit = (tests: number, failures: number, skipped = 0, disabled = 0) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="(empty)"\n\ttests="${tests}"\n\tfailures="${failures}"\n\tdisabled="${disabled}"\n\tskipped="${skipped}"\n\thostname=""\n\ttime="8"\n\t>\n\t<testcase name="json" classname="json" status="run"/>\n</testsuite>\n`;

describe('ctest counts', () => {
  it('reads passed, failed and skipped from the JUnit report', () => {
    expect(junitCounts(junit(3, 0))).toEqual({ passed: 3, failed: 0, skipped: 0 });
    expect(junitCounts(junit(3, 1))).toEqual({ passed: 2, failed: 1, skipped: 0 });
    expect(junitCounts(junit(4, 1, 1, 1))).toEqual({ passed: 1, failed: 1, skipped: 2 });
    expect(junitCounts('not xml')).toBeNull();
  });

  it('adds them to the vitest line, keeping its format', () => {
    const vitest = { passed: 10, failed: 0, skipped: 2, notes: ['v'], line: '10 passed, 0 failed, 2 skipped', ok: true };
    expect(combine(vitest, null)).toBe(vitest);
    expect(combine(vitest, { passed: 3, failed: 0, skipped: 0, notes: [], ok: true })).toMatchObject({ line: '13 passed, 0 failed, 2 skipped', ok: true });
    const bad = combine(vitest, { passed: 0, failed: 1, skipped: 0, notes: ['C++ tests (ctest) not built: x'], ok: false });
    expect(bad).toMatchObject({ line: '10 passed, 1 failed, 2 skipped', ok: false, notes: ['C++ tests (ctest) not built: x', 'v'] });
  });
});
