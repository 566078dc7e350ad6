/**
 * Cutting prose into chunks of a token budget on paragraph boundaries, falling back to sentence
 * boundaries (CJK aware: 。！？；… end a sentence without a following space) and, for a single
 * over-long sentence, to a plain cut.
 */
import { isCjk } from './markdown-text.js';

/** Sentences of a paragraph, punctuation and closing quotes kept with their sentence. */
export function splitSentences(paragraph: string): string[] {
  const out: string[] = [];
  const re = /[。！？!?；;…]+["'”’」』）)\]]*|\.+["'”’)\]]*(?=\s|$)/g;
  let start = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(paragraph)) !== null) {
    const end = match.index + match[0].length;
    const ascii = match[0][0] === '.' || match[0][0] === '!' || match[0][0] === '?' || match[0][0] === ';';
    // ASCII punctuation ends a sentence only before whitespace or the end (not in "3.14" or "a;b").
    if (ascii && end < paragraph.length && !/\s/.test(paragraph[end])) continue;
    const sentence = paragraph.slice(start, end).trim();
    if (sentence) out.push(sentence);
    start = end;
  }
  const rest = paragraph.slice(start).trim();
  if (rest) out.push(rest);
  return out;
}

/** Join sentences of one paragraph back: a space between Latin sentences, none after CJK punctuation. */
export function joinSentences(sentences: string[]): string {
  let out = '';
  for (const s of sentences) {
    if (out === '') out = s;
    else out += isCjk(out[out.length - 1]) || isCjk(s[0]) ? s : ` ${s}`;
  }
  return out;
}

/**
 * A tokenizer-free estimate: one token per CJK character, ~1.3 per Latin word, one per other
 * symbol. Within ~20% of BPE counts for English and Chinese prose; pass a real tokenizer for exact.
 */
export function estimateTokens(text: string): number {
  let cjk = 0;
  let other = 0;
  for (const ch of text) {
    if (isCjk(ch)) cjk++;
    else if (!/[\p{L}\p{N}\s]/u.test(ch)) other++;
  }
  const words = text.replace(/[^\p{L}\p{N}\s]/gu, ' ').split(/\s+/).filter((w) => w && !isCjk(w[0])).length;
  return cjk + Math.ceil(words * 1.3) + other;
}

export interface ChunkOptions {
  minTokens: number;
  maxTokens: number;
  countTokens: (text: string) => number;
}

interface Unit {
  text: string;
  tokens: number;
  /** Starts a new paragraph (joined with a blank line) rather than continuing one. */
  paragraphStart: boolean;
}

/**
 * Chunks of `minTokens`..`maxTokens` tokens (a chunk's count is the sum of its parts' counts).
 * Whole paragraphs are packed greedily; a paragraph that does not fit is split into sentences.
 * A short tail is merged into the previous chunk when that stays within maxTokens, kept when it
 * is at least half of minTokens, and dropped otherwise (reported through `dropped`).
 */
export function chunkParagraphs(paragraphs: string[], options: ChunkOptions): { chunks: string[]; dropped: number } {
  const { minTokens, maxTokens, countTokens } = options;
  const units: Unit[] = [];
  for (const paragraph of paragraphs) {
    const tokens = countTokens(paragraph);
    if (tokens <= maxTokens) {
      units.push({ text: paragraph, tokens, paragraphStart: true });
      continue;
    }
    splitSentences(paragraph).forEach((sentence, i) => {
      for (const piece of hardSplit(sentence, maxTokens, countTokens)) {
        units.push({ text: piece, tokens: countTokens(piece), paragraphStart: i === 0 && piece === sentence });
      }
    });
  }

  const chunks: Unit[][] = [];
  let current: Unit[] = [];
  let currentTokens = 0;
  for (const unit of units) {
    if (currentTokens + unit.tokens > maxTokens && current.length > 0) {
      if (currentTokens >= minTokens || unit.paragraphStart === false) {
        chunks.push(current);
        current = [];
        currentTokens = 0;
      } else {
        // Too short to close here: fill up to maxTokens with the paragraph's sentences.
        const sentences = splitSentences(unit.text);
        let placed = 0;
        for (const sentence of sentences) {
          const t = countTokens(sentence);
          if (currentTokens + t > maxTokens) break;
          current.push({ text: sentence, tokens: t, paragraphStart: placed === 0 });
          currentTokens += t;
          placed++;
        }
        chunks.push(current);
        current = [];
        currentTokens = 0;
        const rest = sentences.slice(placed);
        rest.forEach((sentence, i) => {
          const t = countTokens(sentence);
          current.push({ text: sentence, tokens: t, paragraphStart: i === 0 && placed === 0 });
          currentTokens += t;
        });
        continue;
      }
    }
    current.push(unit);
    currentTokens += unit.tokens;
  }
  let dropped = 0;
  if (current.length > 0) {
    const last = chunks[chunks.length - 1];
    const lastTokens = last ? last.reduce((n, u) => n + u.tokens, 0) : 0;
    if (currentTokens >= minTokens) chunks.push(current);
    else if (last && lastTokens + currentTokens <= maxTokens) last.push(...current);
    else if (currentTokens >= minTokens / 2) chunks.push(current);
    else dropped++;
  }
  return { chunks: chunks.map(renderChunk), dropped };
}

function renderChunk(units: Unit[]): string {
  const paragraphs: string[][] = [];
  for (const unit of units) {
    if (unit.paragraphStart || paragraphs.length === 0) paragraphs.push([unit.text]);
    else paragraphs[paragraphs.length - 1].push(unit.text);
  }
  return paragraphs.map(joinSentences).join('\n\n');
}

/** Cut a sentence longer than maxTokens at whitespace (or anywhere, for CJK) into fitting pieces. */
function hardSplit(sentence: string, maxTokens: number, countTokens: (t: string) => number): string[] {
  if (countTokens(sentence) <= maxTokens) return [sentence];
  const chars = Array.from(sentence);
  const pieces: string[] = [];
  let start = 0;
  while (start < chars.length) {
    let lo = start + 1;
    let hi = chars.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (countTokens(chars.slice(start, mid).join('')) <= maxTokens) lo = mid;
      else hi = mid - 1;
    }
    let end = lo;
    const space = chars.slice(start, end).lastIndexOf(' ');
    if (end < chars.length && space > 0) end = start + space + 1;
    pieces.push(chars.slice(start, end).join('').trim());
    start = end;
  }
  return pieces.filter(Boolean);
}
