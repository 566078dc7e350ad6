/**
 * Markdown to plain prose paragraphs, for learning an author's writing style: front matter is
 * parsed off; code (fenced, indented, Jekyll highlight blocks), images, tables, HTML blocks,
 * comments, reference definitions and footnotes are dropped; link text, emphasis text, inline
 * code text, headings, list items and quotes are kept as plain text. Hard-wrapped lines of one
 * paragraph are joined (with a space, or without one between CJK characters).
 */

export interface FrontMatter {
  data: Record<string, string | string[]>;
  body: string;
}

/** Split YAML front matter (`---` ... `---`) off a post; simple `key: value` and `- item` lists only. */
export function parseFrontMatter(source: string): FrontMatter {
  const text = source.replace(/^\ufeff/, '').replace(/\r\n?/g, '\n');
  const match = /^---[ \t]*\n([\s\S]*?)\n(?:---|\.\.\.)[ \t]*(?:\n|$)/.exec(text);
  if (!match) return { data: {}, body: text };
  const data: Record<string, string | string[]> = {};
  let listKey: string | null = null;
  for (const line of match[1].split('\n')) {
    const item = /^\s+-\s+(.*)$/.exec(line);
    if (item && listKey !== null) {
      (data[listKey] as string[]).push(unquote(item[1]));
      continue;
    }
    const pair = /^([A-Za-z0-9_-]+):\s*(.*)$/.exec(line);
    if (!pair) continue;
    const [, key, raw] = pair;
    if (raw === '') {
      data[key] = [];
      listKey = key;
    } else {
      listKey = null;
      const inline = /^\[(.*)\]$/.exec(raw.trim());
      data[key] = inline ? inline[1].split(',').map((s) => unquote(s)).filter(Boolean) : unquote(raw);
    }
  }
  return { data, body: text.slice(match[0].length) };
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) return v.slice(1, -1);
  return v;
}

const CJK = /[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]/;

/** True when the character is CJK (ideographs, kana, CJK and full-width punctuation). */
export function isCjk(ch: string | undefined): boolean {
  return ch !== undefined && CJK.test(ch);
}

const DROPPED_HTML_BLOCKS = /<(script|style|pre|table|iframe|video|audio|svg|figure|object|noscript)\b[\s\S]*?<\/\1\s*>/gi;

/** Plain paragraphs of a Markdown body (front matter already removed). */
export function markdownToParagraphs(body: string): string[] {
  let text = body.replace(/\r\n?/g, '\n');
  text = text.replace(/<!--[\s\S]*?-->/g, '\n');
  text = text.replace(/{%-?\s*(highlight|raw|codeblock)\b[\s\S]*?{%-?\s*end\1\s*-?%}/g, '\n');
  text = text.replace(/{%[\s\S]*?%}/g, '').replace(/{{[\s\S]*?}}/g, '');
  text = text.replace(DROPPED_HTML_BLOCKS, '\n');
  text = htmlBlocksToParagraphBreaks(text);

  const paragraphs: string[] = [];
  let current: string[] = [];
  let fence: string | null = null;
  let previousBlank = true;
  let inIndentedCode = false;
  let lastWasListItem = false;
  const flush = () => {
    if (current.length > 0) paragraphs.push(joinLines(current));
    current = [];
  };

  for (const line of text.split('\n')) {
    const fenceMatch = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence !== null) {
      if (fenceMatch && fenceMatch[1][0] === fence[0] && fenceMatch[1].length >= fence.length) fence = null;
      continue;
    }
    if (fenceMatch) {
      flush();
      fence = fenceMatch[1];
      continue;
    }
    if (line.trim() === '') {
      flush();
      previousBlank = true;
      continue;
    }
    const indented = /^(?: {4}|\t)/.test(line) && !/^\s*<[A-Za-z/]/.test(line);
    if (indented && (inIndentedCode || (previousBlank && !lastWasListItem))) {
      inIndentedCode = true;
      previousBlank = false;
      continue;
    }
    inIndentedCode = false;
    const wasBlank = previousBlank;
    previousBlank = false;
    const trimmed = line.trim();

    if (/^(?:[-*_]\s*){3,}$/.test(trimmed) || /^=+$/.test(trimmed) || (/^-+$/.test(trimmed) && current.length > 0)) {
      flush(); // horizontal rule or setext underline: the text above stays a paragraph
      continue;
    }
    if (/^\|.*\|?$/.test(trimmed) || /^:?-{3,}:?\s*\|/.test(trimmed)) continue; // table rows
    if (/^\[[^\]]+\]:\s*\S/.test(trimmed)) continue; // reference and footnote definitions
    if (/^<\/?[A-Za-z][^>]*>$/.test(trimmed) && !/^<(?:a|code|em|strong|b|i|span)\b/i.test(trimmed)) continue;

    const heading = /^#{1,6}\s+(.*?)\s*#*$/.exec(trimmed);
    if (heading) {
      flush();
      current.push(heading[1]);
      flush();
      lastWasListItem = false;
      continue;
    }
    let content = trimmed.replace(/^(?:>\s?)+/, '');
    const listItem = /^(?:[-*+]|\d{1,3}[.)])\s+(.*)$/.exec(content);
    if (listItem) {
      flush();
      content = listItem[1];
      lastWasListItem = true;
    } else if (wasBlank) {
      lastWasListItem = false;
    }
    current.push(content);
  }
  flush();
  return paragraphs.map(cleanInline).filter((p) => /[\p{L}\p{N}]/u.test(p));
}

const BLOCK_TAG = /<br\s*\/?>|<\/?(?:p|div|blockquote|li|ul|ol|h[1-6]|section|article|header|footer)\b[^>]*>/gi;

/**
 * HTML exported from other sites (Zhihu answers, WordPress) marks paragraphs with `<p>`, `<br>` and
 * friends instead of blank lines: turn those tags into blank lines, outside fenced code.
 */
function htmlBlocksToParagraphBreaks(text: string): string {
  let fence: string | null = null;
  return text
    .split('\n')
    .map((line) => {
      const f = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
      if (fence !== null) {
        if (f && f[1][0] === fence[0] && f[1].length >= fence.length) fence = null;
        return line;
      }
      if (f) {
        fence = f[1];
        return line;
      }
      if (!BLOCK_TAG.test(line)) return line;
      BLOCK_TAG.lastIndex = 0;
      return line
        .replace(BLOCK_TAG, '\n\n')
        .split('\n')
        .map((part) => part.trim())
        .join('\n');
    })
    .join('\n');
}

function joinLines(lines: string[]): string {
  let out = '';
  for (const line of lines) {
    if (out === '') out = line;
    else out += isCjk(out[out.length - 1]) && isCjk(line[0]) ? line : ` ${line}`;
  }
  return out;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', mdash: '—', ndash: '–', hellip: '…' };

/** Inline Markdown and HTML to plain text. */
export function cleanInline(text: string): string {
  let t = text;
  t = t.replace(/!\[[^\]]*\]\([^)]*\)/g, '').replace(/!\[[^\]]*\]\[[^\]]*\]/g, ''); // images
  t = t.replace(/<img\b[^>]*>/gi, '');
  t = t.replace(/\[\^[^\]]+\]/g, ''); // footnote references
  t = t.replace(/\[([^\]]+)\]\([^)]*\)/g, '$1').replace(/\[([^\]]+)\]\[[^\]]*\]/g, '$1'); // links
  t = t.replace(/<(https?:\/\/[^>]+)>/g, '$1');
  t = t.replace(/<\/?[A-Za-z][^>]*>/g, ''); // remaining tags, text kept
  t = t.replace(/`+([^`]+?)`+/g, '$1');
  t = t.replace(/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, '$2');
  t = t.replace(/(^|[^\w*])\*(?=\S)([^*]*?\S)\*(?![\w*])/g, '$1$2');
  t = t.replace(/(^|[^\w])_(?=\S)([^_]*?\S)_(?!\w)/g, '$1$2');
  t = t.replace(/~~(?=\S)([\s\S]*?\S)~~/g, '$1');
  t = t.replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
  return t.replace(/[ \t\u00a0]+/g, ' ').trim();
}
