/**
 * Ports of sacrebleu's BLEU tokenisers (sacrebleu 2.x,
 * `sacrebleu/tokenizers/tokenizer_{13a,re,zh,char,none}.py`). Each returns the
 * tokenised line as one string with single spaces, as sacrebleu does; BLEU
 * then splits it on whitespace.
 */
import { collapseWhitespace } from './normalize.js';

export type BleuTokenizerName = '13a' | 'zh' | 'char' | 'none';

/** Python `str.strip()` / `str.rstrip()` whitespace (see `normalize.ts`). */
const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const RSTRIP_RE = new RegExp(`[${PY_WS}]+$`, 'u');
const LSTRIP_RE = new RegExp(`^[${PY_WS}]+`, 'u');

export function pyRstrip(s: string): string {
  return s.replace(RSTRIP_RE, '');
}

export function pyStrip(s: string): string {
  return pyRstrip(s).replace(LSTRIP_RE, '');
}

/**
 * `TokenizerRegexp`: the language-dependent part of mteval-v13a, shared by
 * the `13a` and `zh` tokenisers.
 */
export function tokenizeRegexp(line: string): string {
  let s = line;
  // Isolate symbols: {|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ /
  s = s.replace(/([{-~[-`\x20-&(-+:-@\/])/gu, ' $1 ');
  // Period and comma unless preceded by a digit.
  s = s.replace(/([^0-9])([.,])/gu, '$1 $2 ');
  // Period and comma unless followed by a digit.
  s = s.replace(/([.,])([^0-9])/gu, ' $1 $2');
  // Dash when preceded by a digit.
  s = s.replace(/([0-9])(-)/gu, '$1 $2 ');
  return collapseWhitespace(s);
}

/** sacrebleu's default `13a` tokeniser (mteval-v13a.pl, used by WMT). */
export function tokenize13a(line: string): string {
  let s = line.replaceAll('<skipped>', '').replaceAll('-\n', '').replaceAll('\n', ' ');
  if (s.includes('&')) {
    s = s.replaceAll('&quot;', '"').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
  }
  return tokenizeRegexp(` ${s} `);
}

/**
 * Code point ranges sacrebleu's `zh` tokeniser treats as "Chinese"
 * (`_UCODE_RANGES`). sacrebleu compares one-character strings against these
 * bounds as *strings*; two of its bounds are written `u'\u20000'` and
 * `u'\u2f800'`, which Python reads as two characters (`'\u2000' + '0'`), so the
 * effective ranges are U+2001..U+2A6D and U+2F81..U+2FA1 (astral Extension B
 * characters are *not* split). We reproduce that behaviour exactly.
 */
const ZH_RANGES: readonly (readonly [number, number])[] = [
  [0x3400, 0x4db5],
  [0x4e00, 0x9fa5],
  [0x9fa6, 0x9fbb],
  [0xf900, 0xfa2d],
  [0xfa30, 0xfa6a],
  [0xfa70, 0xfad9],
  [0x2001, 0x2a6d], // as written in sacrebleu: ('\u20000', '\u2a6d6')
  [0x2f81, 0x2fa1], // as written in sacrebleu: ('\u2f800', '\u2fa1d')
  [0xff00, 0xffef],
  [0x2e80, 0x2eff],
  [0x3000, 0x303f],
  [0x31c0, 0x31ef],
  [0x2f00, 0x2fdf],
  [0x2ff0, 0x2fff],
  [0x3100, 0x312f],
  [0x31a0, 0x31bf],
  [0xfe10, 0xfe1f],
  [0xfe30, 0xfe4f],
  [0x2600, 0x26ff],
  [0x2700, 0x27bf],
  [0x3200, 0x32ff],
  [0x3300, 0x33ff],
];

/** True if sacrebleu's `zh` tokeniser splits this code point off as a token. */
export function isSacrebleuChineseCodePoint(cp: number): boolean {
  for (const [lo, hi] of ZH_RANGES) if (cp >= lo && cp <= hi) return true;
  return false;
}

/** sacrebleu's `zh` tokeniser: every Chinese character a token, the rest as 13a's regexps. */
export function tokenizeZh(line: string): string {
  let out = '';
  for (const ch of pyStrip(line)) {
    out += isSacrebleuChineseCodePoint(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
  }
  return tokenizeRegexp(out);
}

/** sacrebleu's `char` tokeniser: every non-space character a token. */
export function tokenizeChar(line: string): string {
  return collapseWhitespace(Array.from(line).join(' '));
}

/** Returns the tokeniser function for a sacrebleu tokeniser name. */
export function bleuTokenizer(name: BleuTokenizerName): (line: string) => string {
  switch (name) {
    case '13a':
      return tokenize13a;
    case 'zh':
      return tokenizeZh;
    case 'char':
      return tokenizeChar;
    case 'none':
      return (line) => line;
  }
}
