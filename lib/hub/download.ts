// One file from the hub into the cache, the way huggingface_hub's hf_hub_download does it:
//   HEAD {endpoint}/{repo}/resolve/{revision}/{file}  (Accept-Encoding: identity, hub redirects followed,
//        a redirect to another host = the LFS/CDN location, not followed)
//     -> X-Repo-Commit, X-Linked-Etag (LFS sha256) or ETag (git blob sha1), X-Linked-Size or Content-Length
//   GET the location into blobs/<etag>.incomplete (Range: bytes=N- to resume), check size and hash,
//   rename to blobs/<etag>, symlink snapshots/<commit>/<file> -> ../../blobs/<etag>.
// The Authorization header is only sent to the hub's own origin, never to the CDN.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HubError, abortError, isAbort } from './errors.js';
import { REGEX_COMMIT_HASH, RepoCache } from './cache-layout.js';
import { RETRY_STATUSES, encodePath, hubFetch, hubHeaders, networkError, retryDelayMs, sameOrigin, sleep, type RequestContext } from './http.js';

export interface FileMetadata {
  /** Commit the revision resolved to (X-Repo-Commit). */
  commit: string;
  /** Blob name in the cache: the LFS sha256 or the git blob sha1. */
  etag: string;
  /** Expected size in bytes when the hub said it. */
  size?: number;
  /** Where to GET the bytes (the CDN URL for LFS files). */
  location: string;
  /** True when `etag` is the sha256 of the content (X-Linked-Etag of an LFS file). */
  lfs: boolean;
}

export interface DownloadProgress {
  file: string;
  /** Bytes on disk for this file, including bytes resumed from an earlier run. */
  downloaded: number;
  total?: number;
}

export interface BlobDownloadOptions {
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Attempts without progress before giving up (default 5). */
  maxRetries?: number;
}

export function resolveUrl(endpoint: string, repoId: string, revision: string, file: string): string {
  return `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
}

/** W/"abc" or "abc" -> abc (file_download._normalize_etag). */
export function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, '').replace(/^"+|"+$/g, '');
}

/** HEAD on the resolve URL; hub-internal redirects (renamed repos) are followed, CDN redirects are not. */
export async function fileMetadata(repoId: string, file: string, revision: string, ctx: RequestContext): Promise<FileMetadata> {
  let url = resolveUrl(ctx.endpoint, repoId, revision, file);
  const rctx: RequestContext = { ...ctx, repoId, revision, file, action: ctx.action || 'download' };
  for (let hop = 0; hop < 10; hop++) {
    const res = await hubFetch(url, { method: 'HEAD', headers: hubHeaders(ctx.token, { 'accept-encoding': 'identity' }) }, rctx);
    const isRedirect = res.status >= 300 && res.status < 400 && res.headers.has('location');
    const target = isRedirect ? new URL(res.headers.get('location')!, url).toString() : url;
    if (isRedirect && sameOrigin(url, target)) {
      url = target;
      continue;
    }
    const commit = res.headers.get('x-repo-commit');
    if (!commit) {
      throw new HubError(
        'E_HUB_HTTP',
        `${repoId}@${revision} '${file}': the answer has no X-Repo-Commit header, so ${ctx.endpoint} does not look like a Hugging Face hub; check HF_ENDPOINT and proxies`,
        { repoId, revision, file, status: res.status },
      );
    }
    const linked = res.headers.get('x-linked-etag');
    const etag = normalizeEtag(linked ?? res.headers.get('etag'));
    if (!etag) {
      throw new HubError('E_HUB_HTTP', `${repoId}@${revision} '${file}': the hub sent no ETag, so the file cannot be cached reliably`, {
        repoId,
        revision,
        file,
      });
    }
    const sizeHeader = res.headers.get('x-linked-size') ?? (isRedirect ? null : res.headers.get('content-length'));
    const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined;
    const meta: FileMetadata = { commit, etag, location: target, lfs: linked !== null && /^[0-9a-f]{64}$/.test(etag) };
    if (size !== undefined) meta.size = size;
    return meta;
  }
  throw new HubError('E_HUB_HTTP', `${repoId}@${revision} '${file}': too many redirects`, { repoId, revision, file });
}

// One download per blob per process; a second caller waits for the first.
const inFlight = new Map<string, Promise<void>>();

/**
 * Makes blobs/<etag> exist with verified content. Partial data lives in blobs/<etag>.incomplete and
 * is resumed with a Range request, within this call (connection drops) and across runs.
 */
export async function downloadBlob(cache: RepoCache, file: string, meta: FileMetadata, ctx: RequestContext, opts: BlobDownloadOptions = {}): Promise<string> {
  const blob = cache.blobPath(meta.etag);
  if (existsSync(blob)) return blob;
  const running = inFlight.get(blob);
  if (running) {
    await running;
    return blob;
  }
  const p = downloadBlobOnce(cache, file, meta, ctx, opts);
  inFlight.set(blob, p);
  try {
    await p;
  } finally {
    inFlight.delete(blob);
  }
  return blob;
}

async function downloadBlobOnce(cache: RepoCache, file: string, meta: FileMetadata, ctx: RequestContext, opts: BlobDownloadOptions): Promise<void> {
  const blob = cache.blobPath(meta.etag);
  const partial = cache.incompletePath(meta.etag);
  mkdirSync(dirname(blob), { recursive: true });
  const what = `${cache.repoId}@${meta.commit.slice(0, 12)} '${file}'`;
  const maxRetries = opts.maxRetries ?? 5;
  // The token goes to the hub only; a CDN location gets no Authorization header.
  const headers = hubHeaders(sameOrigin(meta.location, ctx.endpoint) ? ctx.token : undefined, { 'accept-encoding': 'identity' });

  let failures = 0;
  let restartedAfterBadHash = false;
  let lastError: unknown;
  for (;;) {
    let have = fileSize(partial);
    if (meta.size !== undefined && have > meta.size) {
      await rm(partial, { force: true });
      have = 0;
    }
    try {
      if (meta.size === undefined || have < meta.size) await fetchInto(partial, have, meta, headers, ctx, what, file, opts);
      const got = fileSize(partial);
      if (meta.size !== undefined && got !== meta.size) {
        throw new HubError('E_HUB_DOWNLOAD', `${what}: got ${got} of ${meta.size} bytes`, { repoId: cache.repoId, file });
      }
    } catch (e) {
      if (isAbort(e, ctx.signal) || (e instanceof HubError && e.code === 'E_ABORTED')) throw abortError(`download ${what}`, e);
      const retryable =
        e instanceof HubError &&
        (e.code === 'E_HUB_DOWNLOAD' || e.code === 'E_HUB_NETWORK' || (e.status !== undefined && RETRY_STATUSES.has(e.status)));
      if (!retryable) throw e;
      lastError = e;
      // Python's http_get resets its retry budget whenever bytes arrived; so do we.
      failures = fileSize(partial) > have ? 1 : failures + 1;
      if (failures > maxRetries) break;
      try {
        await sleep(retryDelayMs(Math.min(failures - 1, 3)), ctx.signal);
      } catch (err) {
        throw abortError(`download ${what}`, err);
      }
      continue;
    }
    const bad = await verify(partial, meta, fileSize(partial));
    if (bad) {
      await rm(partial, { force: true });
      if (!restartedAfterBadHash) {
        restartedAfterBadHash = true; // a stale partial file from another version: one clean retry
        continue;
      }
      throw new HubError('E_HUB_DOWNLOAD', `${what}: ${bad}; the download was discarded, run again to retry`, { repoId: cache.repoId, file });
    }
    await rename(partial, blob);
    return;
  }
  const cause = lastError as { message?: string; cause?: { code?: string } };
  const why = cause?.message ?? String(lastError);
  throw new HubError(
    'E_HUB_DOWNLOAD',
    `${what}: download failed after ${maxRetries} retries (${why}); ${fileSize(partial)}${meta.size !== undefined ? ` of ${meta.size}` : ''} bytes are kept in ${partial} and the next run resumes from there`,
    { repoId: cache.repoId, file, cause: lastError },
  );
}

function fileSize(p: string): number {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
}

/** One GET appended to `partial` from byte `have`. */
async function fetchInto(
  partial: string,
  have: number,
  meta: FileMetadata,
  headers: Record<string, string>,
  ctx: RequestContext,
  what: string,
  file: string,
  opts: BlobDownloadOptions,
): Promise<void> {
  const h = { ...headers };
  if (have > 0) h.range = `bytes=${have}-`;
  let res: Response;
  try {
    res = await hubFetch(meta.location, { method: 'GET', headers: h, redirect: 'follow' }, { ...ctx, file, action: 'download', attempts: 1 });
  } catch (e) {
    if (e instanceof HubError && e.status === 416) {
      // Our partial file does not fit the remote one any more: start over.
      await rm(partial, { force: true });
      throw new HubError('E_HUB_DOWNLOAD', `${what}: the server refused to resume, restarting`, { file });
    }
    throw e;
  }
  if (res.status >= 300) {
    await res.body?.cancel().catch(() => {});
    throw new HubError('E_HUB_DOWNLOAD', `${what}: unexpected HTTP ${res.status} from the file location`, { status: res.status, file });
  }
  let offset = have;
  // 200 to a Range request: the server ignored the range, so the body starts at byte 0.
  if (have > 0 && res.status === 200) offset = 0;
  if (have > 0 && res.status === 206) {
    const cr = res.headers.get('content-range');
    const start = cr ? Number(/bytes\s+(\d+)-/.exec(cr)?.[1]) : have;
    if (start !== have) {
      // Not the range we asked for: drop the partial file and start over on the next attempt.
      await res.body?.cancel().catch(() => {});
      await rm(partial, { force: true });
      throw new HubError('E_HUB_DOWNLOAD', `${what}: the server answered a different range (${cr}), restarting`, { file });
    }
  }
  if (meta.size === undefined) {
    const len = res.headers.get('content-length');
    const cr = res.headers.get('content-range');
    const total = cr ? Number(cr.split('/').pop()) : len && !res.headers.get('content-encoding') ? Number(len) + offset : NaN;
    if (Number.isFinite(total)) meta.size = total;
  }
  // 'a' when resuming: O_APPEND puts every write at the end, i.e. at `pos`.
  const fh = await open(partial, offset === 0 ? 'w' : 'a');
  let received = 0;
  try {
    if (!res.body) throw new HubError('E_HUB_DOWNLOAD', `${what}: empty response body`, { file });
    let pos = offset;
    let lastReport = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, pos);
        off += bytesWritten;
        pos += bytesWritten;
      }
      received += chunk.length;
      if (opts.onProgress && (pos - lastReport >= 1 << 20 || pos === meta.size)) {
        lastReport = pos;
        const p: DownloadProgress = { file, downloaded: pos };
        if (meta.size !== undefined) p.total = meta.size;
        opts.onProgress(p);
      }
    }
    await fh.sync();
  } catch (e) {
    await fh.sync().catch(() => {});
    if (isAbort(e, ctx.signal)) throw abortError(`download ${what}`, e);
    if (e instanceof HubError) throw e;
    // Connection closed early ("terminated", ECONNRESET, ...): keep the bytes, resume later.
    throw new HubError('E_HUB_DOWNLOAD', `connection lost after ${received} bytes`, { file, cause: e });
  } finally {
    await fh.close();
  }
}

/** Returns a reason when the content does not match the hub's hash, undefined when it matches. */
async function verify(path: string, meta: FileMetadata, size: number): Promise<string | undefined> {
  let hash: Hash;
  let expected: string;
  if (meta.lfs) {
    hash = createHash('sha256');
    expected = meta.etag;
  } else if (/^[0-9a-f]{40}$/.test(meta.etag)) {
    // Regular git files: the ETag is the git blob id, sha1("blob <size>\0" + content).
    hash = createHash('sha1').update(`blob ${size}\0`);
    expected = meta.etag;
  } else {
    return undefined;
  }
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  const got = hash.digest('hex');
  return got === expected ? undefined : `${meta.lfs ? 'sha256' : 'git sha1'} mismatch (expected ${expected}, got ${got})`;
}

export interface DownloadFileOptions extends BlobDownloadOptions {
  revision?: string;
}

/**
 * hf_hub_download: one file of `repoId` at `revision` into the cache; returns its snapshot path.
 * A commit-sha revision whose file is already cached makes no request.
 */
export async function downloadFile(cache: RepoCache, file: string, ctx: RequestContext, opts: DownloadFileOptions = {}): Promise<{ path: string; meta?: FileMetadata }> {
  const revision = opts.revision ?? 'main';
  if (REGEX_COMMIT_HASH.test(revision) && cache.hasFile(revision, file)) return { path: cache.pointerPath(revision, file) };
  let meta: FileMetadata;
  try {
    meta = await fileMetadata(cache.repoId, file, revision, { ...ctx, action: 'download' });
  } catch (e) {
    if (e instanceof HubError && e.code === 'E_HUB_NOT_FOUND' && e.file !== undefined && e.status === 404) {
      const commit = cache.readRef(revision);
      if (commit) cache.markNoExist(commit, file);
    }
    throw e;
  }
  cache.writeRef(revision, meta.commit);
  if (cache.hasFile(meta.commit, file)) return { path: cache.pointerPath(meta.commit, file), meta };
  await downloadBlob(cache, file, meta, ctx, opts);
  return { path: cache.link(meta.commit, file, meta.etag), meta };
}

export { networkError };
