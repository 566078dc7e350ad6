import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeHub, gitOid, sha256 } from './helpers/fake-hub.js';
import { isolateEnv, tmpCache } from './helpers/env.js';
import { resolveModelPath, downloadSnapshot, HubError, RepoCache, downloadFile, hubCacheDir } from '../../lib/hub/index.js';

let hub: FakeHub;
let env: ReturnType<typeof isolateEnv>;
const weights = randomBytes(300_000);
const config = JSON.stringify({ model_type: 'llama', hidden_size: 8 });
const tokenizer = JSON.stringify({ version: '1.0', model: { type: 'BPE' } });
let mainSha = '';

beforeAll(async () => {
  env = isolateEnv();
  hub = await new FakeHub().start();
  mainSha = hub.addCommit('org/tiny', {
    'config.json': config,
    'tokenizer.json': tokenizer,
    'tokenizer_config.json': '{"bos_token":"<s>"}',
    'model.safetensors': weights,
    'pytorch_model.bin': randomBytes(1000),
    'README.md': '# tiny',
    'original/consolidated.safetensors': randomBytes(100),
  });
});
afterAll(async () => {
  await hub.close();
  env.restore();
});
beforeEach(() => {
  hub.log.length = 0;
  hub.truncate.clear();
});

const opts = (cacheDir: string, extra: Record<string, unknown> = {}) => ({ cacheDir, endpoint: hub.url, token: hub.token, ...extra });

async function codeOf(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HubError);
    return e as HubError;
  }
  throw new Error('expected a rejection');
}

describe('resolveModelPath: download into the HF cache', () => {
  it('downloads the model files into blobs/ + snapshots/<commit> symlinks + refs/main', async () => {
    const cacheDir = tmpCache(env.dir, 'c');
    const path = await resolveModelPath('org/tiny', opts(cacheDir));
    const storage = join(cacheDir, 'models--org--tiny');
    expect(path).toBe(join(storage, 'snapshots', mainSha));
    expect(readFileSync(join(storage, 'refs', 'main'), 'utf8')).toBe(mainSha);
    expect(readdirSync(path).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    // LFS file: blob named by sha256; regular file: by git blob sha1 (the ETag), relative links.
    expect(readlinkSync(join(path, 'model.safetensors'))).toBe(`../../blobs/${sha256(weights)}`);
    expect(readlinkSync(join(path, 'config.json'))).toBe(`../../blobs/${gitOid(Buffer.from(config))}`);
    expect(readFileSync(join(path, 'model.safetensors')).equals(weights)).toBe(true);
    expect(readdirSync(join(storage, 'blobs')).some((f) => f.endsWith('.incomplete'))).toBe(false);
    // Never pickles, never files outside the selection; the token only goes to the hub, not the CDN.
    expect(hub.log.some((r) => r.url.includes('pytorch_model.bin') || r.url.includes('README') || r.url.includes('original'))).toBe(false);
    const cdn = hub.log.filter((r) => r.server === 'cdn');
    expect(cdn.length).toBe(1);
    expect(cdn[0]!.authorization).toBeUndefined();
    expect(hub.log.filter((r) => r.server === 'hub').every((r) => r.authorization === `Bearer ${hub.token}`)).toBe(true);
    // .no_exist markers for the absent optional files, as huggingface_hub writes them.
    expect(existsSync(join(storage, '.no_exist', mainSha, 'generation_config.json'))).toBe(true);

    // Second call: cached, nothing downloaded again.
    hub.log.length = 0;
    const info = await downloadSnapshot('org/tiny', opts(cacheDir));
    expect(info.downloaded).toEqual([]);
    expect(hub.log.filter((r) => r.method === 'GET' && r.url.includes('/resolve/')).length).toBe(0);
    expect(hub.log.filter((r) => r.server === 'cdn').length).toBe(0);
  });

  it('reports per-file progress', async () => {
    const seen: number[] = [];
    await resolveModelPath('org/tiny', opts(tmpCache(env.dir, 'p'), { onProgress: (p: { file: string; downloaded: number }) => p.file === 'model.safetensors' && seen.push(p.downloaded) }));
    expect(seen.at(-1)).toBe(weights.length);
  });

  it('returns a local folder as is', async () => {
    const dir = join(env.dir, 'local-model');
    mkdirSync(dir, { recursive: true });
    expect(await resolveModelPath(dir)).toBe(dir);
    expect(hub.log.length).toBe(0);
  });

  it('fetches only the shards the index names (not consolidated.safetensors)', async () => {
    const a = randomBytes(20_000);
    const b = randomBytes(20_000);
    hub.addCommit('org/sharded', {
      'config.json': config,
      'model.safetensors.index.json': JSON.stringify({ metadata: {}, weight_map: { 'x.weight': 'model-00001-of-00002.safetensors', 'y.weight': 'model-00002-of-00002.safetensors' } }),
      'model-00001-of-00002.safetensors': a,
      'model-00002-of-00002.safetensors': b,
      'consolidated.safetensors': randomBytes(40_000),
    });
    const path = await resolveModelPath('org/sharded', opts(tmpCache(env.dir, 's')));
    expect(readdirSync(path).sort()).toEqual(['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    expect(readFileSync(join(path, 'model-00002-of-00002.safetensors')).equals(b)).toBe(true);
  });

  it('downloads an adapter repo', async () => {
    hub.addCommit('org/adapter', { 'adapter_config.json': '{"peft_type":"LORA","r":8}', 'adapter_model.safetensors': randomBytes(5000), 'adapter_model.bin': randomBytes(10) });
    const path = await resolveModelPath('org/adapter', opts(tmpCache(env.dir, 'a')));
    expect(readdirSync(path).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  });

  it('allowPatterns replaces the selection; pickles only when a pattern asks', async () => {
    const cacheDir = tmpCache(env.dir, 'ap');
    const info = await downloadSnapshot('org/tiny', opts(cacheDir, { allowPatterns: ['*.bin', 'config.json'] }));
    expect(info.files.sort()).toEqual(['config.json', 'pytorch_model.bin']);
    expect(readdirSync(info.path).sort()).toEqual(['config.json', 'pytorch_model.bin']);
    // Nested files link one level further up.
    const nested = await downloadSnapshot('org/tiny', opts(cacheDir, { allowPatterns: ['original/'] }));
    expect(nested.files).toEqual(['original/consolidated.safetensors']);
    expect(readlinkSync(join(nested.path, 'original', 'consolidated.safetensors'))).toMatch(/^\.\.\/\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
  });
});

describe('revisions', () => {
  it('pins a commit sha, maps tags through refs/', async () => {
    const first = hub.addCommit('org/revs', { 'config.json': '{"v":1}', 'model.safetensors': randomBytes(1000) });
    hub.tag('org/revs', 'v1.0', first);
    const second = hub.addCommit('org/revs', { 'config.json': '{"v":2}' });
    const cacheDir = tmpCache(env.dir, 'r');

    const pinned = await resolveModelPath('org/revs', opts(cacheDir, { revision: first }));
    expect(pinned.endsWith(join('snapshots', first))).toBe(true);
    expect(readFileSync(join(pinned, 'config.json'), 'utf8')).toBe('{"v":1}');
    // A sha is its own ref: nothing written under refs/ for it.
    expect(existsSync(join(cacheDir, 'models--org--revs', 'refs', first))).toBe(false);
    expect(hub.log.some((r) => r.url.includes(`/resolve/${first}/config.json`))).toBe(true);

    const main = await resolveModelPath('org/revs', opts(cacheDir));
    expect(main.endsWith(join('snapshots', second))).toBe(true);
    expect(readFileSync(join(main, 'config.json'), 'utf8')).toBe('{"v":2}');

    const tagged = await resolveModelPath('org/revs', opts(cacheDir, { revision: 'v1.0' }));
    expect(tagged).toBe(pinned);
    expect(readFileSync(join(cacheDir, 'models--org--revs', 'refs', 'v1.0'), 'utf8')).toBe(first);
    // Same blob shared by both snapshots: model.safetensors was downloaded once.
    expect(hub.log.filter((r) => r.server === 'cdn').length).toBe(1);
  });
});

describe('errors', () => {
  it('E_HUB_NOT_FOUND for a missing repo, revision and file, naming them', async () => {
    const cacheDir = tmpCache(env.dir, 'e');
    const repo = await codeOf(resolveModelPath('org/nope', opts(cacheDir)));
    expect(repo.code).toBe('E_HUB_NOT_FOUND');
    expect(repo.message).toContain('org/nope');

    const rev = await codeOf(resolveModelPath('org/tiny', opts(cacheDir, { revision: 'no-such-branch' })));
    expect(rev.code).toBe('E_HUB_NOT_FOUND');
    expect(rev.message).toContain("revision 'no-such-branch'");

    const file = await codeOf(downloadFile(new RepoCache(hubCacheDir(cacheDir), 'org/tiny'), 'missing.json', { endpoint: hub.url, token: hub.token, repoId: 'org/tiny', action: 'download' }));
    expect(file.code).toBe('E_HUB_NOT_FOUND');
    expect(file.message).toContain("'missing.json'");
    expect(file.message).toContain('org/tiny@main');
  });

  it('E_HUB_AUTH for a rejected token, without printing it', async () => {
    const bad = `hf_${'x'.repeat(30)}`;
    const e = await codeOf(resolveModelPath('org/tiny', opts(tmpCache(env.dir, 'x'), { token: bad })));
    expect(e.code).toBe('E_HUB_AUTH');
    expect(e.message).toContain('HF_TOKEN');
    expect(e.message).not.toContain(bad);
    expect(JSON.stringify(e, Object.getOwnPropertyNames(e))).not.toContain(bad);
  });

  it('E_HUB_AUTH for a gated model, mentioning the licence', async () => {
    hub.addCommit('org/gated', { 'config.json': config, 'model.safetensors': randomBytes(100) }, { gated: true });
    const e = await codeOf(resolveModelPath('org/gated', opts(tmpCache(env.dir, 'g'), { token: false })));
    expect(e.code).toBe('E_HUB_AUTH');
    expect(e.message).toMatch(/licence/);
    // With the token it works.
    await resolveModelPath('org/gated', opts(tmpCache(env.dir, 'g2')));
  });

  it('a private repo without token reads as not found, with a hint to set HF_TOKEN', async () => {
    hub.addCommit('org/private', { 'config.json': config }, { private: true });
    const e = await codeOf(resolveModelPath('org/private', opts(tmpCache(env.dir, 'pv'), { token: false })));
    expect(e.code).toBe('E_HUB_NOT_FOUND');
    expect(e.message).toContain('HF_TOKEN');
  });

  it('E_PICKLE before downloading a pickle-only repo', async () => {
    hub.addCommit('org/pickled', { 'config.json': config, 'pytorch_model.bin': randomBytes(100) });
    const e = await codeOf(resolveModelPath('org/pickled', opts(tmpCache(env.dir, 'pk'))));
    expect(e.code).toBe('E_PICKLE');
    expect(e.message).toMatch(/runs arbitrary code/);
    expect(e.message).toContain('safe_serialization=True');
    expect(hub.log.some((r) => r.url.includes('pytorch_model.bin'))).toBe(false);
  });

  it('E_ABORTED through the signal', async () => {
    const ac = new AbortController();
    ac.abort();
    const e = await codeOf(resolveModelPath('org/tiny', opts(tmpCache(env.dir, 'ab'), { signal: ac.signal })));
    expect(e.code).toBe('E_ABORTED');
  });
});

describe('truncated downloads', () => {
  it('resumes with a Range request after the server closes early', async () => {
    hub.truncate.set('model.safetensors', { times: 2, bytes: 70_000 });
    const path = await resolveModelPath('org/tiny', opts(tmpCache(env.dir, 't')));
    expect(readFileSync(join(path, 'model.safetensors')).equals(weights)).toBe(true);
    const ranges = hub.log.filter((r) => r.server === 'cdn').map((r) => r.range);
    expect(ranges).toEqual([undefined, 'bytes=70000-', 'bytes=140000-']);
  });

  it('fails with E_HUB_DOWNLOAD after retries, keeps no truncated file in snapshots/, and the next run resumes', async () => {
    const cacheDir = tmpCache(env.dir, 'tf');
    hub.truncate.set(sha256(weights), { times: 100, bytes: 0 });
    const e = await codeOf(resolveModelPath('org/tiny', opts(cacheDir)));
    expect(e.code).toBe('E_HUB_DOWNLOAD');
    expect(e.message).toContain('model.safetensors');
    const snap = join(cacheDir, 'models--org--tiny', 'snapshots', mainSha);
    expect(existsSync(join(snap, 'model.safetensors'))).toBe(false);

    // A crash mid-file: 1234 bytes left in .incomplete. The next run asks only for the rest.
    hub.truncate.clear();
    const partial = join(cacheDir, 'models--org--tiny', 'blobs', `${sha256(weights)}.incomplete`);
    writeFileSync(partial, weights.subarray(0, 1234));
    hub.log.length = 0;
    const path = await resolveModelPath('org/tiny', opts(cacheDir));
    expect(readFileSync(join(path, 'model.safetensors')).equals(weights)).toBe(true);
    expect(hub.log.filter((r) => r.server === 'cdn').map((r) => r.range)).toEqual(['bytes=1234-']);
    expect(existsSync(partial)).toBe(false);
  });

  it('discards a corrupted partial file (sha256 mismatch) and downloads again', async () => {
    const cacheDir = tmpCache(env.dir, 'bad');
    const blobs = join(cacheDir, 'models--org--tiny', 'blobs');
    mkdirSync(blobs, { recursive: true });
    writeFileSync(join(blobs, `${sha256(weights)}.incomplete`), randomBytes(5000));
    const path = await resolveModelPath('org/tiny', opts(cacheDir));
    expect(readFileSync(join(path, 'model.safetensors')).equals(weights)).toBe(true);
    expect(lstatSync(join(path, 'model.safetensors')).isSymbolicLink()).toBe(true);
  });
});

describe('offline and network failures', () => {
  it('HF_HUB_OFFLINE=1 resolves from the cache with no request; a miss is E_HUB_OFFLINE', async () => {
    const cacheDir = tmpCache(env.dir, 'o');
    const online = await resolveModelPath('org/tiny', opts(cacheDir));
    hub.log.length = 0;
    process.env.HF_HUB_OFFLINE = '1';
    try {
      expect(await resolveModelPath('org/tiny', opts(cacheDir))).toBe(online);
      expect(await resolveModelPath('org/tiny', opts(cacheDir, { revision: mainSha }))).toBe(online);
      const miss = await codeOf(resolveModelPath('org/other', opts(cacheDir)));
      expect(miss.code).toBe('E_HUB_OFFLINE');
      expect(miss.message).toContain('org/other');
      expect(miss.message).toContain('HF_HUB_OFFLINE');
      const rev = await codeOf(resolveModelPath('org/tiny', opts(cacheDir, { revision: 'dev' })));
      expect(rev.code).toBe('E_HUB_OFFLINE');
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(hub.log.length).toBe(0);
  });

  it('offline: a snapshot missing a shard is reported, not returned', async () => {
    const cacheDir = tmpCache(env.dir, 'os');
    const path = await resolveModelPath('org/sharded', opts(cacheDir));
    const { rmSync } = await import('node:fs');
    rmSync(join(path, 'model-00002-of-00002.safetensors'));
    const e = await codeOf(resolveModelPath('org/sharded', opts(cacheDir, { offline: true })));
    expect(e.code).toBe('E_HUB_OFFLINE');
    expect(e.message).toContain('model-00002-of-00002.safetensors');
  });

  it('an unreachable endpoint falls back to the cache, else E_HUB_NETWORK', async () => {
    const cacheDir = tmpCache(env.dir, 'n');
    const online = await resolveModelPath('org/tiny', opts(cacheDir));
    const dead = 'http://127.0.0.1:9'; // discard port: connection refused
    expect(await resolveModelPath('org/tiny', { cacheDir, endpoint: dead })).toBe(online);
    const e = await codeOf(resolveModelPath('org/other', { cacheDir, endpoint: dead }));
    expect(e.code).toBe('E_HUB_NETWORK');
    expect(e.message).toContain('HF_HUB_OFFLINE');
  });

  it('honours HF_ENDPOINT, HF_TOKEN and HF_HUB_CACHE', async () => {
    const cacheDir = tmpCache(env.dir, 'env');
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_TOKEN = hub.token;
    process.env.HF_HUB_CACHE = cacheDir;
    try {
      const path = await resolveModelPath('org/gated');
      expect(path.startsWith(join(cacheDir, 'models--org--gated', 'snapshots'))).toBe(true);
    } finally {
      delete process.env.HF_ENDPOINT;
      delete process.env.HF_TOKEN;
      delete process.env.HF_HUB_CACHE;
    }
  });
});
