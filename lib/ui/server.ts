// The dashboard's HTTP server (node:http, no framework):
//   GET  /                    the page;  /assets/*  its script, styles and uPlot (a fixed table)
//   GET  /api/runs            every run's summary (status, step, best eval, checkpoints, config)
//   GET  /api/metrics?run=ID  the run's metrics.jsonl as a JSON array of rows (complete lines only)
//   GET  /api/events?run=ID   SSE: a snapshot, then new rows and summary changes as training goes
//   GET  /api/status          { streams, subscriptions } (SSE streams open now, run-event listeners), runs, token?
//   POST /api/chat, /api/ab, /api/ab/vote; GET /api/ab/tally   (chat-routes.ts)
// Every request passes auth.ts first; a path with dot segments (plain or encoded) is refused;
// runs are named by id, so nothing outside the run folders (and the page's own files) is served.
// No request can bring it down: a handler's error becomes a JSON error answer.
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import type { Logger } from '../util/logger.js';
import { loadAssets, unsafePath } from './assets.js';
import { refusal, TOKEN_COOKIE, tokenMatches } from './auth.js';
import { ChatRoutes } from './chat-routes.js';
import type { Playground } from './playground.js';
import { HttpError } from './request.js';
import { RunWatcher } from './run-watcher.js';
import { discoverRuns, summarizeRun, type RunRef, type RunSources, type RunSummary } from './runs.js';
import { SseStreams } from './sse.js';

export interface UiServerOptions {
  sources: RunSources;
  /** Required on every request when set (lorafit ui sets one for a non-loopback host). */
  token?: string;
  playground?: Playground;
  /** How often a watched run is polled (default 500 ms). */
  pollMs?: number;
  heartbeatMs?: number;
  log?: Logger;
}

export interface UiServer {
  server: Server;
  streams: SseStreams;
  /** Ends the streams, stops the watchers, closes the server (the playground is the caller's). */
  close(): Promise<void>;
}

export function createUiServer(o: UiServerOptions): UiServer {
  const assets = loadAssets();
  const streams = new SseStreams(o.heartbeatMs);
  const watchers = new Map<string, RunWatcher>();

  const refs = (): RunRef[] => discoverRuns(o.sources);
  const refOf = (id: string | null): RunRef => {
    if (!id) throw new HttpError(400, "give the run's id: ?run=ID (GET /api/runs lists them)");
    if (!/^[A-Za-z0-9_.-]+$/.test(id) || id === '.' || id === '..') throw new HttpError(400, `'${id}' is not a run id: ids are folder names from GET /api/runs, never paths`);
    const all = refs();
    const ref = all.find((r) => r.id === id);
    if (!ref) throw new HttpError(404, `no run '${id}'; runs: ${all.map((r) => r.id).join(', ') || 'none'}`);
    return ref;
  };
  const watcherOf = (ref: RunRef): RunWatcher => {
    let w = watchers.get(ref.dir);
    if (!w || w.ref.id !== ref.id) {
      w?.stop();
      w = new RunWatcher(ref, o.pollMs);
      watchers.set(ref.dir, w);
    }
    return w;
  };
  const runOf = (id: string | null): RunSummary => summarizeRun(refOf(id));
  const chat = new ChatRoutes(o.playground, streams, runOf);

  const sourceProblems = (): string[] => {
    const p: string[] = [];
    if (o.sources.runsDir && !existsSync(resolve(o.sources.runsDir))) p.push(`the runs folder ${resolve(o.sources.runsDir)} does not exist`);
    return p;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const denied = refusal(req, query, o.token);
    if (denied) throw new HttpError(denied.status, denied.message, denied.status === 401 ? 'E_UI_TOKEN' : 'E_UI_HOST');
    if (unsafePath(path)) throw new HttpError(400, `the path ${JSON.stringify(path)} is refused: no dot segments, encoded slashes or empty segments`);
    const method = req.method ?? 'GET';

    const asset = assets.get(path);
    if (asset) {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} is not allowed on ${path}`);
      const headers: Record<string, string | number> = { 'Content-Type': asset.type, 'Content-Length': asset.body.length, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' };
      // The token from the printed URL becomes a cookie, so the page's own requests carry it.
      if (o.token && path === '/' && tokenMatches(query.get('token') ?? undefined, o.token)) headers['Set-Cookie'] = `${TOKEN_COOKIE}=${encodeURIComponent(o.token)}; HttpOnly; SameSite=Strict; Path=/`;
      res.writeHead(200, headers).end(method === 'HEAD' ? undefined : asset.body);
      return 200;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return 204;
    }
    if (!path.startsWith('/api/')) throw new HttpError(404, `nothing at ${path}`);
    const route = `${method} ${path}`;
    switch (route) {
      case 'GET /api/status':
        return sendJson(res, 200, { streams: streams.count, subscriptions: [...watchers.values()].reduce((n, w) => n + w.listenerCount, 0), runs: refs().length, tokenRequired: o.token !== undefined, playground: o.playground !== undefined });
      case 'GET /api/runs':
        return sendJson(res, 200, { runs: refs().map((r) => watchers.get(r.dir)?.current().summary ?? summarizeRun(r)), problems: sourceProblems() });
      case 'GET /api/metrics': {
        const { rows, summary } = watcherOf(refOf(query.get('run'))).current();
        const type = query.get('type');
        return sendJson(res, 200, type ? rows.filter((r) => r.type === type) : rows, summary.problems.length ? { 'X-Lorafit-Problems': encodeURIComponent(summary.problems.join(' | ')) } : {});
      }
      case 'GET /api/events': {
        const watcher = watcherOf(refOf(query.get('run')));
        const stream = streams.start(res);
        const unsubscribe = watcher.subscribe((e) => stream.send(e));
        stream.onClose(unsubscribe);
        return 200;
      }
      case 'POST /api/chat':
        await chat.chat(req, res);
        return 200;
      case 'POST /api/ab':
        await chat.ab(req, res);
        return 200;
      case 'POST /api/ab/vote':
        return sendJson(res, 200, await chat.vote(req));
      case 'GET /api/ab/tally':
        return sendJson(res, 200, chat.tally(query));
      default:
        throw new HttpError(404, `no route ${route}`);
    }
  };

  const server = createServer((req, res) => {
    const t0 = Date.now();
    handle(req, res)
      .then((status) => o.log?.debug({ method: req.method, url: redact(req.url), status, ms: Date.now() - t0 }, 'request'))
      .catch((e: unknown) => {
        const err = e instanceof HttpError ? e : asHttpError(e);
        o.log?.[err.status >= 500 ? 'error' : 'warn']({ method: req.method, url: redact(req.url), status: err.status, err: err.message }, 'request failed');
        if (res.headersSent) {
          res.end();
          return;
        }
        if (!req.complete) res.setHeader('Connection', 'close');
        sendJson(res, err.status, { error: { message: err.message, code: err.code } });
      });
  });

  return {
    server,
    streams,
    close: () =>
      new Promise<void>((done) => {
        for (const w of watchers.values()) w.stop();
        streams.closeAll();
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

/** Library errors with a code: bad options are the client's (400), the rest the server's. */
function asHttpError(e: unknown): HttpError {
  const code = (e as { code?: unknown })?.code;
  const message = e instanceof Error ? e.message : String(e);
  if (code === 'E_OPTION' || code === 'E_UI_MODEL' || code === 'E_CHAT_TEMPLATE') return new HttpError(400, message, code);
  return new HttpError(500, message, typeof code === 'string' ? code : 'E_SERVER');
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): number {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
  res.end(body);
  return status;
}

/** A URL for the log, without its token. */
function redact(url: string | undefined): string | undefined {
  return url?.replace(/([?&]token=)[^&]*/, '$1…');
}
