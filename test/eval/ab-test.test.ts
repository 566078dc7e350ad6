import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAbTest,
  formatAbRows,
  parseAbRatings,
  scoreAbFiles,
  scoreAbTest,
  signTest,
  writeAbTest,
  type AbKey,
} from '../../lib/eval/ab-test.js';
import { parseCsv } from '../../lib/eval/csv.js';
import { LorafitEvalError } from '../../lib/eval/errors.js';

const N = 10;
const input = {
  prompts: Array.from({ length: N }, (_, i) => `prompt ${i}: "quoted", with comma\nand a second line；中文`),
  base: Array.from({ length: N }, (_, i) => `base answer ${i}`),
  tuned: Array.from({ length: N }, (_, i) => `tuned answer ${i}`),
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lorafit-ab-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A simulated rater: prefers tuned on input indices 0-5, tie on 6, base on 7-9. */
function rate(key: AbKey, id: number): string {
  const k = key.items.find((x) => x.id === id)!;
  if (k.index === 6) return 'tie';
  const tunedSide = k.a === 'tuned' ? 'A' : 'B';
  const baseSide = tunedSide === 'A' ? 'B' : 'A';
  return k.index <= 5 ? tunedSide : baseSide;
}

describe('createAbTest', () => {
  it('is deterministic per seed, shuffles, randomises sides and keeps pairs together', () => {
    const t1 = createAbTest(input, { seed: 'exp-1' });
    const t2 = createAbTest(input, { seed: 'exp-1' });
    const t3 = createAbTest(input, { seed: 'exp-2' });
    expect(formatAbRows(t1.rows, 'csv')).toBe(formatAbRows(t2.rows, 'csv'));
    expect(t1.key).toEqual(t2.key);
    expect(t1.key.items.map((k) => k.index)).not.toEqual(t3.key.items.map((k) => k.index));
    expect(t1.key.items.map((k) => k.index)).not.toEqual([...Array(N).keys()]);
    expect(t1.rows.map((r) => r.id)).toEqual([...Array(N).keys()].map((i) => i + 1));
    for (const k of t1.key.items) {
      const row = t1.rows[k.id - 1]!;
      expect(row.prompt).toBe(input.prompts[k.index]);
      expect(k.a === 'tuned' ? row.response_a : row.response_b).toBe(input.tuned[k.index]);
      expect(k.a === 'tuned' ? row.response_b : row.response_a).toBe(input.base[k.index]);
    }
    const big = createAbTest(
      { prompts: Array(400).fill('p'), base: Array(400).fill('b'), tuned: Array(400).fill('t') },
      { seed: 7 },
    );
    const tunedOnA = big.key.items.filter((k) => k.a === 'tuned').length;
    expect(tunedOnA).toBeGreaterThan(160); // ~Binomial(400, .5): outside 160..240 has p < 1e-4
    expect(tunedOnA).toBeLessThan(240);
  });

  it('rows carry nothing that reveals the side', () => {
    const t = createAbTest(input, { seed: 1 });
    expect(Object.keys(t.rows[0]!)).toEqual(['id', 'prompt', 'response_a', 'response_b', 'rating', 'comment']);
    expect(formatAbRows(t.rows, 'jsonl')).not.toMatch(/tuned"|base"|index/);
  });

  it('rejects mismatched lengths', () => {
    expect(() => createAbTest({ prompts: ['a'], base: [], tuned: ['t'] }, { seed: 1 })).toThrowError(/all must match/);
  });
});

describe('A/B files round trip', () => {
  for (const format of ['csv', 'jsonl'] as const) {
    it(`${format}: write, fill in, score (6 wins, 1 tie, 3 losses)`, async () => {
      const file = join(dir, `ab.${format}`);
      const keyFile = join(dir, `ab-key-${format}.json`);
      const test = await writeAbTest(input, { seed: 2024, file, keyFile });
      const key = JSON.parse(await readFile(keyFile, 'utf8')) as AbKey;
      expect(key).toEqual(test.key);
      const written = await readFile(file, 'utf8');
      let filled: string;
      if (format === 'csv') {
        const recs = parseCsv(written);
        expect(recs[0]!.fields).toEqual(['id', 'prompt', 'response_a', 'response_b', 'rating', 'comment']);
        expect(recs[1]!.fields[1]).toBe(test.rows[0]!.prompt); // quotes, commas, newlines survive
        filled = [recs[0]!.fields, ...recs.slice(1).map((r) => [...r.fields.slice(0, 4), rate(key, Number(r.fields[0])), 'ok, "fine"'])]
          .map((f) => f.map((x) => `"${x.replaceAll('"', '""')}"`).join(','))
          .join('\r\n');
      } else {
        filled = written
          .trim()
          .split('\n')
          .map((l) => {
            const o = JSON.parse(l);
            return JSON.stringify({ ...o, rating: rate(key, o.id).toLowerCase() });
          })
          .join('\n');
      }
      await writeFile(file, filled, 'utf8');
      const r = await scoreAbFiles(file, keyFile);
      expect(r).toMatchObject({ wins: 6, ties: 1, losses: 3, rated: 10, unrated: 0 });
      expect(r.winRate).toBeCloseTo(0.6, 12);
      expect(r.tieRate).toBeCloseTo(0.1, 12);
      expect(r.lossRate).toBeCloseTo(0.3, 12);
      expect(r.score).toBeCloseTo(0.65, 12);
      // sign test, 6 wins vs 3 losses: 2 * (C(9,6)+C(9,7)+C(9,8)+C(9,9)) / 512 = 2 * 130 / 512
      expect(r.signTestP).toBeCloseTo(260 / 512, 12);
      expect(r.perItem.map((p) => p.outcome)).toEqual(['win', 'win', 'win', 'win', 'win', 'win', 'tie', 'loss', 'loss', 'loss']);
    });
  }
});

describe('malformed rated files name the line', () => {
  const key: AbKey = { version: 1, seed: 1, items: [1, 2, 3].map((id) => ({ id, index: id - 1, a: 'tuned' as const })) };
  const header = '"id","prompt","response_a","response_b","rating","comment"';

  function err(fn: () => unknown): LorafitEvalError {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(LorafitEvalError);
      expect((e as LorafitEvalError).code).toBe('E_AB_FILE');
      return e as LorafitEvalError;
    }
    throw new Error('expected E_AB_FILE');
  }

  it('bad rating value, counting lines inside multi-line fields', () => {
    const csv = `${header}\n"1","multi\nline\nprompt","a","b","A",""\n"2","p","a","b","C",""\n`;
    expect(err(() => parseAbRatings(csv, 'csv', 'ratings.csv')).message).toBe('ratings.csv line 5: rating "C" is not A, B or tie');
  });

  it('unterminated quote, field count, bad id, bad JSON', () => {
    expect(err(() => parseAbRatings(`${header}\n"1","p","a","b","A`, 'csv')).message).toMatch(/line 2: unterminated quoted field/);
    expect(err(() => parseAbRatings(`${header}\n"1","p","a","A"\n`, 'csv')).message).toMatch(/line 2: 4 fields, header has 6/);
    expect(err(() => parseAbRatings(`${header}\n"x","p","a","b","A",""\n`, 'csv')).message).toMatch(/line 2: id "x"/);
    expect(err(() => parseAbRatings('{"id":1,"rating":"A"}\n\n{"id":2,"rating":"B"\n', 'jsonl')).message).toMatch(/^A\/B file line 3: not valid JSON/);
    expect(err(() => parseAbRatings('"id","prompt"\n"1","p"\n', 'csv')).message).toMatch(/line 1: header must contain 'id' and 'rating'/);
  });

  it('unknown, duplicate, unrated and missing ids', () => {
    const rows = (s: string) => parseAbRatings(s, 'jsonl');
    expect(err(() => scoreAbTest(rows('{"id":9,"rating":"A"}'), key)).message).toBe('A/B file line 1: id 9 is not in the key file');
    expect(err(() => scoreAbTest(rows('{"id":1,"rating":"A"}\n{"id":1,"rating":"B"}'), key)).message).toBe(
      'A/B file line 2: id 1 already rated on line 1',
    );
    expect(err(() => scoreAbTest(rows('{"id":1,"rating":""}'), key)).message).toMatch(/line 1: id 1 has no rating/);
    expect(err(() => scoreAbTest(rows('{"id":1,"rating":"A"}'), key)).message).toMatch(/2 ids of the key are missing \(2, 3\)/);
    const partial = scoreAbTest(rows('{"id":1,"rating":"A"}\n{"id":2,"rating":" "}'), key, { allowUnrated: true });
    expect(partial).toMatchObject({ wins: 1, rated: 1, unrated: 2, winRate: 1 });
  });

  it('scoreAbFiles names the file', async () => {
    const file = join(dir, 'bad.jsonl');
    const keyFile = join(dir, 'bad-key.json');
    await writeFile(file, '{"id":1,"rating":"A"}\n{"id":2,"rating":"maybe"}\n');
    await writeFile(keyFile, JSON.stringify(key));
    await expect(scoreAbFiles(file, keyFile)).rejects.toThrowError(`${file} line 2: rating "maybe" is not A, B or tie`);
    await writeFile(keyFile, 'not json');
    await expect(scoreAbFiles(file, keyFile)).rejects.toThrowError(/A\/B key .*not valid JSON/);
  });
});

describe('signTest', () => {
  it('matches hand-computed binomial tails', () => {
    expect(signTest(8, 2)).toBeCloseTo(112 / 1024, 12); // 2*(45+10+1)/1024
    expect(signTest(10, 0)).toBeCloseTo(2 / 1024, 12);
    expect(signTest(5, 5)).toBe(1);
    expect(signTest(0, 0)).toBe(1);
    expect(signTest(600, 400)).toBeLessThan(1e-9);
    expect(signTest(600, 400)).toBeGreaterThan(0);
  });
});
