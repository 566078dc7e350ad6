// Who may talk to the dashboard. On a loopback address (the default, 127.0.0.1) only this machine
// can connect, and the Host header must name a loopback host too (a web page elsewhere cannot
// reach the server through DNS rebinding). On any other address a token is required on every
// request: `Authorization: Bearer <token>`, `?token=<token>` (the printed URL; the page then gets it
// as a cookie, so its own requests carry it) or that cookie.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export const TOKEN_COOKIE = 'lorafit_ui_token';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h.startsWith('::ffff:127.');
  return false;
}

/** The host name of a Host header (`[::1]:8080` -> `::1`, `localhost:80` -> `localhost`). */
export function hostOfHeader(header: string | undefined): string {
  if (!header) return '';
  if (header.startsWith('[')) return header.slice(1, header.indexOf(']'));
  const colon = header.lastIndexOf(':');
  return colon > 0 && header.indexOf(':') === colon ? header.slice(0, colon) : header;
}

/** The token a request carries (header, query, cookie), if any. */
export function requestToken(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  const q = query.get('token');
  if (q) return q;
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === TOKEN_COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Why a request is refused (undefined: allowed). `token` set: it must match. No token (a loopback
 * bind): the Host header must be a loopback name.
 */
export function refusal(req: IncomingMessage, query: URLSearchParams, token: string | undefined): { status: number; message: string } | undefined {
  if (token !== undefined) {
    if (tokenMatches(requestToken(req, query), token)) return undefined;
    return { status: 401, message: 'this dashboard needs its token: open the URL lorafit ui printed (…/?token=...), or send Authorization: Bearer <token>' };
  }
  const host = hostOfHeader(req.headers.host);
  if (!isLoopbackHost(host)) return { status: 403, message: `Host '${req.headers.host ?? ''}' is not a loopback name; the dashboard listens on a loopback address only (use --host 0.0.0.0 with its token for other machines)` };
  return undefined;
}
