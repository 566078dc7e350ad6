// resolveModelPath: a local folder as is, or `org/name` from the hub cache (downloading what is
// missing), like huggingface_hub's snapshot_download restricted to the files lorafit reads.
//   GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true -> commit sha + file list
//   then every selected file at that commit (download.ts), refs/<rev> = sha.
// Offline (HF_HUB_OFFLINE=1 or `offline: true`): refs/<rev> -> snapshots/<sha>, no request at all.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { HubError } from './errors.js';
import { REGEX_COMMIT_HASH, RepoCache, envTrue, expandHome, hubCacheDir } from './cache-layout.js';
import { downloadFile, type DownloadProgress } from './download.js';
import { hubEndpoint, hubJson, hubToken, type HubRequestOptions, type RequestContext } from './http.js';
import { isPickleWeight, pickleMessage, pickleOnlyWeights } from './pickle.js';

/** Files a model or adapter needs besides its safetensors weights. */
export const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors.index.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'adapter_config.json',
  'adapter_model.safetensors',
] as const;

export interface ResolveProgress extends DownloadProgress {
  filesDone: number;
  filesTotal: number;
}

export interface ResolveOptions extends HubRequestOptions {
  /** Branch, tag or commit sha (default 'main'). */
  revision?: string;
  /** Hub cache root; default $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Cache only, no request; default from $HF_HUB_OFFLINE. */
  offline?: boolean;
  /**
   * fnmatch patterns (as huggingface_hub's allow_patterns: '*' also matches '/') replacing the
   * default selection. Pickle files are only downloaded when a pattern names them.
   */
  allowPatterns?: readonly string[];
  onProgress?: (p: ResolveProgress) => void;
  /** Parallel file downloads (default 4). */
  concurrency?: number;
}

export interface SnapshotInfo {
  /** snapshots/<commit> */
  path: string;
  repoId: string;
  commit: string;
  /** Files of the selection, relative to `path`. */
  files: string[];
  /** Files fetched over the network in this call (the others were cached). */
  downloaded: string[];
  /** True when no request was made (offline or network fallback). */
  fromCache: boolean;
}

interface RepoSibling {
  rfilename: string;
  size?: number;
  lfs?: { sha256?: string; size?: number };
}
interface RepoInfo {
  sha?: string;
  siblings?: RepoSibling[];
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

/** 'org/name': how Model.load and LoraAdapter.load tell a hub id from a missing local folder. */
export function looksLikeHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s);
}

/**
 * A folder (returned as an absolute path) or a hub repo id (`org/name`, returned as the cached
 * snapshot folder, downloaded first when needed).
 */
export async function resolveModelPath(idOrDir: string, opts: ResolveOptions = {}): Promise<string> {
  const local = resolvePath(expandHome(idOrDir));
  if (existsSync(local) && statSync(local).isDirectory()) return local;
  if (!REPO_ID.test(idOrDir) || idOrDir.startsWith('.') || idOrDir.includes('..')) {
    throw new HubError('E_HUB_NOT_FOUND', `'${idOrDir}' is neither a folder nor a hub repo id like 'org/name'`);
  }
  return (await downloadSnapshot(idOrDir, opts)).path;
}

/** Downloads (or finds cached) the selected files of `repoId` and returns where they are. */
export async function downloadSnapshot(repoId: string, opts: ResolveOptions = {}): Promise<SnapshotInfo> {
  const revision = opts.revision ?? 'main';
  const cache = new RepoCache(hubCacheDir(opts.cacheDir), repoId);
  const offline = opts.offline ?? envTrue(process.env.HF_HUB_OFFLINE ?? process.env.TRANSFORMERS_OFFLINE);
  if (offline) return fromCache(cache, revision, opts, 'offline');

  const endpoint = hubEndpoint(opts.endpoint);
  const token = hubToken(opts.token);
  const ctx: RequestContext = { endpoint, token, repoId, revision, action: 'list files of' };
  if (opts.signal) ctx.signal = opts.signal;

  let info: RepoInfo;
  try {
    info = await hubJson<RepoInfo>(`${endpoint}/api/models/${repoId}/revision/${encodeURIComponent(revision)}?blobs=true`, ctx, {
      redirect: 'follow',
    });
  } catch (e) {
    // Network down or hub failing (5xx after retries): use the cache if it is complete, as Python does.
    if (e instanceof HubError && (e.code === 'E_HUB_NETWORK' || (e.code === 'E_HUB_HTTP' && (e.status ?? 0) >= 500))) {
      try {
        return fromCache(cache, revision, opts, 'network');
      } catch {
        throw e;
      }
    }
    throw e;
  }
  const commit = info.sha;
  if (!commit || !REGEX_COMMIT_HASH.test(commit)) {
    throw new HubError('E_HUB_HTTP', `list files of ${repoId}@${revision}: the answer has no commit sha; check HF_ENDPOINT`, {
      repoId,
      revision,
    });
  }
  const remote = (info.siblings ?? []).map((s) => s.rfilename);
  cache.writeRef(revision, commit);

  const dctx: RequestContext = { ...ctx, action: 'download' };
  const files = new Set<string>();
  const downloaded: string[] = [];
  let filesDone = 0;
  let filesTotal = 0;
  const fetchOne = async (file: string) => {
    const dopts: Parameters<typeof downloadFile>[3] = { revision: commit };
    if (opts.signal) dopts.signal = opts.signal;
    if (opts.onProgress) {
      const cb = opts.onProgress;
      dopts.onProgress = (p) => cb({ ...p, filesDone, filesTotal });
    }
    const r = await downloadFile(cache, file, dctx, dopts);
    if (r.meta) downloaded.push(file);
    files.add(file);
    filesDone++;
  };

  let selection: string[];
  if (opts.allowPatterns) {
    const res = opts.allowPatterns.map(fnmatchRegExp);
    selection = remote.filter((f) => res.some((r) => r.test(f)));
  } else {
    // Small files first: the shard index decides which weights to fetch.
    const small = MODEL_FILES.filter((f) => f !== 'adapter_model.safetensors' && remote.includes(f));
    filesTotal = small.length;
    await pool(small, opts.concurrency ?? 4, fetchOne);
    for (const f of MODEL_FILES) if (!remote.includes(f)) cache.markNoExist(commit, f);
    const weights = selectWeights(remote, () => readFileSync(cache.pointerPath(commit, 'model.safetensors.index.json'), 'utf8'), repoId);
    selection = [...small, ...weights];
    if (!weights.length) {
      const pickles = pickleOnlyWeights(remote);
      if (pickles.length) {
        throw new HubError('E_PICKLE', pickleMessage(repoId, pickles, remote.includes('adapter_config.json'), true), { repoId, revision });
      }
    }
    if (!remote.includes('config.json') && !remote.includes('adapter_config.json')) {
      throw new HubError(
        'E_HUB_NOT_FOUND',
        `${repoId}@${revision} has neither config.json nor adapter_config.json: it is not a transformers model or PEFT adapter repo`,
        { repoId, revision },
      );
    }
  }
  filesTotal = selection.length;
  await pool(selection.filter((f) => !files.has(f)), opts.concurrency ?? 4, fetchOne);
  return { path: cache.snapshotDir(commit), repoId, commit, files: selection, downloaded, fromCache: false };
}

/** Weight files to fetch: the shards named by the index, else model.safetensors, else all top-level safetensors. */
function selectWeights(remote: readonly string[], readIndex: () => string, repoId: string): string[] {
  const out = new Set<string>();
  if (remote.includes('adapter_model.safetensors')) out.add('adapter_model.safetensors');
  if (remote.includes('model.safetensors.index.json')) {
    let map: Record<string, string>;
    try {
      map = (JSON.parse(readIndex()) as { weight_map?: Record<string, string> }).weight_map ?? {};
    } catch (e) {
      throw new HubError('E_HUB_DOWNLOAD', `${repoId}: model.safetensors.index.json is not valid JSON`, { repoId, cause: e });
    }
    for (const shard of new Set(Object.values(map))) {
      if (!remote.includes(shard)) {
        throw new HubError('E_HUB_NOT_FOUND', `${repoId}: the shard index names '${shard}', which the repo does not have`, { repoId, file: shard });
      }
      out.add(shard);
    }
  } else if (remote.includes('model.safetensors')) {
    out.add('model.safetensors');
  } else {
    for (const f of remote) if (f.endsWith('.safetensors') && !f.includes('/')) out.add(f);
  }
  return [...out];
}

/**
 * The cached snapshot of `revision` (refs/<rev> or the sha itself). Without allowPatterns it must
 * hold config.json or adapter_config.json and every shard its index names.
 */
function fromCache(cache: RepoCache, revision: string, opts: ResolveOptions, why: 'offline' | 'network'): SnapshotInfo {
  const reason =
    why === 'offline'
      ? 'offline mode is on (HF_HUB_OFFLINE=1 or offline: true); run once with network access, or unset HF_HUB_OFFLINE'
      : 'the hub could not be reached';
  const code = why === 'offline' ? 'E_HUB_OFFLINE' : 'E_HUB_NETWORK';
  const commit = cache.readRef(revision);
  if (!commit || !existsSync(cache.snapshotDir(commit))) {
    throw new HubError(code, `${cache.repoId}@${revision} is not in the cache ${cache.cacheRoot} and ${reason}`, {
      repoId: cache.repoId,
      revision,
    });
  }
  const has = (f: string) => cache.hasFile(commit, f);
  const missing: string[] = [];
  if (!opts.allowPatterns) {
    if (!has('config.json') && !has('adapter_config.json')) missing.push('config.json or adapter_config.json');
    if (has('model.safetensors.index.json')) {
      try {
        const map = (JSON.parse(readFileSync(cache.pointerPath(commit, 'model.safetensors.index.json'), 'utf8')) as {
          weight_map?: Record<string, string>;
        }).weight_map ?? {};
        for (const shard of new Set(Object.values(map))) if (!has(shard)) missing.push(shard);
      } catch {
        missing.push('model.safetensors.index.json (unreadable)');
      }
    }
  }
  if (missing.length) {
    throw new HubError(code, `the cached copy of ${cache.repoId}@${revision} (${commit}) is incomplete, missing ${missing.join(', ')}, and ${reason}`, {
      repoId: cache.repoId,
      revision,
    });
  }
  const files = MODEL_FILES.filter(has);
  return { path: cache.snapshotDir(commit), repoId: cache.repoId, commit, files, downloaded: [], fromCache: true };
}

/** fnmatch as Python's (used by huggingface_hub's filter_repo_objects): '*' matches '/', 'dir/' means 'dir/*'. */
export function fnmatchRegExp(pattern: string): RegExp {
  const p = pattern.endsWith('/') ? `${pattern}*` : pattern;
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const j = p.indexOf(']', i + 2);
      if (j < 0) re += '\\[';
      else {
        let body = p.slice(i + 1, j).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body}]`;
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

async function pool<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}

export { isPickleWeight };
