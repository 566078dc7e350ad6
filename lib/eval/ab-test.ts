/**
 * Blind A/B comparison of two answer sets (base vs tuned) rated by people.
 *
 * `createAbTest` shuffles the items with a seed and puts the tuned answer on
 * side A or B at random; raters see only `id, prompt, response_a, response_b`
 * and fill in `rating` with `A`, `B` or `tie` (`=` and `T` also mean tie;
 * case-insensitive) and optionally `comment`. The key (which side is which)
 * goes to a separate JSON file that raters never see. `scoreAbTest` joins a
 * filled-in file with its key and counts wins/ties/losses of the tuned model.
 *
 * Formats: JSONL (one object per line) or CSV (RFC 4180, all fields quoted,
 * header `id,prompt,response_a,response_b,rating,comment`). The same input and
 * seed always produce byte-identical files.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { LorafitEvalError, assertArg } from './errors.js';
import { csvLine, parseCsv } from './csv.js';
import { seededRandom, shuffled } from './random.js';

export type AbFormat = 'jsonl' | 'csv';
export type AbRating = 'A' | 'B' | 'tie';

export interface AbInput {
  prompts: readonly string[];
  base: readonly string[];
  tuned: readonly string[];
}

export interface AbRow {
  id: number;
  prompt: string;
  response_a: string;
  response_b: string;
  rating: string;
  comment: string;
}

export interface AbKey {
  version: 1;
  seed: number | string;
  /** For each blind id: the index in the input and which system is on side A. */
  items: { id: number; index: number; a: 'base' | 'tuned' }[];
}

export interface AbTest {
  rows: AbRow[];
  key: AbKey;
}

const HEADER = ['id', 'prompt', 'response_a', 'response_b', 'rating', 'comment'] as const;

/** Shuffle and blind. Ids are 1..N in presentation order. */
export function createAbTest(input: AbInput, options: { seed: number | string }): AbTest {
  const n = input.prompts.length;
  if (input.base.length !== n || input.tuned.length !== n) {
    throw new LorafitEvalError(
      'E_EVAL_LENGTH',
      `createAbTest: ${n} prompts, ${input.base.length} base answers, ${input.tuned.length} tuned answers; all must match`,
    );
  }
  assertArg(n > 0, 'createAbTest: no prompts');
  assertArg(options && (typeof options.seed === 'number' || typeof options.seed === 'string'), 'createAbTest: a seed is required');
  const rand = seededRandom(options.seed);
  const order = shuffled(
    Array.from({ length: n }, (_, i) => i),
    rand,
  );
  const rows: AbRow[] = [];
  const items: AbKey['items'] = [];
  order.forEach((index, pos) => {
    const tunedOnA = rand() < 0.5;
    const id = pos + 1;
    rows.push({
      id,
      prompt: input.prompts[index]!,
      response_a: tunedOnA ? input.tuned[index]! : input.base[index]!,
      response_b: tunedOnA ? input.base[index]! : input.tuned[index]!,
      rating: '',
      comment: '',
    });
    items.push({ id, index, a: tunedOnA ? 'tuned' : 'base' });
  });
  return { rows, key: { version: 1, seed: options.seed, items } };
}

/** Serialise rows for raters. */
export function formatAbRows(rows: readonly AbRow[], format: AbFormat): string {
  if (format === 'jsonl') return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  assertArg(format === 'csv', `unknown A/B format '${format}'; use 'jsonl' or 'csv'`);
  return [csvLine(HEADER), ...rows.map((r) => csvLine(HEADER.map((h) => r[h])))].join('\r\n') + '\r\n';
}

/** Write the blind file and its key file. */
export async function writeAbTest(
  input: AbInput,
  options: { seed: number | string; file: string; keyFile: string; format?: AbFormat },
): Promise<AbTest> {
  assertArg(options.file !== options.keyFile, 'writeAbTest: file and keyFile must differ');
  const format = options.format ?? (options.file.toLowerCase().endsWith('.csv') ? 'csv' : 'jsonl');
  const test = createAbTest(input, options);
  await writeFile(options.file, formatAbRows(test.rows, format), 'utf8');
  await writeFile(options.keyFile, JSON.stringify(test.key, null, 2) + '\n', 'utf8');
  return test;
}

export interface RatedRow {
  id: number;
  /** null when left empty. */
  rating: AbRating | null;
  comment: string;
  /** 1-based line in the rated file. */
  line: number;
}

function parseRating(raw: unknown, where: string): AbRating | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string') throw new LorafitEvalError('E_AB_FILE', `${where}: rating must be a string, got ${JSON.stringify(raw)}`);
  const v = raw.trim().toLowerCase();
  if (v === '') return null;
  if (v === 'a') return 'A';
  if (v === 'b') return 'B';
  if (v === 'tie' || v === 't' || v === '=') return 'tie';
  throw new LorafitEvalError('E_AB_FILE', `${where}: rating ${JSON.stringify(raw)} is not A, B or tie`);
}

function parseId(raw: unknown, where: string): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new LorafitEvalError('E_AB_FILE', `${where}: id ${JSON.stringify(raw)} is not a positive integer`);
  return n;
}

/** Parse a filled-in A/B file (format guessed from the content when omitted). */
export function parseAbRatings(text: string, format?: AbFormat, fileLabel = 'A/B file'): RatedRow[] {
  const fmt = format ?? (/^\ufeff?\s*\{/.test(text) ? 'jsonl' : 'csv');
  const out: RatedRow[] = [];
  if (fmt === 'jsonl') {
    text.split(/\r?\n/).forEach((lineText, i) => {
      const where = `${fileLabel} line ${i + 1}`;
      if (lineText.trim() === '') return;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(lineText);
      } catch (e) {
        throw new LorafitEvalError('E_AB_FILE', `${where}: not valid JSON (${(e as Error).message})`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        throw new LorafitEvalError('E_AB_FILE', `${where}: expected a JSON object`);
      }
      out.push({ id: parseId(obj.id, where), rating: parseRating(obj.rating, where), comment: String(obj.comment ?? ''), line: i + 1 });
    });
    return out;
  }
  const records = parseCsv(text, fileLabel);
  if (records.length === 0) throw new LorafitEvalError('E_AB_FILE', `${fileLabel}: empty file`);
  const header = records[0]!.fields.map((h) => h.trim().toLowerCase());
  const col = (name: string) => header.indexOf(name);
  if (col('id') < 0 || col('rating') < 0) {
    throw new LorafitEvalError('E_AB_FILE', `${fileLabel} line ${records[0]!.line}: header must contain 'id' and 'rating' (got ${header.join(',')})`);
  }
  for (const rec of records.slice(1)) {
    const where = `${fileLabel} line ${rec.line}`;
    if (rec.fields.length !== header.length) {
      throw new LorafitEvalError('E_AB_FILE', `${where}: ${rec.fields.length} fields, header has ${header.length}`);
    }
    out.push({
      id: parseId(rec.fields[col('id')], where),
      rating: parseRating(rec.fields[col('rating')], where),
      comment: col('comment') >= 0 ? rec.fields[col('comment')]! : '',
      line: rec.line,
    });
  }
  return out;
}

export interface AbResult {
  /** Rows where raters preferred the tuned answer. */
  wins: number;
  ties: number;
  /** Rows where raters preferred the base answer. */
  losses: number;
  /** wins + ties + losses. */
  rated: number;
  /** Rows left empty (only with allowUnrated). */
  unrated: number;
  winRate: number;
  tieRate: number;
  lossRate: number;
  /** (wins + ties / 2) / rated: 0.5 means no preference. */
  score: number;
  /** Two-sided exact sign test p-value of wins vs losses (ties dropped). */
  signTestP: number;
  /** Per input index: the rating from the tuned model's point of view. */
  perItem: { index: number; id: number; outcome: 'win' | 'tie' | 'loss' | null }[];
}

/** Two-sided exact binomial sign test, p = 0.5 (computed in log space, any n). */
export function signTest(wins: number, losses: number): number {
  const n = wins + losses;
  if (n === 0) return 1;
  const k = Math.max(wins, losses);
  let logC = 0; // log C(n, i)
  let tail = 0;
  for (let i = 0; i <= n; i++) {
    if (i >= k) tail += Math.exp(logC - n * Math.LN2);
    logC += Math.log(n - i) - Math.log(i + 1);
  }
  return Math.min(1, 2 * tail);
}

/** Join rated rows with the key and count the tuned model's wins, ties and losses. */
export function scoreAbTest(rows: readonly RatedRow[], key: AbKey, options: { allowUnrated?: boolean } = {}): AbResult {
  if (key?.version !== 1 || !Array.isArray(key.items)) {
    throw new LorafitEvalError('E_AB_FILE', 'A/B key: not a lorafit A/B key (expected {"version": 1, "items": [...]})');
  }
  const byId = new Map(key.items.map((k) => [k.id, k]));
  const seen = new Map<number, number>();
  let wins = 0;
  let ties = 0;
  let losses = 0;
  let unrated = 0;
  const perItem: AbResult['perItem'] = [];
  for (const r of rows) {
    const k = byId.get(r.id);
    if (!k) throw new LorafitEvalError('E_AB_FILE', `A/B file line ${r.line}: id ${r.id} is not in the key file`);
    if (seen.has(r.id)) throw new LorafitEvalError('E_AB_FILE', `A/B file line ${r.line}: id ${r.id} already rated on line ${seen.get(r.id)}`);
    seen.set(r.id, r.line);
    if (r.rating === null) {
      if (!options.allowUnrated) {
        throw new LorafitEvalError('E_AB_FILE', `A/B file line ${r.line}: id ${r.id} has no rating (use A, B or tie, or pass allowUnrated)`);
      }
      unrated++;
      perItem.push({ index: k.index, id: r.id, outcome: null });
      continue;
    }
    let outcome: 'win' | 'tie' | 'loss';
    if (r.rating === 'tie') outcome = 'tie';
    else outcome = (r.rating === 'A') === (k.a === 'tuned') ? 'win' : 'loss';
    if (outcome === 'win') wins++;
    else if (outcome === 'tie') ties++;
    else losses++;
    perItem.push({ index: k.index, id: r.id, outcome });
  }
  const missing = key.items.filter((k) => !seen.has(k.id)).map((k) => k.id);
  if (missing.length > 0) {
    if (!options.allowUnrated) {
      throw new LorafitEvalError('E_AB_FILE', `A/B file: ${missing.length} ids of the key are missing (${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''})`);
    }
    unrated += missing.length;
  }
  const rated = wins + ties + losses;
  const rate = (x: number) => (rated ? x / rated : 0);
  perItem.sort((a, b) => a.index - b.index);
  return {
    wins,
    ties,
    losses,
    rated,
    unrated,
    winRate: rate(wins),
    tieRate: rate(ties),
    lossRate: rate(losses),
    score: rated ? (wins + ties / 2) / rated : 0.5,
    signTestP: signTest(wins, losses),
    perItem,
  };
}

/** Read a filled-in file and its key from disk and score them. Errors name the file and line. */
export async function scoreAbFiles(file: string, keyFile: string, options: { allowUnrated?: boolean; format?: AbFormat } = {}): Promise<AbResult> {
  const [text, keyText] = await Promise.all([readFile(file, 'utf8'), readFile(keyFile, 'utf8')]);
  let key: AbKey;
  try {
    key = JSON.parse(keyText);
  } catch (e) {
    throw new LorafitEvalError('E_AB_FILE', `A/B key ${keyFile}: not valid JSON (${(e as Error).message})`);
  }
  const format = options.format ?? (file.toLowerCase().endsWith('.csv') ? 'csv' : file.toLowerCase().endsWith('.jsonl') ? 'jsonl' : undefined);
  try {
    return scoreAbTest(parseAbRatings(text, format, file), key, options);
  } catch (e) {
    if (e instanceof LorafitEvalError && e.code === 'E_AB_FILE' && e.message.startsWith('A/B file')) {
      throw new LorafitEvalError('E_AB_FILE', e.message.replace(/^A\/B file/, file));
    }
    throw e;
  }
}
