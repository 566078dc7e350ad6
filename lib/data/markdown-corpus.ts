/**
 * A writing-style SFT corpus from one author's Markdown posts.
 *
 * Scans a folder recursively for `.md`/`.markdown` files (and `meta.json` files listing
 * `{file, title, date}`), turns each post into plain paragraphs, cuts them into chunks of
 * 300-800 tokens, and writes three kinds of OpenAI-messages records per chunk:
 *   - rewrite:  notes (the chunk's sentences as a list) -> the passage in the author's style
 *   - continue: the first part of the chunk -> the rest
 *   - expand:   title + first sentence of each paragraph -> the passage
 * Output: `sft_train.jsonl`, `sft_val.jsonl` (split by post with a seeded shuffle, so no post
 * leaks into both) and `dataset_stats.json`.
 */
import { promises as fs } from 'node:fs';
import { basename, join, relative } from 'node:path';
import type { ChatMessage } from '../text/chat-template.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { LorafitDataError } from './errors.js';
import { cleanInline, isCjk, markdownToParagraphs, parseFrontMatter } from './markdown-text.js';
import { chunkParagraphs, estimateTokens, joinSentences, splitSentences } from './text-chunker.js';
import { mulberry32, shuffled } from '../util/random.js';

export type StyleTask = 'rewrite' | 'continue' | 'expand';

export interface MarkdownCorpusOptions {
  inputDir: string;
  outputDir: string;
  /** Name used in the instructions ("in the style of ..."). Default: front matter `author`, else "the author". */
  author?: string;
  /** Count tokens with the model's tokenizer; without one a CJK-aware estimate is used. */
  tokenizer?: Tokenizer;
  minTokens?: number;
  maxTokens?: number;
  /** Fraction of posts held out for validation. Default 0.1 (at least one post when there are two or more). */
  valRatio?: number;
  seed?: number;
  tasks?: StyleTask[];
  /** Add a system message naming the author. Default true. */
  systemPrompt?: boolean;
}

export interface MarkdownPost {
  file: string;
  title: string;
  date: string | null;
  author: string | null;
  language: 'en' | 'zh';
  paragraphs: string[];
}

export interface StyleRecord {
  messages: ChatMessage[];
  task: StyleTask;
  post: string;
  chunk: number;
}

export interface MarkdownCorpusStats {
  posts: number;
  postsWithoutText: string[];
  chunks: number;
  droppedShortChunks: number;
  records: { train: number; val: number };
  tasks: Record<StyleTask, number>;
  languages: Record<string, number>;
  chunkTokens: { min: number; max: number; mean: number; total: number };
  tokenCounter: 'tokenizer' | 'estimate';
  minTokens: number;
  maxTokens: number;
  seed: number;
  valRatio: number;
  valPosts: string[];
}

/** Posts under a folder with their titles and dates (front matter, then meta.json, then file name). */
export async function readMarkdownPosts(inputDir: string): Promise<MarkdownPost[]> {
  const files: string[] = [];
  const metas = new Map<string, { title?: string; date?: string }>();
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw new LorafitDataError('E_DATA_IO', `cannot read folder: ${(err as Error).message}`, { file: dir, cause: err });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.name.startsWith('.')) continue;
      if (entry.isDirectory()) await walk(path);
      else if (/\.(md|markdown)$/i.test(entry.name)) files.push(path);
      else if (entry.name === 'meta.json') {
        let list: unknown;
        try {
          list = JSON.parse(await fs.readFile(path, 'utf8'));
        } catch (err) {
          throw new LorafitDataError('E_DATA_PARSE', `malformed meta.json: ${(err as Error).message}`, { file: path, cause: err });
        }
        if (!Array.isArray(list)) throw new LorafitDataError('E_DATA_FORMAT', 'meta.json must be a list of {file, title, date}', { file: path });
        for (const item of list as Array<Record<string, unknown>>) {
          if (typeof item?.file === 'string') {
            metas.set(join(dir, item.file), {
              title: typeof item.title === 'string' ? item.title : undefined,
              date: typeof item.date === 'string' ? item.date : undefined,
            });
          }
        }
      }
    }
  };
  await walk(inputDir);
  const posts: MarkdownPost[] = [];
  for (const file of files) {
    const { data, body } = parseFrontMatter(await fs.readFile(file, 'utf8'));
    const meta = metas.get(file) ?? {};
    const scalar = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
    const fromName = /^(\d{4}-\d{2}-\d{2})-(.*)\.(?:md|markdown)$/i.exec(basename(file));
    const paragraphs = markdownToParagraphs(body);
    const sample = paragraphs.join('').slice(0, 2000);
    const cjk = Array.from(sample).filter(isCjk).length;
    posts.push({
      file: relative(inputDir, file),
      title: cleanInline(scalar(data.title) ?? meta.title ?? (fromName ? fromName[2].replace(/-/g, ' ') : basename(file))),
      date: scalar(data.date)?.slice(0, 10) ?? meta.date ?? fromName?.[1] ?? null,
      author: scalar(data.author) ?? null,
      language: cjk > Array.from(sample).length * 0.2 ? 'zh' : 'en',
      paragraphs,
    });
  }
  return posts;
}

const PROMPTS = {
  en: {
    system: (a: string) => `You are ${a}. Write in ${a}'s voice: the same vocabulary, rhythm and tone.`,
    rewrite: (a: string, notes: string) => `Rewrite the following notes as a flowing passage in ${a}'s writing style.\n\n${notes}`,
    continue: (a: string, head: string) => `Continue the following text in ${a}'s writing style.\n\n${head}`,
    expand: (a: string, title: string, points: string) =>
      `Expand this outline into a full passage in ${a}'s writing style.\n\nTitle: ${title}\nKey points:\n${points}`,
  },
  zh: {
    system: (a: string) => `你是${a}。请用${a}的口吻写作：相同的用词、节奏和语气。`,
    rewrite: (a: string, notes: string) => `请用${a}的写作风格，把下面的要点改写成一段连贯的文字。\n\n${notes}`,
    continue: (a: string, head: string) => `请用${a}的写作风格续写下面的文字。\n\n${head}`,
    expand: (a: string, title: string, points: string) =>
      `请用${a}的写作风格，把下面的提纲扩写成完整的文章段落。\n\n标题：${title}\n要点：\n${points}`,
  },
};

/** Build the corpus and write the three output files; returns the stats that were written. */
export async function buildMarkdownCorpus(options: MarkdownCorpusOptions): Promise<MarkdownCorpusStats> {
  const minTokens = options.minTokens ?? 300;
  const maxTokens = options.maxTokens ?? 800;
  const valRatio = options.valRatio ?? 0.1;
  const seed = options.seed ?? 42;
  const tasks = options.tasks ?? ['rewrite', 'continue', 'expand'];
  if (!(minTokens > 0 && maxTokens >= minTokens)) {
    throw new LorafitDataError('E_DATA_FORMAT', `need 0 < minTokens <= maxTokens, got ${minTokens}..${maxTokens}`);
  }
  const posts = await readMarkdownPosts(options.inputDir);
  if (posts.length === 0) throw new LorafitDataError('E_DATA_EMPTY', 'no .md files found', { file: options.inputDir });

  const countTokens = await makeCounter(posts, options.tokenizer);
  const stats: MarkdownCorpusStats = {
    posts: posts.length,
    postsWithoutText: [],
    chunks: 0,
    droppedShortChunks: 0,
    records: { train: 0, val: 0 },
    tasks: { rewrite: 0, continue: 0, expand: 0 },
    languages: {},
    chunkTokens: { min: Infinity, max: 0, mean: 0, total: 0 },
    tokenCounter: options.tokenizer ? 'tokenizer' : 'estimate',
    minTokens,
    maxTokens,
    seed,
    valRatio,
    valPosts: [],
  };

  const order = shuffle(posts.map((p) => p.file), seed);
  const valCount = posts.length < 2 || valRatio <= 0 ? 0 : Math.max(1, Math.round(posts.length * valRatio));
  const valPosts = new Set(order.slice(0, valCount));
  stats.valPosts = [...valPosts].sort();

  const train: StyleRecord[] = [];
  const val: StyleRecord[] = [];
  for (const post of posts) {
    const { chunks, dropped } = chunkParagraphs(post.paragraphs, { minTokens, maxTokens, countTokens });
    stats.droppedShortChunks += dropped;
    if (chunks.length === 0) {
      stats.postsWithoutText.push(post.file);
      continue;
    }
    stats.languages[post.language] = (stats.languages[post.language] ?? 0) + 1;
    const author = options.author ?? post.author ?? (post.language === 'zh' ? '作者' : 'the author');
    for (const [i, chunk] of chunks.entries()) {
      const tokens = options.tokenizer ? (await options.tokenizer.encode(chunk, { addSpecialTokens: false })).length : countTokens(chunk);
      stats.chunks++;
      stats.chunkTokens.total += tokens;
      stats.chunkTokens.min = Math.min(stats.chunkTokens.min, tokens);
      stats.chunkTokens.max = Math.max(stats.chunkTokens.max, tokens);
      for (const task of tasks) {
        const messages = taskMessages(task, chunk, post, author, options.systemPrompt ?? true);
        if (messages === null) continue;
        const record: StyleRecord = { messages, task, post: post.file, chunk: i };
        (valPosts.has(post.file) ? val : train).push(record);
        stats.tasks[task]++;
      }
    }
  }
  if (stats.chunks === 0) throw new LorafitDataError('E_DATA_EMPTY', 'no post has enough prose to make a chunk', { file: options.inputDir });
  stats.chunkTokens.mean = Math.round(stats.chunkTokens.total / stats.chunks);
  stats.records = { train: train.length, val: val.length };

  await fs.mkdir(options.outputDir, { recursive: true });
  const jsonl = (records: StyleRecord[]) => records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '');
  await fs.writeFile(join(options.outputDir, 'sft_train.jsonl'), jsonl(train));
  await fs.writeFile(join(options.outputDir, 'sft_val.jsonl'), jsonl(val));
  await fs.writeFile(join(options.outputDir, 'dataset_stats.json'), JSON.stringify(stats, null, 2) + '\n');
  return stats;
}

function taskMessages(task: StyleTask, chunk: string, post: MarkdownPost, author: string, system: boolean): ChatMessage[] | null {
  const p = PROMPTS[post.language];
  const paragraphs = chunk.split('\n\n');
  let user: string;
  let assistant = chunk;
  if (task === 'rewrite') {
    user = p.rewrite(author, paragraphs.flatMap(splitSentences).map((s) => `- ${s}`).join('\n'));
  } else if (task === 'expand') {
    const points = paragraphs.map((para) => `- ${splitSentences(para)[0] ?? para}`).join('\n');
    user = p.expand(author, post.title, points);
  } else {
    const split = continuationPoint(paragraphs);
    if (split === null) return null;
    user = p.continue(author, split.head);
    assistant = split.tail;
  }
  const messages: ChatMessage[] = system ? [{ role: 'system', content: p.system(author) }] : [];
  messages.push({ role: 'user', content: user }, { role: 'assistant', content: assistant });
  return messages;
}

/** Cut about 40% into the chunk at a sentence boundary (keeping paragraph breaks on both sides). */
function continuationPoint(paragraphs: string[]): { head: string; tail: string } | null {
  const units = paragraphs.flatMap((para, pi) => splitSentences(para).map((s, si) => ({ s, pi, first: si === 0 })));
  if (units.length < 2) return null;
  const total = units.reduce((n, u) => n + u.s.length, 0);
  let acc = 0;
  let cut = 1;
  for (let i = 0; i < units.length - 1; i++) {
    acc += units[i].s.length;
    cut = i + 1;
    if (acc >= total * 0.4) break;
  }
  const render = (list: typeof units) => {
    const groups: string[][] = [];
    let last = -1;
    for (const u of list) {
      if (u.pi !== last) groups.push([]);
      groups[groups.length - 1].push(u.s);
      last = u.pi;
    }
    return groups.map(joinSentences).join('\n\n');
  };
  return { head: render(units.slice(0, cut)), tail: render(units.slice(cut)) };
}

/** Token counter: exact counts from the tokenizer for every paragraph and sentence, estimates otherwise. */
async function makeCounter(posts: MarkdownPost[], tokenizer: Tokenizer | undefined): Promise<(text: string) => number> {
  if (!tokenizer) return estimateTokens;
  const cache = new Map<string, number>();
  const texts = new Set<string>();
  for (const post of posts) {
    for (const para of post.paragraphs) {
      texts.add(para);
      for (const s of splitSentences(para)) texts.add(s);
    }
  }
  const list = [...texts];
  const counts = await tokenizer.encodeBatch(list, { addSpecialTokens: false });
  list.forEach((t, i) => cache.set(t, counts[i].length));
  return (text: string) => cache.get(text) ?? estimateTokens(text);
}

/** Deterministic Fisher-Yates with mulberry32. */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  return shuffled(items, mulberry32(seed));
}
