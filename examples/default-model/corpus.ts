// The pretraining corpus of the embedded default model: public-domain Tang/Song poetry and the
// Leprechaun-style lines. Yoda's lines are held out: the demo LoRA-tunes the model to them.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export function poetryTexts(dataDir: string): string[] {
  const dir = join(dataDir, 'poetry');
  const out: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    const poems = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { title?: string; rhythmic?: string; paragraphs: string[] }[];
    for (const p of poems) out.push(`${p.title ?? p.rhythmic ?? ''}\n${p.paragraphs.join('\n')}`);
  }
  return out;
}

export function styleLines(dataDir: string, style: 'yoda' | 'leprechaun'): string[] {
  return readFileSync(join(dataDir, 'styles', `${style}.txt`), 'utf8')
    .split('\n')
    .map((l) => l.replaceAll('\\n', '\n').trim())
    .filter((l) => l.length > 0);
}
