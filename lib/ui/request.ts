// Request bodies of the dashboard's POST routes, checked field by field: an error names the field
// and what it must be (answered 400), before any model work starts.
import type { IncomingMessage } from 'node:http';
import type { ChatMessage } from '../model/chat.js';
import type { GenerateOptions } from '../model/generation.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code = status === 404 ? 'E_NOT_FOUND' : status >= 500 ? 'E_SERVER' : 'E_REQUEST',
  ) {
    super(message);
  }
}

const MAX_BODY = 1024 * 1024;

export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `the request body is over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `the request body is not JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}

function numberField(body: Record<string, unknown>, key: string, ok: (n: number) => boolean, what: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new HttpError(400, `'${key}' must be ${what}, got ${JSON.stringify(v)}`);
  return v;
}

const int = (n: number) => Number.isInteger(n);

/** Sampling controls: maxNewTokens, temperature (0 = greedy), topP, topK, repetitionPenalty, seed. */
export function samplingOf(body: Record<string, unknown>): GenerateOptions {
  const maxNewTokens = numberField(body, 'maxNewTokens', (n) => int(n) && n >= 1 && n <= 4096, 'an integer in [1, 4096]') ?? 128;
  const temperature = numberField(body, 'temperature', (n) => n >= 0 && n <= 2, 'a number in [0, 2]');
  const topP = numberField(body, 'topP', (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const topK = numberField(body, 'topK', (n) => int(n) && n >= 0, 'a non-negative integer');
  const repetitionPenalty = numberField(body, 'repetitionPenalty', (n) => n > 0, 'a positive number');
  const seed = numberField(body, 'seed', (n) => int(n) && n >= 0, 'a non-negative integer');
  const o: GenerateOptions = { maxNewTokens, topP, topK, repetitionPenalty, seed };
  if (temperature !== undefined) {
    o.doSample = temperature > 0;
    o.temperature = temperature;
  }
  return o;
}

const ROLES = new Set(['system', 'user', 'assistant']);

/** `messages` ([{ role, content }]) or `prompt` (one user turn), with an optional `system`. */
export function messagesOf(body: Record<string, unknown>): ChatMessage[] {
  let messages: ChatMessage[];
  if (body.messages !== undefined) {
    if (!Array.isArray(body.messages) || body.messages.length === 0) throw new HttpError(400, "'messages' must be a non-empty array of { role, content }");
    messages = body.messages.map((m: unknown, i) => {
      const r = m as { role?: unknown; content?: unknown } | null;
      if (!r || typeof r.role !== 'string' || !ROLES.has(r.role) || typeof r.content !== 'string') {
        throw new HttpError(400, `messages[${i}] must be { role: system|user|assistant, content: string }`);
      }
      return { role: r.role, content: r.content };
    });
  } else if (typeof body.prompt === 'string' && body.prompt.trim()) {
    messages = [{ role: 'user', content: body.prompt }];
  } else {
    throw new HttpError(400, "give 'prompt' (a non-empty string) or 'messages'");
  }
  if (body.system !== undefined && body.system !== null && body.system !== '') {
    if (typeof body.system !== 'string') throw new HttpError(400, "'system' must be a string");
    messages = [{ role: 'system', content: body.system }, ...messages];
  }
  return messages;
}

export function stringField(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || !v) throw new HttpError(400, `'${key}' must be a non-empty string`);
  return v;
}
