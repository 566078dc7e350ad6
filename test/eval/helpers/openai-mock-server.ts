/**
 * A real HTTP server (node:http on 127.0.0.1, random port) speaking the
 * OpenAI chat-completions API, scripted per test.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: any;
}

export interface ScriptedReply {
  status?: number;
  /** Assistant content for a 200 chat.completion (ignored when `raw` is set). */
  content?: string;
  /** Raw response body (string) for error replies or odd shapes. */
  raw?: string;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Never answer (the client must time out). */
  hang?: boolean;
}

export type Handler = (req: RecordedRequest, index: number) => ScriptedReply;

export interface MockServer {
  baseUrl: string;
  requests: RecordedRequest[];
  maxInFlight: number;
  close(): Promise<void>;
}

export function completion(content: string, model = 'judge-model'): string {
  return JSON.stringify({
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 1_700_000_000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  });
}

export async function startMockServer(handler: Handler): Promise<MockServer> {
  const requests: RecordedRequest[] = [];
  let inFlight = 0;
  const state = { maxInFlight: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* keep text */
      }
      const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      const index = requests.length;
      requests.push(rec);
      inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, inFlight);
      const reply = handler(rec, index);
      if (reply.hang) {
        res.on('close', () => inFlight--);
        return;
      }
      const send = () => {
        const status = reply.status ?? 200;
        const payload = reply.raw ?? completion(reply.content ?? '');
        res.writeHead(status, { 'content-type': 'application/json', ...(reply.headers ?? {}) });
        res.end(payload);
        inFlight--;
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    get maxInFlight() {
      return state.maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
