import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectFormat } from '../../lib/data/formats.js';
import { loadDataset } from '../../lib/data/load-dataset.js';
import { buildMarkdownCorpus, readMarkdownPosts, shuffle, type StyleRecord } from '../../lib/data/markdown-corpus.js';
import { markdownToParagraphs, parseFrontMatter } from '../../lib/data/markdown-text.js';
import { chunkParagraphs, estimateTokens, splitSentences } from '../../lib/data/text-chunker.js';
import { FIXTURES, loadTokenizer } from './helpers.js';

const BLOG = join(FIXTURES, 'data', 'markdown-blog');

describe('Markdown to prose', () => {
  it('parses front matter scalars and lists', () => {
    const { data, body } = parseFrontMatter(readFileSync(join(BLOG, 'zh', '2017-12-12-halting-problem.md'), 'utf8'));
    expect(data.title).toBe('如何通俗地解释停机问题？');
    expect(data.author).toBe('Hux');
    expect(data.tags).toEqual(['知乎', '计算理论']);
    expect(body.startsWith('\n> 这篇文章转载自')).toBe(true);
  });

  it('keeps prose and link text, drops code, images, HTML, tables and reference definitions', () => {
    const md = [
      '# A *Heading*',
      '',
      'Some **bold** text with a [link](http://x.y) and a [ref link][r], an',
      'inline `snake_case_name` and ![an image](img.png) here.',
      '',
      '```c',
      'int main(void) { return 0; }',
      '```',
      '',
      '    indented code line',
      '',
      '<!-- a comment -->',
      '<script>alert(1)</script>',
      '',
      '| a | b |',
      '|---|---|',
      '| 1 | 2 |',
      '',
      '> quoted _words_ here',
      '',
      '- first item',
      '- second item',
      '    continued item',
      '',
      '中文第一行，',
      '第二行。',
      '',
      '<p>段落一<br>段落二</p>',
      '',
      '[r]: http://example.com',
      '{% highlight js %}',
      'var x = 1;',
      '{% endhighlight %}',
      'Fish &amp; chips.',
    ].join('\n');
    expect(markdownToParagraphs(md)).toEqual([
      'A Heading',
      'Some bold text with a link and a ref link, an inline snake_case_name and here.',
      'quoted words here',
      'first item',
      'second item continued item',
      '中文第一行，第二行。',
      '段落一',
      '段落二',
      'Fish & chips.',
    ]);
  });

  it('real posts lose their code blocks and markup', async () => {
    const posts = await readMarkdownPosts(BLOG);
    expect(posts.map((p) => p.language).sort()).toEqual(['en', 'en', 'en', 'en', 'zh', 'zh', 'zh', 'zh']);
    const halting = posts.find((p) => p.file.endsWith('halting-problem.md'))!;
    const text = halting.paragraphs.join('\n');
    expect(text).toContain('「停机问题」研究的是');
    expect(text).not.toContain('def is_halt');
    expect(text).not.toContain('](');
    const go = posts.find((p) => p.file.endsWith('Go-s-Tooling.md'))!;
    expect(go.title).toBe("Go's Tooling is an Undervalued Technology");
    expect(go.date).toBe('2020-01-21');
    expect(go.paragraphs.join('\n')).not.toMatch(/\$ tar xzf|\[hn\]|<!--more-->/);
    expect(go.paragraphs[0]).toBe('This article was discussed on Hacker News, on reddit, and on Lobsters.');
  });
});

describe('sentences and chunks', () => {
  it('splits English and CJK sentences, keeping closing quotes and decimals', () => {
    expect(splitSentences('Hello world. Pi is 3.14 today! Really? Yes')).toEqual(['Hello world.', 'Pi is 3.14 today!', 'Really?', 'Yes']);
    expect(splitSentences('今天天气很好。我们去公园吧！你去吗？')).toEqual(['今天天气很好。', '我们去公园吧！', '你去吗？']);
    expect(splitSentences('他说：“好。”然后走了……')).toEqual(['他说：“好。”', '然后走了……']);
  });

  it('cuts a real post into chunks within the budget without losing or reordering text', async () => {
    const posts = await readMarkdownPosts(BLOG);
    for (const post of posts) {
      const { chunks, dropped } = chunkParagraphs(post.paragraphs, { minTokens: 100, maxTokens: 250, countTokens: estimateTokens });
      const counts = chunks.map(estimateTokens);
      expect(Math.max(...counts), post.file).toBeLessThanOrEqual(250 * 1.05);
      expect(counts.slice(0, -1).every((n) => n >= 50), post.file).toBe(true);
      if (dropped === 0) {
        const squash = (s: string) => s.replace(/\s+/g, '');
        expect(squash(chunks.join(''))).toBe(squash(post.paragraphs.join('')));
      }
    }
  });
});

describe('buildMarkdownCorpus', () => {
  it('writes train/val JSONL in OpenAI messages format and consistent stats', async () => {
    const out = mkdtempSync(join(tmpdir(), 'lorafit-corpus-'));
    const stats = await buildMarkdownCorpus({ inputDir: BLOG, outputDir: out, minTokens: 150, maxTokens: 400, valRatio: 0.25, seed: 7 });
    const read = (name: string): StyleRecord[] =>
      readFileSync(join(out, name), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as StyleRecord);
    const train = read('sft_train.jsonl');
    const val = read('sft_val.jsonl');
    expect(JSON.parse(readFileSync(join(out, 'dataset_stats.json'), 'utf8'))).toEqual(stats);
    expect(stats.posts).toBe(8);
    expect(stats.valPosts).toHaveLength(2);
    expect(stats.records).toEqual({ train: train.length, val: val.length });
    expect(stats.tasks.rewrite).toBe(stats.chunks);
    expect(stats.tasks.expand).toBe(stats.chunks);
    expect(train.length + val.length).toBe(stats.tasks.rewrite + stats.tasks.continue + stats.tasks.expand);
    // no post in both splits
    const valPosts = new Set(val.map((r) => r.post));
    expect([...valPosts].sort()).toEqual(stats.valPosts);
    expect(train.some((r) => valPosts.has(r.post))).toBe(false);
    // records are chat data the loader understands
    expect(detectFormat(train[0] as never)).toBe('messages');
    const loaded = await loadDataset(join(out, 'sft_train.jsonl'));
    expect(loaded).toHaveLength(train.length);
    // Chinese posts get Chinese instructions; continue = prompt head + answer tail
    const zh = [...train, ...val].find((r) => r.post.startsWith('zh/') && r.task === 'continue')!;
    expect(zh.messages[1].content).toMatch(/^请用Hux的写作风格续写下面的文字。/);
    const en = [...train, ...val].find((r) => r.post.startsWith('en/') && r.task === 'expand')!;
    expect(en.messages[1].content).toMatch(/^Expand this outline into a full passage in the author's writing style\.\n\nTitle: /);
    expect(en.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
  });

  it('the split is seeded: same seed, same split; another seed, another split', async () => {
    const a = await buildMarkdownCorpus({ inputDir: BLOG, outputDir: mkdtempSync(join(tmpdir(), 'c-')), seed: 1, valRatio: 0.25 });
    const b = await buildMarkdownCorpus({ inputDir: BLOG, outputDir: mkdtempSync(join(tmpdir(), 'c-')), seed: 1, valRatio: 0.25 });
    expect(b.valPosts).toEqual(a.valPosts);
    const seeds = [2, 3, 4, 5, 6];
    const others = await Promise.all(
      seeds.map((seed) => buildMarkdownCorpus({ inputDir: BLOG, outputDir: mkdtempSync(join(tmpdir(), 'c-')), seed, valRatio: 0.25 })),
    );
    expect(others.some((o) => JSON.stringify(o.valPosts) !== JSON.stringify(a.valPosts))).toBe(true);
    expect(shuffle([1, 2, 3, 4, 5], 9)).toEqual(shuffle([1, 2, 3, 4, 5], 9));
  });

  it('counts tokens with a real tokenizer when given one, within the 300-800 budget', async () => {
    const qwen = await loadTokenizer('qwen3');
    const stats = await buildMarkdownCorpus({ inputDir: BLOG, outputDir: mkdtempSync(join(tmpdir(), 'c-')), tokenizer: qwen });
    expect(stats.tokenCounter).toBe('tokenizer');
    expect(stats.chunks).toBeGreaterThan(4);
    expect(stats.chunkTokens.max).toBeLessThanOrEqual(800 * 1.05);
    expect(stats.chunkTokens.mean).toBeGreaterThanOrEqual(300);
  });

  it('an empty folder is an E_DATA_EMPTY error', async () => {
    await expect(buildMarkdownCorpus({ inputDir: mkdtempSync(join(tmpdir(), 'e-')), outputDir: mkdtempSync(join(tmpdir(), 'o-')) })).rejects.toMatchObject({
      code: 'E_DATA_EMPTY',
    });
  });
});
