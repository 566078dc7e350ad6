/**
 * Cross-check with Python's huggingface_hub (runs when LORAFIT_PYTHON points at a Python that has it):
 *   LORAFIT_PYTHON=/root/.cache/lorafit/venv/bin/python npx vitest run test/hub
 * - Python, offline, finds the snapshot our client downloaded (same folder, same bytes).
 * - Python, online against the fake hub, downloads; our client, offline, finds its snapshot.
 * - Python's upload_folder commits to the fake hub (so the fake speaks the real client's protocol).
 * The fake hub lives in this process: Python must run asynchronously (execFile, not execFileSync).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FakeHub, sha256 } from './helpers/fake-hub.js';
import { isolateEnv, tmpCache } from './helpers/env.js';
import { downloadSnapshot, resolveModelPath } from '../../lib/hub/index.js';

const PYTHON = process.env.LORAFIT_PYTHON;
const run = promisify(execFile);

let hub: FakeHub;
let env: ReturnType<typeof isolateEnv>;
const weights = randomBytes(200_000);
let sha = '';

async function py(code: string, extraEnv: Record<string, string>): Promise<string> {
  const { stdout } = await run(PYTHON!, ['-c', code], {
    env: { PATH: process.env.PATH ?? '', HOME: env.dir, HF_HOME: join(env.dir, 'py-home'), HF_HUB_DISABLE_TELEMETRY: '1', HF_HUB_DISABLE_PROGRESS_BARS: '1', ...extraEnv },
    timeout: 60_000,
  });
  return stdout.trim();
}

describe.skipIf(!PYTHON)('huggingface_hub (Python) shares the cache', () => {
  beforeAll(async () => {
    env = isolateEnv();
    hub = await new FakeHub().start();
    sha = hub.addCommit('org/tiny', {
      'config.json': '{"model_type":"llama"}',
      'tokenizer.json': '{"version":"1.0"}',
      'model.safetensors': weights,
    });
  });
  afterAll(async () => {
    await hub?.close();
    env?.restore();
  });

  it('Python, offline, finds what our client downloaded', async () => {
    const cacheDir = tmpCache(env.dir, 'ours');
    const ours = await resolveModelPath('org/tiny', { cacheDir, endpoint: hub.url, token: hub.token });
    const out = await py(
      [
        'import hashlib, os',
        'from huggingface_hub import snapshot_download, hf_hub_download',
        `p = snapshot_download('org/tiny', cache_dir=${JSON.stringify(cacheDir)})`,
        `f = hf_hub_download('org/tiny', 'model.safetensors', cache_dir=${JSON.stringify(cacheDir)})`,
        `g = snapshot_download('org/tiny', cache_dir=${JSON.stringify(cacheDir)}, revision=${JSON.stringify(sha)})`,
        'print(p); print(g == p); print(hashlib.sha256(open(f, "rb").read()).hexdigest()); print(sorted(os.listdir(p)))',
      ].join('\n'),
      { HF_HUB_OFFLINE: '1' },
    );
    const [path, same, digest, listing] = out.split('\n');
    expect(path).toBe(ours);
    expect(same).toBe('True');
    expect(digest).toBe(sha256(weights));
    expect(listing).toBe("['config.json', 'model.safetensors', 'tokenizer.json']");
  });

  it('our client, offline, finds what Python downloaded from the fake hub', async () => {
    const cacheDir = tmpCache(env.dir, 'py');
    const pyPath = await py(`from huggingface_hub import snapshot_download\nprint(snapshot_download('org/tiny', cache_dir=${JSON.stringify(cacheDir)}))`, {
      HF_ENDPOINT: hub.url,
      HF_TOKEN: hub.token,
    });
    expect(pyPath.endsWith(sha)).toBe(true);
    const info = await downloadSnapshot('org/tiny', { cacheDir, offline: true });
    expect(info.path).toBe(pyPath);
    expect(readFileSync(join(info.path, 'model.safetensors')).equals(weights)).toBe(true);
  });

  it("Python's upload_folder commits to the fake hub", async () => {
    const dir = join(env.dir, 'to-upload');
    mkdirSync(dir, { recursive: true });
    const blob = randomBytes(30_000);
    writeFileSync(join(dir, 'adapter_model.safetensors'), blob);
    writeFileSync(join(dir, 'adapter_config.json'), '{"r":4}');
    await py(
      [
        'from huggingface_hub import HfApi',
        `api = HfApi(endpoint=${JSON.stringify(hub.url)}, token=${JSON.stringify(hub.token)})`,
        "api.create_repo('me/py-up', exist_ok=True)",
        `api.upload_folder(folder_path=${JSON.stringify(dir)}, repo_id='me/py-up')`,
      ].join('\n'),
      { HF_HUB_DISABLE_XET: '1' },
    );
    const files = hub.files('me/py-up')!;
    expect(files.get('adapter_model.safetensors')!.content.equals(blob)).toBe(true);
    expect(files.get('adapter_model.safetensors')!.lfs).toBe(true);
    expect(files.get('adapter_config.json')!.content.toString()).toBe('{"r":4}');
  });
});
