/**
 * Markdown to plain prose paragraphs, for learning an author's writing style: front matter is
 * parsed off; code (fenced, indented, Jekyll highlight blocks), images, tables, HTML blocks,
 * comments, reference definitions and footnotes are dropped; link text, emphasis text, inline
 * code text, headings, list items and quotes are kept as plain text. Hard-wrapped lines of one
 * paragraph are joined (with a space, or without one between CJK characters).
 *
 * The Markdown is parsed by micromark (mdast-util-from-markdown, with GFM for tables, footnotes,
 * strikethrough and autolinks) and the tree is walked; only what Markdown does not define is
 * handled here: Jekyll/Liquid tags, and the text inside raw HTML (paragraph tags such as `<p>` and
 * `<br>` that pages exported from other sites use instead of blank lines).
 */
import type { Nodes, Parents, PhrasingContent, RootContent } from 'mdast';
import { fromMarkdown } from 'mdast-util-from-markdown';
import { gfmFromMarkdown } from 'mdast-util-gfm';
import { cjkFriendlyExtension } from 'micromark-extension-cjk-friendly';
import { gfm } from 'micromark-extension-gfm';

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

/** Elements dropped with everything inside them. */
const DROPPED_TAGS = ['script', 'style', 'pre', 'table', 'iframe', 'video', 'audio', 'svg', 'figure', 'object', 'noscript'];
const DROPPED_OPEN = new RegExp(`<(${DROPPED_TAGS.join('|')})\\b`, 'i');
const BLOCK_TAG = /<br\s*\/?>|<\/?(?:p|div|blockquote|li|ul|ol|h[1-6]|section|article|header|footer)\b[^>]*>/gi;
const COMMENT = /<!--[\s\S]*?-->/g;
const ANY_TAG = /<\/?[A-Za-z][^>]*>/g;
const UNRESOLVED_REFERENCE = /\[([^\]]+)\]\[[^\]]*\]/g;

// cjkFriendlyExtension: `**粗体。**后文` is emphasis, as CJK writers mean it (CommonMark's flanking
// rules leave the asterisks in when the closing ones sit between punctuation and a letter).
const MD = { extensions: [gfm(), cjkFriendlyExtension()], mdastExtensions: [gfmFromMarkdown()] };
/** Inline Markdown only (titles, text inside HTML): no block constructs such as lists or headings. */
const MD_INLINE = {
  extensions: [gfm(), cjkFriendlyExtension(), { disable: { null: ['blockQuote', 'codeFenced', 'codeIndented', 'definition', 'headingAtx', 'htmlFlow', 'list', 'setextUnderline', 'thematicBreak', 'table', 'gfmFootnoteDefinition'] } }],
  mdastExtensions: [gfmFromMarkdown()],
};

/** Plain paragraphs of a Markdown body (front matter already removed). */
export function markdownToParagraphs(body: string): string[] {
  let text = body.replace(/\r\n?/g, '\n');
  // Jekyll/Liquid: not Markdown, so not in the tree.
  text = text.replace(/{%-?\s*(highlight|raw|codeblock)\b[\s\S]*?{%-?\s*end\1\s*-?%}/g, '\n');
  text = text.replace(/{%[\s\S]*?%}/g, '').replace(/{{[\s\S]*?}}/g, '');
  // HTML pasted from other sites is often indented; an indented line that starts with a tag is that
  // HTML, not an indented code block.
  text = text.replace(/^[ \t]+(?=<[A-Za-z/!])/gm, '');
  const w = new Walker();
  w.blocks(fromMarkdown(text, MD).children);
  w.flush();
  return w.paragraphs.map(finish).filter((p) => /[\p{L}\p{N}]/u.test(p));
}

/** Inline Markdown and HTML to plain text. */
export function cleanInline(text: string): string {
  const w = new Walker();
  w.inlineParse(text, true);
  w.flush();
  return w.paragraphs.map(finish).join(' ').replace(/[ \t\u00a0]+/g, ' ').trim();
}

/**
 * Walks the tree into paragraphs. Text accumulates in `current` (line breaks kept, joined at the
 * end); a block, or a paragraph tag in HTML, ends the paragraph. Inside a dropped element
 * (`<table>` ... `</table>`), which raw HTML may spread over several nodes, nothing is kept.
 */
class Walker {
  readonly paragraphs: string[] = [];
  private current = '';
  private dropping: string | null = null;
  /** In a title (cleanInline) a paragraph tag is a space, not a new paragraph. */
  private oneLine = false;
  private inHtmlText = false;

  flush(): void {
    if (this.current.trim() !== '') this.paragraphs.push(this.current);
    this.current = '';
  }

  blocks(nodes: RootContent[]): void {
    for (const node of nodes) this.block(node);
  }

  private block(node: RootContent): void {
    switch (node.type) {
      case 'html':
        this.flush();
        this.html(node.value);
        this.flush();
        return;
      case 'code':
      case 'table':
      case 'definition':
      case 'footnoteDefinition':
      case 'thematicBreak':
      case 'yaml':
        this.flush();
        return;
      case 'heading':
      case 'paragraph':
        this.flush();
        this.inline(node.children);
        this.flush();
        return;
      case 'blockquote':
      case 'list':
      case 'listItem':
        this.flush();
        this.blocks(node.children as RootContent[]);
        this.flush();
        return;
      default:
        if ('children' in node) this.blocks((node as Parents).children as RootContent[]);
    }
  }

  private inline(nodes: PhrasingContent[] | Nodes[]): void {
    for (const node of nodes as Nodes[]) {
      switch (node.type) {
        case 'text':
          // a reference with no definition stays text by the spec ("[word][]"): keep the word
          if (this.dropping === null) this.current += node.value.replace(UNRESOLVED_REFERENCE, '$1');
          break;
        case 'inlineCode':
          if (this.dropping === null) this.current += node.value;
          break;
        case 'break':
          this.current += '\n';
          break;
        case 'html':
          // in text taken out of HTML the tags are gone: what is left (<?...?>, <!...>) is dropped
          if (!this.inHtmlText) this.html(node.value);
          break;
        case 'image':
        case 'imageReference':
        case 'footnoteReference':
          break;
        default:
          if ('children' in node) this.inline((node as Parents).children as Nodes[]);
      }
    }
  }

  /** Raw HTML: comments and dropped elements go, paragraph tags split, the text between tags is Markdown again. */
  private html(raw: string): void {
    let rest = raw.replace(COMMENT, '\n');
    for (;;) {
      if (this.dropping !== null) {
        const close = new RegExp(`</${this.dropping}\\s*>`, 'i').exec(rest);
        if (!close) return;
        rest = rest.slice(close.index + close[0].length);
        this.dropping = null;
      }
      const open = DROPPED_OPEN.exec(rest);
      const before = open ? rest.slice(0, open.index) : rest;
      this.htmlText(before);
      if (!open) return;
      this.dropping = open[1].toLowerCase();
      rest = rest.slice(open.index + open[0].length);
    }
  }

  private htmlText(raw: string): void {
    const pieces = raw.split(BLOCK_TAG);
    pieces.forEach((piece, i) => {
      if (i > 0) {
        if (this.oneLine) this.current += ' ';
        else this.flush();
      }
      const text = piece.replace(/<img\b[^>]*>/gi, '').replace(ANY_TAG, '');
      if (text.trim() === '') return;
      this.inHtmlText = true;
      if (this.oneLine) this.inlineParse(text, true);
      else {
        // the text between tags: blank lines separate paragraphs, each one inline Markdown
        text.split(/\n[ \t]*\n/).forEach((para, j) => {
          if (j > 0) this.flush();
          this.inlineParse(para.split('\n').map((l) => l.trim()).join('\n'), false);
        });
      }
      this.inHtmlText = false;
    });
  }

  inlineParse(text: string, oneLine: boolean): void {
    const was = this.oneLine;
    this.oneLine = oneLine || was;
    for (const block of fromMarkdown(text, MD_INLINE).children) {
      if (block.type === 'paragraph') this.inline(block.children);
      else if (block.type === 'html') this.html(block.value);
    }
    this.oneLine = was;
  }
}

/** A paragraph's lines trimmed and joined (no space between CJK characters), spaces collapsed. */
function finish(paragraph: string): string {
  const lines = paragraph.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return joinLines(lines).replace(/[ \t\u00a0]+/g, ' ').trim();
}

function joinLines(lines: string[]): string {
  let out = '';
  for (const line of lines) {
    if (out === '') out = line;
    else out += isCjk(out[out.length - 1]) && isCjk(line[0]) ? line : ` ${line}`;
  }
  return out;
}
