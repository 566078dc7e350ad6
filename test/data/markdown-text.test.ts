// markdownToParagraphs walks a real Markdown tree (micromark + GFM): the cases where that reads
// the source as CommonMark does, and a fuzz run over random Markdown pieces.
import { describe, expect, it } from 'vitest';
import { cleanInline, markdownToParagraphs } from '../../lib/data/markdown-text.js';
import { mulberry32 } from '../../lib/util/random.js';

describe('markdownToParagraphs on the Markdown tree', () => {
  it('keeps inline code as written and honours backslash escapes', () => {
    expect(markdownToParagraphs('The `*scratch*` buffer and `<title>` element; $\\{0, 1\\}$ and \\*not emphasis\\*.')).toEqual([
      'The *scratch* buffer and <title> element; ${0, 1}$ and *not emphasis*.',
    ]);
  });

  it('reads intraword emphasis, CJK emphasis next to punctuation, links with escaped brackets', () => {
    expect(markdownToParagraphs('a *render*buffer, web*comics*')).toEqual(['a renderbuffer, webcomics']);
    expect(markdownToParagraphs('**不过其实我一直觉得……**所以为了体验。')).toEqual(['不过其实我一直觉得……所以为了体验。']);
    expect(markdownToParagraphs('经典模式[\\[1\\]](#ref_1)。')).toEqual(['经典模式[1]。']);
  });

  it('drops empty links and images, keeps the word of an undefined reference', () => {
    expect(markdownToParagraphs('[](/img/a.png)\n\nPeter has [scripts][] to help.')).toEqual(['Peter has scripts to help.']);
  });

  it('treats indented HTML as HTML, not as an indented code block', () => {
    expect(markdownToParagraphs('<p>first\n\n    <p>second</p>\n    <ul><li>third</li></ul>')).toEqual(['first', 'second', 'third']);
  });

  it('drops a table or script element even when blank lines split it, and reads Markdown inside <p>', () => {
    expect(markdownToParagraphs('<table>\n<tr><td>x</td></tr>\n\n<tr><td>y</td></tr>\n</table>\n\nafter')).toEqual(['after']);
    expect(markdownToParagraphs('<p>**bold** and <b>tag</b> &amp; more</p>')).toEqual(['bold and tag & more']);
    expect(markdownToParagraphs('a <script>x()</script> b<br>c')).toEqual(['a b', 'c']);
  });

  it('cleanInline reads titles as inline Markdown only', () => {
    expect(cleanInline('1. Introduction to *Go*')).toBe('1. Introduction to Go');
    expect(cleanInline('# not a heading &amp; `code`')).toBe('# not a heading & code');
  });
});

describe('markdownToParagraphs fuzz', () => {
  const PIECES = ['word', ' ', '\n', '\n\n', '*', '**', '_', '`', '```', '~~', '[', ']', '(', ')', '![', '<p>', '</p>', '<br>', '<table>', '</table>',
    '<!--', '-->', '# ', '- ', '1. ', '> ', '    ', '|', '---', '\\', '&amp;', '&#x4e2d;', '中文', '。', '{%', '%}', '[^1]', '[^1]: ', 'http://x.y'];
  it('never throws and leaves no line breaks or paragraph tags on 800 random documents', () => {
    const r = mulberry32(99);
    for (let n = 0; n < 800; n++) {
      let md = '';
      const len = Math.floor(r() * 30);
      for (let i = 0; i < len; i++) md += PIECES[Math.floor(r() * PIECES.length)];
      const out = markdownToParagraphs(md);
      for (const p of out) {
        expect(p, JSON.stringify(md)).toBe(p.trim());
        expect(p, JSON.stringify(md)).not.toContain('\n');
        if (!md.includes('\\') && !md.includes('`')) expect(p, JSON.stringify(md)).not.toMatch(/<\/?(?:p|br|table)>/); // escaped or code: literal text
        expect(p, JSON.stringify(md)).toMatch(/[\p{L}\p{N}]/u);
      }
    }
  });
});
