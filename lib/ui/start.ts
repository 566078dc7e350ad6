// Starting the dashboard (lorafit ui, lorafit train --ui): the token rule, listening, the URL line.
import { LorafitError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { isLoopbackHost, newToken } from './auth.js';
import { Playground, type PlaygroundOptions } from './playground.js';
import { createUiServer, type UiServer } from './server.js';
import type { RunSources } from './runs.js';

export interface StartUiOptions {
  sources: RunSources;
  host?: string;
  port?: number;
  /** The token for a non-loopback host (default: a random one); refused on a loopback host without `requireToken`. */
  token?: string;
  /** false: no playground (no model is ever loaded). */
  playground?: PlaygroundOptions | false;
  log?: Logger;
}

export interface RunningUi extends UiServer {
  /** The page's address (with ?token=... when one is needed). */
  url: string;
  token: string | undefined;
  playground: Playground | undefined;
  /** close() and the playground's model freed. */
  stop(): Promise<void>;
}

export async function startUi(o: StartUiOptions): Promise<RunningUi> {
  const host = o.host ?? '127.0.0.1';
  const port = o.port ?? 7860;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LorafitError('E_OPTION', `--port must be 0-65535, got ${port}`);
  const loopback = isLoopbackHost(host);
  if (o.token !== undefined && !/^[A-Za-z0-9_~.-]{16,}$/.test(o.token)) throw new LorafitError('E_OPTION', '--token must be at least 16 characters of letters, digits, _ ~ . -');
  // A token on loopback too if one is given; a non-loopback host always gets one.
  const token = o.token ?? (loopback ? undefined : newToken());
  const playground = o.playground === false ? undefined : new Playground({ ...o.playground, log: o.log });
  const ui = createUiServer({ sources: o.sources, token, playground, log: o.log });
  await new Promise<void>((resolve, reject) => {
    ui.server.once('error', (e: NodeJS.ErrnoException) => reject(new LorafitError('E_LISTEN', `cannot listen on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use (--port 0 picks a free one)' : e.message}`)));
    ui.server.listen(port, host, () => resolve());
  });
  const addr = ui.server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  const shown = host === '0.0.0.0' || host === '::' ? host : host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${bound}/${token ? `?token=${token}` : ''}`;
  o.log?.info({ host, port: bound, token: token !== undefined }, 'ui listening');
  return {
    ...ui,
    url,
    token,
    playground,
    stop: async () => {
      await ui.close();
      await playground?.dispose();
    },
  };
}
