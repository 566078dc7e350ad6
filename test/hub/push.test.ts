import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeHub } from './helpers/fake-hub.js';
import { isolateEnv, tmpCache } from './helpers/env.js';
import { push, resolveModelPath, buildModelCard, HubError } from '../../lib/hub/index.js';

let hub: FakeHub;
let env: ReturnType<typeof isolateEnv>;
beforeAll(async () => {
  env = isolateEnv();
  hub = await new FakeHub().start();
});
afterAll(async () => {
  await hub.close();
  env.restore();
});
beforeEach(() => {
  hub.log.length = 0;
});

function adapterFolder(name: string, extra: Record<string, Buffer | string> = {}): { dir: string; files: Record<string, Buffer | string> } {
  const dir = join(env.dir, name);
  mkdirSync(dir, { recursive: true });
  const files: Record<string, Buffer | string> = {
    'adapter_config.json': JSON.stringify({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'], base_model_name_or_path: 'Qwen/Qwen2.5-0.5B' }),
    'adapter_model.safetensors': randomBytes(50_000),
    ...extra,
  };
  for (const [f, c] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), c);
  }
  return { dir, files };
}

async function rejection(p: Promise<unknown>): Promise<HubError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(HubError);
    return e as HubError;
  }
  throw new Error('expected a rejection');
}

describe('push', () => {
  it('creates the repo and commits all files in one commit, LFS for binaries (basic and multipart), with a model card', async () => {
    const big = randomBytes(1_300_000); // over the fake hub's multipart threshold: 5 parts
    const { dir, files } = adapterFolder('adapter1', { 'checkpoints/big.safetensors': big, 'training_log.txt': 'step 1 loss 2.0\n' });
    const r = await push(dir, 'me/my-adapter', { endpoint: hub.url, token: hub.token, commitMessage: 'first', private: true });
    expect(r.commitOid).toMatch(/^[0-9a-f]{40}$/);
    expect(r.lfsFiles.sort()).toEqual(['adapter_model.safetensors', 'checkpoints/big.safetensors']);
    const remote = hub.files('me/my-adapter')!;
    for (const [f, c] of Object.entries(files)) expect(remote.get(f)?.content.equals(Buffer.from(c)), f).toBe(true);
    expect(remote.get('adapter_model.safetensors')!.lfs).toBe(true);
    expect(remote.get('adapter_config.json')!.lfs).toBe(false);
    expect(hub.repos.get('me/my-adapter')!.private).toBe(true);
    // One commit after the repo's initial one.
    expect(hub.repos.get('me/my-adapter')!.commits.length).toBe(2);
    const card = remote.get('README.md')!.content.toString();
    expect(card).toMatch(/^---\nbase_model: Qwen\/Qwen2.5-0.5B\nlibrary_name: peft\n/);
    expect(card).toContain('- lora');
    // Multipart: 5 part PUTs + completion; presigned URLs got no token.
    const cdn = hub.log.filter((x) => x.server === 'cdn');
    expect(cdn.filter((x) => /\/upload\/[0-9a-f]+\/\d+/.test(x.url)).length).toBe(5);
    expect(cdn.every((x) => x.authorization === undefined)).toBe(true);

    // Pushing again: the LFS objects are already stored, nothing is uploaded.
    hub.log.length = 0;
    const again = await push(dir, 'me/my-adapter', { endpoint: hub.url, token: hub.token });
    expect(again.commitOid).not.toBe(r.commitOid);
    expect(hub.log.filter((x) => x.server === 'cdn').length).toBe(0);

    // And it resolves back from the hub.
    const path = await resolveModelPath('me/my-adapter', { endpoint: hub.url, token: hub.token, cacheDir: tmpCache(env.dir, 'rt') });
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(join(path, 'adapter_model.safetensors')).equals(files['adapter_model.safetensors'] as Buffer)).toBe(true);
  });

  it('keeps an existing README.md and honours modelCard: false', async () => {
    const { dir } = adapterFolder('adapter2', { 'README.md': '# mine\n' });
    await push(dir, 'me/with-readme', { endpoint: hub.url, token: hub.token });
    expect(hub.files('me/with-readme')!.get('README.md')!.content.toString()).toBe('# mine\n');
    const { dir: dir3 } = adapterFolder('adapter3');
    await push(dir3, 'me/no-card', { endpoint: hub.url, token: hub.token, modelCard: false });
    expect(hub.files('me/no-card')!.has('README.md')).toBe(false);
  });

  it('E_HUB_AUTH without a token or with a rejected one (token not in the message)', async () => {
    const { dir } = adapterFolder('adapter4');
    const none = await rejection(push(dir, 'me/x', { endpoint: hub.url, token: false }));
    expect(none.code).toBe('E_HUB_AUTH');
    expect(none.message).toContain('HF_TOKEN');
    const bad = 'hf_' + 'y'.repeat(30);
    const rejected = await rejection(push(dir, 'me/x', { endpoint: hub.url, token: bad }));
    expect(rejected.code).toBe('E_HUB_AUTH');
    expect(rejected.message).not.toContain(bad);
  });
});

describe('model card', () => {
  it('front matter for adapters and merged models', () => {
    const { dir } = adapterFolder('card1');
    const card = buildModelCard(dir, 'me/a', { license: 'apache-2.0', tags: ['qwen2'] });
    const front = card.split('---')[1]!;
    expect(front).toContain('base_model: Qwen/Qwen2.5-0.5B');
    expect(front).toContain('library_name: peft');
    expect(front).toContain('license: apache-2.0');
    expect(front).toMatch(/tags:\n- lora\n- lorafit\n- peft\n- qwen2/);
    expect(card).toContain('AutoPeftModelForCausalLM.from_pretrained("me/a")');

    const merged = join(env.dir, 'merged');
    mkdirSync(merged, { recursive: true });
    writeFileSync(join(merged, 'config.json'), JSON.stringify({ _name_or_path: 'meta-llama/Llama-3.2-1B', model_type: 'llama' }));
    const m = buildModelCard(merged, 'me/m');
    expect(m).toContain('base_model: meta-llama/Llama-3.2-1B');
    expect(m).toContain('library_name: transformers');
    expect(m).not.toContain('license:');
  });
});
