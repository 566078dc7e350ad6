// An OpenAI-compatible HTTP server over one loaded model (node:http, no framework):
//   GET  /v1/models                 the base model and every loaded adapter
//   POST /v1/chat/completions       chat template + generation; `stream: true` answers with SSE
//   POST /v1/completions            raw text completion; same streaming
// The request's `model` field picks the adapter: the base model's id runs without adapter, an
// adapter's name runs with it. Requests run one at a time (a queue in front of the model's own
// per-call lock, so the steps of two generations never interleave); at most `maxQueue` wait, and
// one more is answered 503 (GET /health shows `running` and `queued`). Bad requests get 400 with
// OpenAI's error shape `{ error: { message, type, param, code } }`, a body over `maxBodyBytes` 413,
// and `max_tokens` is capped at the room the context leaves after the prompt.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { chatPromptIds, completionStream, type ChatMessage, type GenerationStats } from '../model/chat.js';
import type { GenerateOptions } from '../model/generation.js';
import type { Model } from '../model/model.js';
import { Serial } from '../model/serial.js';
import type { Tokenizer } from '../text/tokenizer.js';
import { LorafitError } from '../errors.js';
import { errorCode } from './common.js';

export interface OpenAiServerOptions {
  model: Model;
  tokenizer: Tokenizer;
  /** The id clients use for the base model (no adapter). */
  baseName: string;
  /** Names of adapters loaded on the model; each is also a model id. */
  adapters: string[];
  /** max_tokens when a request gives none. Default 256. */
  defaultMaxTokens?: number;
  /** Requests that may wait behind the running one; one more gets 503. Default 16. */
  maxQueue?: number;
  /** Largest request body in bytes; a larger one gets 413. Default 16 MiB. */
  maxBodyBytes?: number;
  log?: Logger;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }
}

const MAX_BODY = 16 * 1024 * 1024;
const MAX_QUEUE = 16;
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

export function createOpenAiServer(o: OpenAiServerOptions): Server {
  const maxQueue = o.maxQueue ?? MAX_QUEUE;
  const maxBody = o.maxBodyBytes ?? MAX_BODY;
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new LorafitError('E_OPTION', `option 'maxQueue' must be a non-negative integer, got ${maxQueue}`);
  if (!Number.isInteger(maxBody) || maxBody < 1) throw new LorafitError('E_OPTION', `option 'maxBodyBytes' must be a positive integer, got ${maxBody}`);
  const queue = new RequestQueue(maxQueue);
  const created = Math.floor(Date.now() / 1000);
  const ids = [o.baseName, ...o.adapters];

  const modelEntry = (id: string) => ({ id, object: 'model', created, owned_by: 'lorafit', ...(id === o.baseName ? {} : { parent: o.baseName }) });

  /** The adapter a request's `model` field names (null: the base model). */
  const adapterFor = (name: unknown): string | null => {
    if (typeof name !== 'string' || name.length === 0) throw new ApiError(400, "'model' is required: the base model's id or an adapter name", 'model');
    if (name === o.baseName) return null;
    if (o.adapters.includes(name)) return name;
    throw new ApiError(404, `The model '${name}' does not exist; available: ${ids.join(', ')}`, 'model', 'model_not_found');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<{ status: number; extra?: Record<string, unknown> }> => {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Access-Control-Allow-Headers': '*', 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS' }).end();
      return { status: 204 };
    }
    if (path === '/health' && req.method === 'GET') return sendJson(res, 200, { status: 'ok', running: queue.running, queued: queue.queued, maxQueue });
    if (path === '/v1/models') {
      if (req.method !== 'GET') throw new ApiError(405, `${req.method} is not allowed on ${path}; use GET`);
      return sendJson(res, 200, { object: 'list', data: ids.map(modelEntry) });
    }
    if (path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (!ids.includes(id)) throw new ApiError(404, `The model '${id}' does not exist`, 'model', 'model_not_found');
      return sendJson(res, 200, modelEntry(id));
    }
    const kind = path === '/v1/chat/completions' ? 'chat' : path === '/v1/completions' ? 'completion' : null;
    if (kind === null) throw new ApiError(404, `Unknown route ${req.method} ${path}`, null, 'not_found');
    if (req.method !== 'POST') throw new ApiError(405, `${req.method} is not allowed on ${path}; use POST`);
    const body = await readJson(req, maxBody);
    const adapter = adapterFor(body.model);
    const params = generationParams(body);
    const stream = optionalBoolean(body, 'stream') ?? false;
    const includeUsage = stream && isObject(body.stream_options) && body.stream_options.include_usage === true;
    const prompt = kind === 'chat' ? await chatIds(o.tokenizer, body) : await completionIds(o.tokenizer, body);
    const context = o.model.config.maxPositionEmbeddings;
    if (prompt.length >= context) {
      throw new ApiError(400, `This model's maximum context length is ${context} tokens; the prompt has ${prompt.length}`, kind === 'chat' ? 'messages' : 'prompt', 'context_length_exceeded');
    }
    const maxNewTokens = Math.min(params.maxTokens ?? o.defaultMaxTokens ?? 256, context - prompt.length);
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    const options: GenerateOptions = { ...params.sampling, maxNewTokens, adapter, signal: ac.signal };
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replace(/-/g, '')}`;
    const now = Math.floor(Date.now() / 1000);
    const modelId = body.model as string;
    const stats: GenerationStats = { promptTokens: 0, completionTokens: 0, finishReason: null };
    const usage = () => ({ prompt_tokens: stats.promptTokens, completion_tokens: stats.completionTokens, total_tokens: stats.promptTokens + stats.completionTokens });

    return queue.run(ac.signal, async () => {
      if (ac.signal.aborted) return { status: 499 };
      const pieces = completionStream(o.model, o.tokenizer, prompt, options, stats);
      if (!stream) {
        let text = '';
        for await (const p of pieces) text += p;
        const choice =
          kind === 'chat'
            ? { index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: stats.finishReason }
            : { index: 0, text, logprobs: null, finish_reason: stats.finishReason };
        const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
        sendJson(res, 200, { id, object, created: now, model: modelId, choices: [choice], usage: usage() });
        return { status: 200, extra: { adapter, ...stats } };
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
      const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
      const chunk = (choice: Record<string, unknown> | null, extra: Record<string, unknown> = {}) =>
        sse(res, { id, object, created: now, model: modelId, choices: choice ? [choice] : [], ...extra });
      try {
        if (kind === 'chat') chunk({ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null });
        for await (const p of pieces) {
          chunk(kind === 'chat' ? { index: 0, delta: { content: p }, logprobs: null, finish_reason: null } : { index: 0, text: p, logprobs: null, finish_reason: null });
        }
        chunk(kind === 'chat' ? { index: 0, delta: {}, logprobs: null, finish_reason: stats.finishReason } : { index: 0, text: '', logprobs: null, finish_reason: stats.finishReason });
        if (includeUsage) chunk(null, { usage: usage() });
        res.write('data: [DONE]\n\n');
      } catch (e) {
        if (errorCode(e) === 'E_ABORTED') return { status: 499, extra: { adapter, ...stats } };
        // Headers are out: report the error in the stream, as OpenAI does.
        sse(res, { error: { message: (e as Error).message, type: 'server_error', param: null, code: errorCode(e) ?? null } });
      }
      res.end();
      return { status: 200, extra: { adapter, ...stats, stream: true } };
    });
  };

  return createServer((req, res) => {
    const t0 = Date.now();
    handle(req, res)
      .then(({ status, extra }) => o.log?.info({ method: req.method, url: req.url, status, ms: Date.now() - t0, ...extra }, 'request'))
      .catch((e: unknown) => {
        const err =
          e instanceof ApiError
            ? e
            : errorCode(e) === 'E_OPTION' || errorCode(e) === 'E_CHAT_TEMPLATE' || errorCode(e) === 'E_INPUT'
              ? new ApiError(400, (e as Error).message, null, errorCode(e) ?? null)
              : errorCode(e) === 'E_ABORTED'
                ? new ApiError(499, 'client closed the request')
                : new ApiError(500, (e as Error)?.message ?? String(e), null, errorCode(e) ?? null);
        o.log?.[err.status >= 500 ? 'error' : 'warn']({ method: req.method, url: req.url, status: err.status, ms: Date.now() - t0, err: err.message }, 'request failed');
        if (res.headersSent) {
          res.end();
          return;
        }
        if (err.status === 503) res.setHeader('Retry-After', '1');
        // A body left unread (too large) is not drained: the connection closes after the answer.
        if (!req.complete) res.setHeader('Connection', 'close');
        sendJson(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: err.code } });
      });
  });
}

/**
 * Runs requests one at a time, with at most `limit` waiting: one more is refused with 503. A
 * waiting request whose client goes away gives its place up at once.
 */
class RequestQueue {
  running = 0;
  queued = 0;
  private readonly serial = new Serial();
  constructor(readonly limit: number) {}

  run<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    if (this.running + this.queued > this.limit) {
      throw new ApiError(503, `The server is busy: ${this.queued} request(s) are waiting for the model (--max-queue ${this.limit}); retry later`, null, 'queue_full');
    }
    this.queued++;
    let waiting = true;
    const leave = () => {
      if (waiting) this.queued--;
      waiting = false;
    };
    signal.addEventListener('abort', leave, { once: true });
    return this.serial.run(async () => {
      leave();
      this.running++;
      try {
        return await fn();
      } finally {
        this.running--;
      }
    });
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): { status: number } {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
  return { status };
}

function sse(res: ServerResponse, value: unknown): void {
  res.write(`data: ${JSON.stringify(value)}\n\n`);
}

async function readJson(req: IncomingMessage, maxBody: number): Promise<Record<string, unknown>> {
  const tooLarge = (what: string) => new ApiError(413, `The request body (${what}) is over the server's limit of ${maxBody} bytes (--max-body-bytes)`, null, 'request_too_large');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBody) throw tooLarge(`${declared} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > maxBody) throw tooLarge(`more than ${maxBody} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw new ApiError(400, 'request body is empty; send a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(value)) throw new ApiError(400, 'request body must be a JSON object');
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalNumber(body: Record<string, unknown>, key: string, check: (n: number) => boolean, what: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw new ApiError(400, `'${key}' must be ${what}, got ${JSON.stringify(v)}`, key, 'invalid_value');
  return v;
}

function optionalBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ApiError(400, `'${key}' must be a boolean, got ${JSON.stringify(v)}`, key, 'invalid_type');
  return v;
}

const isInt = (n: number) => Number.isInteger(n);

/** OpenAI sampling fields (plus top_k and repetition_penalty) as GenerateOptions. */
function generationParams(body: Record<string, unknown>): { maxTokens?: number; sampling: GenerateOptions } {
  const maxTokens =
    optionalNumber(body, 'max_completion_tokens', (n) => isInt(n) && n >= 1, 'a positive integer') ??
    optionalNumber(body, 'max_tokens', (n) => isInt(n) && n >= 1, 'a positive integer');
  const temperature = optionalNumber(body, 'temperature', (n) => n >= 0 && n <= 2, 'a number in [0, 2]');
  const topP = optionalNumber(body, 'top_p', (n) => n > 0 && n <= 1, 'a number in (0, 1]');
  const topK = optionalNumber(body, 'top_k', (n) => isInt(n) && n >= 0, 'a non-negative integer');
  const repetitionPenalty = optionalNumber(body, 'repetition_penalty', (n) => n > 0, 'a positive number');
  const seed = optionalNumber(body, 'seed', (n) => isInt(n) && n >= 0, 'a non-negative integer');
  optionalNumber(body, 'frequency_penalty', (n) => n >= -2 && n <= 2, 'a number in [-2, 2]');
  optionalNumber(body, 'presence_penalty', (n) => n >= -2 && n <= 2, 'a number in [-2, 2]');
  const n = optionalNumber(body, 'n', (v) => v === 1, '1 (one choice per request)');
  void n;
  let stop: string[] | undefined;
  if (body.stop !== undefined && body.stop !== null) {
    const list = typeof body.stop === 'string' ? [body.stop] : body.stop;
    if (!Array.isArray(list) || list.length > 4 || list.some((s) => typeof s !== 'string' || s.length === 0)) {
      throw new ApiError(400, "'stop' must be a non-empty string or an array of up to 4 non-empty strings", 'stop', 'invalid_value');
    }
    stop = list as string[];
  }
  const sampling: GenerateOptions = { topP, topK, repetitionPenalty, seed, stop };
  // A temperature samples at it, 0 decodes greedily (the library's rule); none leaves
  // generation_config.json's choice.
  if (temperature !== undefined) {
    sampling.doSample = temperature > 0;
    sampling.temperature = temperature;
  }
  return { maxTokens, sampling };
}

function messageText(content: unknown, at: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((part, i) => {
        if (isObject(part) && part.type === 'text' && typeof part.text === 'string') return part.text;
        throw new ApiError(400, `${at}.content[${i}]: only {"type": "text", "text": "..."} parts are supported`, `${at}.content`, 'invalid_value');
      })
      .join('');
  }
  throw new ApiError(400, `${at}.content must be a string or an array of text parts`, `${at}.content`, 'invalid_type');
}

async function chatIds(tokenizer: Tokenizer, body: Record<string, unknown>): Promise<number[]> {
  const raw = body.messages;
  if (!Array.isArray(raw) || raw.length === 0) throw new ApiError(400, "'messages' must be a non-empty array of {role, content}", 'messages', 'invalid_value');
  const messages: ChatMessage[] = raw.map((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) throw new ApiError(400, `${at} must be an object with role and content`, at, 'invalid_type');
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
      throw new ApiError(400, `${at}.role must be one of ${[...ROLES].join(', ')}, got ${JSON.stringify(m.role)}`, `${at}.role`, 'invalid_value');
    }
    if (m.role !== 'assistant' && (m.content === undefined || m.content === null)) throw new ApiError(400, `${at}.content is required`, `${at}.content`, 'invalid_value');
    const { role, content, ...rest } = m;
    return { ...rest, role: role === 'developer' ? 'system' : role, content: messageText(content, at) } as ChatMessage;
  });
  const tools = body.tools === undefined || body.tools === null ? undefined : body.tools;
  if (tools !== undefined && !Array.isArray(tools)) throw new ApiError(400, "'tools' must be an array", 'tools', 'invalid_type');
  const extra = isObject(body.chat_template_kwargs) ? body.chat_template_kwargs : undefined;
  return chatPromptIds(tokenizer, messages, { tools: tools as unknown[] | undefined, templateVariables: extra });
}

async function completionIds(tokenizer: Tokenizer, body: Record<string, unknown>): Promise<number[]> {
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') prompt = prompt[0];
  if (typeof prompt !== 'string' || prompt.length === 0) {
    throw new ApiError(400, "'prompt' must be a non-empty string (one prompt per request)", 'prompt', 'invalid_value');
  }
  if (body.suffix !== undefined && body.suffix !== null) throw new ApiError(400, "'suffix' is not supported", 'suffix', 'unsupported_parameter');
  return tokenizer.encode(prompt);
}
