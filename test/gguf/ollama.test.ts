// `ollama:NAME[:TAG]` on a models folder laid out exactly as Ollama lays it out (manifests/<host>/
// <namespace>/<model>/<tag> holding a Docker v2 manifest, blobs/sha256-<hex> content-addressed),
// with a tiny GGUF as the model blob, and every way the lookup can fail.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listOllamaModels, parseOllamaName, resolveOllamaModel } from '../../lib/gguf/ollama.js';
import { Model } from '../../lib/model/model.js';
import { scratchDir } from '../helpers/python.js';
import { rejects } from '../helpers/rejects.js';
import { writeTinyGguf } from './tiny-gguf.js';

const root = scratchDir('ollama');
afterAll(() => rmSync(root, { recursive: true, force: true }));
const models = join(root, 'models');

/** Stores bytes as a blob; returns its digest (sha256:<hex>). */
function blob(bytes: Buffer | string): { digest: string; size: number } {
  const hex = createHash('sha256').update(bytes).digest('hex');
  mkdirSync(join(models, 'blobs'), { recursive: true });
  writeFileSync(join(models, 'blobs', `sha256-${hex}`), bytes);
  return { digest: `sha256:${hex}`, size: Buffer.byteLength(bytes) };
}

function manifest(path: string, layers: { mediaType: string; digest: string; size: number }[], text?: string): void {
  const file = join(models, 'manifests', path);
  mkdirSync(join(file, '..'), { recursive: true });
  const config = blob(JSON.stringify({ model_format: 'gguf', model_family: 'llama', model_families: ['llama'], model_type: '1M', file_type: 'F32' }));
  const m = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...config },
    layers,
  };
  writeFileSync(file, text ?? JSON.stringify(m));
}

const ggufFile = join(root, 'tiny.gguf');
writeTinyGguf(ggufFile);
const model = { mediaType: 'application/vnd.ollama.image.model', ...blob(readFileSync(ggufFile)) };
const template = { mediaType: 'application/vnd.ollama.image.template', ...blob('{{ .Prompt }}') };
const params = { mediaType: 'application/vnd.ollama.image.params', ...blob('{"stop":["<|im_end|>"]}') };
manifest('registry.ollama.ai/library/tiny/latest', [model, template, params]);
manifest('registry.ollama.ai/library/tiny/1m-f32', [template, model]);
manifest('registry.ollama.ai/someone/tiny-chat/v2', [model]);
manifest('hf.co/org/repo-GGUF/Q8_0', [model]);
manifest('registry.ollama.ai/library/broken/latest', [], '{"schemaVersion": 2, "layers": [');
manifest('registry.ollama.ai/library/nomodel/latest', [template, params]);
manifest('registry.ollama.ai/library/gone/latest', [{ ...model, digest: `sha256:${'0'.repeat(64)}` }]);
manifest('registry.ollama.ai/library/evil/latest', [{ ...model, digest: 'sha256:../../../etc/passwd' }]);

describe('resolveOllamaModel', () => {
  const blobPath = join(models, 'blobs', model.digest.replace(':', '-'));

  it('names as Ollama parses them: default namespace library, tag latest, user/model, host/namespace/model', async () => {
    expect(parseOllamaName('ollama:tiny')).toEqual({ host: 'registry.ollama.ai', namespace: 'library', model: 'tiny', tag: 'latest' });
    expect(parseOllamaName('someone/tiny-chat:v2')).toEqual({ host: 'registry.ollama.ai', namespace: 'someone', model: 'tiny-chat', tag: 'v2' });
    expect(parseOllamaName('ollama:hf.co/org/repo-GGUF:Q8_0')).toEqual({ host: 'hf.co', namespace: 'org', model: 'repo-GGUF', tag: 'Q8_0' });
    expect(parseOllamaName('localhost:5000/ns/m')).toEqual({ host: 'localhost:5000', namespace: 'ns', model: 'm', tag: 'latest' });
    for (const spec of ['ollama:tiny', 'ollama:tiny:latest', 'ollama:tiny:1m-f32', 'ollama:someone/tiny-chat:v2', 'ollama:hf.co/org/repo-GGUF:Q8_0']) {
      expect(await resolveOllamaModel(spec, { modelsDir: models }), spec).toBe(blobPath);
    }
  });

  it('OLLAMA_MODELS is the default folder', async () => {
    const before = process.env.OLLAMA_MODELS;
    process.env.OLLAMA_MODELS = models;
    try {
      expect(await resolveOllamaModel('ollama:tiny')).toBe(blobPath);
    } finally {
      if (before === undefined) delete process.env.OLLAMA_MODELS;
      else process.env.OLLAMA_MODELS = before;
    }
  });

  it('lists the models like `ollama list`', () => {
    expect(listOllamaModels({ modelsDir: models })).toEqual([
      'hf.co/org/repo-GGUF:Q8_0', 'broken:latest', 'evil:latest', 'gone:latest', 'nomodel:latest', 'tiny:1m-f32', 'tiny:latest', 'someone/tiny-chat:v2',
    ]);
  });

  it('E_OLLAMA: no folder, no model (listing those there are), no tag (naming those there are), bad manifest, no blob', async () => {
    await rejects(resolveOllamaModel('ollama:tiny', { modelsDir: join(root, 'nowhere') }), 'E_OLLAMA', 'no Ollama models folder', 'does not exist', 'OLLAMA_MODELS');
    await rejects(resolveOllamaModel('ollama:llama3.2', { modelsDir: models }), 'E_OLLAMA', "no model 'llama3.2'", 'tiny:latest', 'someone/tiny-chat:v2');
    await rejects(resolveOllamaModel('ollama:tiny:7b', { modelsDir: models }), 'E_OLLAMA', "has no tag '7b'", 'its tags: 1m-f32, latest');
    await rejects(resolveOllamaModel('ollama:broken', { modelsDir: models }), 'E_OLLAMA', 'not valid JSON');
    await rejects(resolveOllamaModel('ollama:nomodel', { modelsDir: models }), 'E_OLLAMA', 'no layer of mediaType application/vnd.ollama.image.model', 'application/vnd.ollama.image.template');
    await rejects(resolveOllamaModel('ollama:gone', { modelsDir: models }), 'E_OLLAMA', 'blob', 'is missing', 'ollama pull gone:latest');
    await rejects(resolveOllamaModel('ollama:evil', { modelsDir: models }), 'E_OLLAMA', 'is not sha256:<64 hex digits>');
    for (const bad of ['ollama:', 'ollama:../x', 'ollama:a/b/c/d', 'ollama:tiny:../../x', 'ollama:ti ny']) {
      await rejects(resolveOllamaModel(bad, { modelsDir: models }), 'E_OLLAMA');
    }
  });
});

describe('Model.load', () => {
  it("loads 'ollama:NAME:TAG' (the blob has no extension: found by its GGUF magic)", async () => {
    const before = process.env.OLLAMA_MODELS;
    process.env.OLLAMA_MODELS = models;
    try {
      await using m = await Model.load('ollama:tiny:1m-f32');
      expect(m.source).toMatchObject({ format: 'gguf', spec: 'ollama:tiny:1m-f32', path: join(models, 'blobs', model.digest.replace(':', '-')), architecture: 'llama' });
      expect(m.dir).toBe(m.source.path);
      expect(m.config).toMatchObject({ modelType: 'llama', numHiddenLayers: 2, hiddenSize: 32, vocabSize: 64 });
      const out = await m.forward([[1, 2, 3]]);
      expect(out.shape).toEqual([1, 3, 64]);
      await rejects(Model.load('ollama:tiny:7b'), 'E_OLLAMA', "has no tag '7b'");
    } finally {
      if (before === undefined) delete process.env.OLLAMA_MODELS;
      else process.env.OLLAMA_MODELS = before;
    }
  });
});
