// Server-sent event streams and the count of those open. Each stream sends `data: <json>` events
// and a comment every `heartbeatMs` (so proxies and the browser keep the connection, and a client
// that vanished without a FIN is noticed on the next write); it leaves the count the moment its
// client goes away, and its close handlers run then (the caller unsubscribes or aborts there).
import type { ServerResponse } from 'node:http';

export interface SseStream {
  send(value: unknown): void;
  end(): void;
  readonly closed: boolean;
  /** Runs once when the client goes away or end() is called. */
  onClose(fn: () => void): void;
}

export class SseStreams {
  private readonly open = new Set<ServerResponse>();

  constructor(private readonly heartbeatMs = 15_000) {}

  /** Streams open now (event streams and chat streams alike). */
  get count(): number {
    return this.open.size;
  }

  start(res: ServerResponse): SseStream {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(': lorafit\n\n');
    this.open.add(res);
    const handlers: (() => void)[] = [];
    let closed = false;
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), this.heartbeatMs);
    heartbeat.unref();
    const close = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      this.open.delete(res);
      for (const h of handlers.splice(0)) h();
    };
    res.on('close', close);
    return {
      send: (value) => {
        if (!closed) res.write(`data: ${JSON.stringify(value)}\n\n`);
      },
      end: () => {
        close();
        res.end();
      },
      get closed() {
        return closed;
      },
      onClose: (fn) => {
        if (closed) fn();
        else handlers.push(fn);
      },
    };
  }

  /** Ends every stream (server shutdown). */
  closeAll(): void {
    for (const res of [...this.open]) res.end();
  }
}
