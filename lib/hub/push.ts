// push: a folder to a hub repo in one commit, with the protocol of huggingface_hub's
// create_repo + create_commit (_commit_api.py, lfs.py):
//   POST {endpoint}/api/repos/create {name, organization, visibility?}      409 = exists
//   POST {endpoint}/api/models/{repo}/preupload/{rev} {files:[{path, sample(b64 of 512 B), size}]}
//        -> uploadMode 'lfs' | 'regular', shouldIgnore
//   POST {endpoint}/{repo}.git/info/lfs/objects/batch (git-lfs batch API, transfers basic/multipart)
//        -> per object: no actions (already stored) | PUT href | PUT parts + POST completion; POST verify
//   POST {endpoint}/api/models/{repo}/commit/{rev}  application/x-ndjson:
//        {"key":"header","value":{summary,description}} then "file" (base64) / "lfsFile" (sha256 oid) lines
import { createHash } from 'node:crypto';
import { createReadStream, openSync, readSync, closeSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { HubError, abortError, httpError, isAbort } from './errors.js';
import { hubEndpoint, hubFetch, hubHeaders, hubJson, hubToken, type HubRequestOptions, type RequestContext } from './http.js';
import { buildModelCard, type ModelCardOptions } from './model-card.js';

export interface PushOptions extends HubRequestOptions {
  /** Create the repo private (ignored when it exists). */
  private?: boolean;
  commitMessage?: string;
  commitDescription?: string;
  /** Branch to commit to (default 'main'). */
  revision?: string;
  /**
   * README.md when the folder has none: a string is used as is, options build one
   * (model-card.ts), `false` writes none. Default: built from the folder.
   */
  modelCard?: string | ModelCardOptions | false;
  onProgress?: (p: { file: string; uploaded: number; total: number }) => void;
}

export interface PushResult {
  repoUrl: string;
  commitUrl: string;
  commitOid: string;
  /** Paths committed (relative, '/'-separated). */
  files: string[];
  /** Paths sent through LFS (large or binary). */
  lfsFiles: string[];
}

interface Addition {
  path: string;
  /** Local file, or in-memory content (the generated README). */
  local?: string;
  content?: Buffer;
  size: number;
  sample: Buffer;
  sha256: string;
  mode?: 'lfs' | 'regular';
  ignore?: boolean;
}

/** Files under `folder` as huggingface_hub's upload_folder sees them (without .git/ and .cache/huggingface/). */
export function listFolder(folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (rel === '.git' || rel.startsWith('.git/') || rel === '.cache/huggingface' || e.name.endsWith('.incomplete')) continue;
      const full = join(dir, e.name);
      const st = statSync(full); // follows symlinks: a cache snapshot is a folder of symlinks
      if (st.isDirectory()) walk(full, rel);
      else if (st.isFile()) out.push(rel);
    }
  };
  walk(folder, '');
  return out.sort();
}

async function describeLocal(folder: string, path: string): Promise<Addition> {
  const local = join(folder, ...path.split('/'));
  const size = statSync(local).size;
  const sample = Buffer.alloc(Math.min(512, size));
  const fd = openSync(local, 'r');
  try {
    readSync(fd, sample, 0, sample.length, 0);
  } finally {
    closeSync(fd);
  }
  const h = createHash('sha256');
  for await (const chunk of createReadStream(local, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  return { path, local, size, sample, sha256: h.digest('hex') };
}

function describeBuffer(path: string, content: Buffer): Addition {
  return { path, content, size: content.length, sample: content.subarray(0, 512), sha256: createHash('sha256').update(content).digest('hex') };
}

/** Uploads `folder` to `repoId` in one commit (creating the repo when needed). */
export async function push(folder: string, repoId: string, opts: PushOptions = {}): Promise<PushResult> {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repoId)) throw new HubError('E_HUB_NOT_FOUND', `push: '${repoId}' is not a repo id like 'org/name'`);
  const endpoint = hubEndpoint(opts.endpoint);
  const token = hubToken(opts.token);
  if (!token) {
    throw new HubError('E_HUB_AUTH', `push to ${repoId}: no token; set HF_TOKEN to a token with write access (https://huggingface.co/settings/tokens)`, {
      repoId,
    });
  }
  const revision = opts.revision ?? 'main';
  const ctx: RequestContext = { endpoint, token, repoId, revision, action: 'push to' };
  if (opts.signal) ctx.signal = opts.signal;

  const paths = listFolder(folder);
  if (!paths.length) throw new HubError('E_HUB_NOT_FOUND', `push: ${folder} has no files`);
  const additions: Addition[] = [];
  for (const p of paths) additions.push(await describeLocal(folder, p));
  if (!paths.includes('README.md') && opts.modelCard !== false) {
    const card = typeof opts.modelCard === 'string' ? opts.modelCard : buildModelCard(folder, repoId, opts.modelCard ?? {});
    additions.push(describeBuffer('README.md', Buffer.from(card)));
  }

  const repoUrl = await createRepo(repoId, opts.private, ctx);
  await fetchUploadModes(additions, ctx);
  const lfs = additions.filter((a) => a.mode === 'lfs' && !a.ignore);
  if (lfs.length) await uploadLfs(lfs, ctx, opts.onProgress);
  const commit = await sendCommit(additions, ctx, opts.commitMessage ?? `Upload ${repoId.split('/')[1]} with lorafit`, opts.commitDescription ?? '');
  return {
    repoUrl,
    commitUrl: commit.commitUrl,
    commitOid: commit.commitOid,
    files: additions.filter((a) => !a.ignore).map((a) => a.path),
    lfsFiles: lfs.map((a) => a.path),
  };
}

/** create_repo(exist_ok=True). */
export async function createRepo(repoId: string, isPrivate: boolean | undefined, ctx: RequestContext): Promise<string> {
  const [organization, name] = repoId.split('/') as [string, string];
  const payload: Record<string, unknown> = { name, organization };
  if (isPrivate !== undefined) payload.visibility = isPrivate ? 'private' : 'public';
  const url = `${ctx.endpoint}/api/repos/create`;
  try {
    const res = await hubFetch(
      url,
      { method: 'POST', headers: hubHeaders(ctx.token, { 'content-type': 'application/json' }), body: JSON.stringify(payload) },
      { ...ctx, action: 'create repo' },
    );
    const j = (await res.json().catch(() => ({}))) as { url?: string };
    return j.url ?? `${ctx.endpoint}/${repoId}`;
  } catch (e) {
    if (!(e instanceof HubError)) throw e;
    if (e.status === 409) return `${ctx.endpoint}/${repoId}`;
    // No right to create in this namespace, but the repo may exist and be writable (as Python checks).
    if (e.status === 401 || e.status === 402 || e.status === 403) {
      try {
        await hubJson(`${ctx.endpoint}/api/models/${repoId}`, { ...ctx, action: 'check repo' });
        return `${ctx.endpoint}/${repoId}`;
      } catch {
        throw e;
      }
    }
    throw e;
  }
}

async function fetchUploadModes(additions: Addition[], ctx: RequestContext): Promise<void> {
  const url = `${ctx.endpoint}/api/models/${ctx.repoId}/preupload/${encodeURIComponent(ctx.revision ?? 'main')}`;
  for (let i = 0; i < additions.length; i += 256) {
    const chunk = additions.slice(i, i + 256);
    const body = { files: chunk.map((a) => ({ path: a.path, sample: a.sample.toString('base64'), size: a.size })) };
    const info = await hubJson<{ files?: { path: string; uploadMode: string; shouldIgnore?: boolean }[] }>(
      url,
      { ...ctx, action: 'prepare upload to' },
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );
    if (!Array.isArray(info.files)) throw new HubError('E_HUB_HTTP', `prepare upload to ${ctx.repoId}: malformed preupload answer`, { repoId: ctx.repoId });
    const byPath = new Map(info.files.map((f) => [f.path, f]));
    for (const a of chunk) {
      const f = byPath.get(a.path);
      a.mode = f?.uploadMode === 'lfs' ? 'lfs' : 'regular';
      a.ignore = f?.shouldIgnore === true;
      if (a.size === 0) a.mode = 'regular'; // empty files cannot go through LFS
    }
  }
}

interface LfsAction {
  href: string;
  header?: Record<string, string>;
}
interface LfsObject {
  oid: string;
  size: number;
  actions?: { upload?: LfsAction; verify?: LfsAction };
  error?: { code: number; message: string };
}

const LFS_HEADERS = { accept: 'application/vnd.git-lfs+json', 'content-type': 'application/vnd.git-lfs+json' };

async function uploadLfs(files: Addition[], ctx: RequestContext, onProgress: PushOptions['onProgress']): Promise<void> {
  const byOid = new Map(files.map((a) => [a.sha256, a]));
  for (let i = 0; i < files.length; i += 256) {
    const chunk = files.slice(i, i + 256);
    const payload = {
      operation: 'upload',
      transfers: ['basic', 'multipart'],
      objects: chunk.map((a) => ({ oid: a.sha256, size: a.size })),
      hash_algo: 'sha256',
      ref: { name: ctx.revision ?? 'main' },
    };
    const res = await hubJson<{ objects?: LfsObject[] }>(
      `${ctx.endpoint}/${ctx.repoId}.git/info/lfs/objects/batch`,
      { ...ctx, action: 'upload (LFS batch) to' },
      { method: 'POST', headers: LFS_HEADERS, body: JSON.stringify(payload) },
    );
    if (!Array.isArray(res.objects)) throw new HubError('E_HUB_HTTP', `LFS batch for ${ctx.repoId}: malformed answer`, { repoId: ctx.repoId });
    for (const obj of res.objects) {
      const a = byOid.get(obj.oid);
      if (obj.error) {
        throw new HubError('E_HUB_HTTP', `upload of '${a?.path ?? obj.oid}' to ${ctx.repoId} refused: ${obj.error.message} (${obj.error.code})`, {
          repoId: ctx.repoId,
          status: obj.error.code,
        });
      }
      if (!a || !obj.actions?.upload) continue; // already stored on the hub
      await uploadOne(a, obj.actions.upload, ctx, onProgress);
      if (obj.actions.verify) {
        await hubFetch(
          obj.actions.verify.href,
          {
            method: 'POST',
            headers: hubHeaders(ctx.token, { ...LFS_HEADERS, ...(obj.actions.verify.header ?? {}) }),
            body: JSON.stringify({ oid: a.sha256, size: a.size }),
          },
          { ...ctx, action: 'verify upload to' },
        );
      }
    }
  }
}

async function uploadOne(a: Addition, action: LfsAction, ctx: RequestContext, onProgress: PushOptions['onProgress']): Promise<void> {
  const header = action.header ?? {};
  const chunkSize = header.chunk_size !== undefined ? Number(header.chunk_size) : undefined;
  if (chunkSize === undefined) {
    await put(action.href, a, 0, a.size, ctx);
    onProgress?.({ file: a.path, uploaded: a.size, total: a.size });
    return;
  }
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) throw new HubError('E_HUB_HTTP', `LFS upload of '${a.path}': bad chunk_size`, { repoId: ctx.repoId });
  const parts = Object.keys(header)
    .filter((k) => /^\d+$/.test(k))
    .sort((x, y) => Number(x) - Number(y))
    .map((k) => header[k]!);
  if (parts.length !== Math.ceil(a.size / chunkSize)) {
    throw new HubError('E_HUB_HTTP', `LFS upload of '${a.path}': the hub sent ${parts.length} part URLs for ${a.size} bytes in ${chunkSize}-byte parts`, {
      repoId: ctx.repoId,
    });
  }
  const done: { partNumber: number; etag: string }[] = [];
  for (let i = 0; i < parts.length; i++) {
    const start = i * chunkSize;
    const end = Math.min(a.size, start + chunkSize);
    const h = await put(parts[i]!, a, start, end, ctx);
    const etag = h.etag;
    if (typeof etag !== 'string' || !etag) throw new HubError('E_HUB_HTTP', `LFS upload of '${a.path}': part ${i + 1} has no ETag`, { repoId: ctx.repoId });
    done.push({ partNumber: i + 1, etag });
    onProgress?.({ file: a.path, uploaded: end, total: a.size });
  }
  await hubFetch(
    action.href,
    { method: 'POST', headers: hubHeaders(undefined, LFS_HEADERS), body: JSON.stringify({ oid: a.sha256, parts: done }) },
    { ...ctx, action: 'complete upload to' },
  );
}

/**
 * PUT bytes [start, end) of the file to a (pre-signed) URL, streamed with an exact Content-Length
 * (S3 refuses chunked bodies). No Authorization header: these URLs carry their own signature.
 */
async function put(url: string, a: Addition, start: number, end: number, ctx: RequestContext, attempt = 0): Promise<IncomingHttpHeaders> {
  const u = new URL(url);
  const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, {
    method: 'PUT',
    headers: { 'content-length': String(end - start), 'user-agent': 'lorafit' },
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  const answer = new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body.length < 4096 ? (body += d) : undefined));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  try {
    if (a.content) req.end(a.content.subarray(start, end));
    else {
      const src = end > start ? createReadStream(a.local!, { start, end: end - 1 }) : undefined;
      if (src) src.pipe(req);
      else req.end();
      src?.on('error', (e) => req.destroy(e));
    }
    const r = await answer;
    if (r.status >= 200 && r.status < 300) return r.headers;
    if ((r.status >= 500 || r.status === 429) && attempt < 2) return put(url, a, start, end, ctx, attempt + 1);
    const headers = new Headers();
    for (const [k, v] of Object.entries(r.headers)) if (typeof v === 'string') headers.set(k, v);
    throw httpError(r.status, headers, r.body, { repoId: ctx.repoId, action: `upload '${a.path}' to`, hasToken: ctx.token !== undefined });
  } catch (e) {
    if (e instanceof HubError) throw e;
    if (isAbort(e, ctx.signal)) throw abortError(`upload '${a.path}' to ${ctx.repoId}`, e);
    if (attempt < 2) return put(url, a, start, end, ctx, attempt + 1);
    throw new HubError('E_HUB_NETWORK', `upload '${a.path}' to ${ctx.repoId}: ${(e as Error).message}`, { repoId: ctx.repoId, cause: e });
  }
}

async function sendCommit(additions: Addition[], ctx: RequestContext, summary: string, description: string): Promise<{ commitUrl: string; commitOid: string }> {
  const lines: string[] = [JSON.stringify({ key: 'header', value: { summary, description } })];
  for (const a of additions) {
    if (a.ignore) continue;
    if (a.mode === 'lfs') {
      lines.push(JSON.stringify({ key: 'lfsFile', value: { path: a.path, algo: 'sha256', oid: a.sha256, size: a.size } }));
    } else {
      const content = a.content ?? (await readFile(a.local!));
      lines.push(JSON.stringify({ key: 'file', value: { content: content.toString('base64'), path: a.path, encoding: 'base64' } }));
    }
  }
  const url = `${ctx.endpoint}/api/models/${ctx.repoId}/commit/${encodeURIComponent(ctx.revision ?? 'main')}`;
  const res = await hubJson<{ commitUrl?: string; commitOid?: string }>(
    url,
    { ...ctx, action: 'commit to', attempts: 1 },
    { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') + '\n' },
  );
  if (!res.commitOid) throw new HubError('E_HUB_HTTP', `commit to ${ctx.repoId}: the hub answered without a commit id`, { repoId: ctx.repoId });
  return { commitUrl: res.commitUrl ?? `${ctx.endpoint}/${ctx.repoId}/commit/${res.commitOid}`, commitOid: res.commitOid };
}
