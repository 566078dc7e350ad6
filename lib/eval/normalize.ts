/**
 * Text normalisation and tokenisation shared by the evaluation metrics.
 *
 * Two families live here:
 *
 * 1. **Answer normalisation** (`normalizeAnswer`, `answerTokens`) used by exact
 *    match and token F1. It follows the official SQuAD evaluation script
 *    (`normalize_answer` in SQuAD v1.1/v2.0 `evaluate-v*.py`), applied in this
 *    order:
 *      1. lowercase (`String.prototype.toLowerCase`, same as Python `str.lower`
 *         for all practical text);
 *      2. remove punctuation: every ASCII character of Python's
 *         `string.punctuation` (`!"#$%&'()*+,-./:;<=>?@[\]^_\`{|}~`) and, beyond
 *         SQuAD, every Unicode punctuation character (`\p{P}`), so CJK marks
 *         such as `，。！？「」、` disappear too (as in MLQA / CMRC 2018 scripts);
 *      3. remove the English articles `a`, `an`, `the` as whole words (a word
 *         boundary is a change between `[\p{L}\p{N}_]` and anything else,
 *         matching Python's Unicode `\b`);
 *      4. collapse whitespace runs to one space and trim (Python `str.split()`
 *         whitespace set).
 *    For pure-ASCII English this is byte-for-byte SQuAD's normalisation.
 *    Tokens for F1 are then the whitespace-separated words, except that every
 *    CJK character (Han ideographs, Hiragana, Katakana; see `isCjkCodePoint`)
 *    is a token of its own, so `北京大学` gives four tokens and `GPT-4模型`
 *    gives `gpt4`, `模`, `型`. Hangul is left word-based: Korean separates
 *    words with spaces.
 *
 * 2. **Python-compatible whitespace splitting** (`splitPyWhitespace`) so that
 *    ports of Python metrics (sacrebleu, rouge-score) split exactly as
 *    `str.split()` does.
 */

/** Characters Python's `str.split()` treats as whitespace (`str.isspace`). */
const PY_WS_CLASS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_WS_RUN = new RegExp(`[${PY_WS_CLASS}]+`, 'gu');

/** Split like Python's `str.split()` with no argument: no empty tokens. */
export function splitPyWhitespace(text: string): string[] {
  const out = text.split(PY_WS_RUN);
  return out.filter((t) => t.length > 0);
}

/** Collapse Python-whitespace runs to single spaces and trim. */
export function collapseWhitespace(text: string): string {
  return splitPyWhitespace(text).join(' ');
}

const CJK_RE = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/**
 * True for a code point written with one character per morpheme/syllable and
 * no spaces between words: Han ideographs (incl. extensions and compatibility
 * ideographs), Hiragana and Katakana. Punctuation is not included.
 */
export function isCjkCodePoint(cp: number): boolean {
  return CJK_RE.test(String.fromCodePoint(cp));
}

/** True when `ch` (one code point) is a CJK character per `isCjkCodePoint`. */
export function isCjkChar(ch: string): boolean {
  return CJK_RE.test(ch);
}

/** True if the text contains at least one CJK character. */
export function containsCjk(text: string): boolean {
  return CJK_RE.test(text);
}

/** ASCII punctuation exactly as Python's `string.punctuation`. */
export const ASCII_PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

const PUNCT_RE = /[\p{P}!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/gu;
const ARTICLES_RE = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

export interface NormalizeAnswerOptions {
  /** Remove English articles a/an/the (SQuAD). Default true. */
  removeArticles?: boolean;
}

/**
 * SQuAD-style answer normalisation (see the module comment for the exact
 * steps): lowercase, strip ASCII + Unicode punctuation, drop a/an/the,
 * collapse whitespace.
 *
 * @example normalizeAnswer('The  Eiffel-Tower!') === 'eiffeltower'
 */
export function normalizeAnswer(text: string, options: NormalizeAnswerOptions = {}): string {
  let s = text.toLowerCase();
  s = s.replace(PUNCT_RE, '');
  if (options.removeArticles ?? true) s = s.replace(ARTICLES_RE, ' ');
  return collapseWhitespace(s);
}

/**
 * Split already-normalised text into F1 tokens: whitespace-separated words,
 * with every CJK character a token of its own.
 */
export function splitCjkAware(text: string): string[] {
  const tokens: string[] = [];
  for (const word of splitPyWhitespace(text)) {
    let run = '';
    for (const ch of word) {
      if (CJK_RE.test(ch)) {
        if (run) tokens.push(run);
        run = '';
        tokens.push(ch);
      } else {
        run += ch;
      }
    }
    if (run) tokens.push(run);
  }
  return tokens;
}

/** `normalizeAnswer` followed by `splitCjkAware`: the tokens token-F1 compares. */
export function answerTokens(text: string, options: NormalizeAnswerOptions = {}): string[] {
  return splitCjkAware(normalizeAnswer(text, options));
}
