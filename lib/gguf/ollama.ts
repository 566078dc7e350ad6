// `ollama:NAME[:TAG]` -> the GGUF blob Ollama keeps for that model. Ollama's models folder
// ($OLLAMA_MODELS, default ~/.ollama/models) holds
//   manifests/<host>/<namespace>/<model>/<tag>   a Docker v2 manifest (JSON): config + layers
//   blobs/sha256-<hex>                           content-addressed files, one of them the GGUF
// and the layer with mediaType application/vnd.ollama.image.model is the model's weights.
// Names as Ollama parses them: `model` is registry.ollama.ai/library/model, `user/model` is
// registry.ollama.ai/user/model, `host/namespace/model` names the host too; the tag defaults to latest.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LorafitError } from '../errors.js';

export const OLLAMA_MODEL_MEDIA_TYPE = 'application/vnd.ollama.image.model';
const DEFAULT_HOST = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const DEFAULT_TAG = 'latest';

export interface OllamaName {
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

function fail(what: string): never {
  throw new LorafitError('E_OLLAMA', what);
}

/** The models folder: options.modelsDir, else $OLLAMA_MODELS, else ~/.ollama/models. */
export function ollamaModelsDir(options: { modelsDir?: string } = {}): string {
  return options.modelsDir ?? (process.env.OLLAMA_MODELS || join(homedir(), '.ollama', 'models'));
}

const PART = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const HOST = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}(:\d{1,5})?$/;

/** Splits `[host/][namespace/]model[:tag]` (an `ollama:` prefix is allowed) as Ollama does. */
export function parseOllamaName(spec: string): OllamaName {
  const s = spec.startsWith('ollama:') ? spec.slice('ollama:'.length) : spec;
  if (s.length === 0) fail(`'${spec}': give a model name, e.g. ollama:llama3.2 or ollama:qwen2.5:0.5b`);
  const slash = s.lastIndexOf('/');
  const colon = s.indexOf(':', slash + 1);
  const path = colon >= 0 ? s.slice(0, colon) : s;
  const tag = colon >= 0 ? s.slice(colon + 1) : DEFAULT_TAG;
  const parts = path.split('/');
  if (parts.length > 3) fail(`'${spec}': a model name has at most three parts (host/namespace/model)`);
  const [host, namespace, model] = parts.length === 3 ? parts : parts.length === 2 ? [DEFAULT_HOST, ...parts] : [DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]];
  if (!HOST.test(host) || host.includes('..')) fail(`'${spec}': '${host}' is not a valid registry host`);
  for (const [what, v] of [['namespace', namespace], ['model', model], ['tag', tag]] as const) {
    if (!PART.test(v) || v.includes('..')) fail(`'${spec}': ${what} '${v}' is not valid (letters, digits, '_', '.', '-'; at most 128)`);
  }
  return { host, namespace, model, tag };
}

/** The short name Ollama shows (`llama3.2:latest`, `user/model:tag`, `host/ns/model:tag`). */
export function formatOllamaName(n: OllamaName): string {
  const path = n.host !== DEFAULT_HOST ? `${n.host}/${n.namespace}/${n.model}` : n.namespace !== DEFAULT_NAMESPACE ? `${n.namespace}/${n.model}` : n.model;
  return `${path}:${n.tag}`;
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/** Every model the folder has a manifest for, as Ollama names them (`ollama list`). */
export function listOllamaModels(options: { modelsDir?: string } = {}): string[] {
  const root = join(ollamaModelsDir(options), 'manifests');
  const out: string[] = [];
  for (const host of listDirs(root)) {
    for (const namespace of listDirs(join(root, host))) {
      for (const model of listDirs(join(root, host, namespace))) {
        for (const tag of listFiles(join(root, host, namespace, model))) out.push(formatOllamaName({ host, namespace, model, tag }));
      }
    }
  }
  return out;
}

/**
 * The path of the GGUF blob of an Ollama model: `resolveOllamaModel('ollama:qwen2.5:0.5b')`.
 * Throws E_OLLAMA when the models folder, the model, the tag, a readable manifest or the blob is missing.
 */
export async function resolveOllamaModel(spec: string, options: { modelsDir?: string } = {}): Promise<string> {
  const name = parseOllamaName(spec);
  const dir = ollamaModelsDir(options);
  if (!existsSync(join(dir, 'manifests'))) {
    const why = existsSync(dir) ? `${dir} has no manifests folder` : `${dir} does not exist`;
    fail(`${spec}: no Ollama models folder (${why}); pull the model with \`ollama pull ${formatOllamaName(name)}\`, or set OLLAMA_MODELS to the folder that holds manifests/ and blobs/`);
  }
  const modelDir = join(dir, 'manifests', name.host, name.namespace, name.model);
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) {
    const have = listOllamaModels({ modelsDir: dir });
    fail(`${spec}: Ollama has no model '${formatOllamaName(name).replace(/:[^:]*$/, '')}' in ${dir}; ${have.length ? `it has ${have.join(', ')}` : 'it has no models'}`);
  }
  const manifestFile = join(modelDir, name.tag);
  if (!existsSync(manifestFile) || !statSync(manifestFile).isFile()) {
    const tags = listFiles(modelDir);
    fail(`${spec}: model '${formatOllamaName(name).replace(/:[^:]*$/, '')}' has no tag '${name.tag}'; ${tags.length ? `its tags: ${tags.join(', ')}` : 'it has no tags'}`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  } catch (e) {
    fail(`${manifestFile}: the manifest is not valid JSON (${(e as Error).message})`);
  }
  const layers = (manifest as { layers?: unknown } | null)?.layers;
  if (!Array.isArray(layers)) fail(`${manifestFile}: the manifest has no layers array (not an Ollama manifest)`);
  const model = layers.filter((l): l is { mediaType: string; digest?: unknown } => typeof l === 'object' && l !== null && (l as { mediaType?: unknown }).mediaType === OLLAMA_MODEL_MEDIA_TYPE);
  if (model.length === 0) {
    const types = layers.map((l) => String((l as { mediaType?: unknown } | null)?.mediaType)).join(', ');
    fail(`${manifestFile}: no layer of mediaType ${OLLAMA_MODEL_MEDIA_TYPE} (layers: ${types || 'none'})`);
  }
  if (model.length > 1) fail(`${manifestFile}: ${model.length} model layers (a model with a projector or split weights); lorafit loads single-file models`);
  const digest = model[0].digest;
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    fail(`${manifestFile}: the model layer's digest ${JSON.stringify(digest)} is not sha256:<64 hex digits>`);
  }
  const blob = join(dir, 'blobs', digest.replace(':', '-'));
  if (!existsSync(blob) || !statSync(blob).isFile()) {
    fail(`${spec}: the model's blob ${blob} is missing (an interrupted pull? run \`ollama pull ${formatOllamaName(name)}\` again)`);
  }
  return blob;
}
