// HTTP plumbing shared by downloads and pushes: endpoint and token resolution (the same variables
// and token file as huggingface_hub), headers, retries on 429/5xx, network and abort errors.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { HubError, abortError, httpError, isAbort, redact, type HttpErrorContext } from './errors.js';
import { expandHome } from './cache-layout.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const USER_AGENT = `lorafit/0.1.0; node/${process.versions.node}`;

export interface HubRequestOptions {
  /** Hub URL; defaults to $HF_ENDPOINT, then https://huggingface.co. */
  endpoint?: string;
  /** Access token; defaults to $HF_TOKEN, then the token file `hf auth login` writes. `false`: anonymous. */
  token?: string | false;
  signal?: AbortSignal;
}

export function hubEndpoint(endpoint?: string, env: NodeJS.ProcessEnv = process.env): string {
  return (endpoint || env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** Token like huggingface_hub's get_token(): HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then $HF_TOKEN_PATH or $HF_HOME/token. */
export function hubToken(token?: string | false, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (token === false) return undefined;
  if (token) return token;
  const fromEnv = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return fromEnv.trim();
  const home = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  const file = env.HF_TOKEN_PATH || join(expandHome(home), 'token');
  try {
    const t = readFileSync(expandHome(file), 'utf8').trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

export function hubHeaders(token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'user-agent': USER_AGENT, ...extra };
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

/** Encodes a repo path segment by segment (keeps the slashes). */
export function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

export function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

export const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Milliseconds between retries; tests lower it through LORAFIT_HUB_RETRY_MS. */
export function retryDelayMs(attempt: number, retryAfter?: string | null): number {
  const base = Number(process.env.LORAFIT_HUB_RETRY_MS ?? 500);
  const ra = retryAfter ? Number(retryAfter) : NaN;
  if (Number.isFinite(ra) && ra >= 0) return Math.min(ra * 1000, 30_000);
  return Math.min(base * 2 ** attempt, 10_000);
}

export interface RequestContext extends Omit<HttpErrorContext, 'hasToken' | 'token'> {
  token: string | undefined;
  endpoint: string;
  signal?: AbortSignal;
  /** Attempts for 429/5xx and connection errors (default 3). */
  attempts?: number;
}

/**
 * fetch() with hub error mapping: a non-2xx/3xx answer becomes a HubError, a connection failure
 * E_HUB_NETWORK, an abort E_ABORTED. Redirects are not followed (`redirect: 'manual'`) unless the
 * caller asks; 3xx answers are returned to the caller.
 */
export async function hubFetch(url: string, init: RequestInit, ctx: RequestContext): Promise<Response> {
  const attempts = ctx.attempts ?? 3;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, { redirect: 'manual', ...init, signal: ctx.signal });
    } catch (e) {
      if (isAbort(e, ctx.signal)) throw abortError(`${ctx.action} ${ctx.repoId}`, e);
      if (attempt + 1 < attempts) {
        await sleep(retryDelayMs(attempt), ctx.signal).catch((err) => {
          throw abortError(`${ctx.action} ${ctx.repoId}`, err);
        });
        continue;
      }
      throw networkError(ctx.endpoint, ctx.action, ctx.repoId, e, ctx.token);
    }
    if (res.status < 400) return res;
    if (RETRY_STATUSES.has(res.status) && attempt + 1 < attempts) {
      await res.body?.cancel().catch(() => {});
      await sleep(retryDelayMs(attempt, res.headers.get('retry-after')), ctx.signal).catch((err) => {
        throw abortError(`${ctx.action} ${ctx.repoId}`, err);
      });
      continue;
    }
    const body = await res.text().catch(() => '');
    const errCtx: HttpErrorContext = { ...ctx, hasToken: ctx.token !== undefined };
    if (ctx.token !== undefined) errCtx.token = ctx.token;
    throw httpError(res.status, res.headers, body, errCtx);
  }
}

export function networkError(endpoint: string, action: string, repoId: string, cause: unknown, token?: string): HubError {
  const c = cause as { cause?: { code?: string; message?: string }; message?: string };
  const why = c?.cause?.code ?? c?.cause?.message ?? c?.message ?? String(cause);
  return new HubError(
    'E_HUB_NETWORK',
    `${action} ${repoId}: cannot reach ${endpoint} (${redact(String(why), token)}). Check the connection or HF_ENDPOINT; ` +
      'with HF_HUB_OFFLINE=1 files already in the cache are used without the network',
    { repoId, cause },
  );
}

/** GET + JSON with hub error mapping. */
export async function hubJson<T>(url: string, ctx: RequestContext, init: RequestInit = {}): Promise<T> {
  const res = await hubFetch(url, { ...init, headers: hubHeaders(ctx.token, (init.headers as Record<string, string>) ?? {}) }, ctx);
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new HubError('E_HUB_HTTP', `${ctx.action} ${ctx.repoId}: the endpoint ${ctx.endpoint} did not answer JSON (HTTP ${res.status})`, {
      status: res.status,
      repoId: ctx.repoId,
      cause: e,
    });
  }
}
