// Model.load with a hub id downloads into the HF cache (from a local fake hub) and gives the same
// logits as loading the folder directly.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { HF, maxAbsDiff } from '../helpers/golden.js';
import { isolateEnv, tmpCache } from './helpers/env.js';
import { FakeHub } from './helpers/fake-hub.js';

let hub: FakeHub;
let env: ReturnType<typeof isolateEnv>;
beforeAll(async () => {
  env = isolateEnv();
  hub = await new FakeHub().start();
  const dir = join(HF, 'llama', 'model');
  hub.addCommit('org/tiny-llama', Object.fromEntries(['config.json', 'generation_config.json', 'model.safetensors'].map((f) => [f, readFileSync(join(dir, f))])));
  const adapter = join(HF, 'llama', 'adapter');
  hub.addCommit('org/tiny-llama-lora', Object.fromEntries(['adapter_config.json', 'adapter_model.safetensors'].map((f) => [f, readFileSync(join(adapter, f))])));
});
afterAll(async () => {
  await hub.close();
  env.restore();
});

it("Model.load('org/name') and LoraAdapter.load(model, 'org/adapter') resolve through the hub cache", async () => {
  process.env.HF_ENDPOINT = hub.url;
  process.env.HF_TOKEN = hub.token;
  process.env.HF_HUB_CACHE = tmpCache(env.dir, 'model-load');
  await using fromHub = await Model.load('org/tiny-llama');
  await using local = await Model.load(join(HF, 'llama', 'model'));
  expect(fromHub.dir).toContain('models--org--tiny-llama');
  const ids = [[5, 17, 99, 200]];
  expect(maxAbsDiff((await fromHub.forward(ids)).logits, (await local.forward(ids)).logits)).toBe(0);
  // an adapter by hub id gives what the local adapter folder gives
  await LoraAdapter.load(fromHub, 'org/tiny-llama-lora');
  await LoraAdapter.load(local, join(HF, 'llama', 'adapter'));
  expect(maxAbsDiff((await fromHub.forward(ids)).logits, (await local.forward(ids)).logits)).toBe(0);
  process.env.HF_HUB_OFFLINE = '1';
  await using cached = await Model.load('org/tiny-llama');  // offline: from the cache only
  expect(cached.dir).toBe(fromHub.dir);
});
