/**
 * Robust extraction of a judge's score from free-form model output.
 *
 * Tried in order, first hit wins:
 * 1. a JSON object with a numeric (or numeric-string) `score` field inside a
 *    Markdown code fence (```json … ``` or ``` … ```);
 * 2. any balanced `{…}` in the text that parses as JSON and has `score`
 *    (the *last* one, since models often restate the format before answering);
 * 3. a loose `"score": 7` / `'score': 7` key-value (JSON with trailing
 *    commas, single quotes, comments…);
 * 4. prose: `Score: 7/10`, `score = 7`, `Rating: 7 out of 10`, `7/10`.
 *
 * A score outside [0, maxScore] or a non-number counts as malformed (`null`):
 * we never clamp, because a 15 "out of 10" means the judge ignored the rubric.
 */

export interface ParsedJudgeScore {
  /** Score on the judge's scale (0..maxScore). */
  score: number;
  /** Which rule matched (for diagnostics). */
  via: 'fenced-json' | 'json' | 'key-value' | 'prose';
}

const NUM = '(-?\\d+(?:\\.\\d+)?)';

function scoreFromObject(text: string): number | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const raw = (obj as Record<string, unknown>).score ?? (obj as Record<string, unknown>).Score;
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'string' && new RegExp(`^\\s*${NUM}\\s*(?:/\\s*\\d+)?\\s*$`).test(raw)) return parseFloat(raw);
  return undefined;
}

/** Every balanced top-level `{…}` substring (string-literal aware). */
function braceBlocks(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = -1;
  let inStr = false;
  let esc = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (esc) esc = false;
      else if (c === '\\') esc = true;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"' && depth > 0) inStr = true;
    else if (c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}' && depth > 0) {
      depth--;
      if (depth === 0) out.push(text.slice(start, i + 1));
    }
  }
  return out;
}

function inRange(x: number | undefined, max: number): x is number {
  return x !== undefined && Number.isFinite(x) && x >= 0 && x <= max;
}

/**
 * Parse a judge answer. Returns `null` when no in-range score can be found.
 * @param maxScore top of the scale, default 10.
 */
export function parseJudgeScore(text: string, maxScore = 10): ParsedJudgeScore | null {
  if (typeof text !== 'string' || text.trim() === '') return null;

  const fences = [...text.matchAll(/```[a-zA-Z]*\s*\n?([\s\S]*?)```/g)];
  for (const f of fences.reverse()) {
    for (const block of braceBlocks(f[1]!).reverse()) {
      const s = scoreFromObject(block);
      if (s !== undefined) return inRange(s, maxScore) ? { score: s, via: 'fenced-json' } : null;
    }
  }

  for (const block of braceBlocks(text).reverse()) {
    const s = scoreFromObject(block);
    if (s !== undefined) return inRange(s, maxScore) ? { score: s, via: 'json' } : null;
  }

  const kv = [...text.matchAll(new RegExp(`["']score["']\\s*:\\s*["']?${NUM}`, 'gi'))];
  if (kv.length > 0) {
    const s = parseFloat(kv[kv.length - 1]![1]!);
    return inRange(s, maxScore) ? { score: s, via: 'key-value' } : null;
  }

  const prose: RegExp[] = [
    new RegExp(`\\b(?:score|rating|grade)\\b[^0-9\\-\\n]{0,20}?${NUM}\\s*(?:/\\s*(\\d+)|out\\s+of\\s+(\\d+))?`, 'gi'),
    new RegExp(`(?<![\\d.])${NUM}\\s*(?:/|out\\s+of)\\s*(\\d+)\\b`, 'gi'),
  ];
  for (const re of prose) {
    const all = [...text.matchAll(re)];
    if (all.length === 0) continue;
    const m = all[all.length - 1]!;
    const s = parseFloat(m[1]!);
    const denom = m[2] ?? m[3];
    // "8/100" on a 0-10 rubric is ambiguous; only accept the rubric's own scale.
    if (denom !== undefined && Number(denom) !== maxScore) return null;
    return inRange(s, maxScore) ? { score: s, via: 'prose' } : null;
  }
  return null;
}
