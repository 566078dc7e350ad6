// Errors of the hub client. `code` is stable; messages name the repo, revision and file and say
// what to do. A token never appears in a message: everything that formats text about a request
// goes through `redact()`.
import { LorafitError } from '../errors.js';

export type HubErrorCode =
  /** The repo, the revision or a file does not exist (or the repo is private and no token was sent). */
  | 'E_HUB_NOT_FOUND'
  /** 401/403: missing or invalid token, or a gated model whose licence was not accepted. */
  | 'E_HUB_AUTH'
  /** A download came back short, corrupted or failed after retries. */
  | 'E_HUB_DOWNLOAD'
  /** Offline mode (HF_HUB_OFFLINE=1 or `offline: true`) and the cache has no copy. */
  | 'E_HUB_OFFLINE'
  /** The endpoint could not be reached and the cache has no copy. */
  | 'E_HUB_NETWORK'
  /** Any other HTTP answer the client cannot act on (5xx, malformed responses, rejected commits). */
  | 'E_HUB_HTTP'
  /** The request was aborted through `signal`. Partial downloads are kept and resumed next time. */
  | 'E_ABORTED'
  /** Only pickle weights (*.bin, *.pt, ...) were found. */
  | 'E_PICKLE';

export interface HubErrorDetails {
  status?: number;
  repoId?: string;
  revision?: string;
  file?: string;
  cause?: unknown;
}

export class HubError extends LorafitError {
  declare readonly code: HubErrorCode;
  readonly status?: number;
  readonly repoId?: string;
  readonly revision?: string;
  readonly file?: string;

  constructor(code: HubErrorCode, message: string, details: HubErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HubError';
    if (details.status !== undefined) this.status = details.status;
    if (details.repoId !== undefined) this.repoId = details.repoId;
    if (details.revision !== undefined) this.revision = details.revision;
    if (details.file !== undefined) this.file = details.file;
  }
}

/** Removes bearer tokens and `hf_...` token-looking strings from text meant for people. */
export function redact(text: string, token?: string): string {
  let out = text;
  if (token) out = out.split(token).join('***');
  return out.replace(/Bearer\s+\S+/gi, 'Bearer ***').replace(/\bhf_[A-Za-z0-9]{8,}\b/g, 'hf_***');
}

export interface HttpErrorContext {
  repoId: string;
  revision?: string;
  file?: string;
  /** What was being done, for the message: "list files", "download", "create repo", "commit". */
  action: string;
  hasToken: boolean;
  token?: string;
}

/**
 * Maps a hub HTTP error answer to a HubError. The hub puts the reason in `X-Error-Code`
 * (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) and `X-Error-Message`; a missing
 * repo answers 401 RepoNotFound to anonymous callers so that private repos stay invisible.
 */
export function httpError(status: number, headers: Headers, body: string, ctx: HttpErrorContext): HubError {
  const errCode = headers.get('x-error-code') ?? '';
  const serverMsg = redact(headers.get('x-error-message') ?? firstLine(body), ctx.token);
  const rev = ctx.revision ?? 'main';
  const where = `${ctx.repoId}@${rev}`;
  const details: HubErrorDetails = { status, repoId: ctx.repoId, revision: rev };
  if (ctx.file !== undefined) details.file = ctx.file;
  const suffix = serverMsg ? ` (hub said: ${serverMsg})` : '';

  if (errCode === 'RevisionNotFound') {
    return new HubError('E_HUB_NOT_FOUND', `revision '${rev}' not found in ${ctx.repoId}: check the branch, tag or commit sha${suffix}`, details);
  }
  if (errCode === 'EntryNotFound' || (status === 404 && ctx.file !== undefined && errCode !== 'RepoNotFound')) {
    return new HubError('E_HUB_NOT_FOUND', `file '${ctx.file ?? '?'}' not found in ${where}${suffix}`, details);
  }
  if (errCode === 'GatedRepo') {
    return new HubError(
      'E_HUB_AUTH',
      `${ctx.repoId} is gated: accept the model's licence on its hub page with your account, then set HF_TOKEN to a token of that account${suffix}`,
      details,
    );
  }
  if (errCode === 'RepoNotFound' || status === 404) {
    const hint = ctx.hasToken
      ? 'check the name; if it is private, check that HF_TOKEN belongs to an account with access'
      : 'check the name; if it is private or gated, set HF_TOKEN';
    return new HubError('E_HUB_NOT_FOUND', `repository ${ctx.repoId} not found (${ctx.action}, revision '${rev}'): ${hint}${suffix}`, details);
  }
  if (status === 401 || status === 403) {
    const hint = ctx.hasToken
      ? 'HF_TOKEN was rejected or lacks the needed permission (write access for pushes); for gated models accept the model\'s licence on its hub page'
      : 'set HF_TOKEN (a token from https://huggingface.co/settings/tokens) / accept the model\'s licence on its hub page';
    return new HubError('E_HUB_AUTH', `${ctx.action} ${where}: HTTP ${status}: ${hint}${suffix}`, details);
  }
  return new HubError('E_HUB_HTTP', `${ctx.action} ${where}${ctx.file ? ` file '${ctx.file}'` : ''}: HTTP ${status}${suffix}`, details);
}

function firstLine(body: string): string {
  const t = body.trim();
  if (!t) return '';
  try {
    const j = JSON.parse(t) as { error?: unknown };
    if (typeof j.error === 'string') return j.error.slice(0, 300);
  } catch {
    /* not JSON */
  }
  return t.split('\n')[0]!.slice(0, 300);
}

export function isAbort(e: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  const name = (e as { name?: unknown })?.name;
  return name === 'AbortError';
}

export function abortError(what: string, cause?: unknown): HubError {
  return new HubError('E_ABORTED', `${what}: aborted`, cause === undefined ? {} : { cause });
}
