/**
 * LLM-as-judge client for any OpenAI-compatible chat endpoint
 * (`POST {base}/chat/completions`), built on Node's global `fetch`.
 *
 * Configuration, first found wins:
 * - base URL: `options.baseUrl`, `LORAFIT_JUDGE_BASE_URL`, `OPENAI_BASE_URL`.
 *   A base ending in a version segment (`…/v1`, `…/v4`) gets
 *   `/chat/completions` appended; one already ending in `/chat/completions` is
 *   used as is; anything else gets `/v1/chat/completions`.
 * - API key: `options.apiKey`, `LORAFIT_JUDGE_API_KEY`, `OPENAI_API_KEY`;
 *   optional (local servers need none). Sent only as `Authorization: Bearer`.
 *   The key is scrubbed from every error message and log event, including
 *   response bodies that echo it back.
 * - model: `options.model`, `LORAFIT_JUDGE_MODEL`.
 *
 * Reliability: each request has its own timeout (`AbortSignal.timeout`,
 * combined with the caller's signal); HTTP 429, 5xx, network errors and
 * timeouts are retried with exponential backoff (honouring `Retry-After`);
 * other 4xx fail at once. Answers without a parseable score are re-asked up to
 * `maxMalformedRetries` times and counted. `scoreMany` runs at most
 * `concurrency` requests at a time.
 */
import { LorafitEvalError, assertArg } from './errors.js';
import { buildRubricMessages, type ChatMessage, type StyleRubric } from './judge-prompt.js';
import { parseJudgeScore } from './judge-parse.js';

export interface JudgeLogEvent {
  level: 'debug' | 'warn';
  /** 'retry' (transport retry after 429/5xx/network error/timeout) or 'malformed' (answer without a valid score). */
  event: 'retry' | 'malformed';
  /** Human-readable message; never contains the API key. */
  message: string;
  attempt?: number;
  status?: number;
  delayMs?: number;
}

export interface JudgeClientOptions {
  baseUrl?: string;
  apiKey?: string;
  model?: string;
  /** Environment to read defaults from. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Sampling temperature. Default 0. */
  temperature?: number;
  /** `max_tokens` of the request. Default 64. */
  maxTokens?: number;
  /** Per-request timeout in ms. Default 60000. */
  timeoutMs?: number;
  /** Retries after 429/5xx/network errors/timeouts. Default 3. */
  maxRetries?: number;
  /** Re-asks after an answer without a valid score. Default 2. */
  maxMalformedRetries?: number;
  /** First backoff delay in ms (doubles per retry, ±25 % jitter). Default 500. */
  retryBaseDelayMs?: number;
  /** Cap for backoff and Retry-After. Default 20000. */
  retryMaxDelayMs?: number;
  /** Concurrent requests in `scoreMany`. Default 4. */
  concurrency?: number;
  /** Extra request headers (e.g. `OpenAI-Organization`). */
  headers?: Record<string, string>;
  /** Receives retry/malformed events. */
  logger?: (event: JudgeLogEvent) => void;
}

export interface JudgeItemResult {
  /** Score normalised to [0, 1] (raw / 10), or null if no valid answer was obtained. */
  score: number | null;
  /** Score on the judge's 0-10 scale, or null. */
  rawScore: number | null;
  /** Answers that held no valid score (each one was re-asked while retries lasted). */
  malformedAnswers: number;
  /** HTTP requests made for this item. */
  requests: number;
  /** Why the item has no score, if it has none. */
  error?: string;
}

export interface JudgeBatchResult {
  items: JudgeItemResult[];
  /** Mean of the valid normalised scores (null when there are none). */
  mean: number | null;
  /** Items with a valid score. */
  scored: number;
  /** Items without one (malformed every time, or retries exhausted). */
  failed: number;
  /** Malformed answers over all items. */
  malformedAnswers: number;
}

const RETRYABLE = (status: number) => status === 429 || status >= 500;

function resolveEndpoint(base: string): string {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    throw new LorafitEvalError('E_JUDGE_CONFIG', `judge base URL is not a valid URL: ${JSON.stringify(base)}`);
  }
  const path = u.pathname.replace(/\/+$/, '');
  if (/\/chat\/completions$/.test(path)) u.pathname = path;
  else if (/\/v\d+$/.test(path)) u.pathname = `${path}/chat/completions`;
  else u.pathname = `${path}/v1/chat/completions`;
  return u.toString();
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Client for one judge model. */
export class JudgeClient {
  readonly endpoint: string;
  readonly model: string;
  private readonly apiKey: string | undefined;
  private readonly o: Required<Omit<JudgeClientOptions, 'baseUrl' | 'apiKey' | 'model' | 'env' | 'logger' | 'headers'>>;
  private readonly headers: Record<string, string>;
  private readonly logger?: (event: JudgeLogEvent) => void;

  constructor(options: JudgeClientOptions = {}) {
    const env = options.env ?? process.env;
    const base = options.baseUrl ?? env.LORAFIT_JUDGE_BASE_URL ?? env.OPENAI_BASE_URL;
    if (!base) {
      throw new LorafitEvalError(
        'E_JUDGE_CONFIG',
        'no judge endpoint: pass baseUrl or set LORAFIT_JUDGE_BASE_URL (or OPENAI_BASE_URL), e.g. http://127.0.0.1:8000/v1',
      );
    }
    const model = options.model ?? env.LORAFIT_JUDGE_MODEL;
    if (!model) throw new LorafitEvalError('E_JUDGE_CONFIG', 'no judge model: pass model or set LORAFIT_JUDGE_MODEL');
    this.endpoint = resolveEndpoint(base);
    this.model = model;
    const key = options.apiKey ?? env.LORAFIT_JUDGE_API_KEY ?? env.OPENAI_API_KEY;
    this.apiKey = key ? key : undefined;
    this.o = {
      temperature: options.temperature ?? 0,
      maxTokens: options.maxTokens ?? 64,
      timeoutMs: options.timeoutMs ?? 60_000,
      maxRetries: options.maxRetries ?? 3,
      maxMalformedRetries: options.maxMalformedRetries ?? 2,
      retryBaseDelayMs: options.retryBaseDelayMs ?? 500,
      retryMaxDelayMs: options.retryMaxDelayMs ?? 20_000,
      concurrency: options.concurrency ?? 4,
    };
    assertArg(Number.isInteger(this.o.concurrency) && this.o.concurrency >= 1, 'concurrency must be an integer >= 1');
    assertArg(this.o.timeoutMs > 0, 'timeoutMs must be > 0');
    this.headers = { ...(options.headers ?? {}) };
    this.logger = options.logger;
  }

  /** Removes the API key (and its Bearer form) from any text. */
  redact(text: string): string {
    if (!this.apiKey) return text;
    return text.split(this.apiKey).join('[REDACTED]');
  }

  private log(e: JudgeLogEvent): void {
    this.logger?.({ ...e, message: this.redact(e.message) });
  }

  private fail(code: 'E_JUDGE_HTTP' | 'E_JUDGE_TIMEOUT', message: string, status?: number): LorafitEvalError {
    return new LorafitEvalError(code, this.redact(message), { status });
  }

  private backoff(attempt: number, retryAfter: string | null): number {
    const cap = this.o.retryMaxDelayMs;
    if (retryAfter !== null) {
      const secs = Number(retryAfter);
      if (Number.isFinite(secs) && secs >= 0) return Math.min(cap, secs * 1000);
      const date = Date.parse(retryAfter);
      if (!Number.isNaN(date)) return Math.min(cap, Math.max(0, date - Date.now()));
    }
    const d = this.o.retryBaseDelayMs * 2 ** (attempt - 1);
    return Math.min(cap, d * (0.75 + Math.random() * 0.5));
  }

  /**
   * One chat completion with transport retries. Resolves to the assistant's
   * text and the number of HTTP requests made.
   */
  async chat(messages: readonly ChatMessage[], options: { signal?: AbortSignal } = {}): Promise<{ content: string; requests: number }> {
    const body = JSON.stringify({
      model: this.model,
      messages,
      temperature: this.o.temperature,
      max_tokens: this.o.maxTokens,
    });
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json', ...this.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    const userSignal = options.signal;
    let lastProblem = '';
    let lastStatus: number | undefined;
    for (let attempt = 1; ; attempt++) {
      if (userSignal?.aborted) throw this.fail('E_JUDGE_TIMEOUT', `judge request aborted by the caller`);
      const timeout = AbortSignal.timeout(this.o.timeoutMs);
      const signal = userSignal ? AbortSignal.any([userSignal, timeout]) : timeout;
      let retryAfter: string | null = null;
      try {
        const res = await fetch(this.endpoint, { method: 'POST', headers, body, signal });
        const text = await res.text();
        if (res.ok) return { content: this.extractContent(text), requests: attempt };
        const snippet = text.slice(0, 300).replace(/\s+/g, ' ');
        lastProblem = `HTTP ${res.status} from ${this.endpoint}: ${snippet}`;
        lastStatus = res.status;
        if (!RETRYABLE(res.status)) {
          throw this.fail('E_JUDGE_HTTP', `judge request failed (not retried): ${lastProblem}`, res.status);
        }
        retryAfter = res.headers.get('retry-after');
      } catch (err) {
        if (err instanceof LorafitEvalError) throw err;
        if (userSignal?.aborted) throw this.fail('E_JUDGE_TIMEOUT', `judge request aborted by the caller`);
        lastStatus = undefined;
        if (timeout.aborted) lastProblem = `no answer from ${this.endpoint} within ${this.o.timeoutMs} ms`;
        else lastProblem = `network error calling ${this.endpoint}: ${(err as Error)?.message ?? String(err)}`;
      }
      if (attempt > this.o.maxRetries) {
        const code = lastProblem.startsWith('no answer') ? 'E_JUDGE_TIMEOUT' : 'E_JUDGE_HTTP';
        throw this.fail(code, `judge request failed after ${attempt} attempts; last: ${lastProblem}`, lastStatus);
      }
      const delayMs = this.backoff(attempt, retryAfter);
      this.log({ level: 'warn', event: 'retry', message: `retrying in ${Math.round(delayMs)} ms: ${lastProblem}`, attempt, delayMs });
      try {
        await sleep(delayMs, userSignal);
      } catch {
        throw this.fail('E_JUDGE_TIMEOUT', `judge request aborted by the caller`);
      }
    }
  }

  /** Assistant text of a chat.completion body; '' when the shape is unexpected (treated as malformed). */
  private extractContent(body: string): string {
    try {
      const data = JSON.parse(body) as { choices?: { message?: { content?: unknown } }[] };
      const content = data.choices?.[0]?.message?.content;
      if (typeof content === 'string') return content;
      if (Array.isArray(content)) {
        return content.map((p) => (typeof p === 'string' ? p : typeof p?.text === 'string' ? p.text : '')).join('');
      }
    } catch {
      /* fall through */
    }
    return '';
  }

  /** Ask the judge to rate one text; malformed answers are re-asked and counted. */
  async scoreText(text: string, rubric: StyleRubric, options: { signal?: AbortSignal } = {}): Promise<JudgeItemResult> {
    const messages = buildRubricMessages(rubric, text);
    let malformed = 0;
    let requests = 0;
    for (let ask = 0; ask <= this.o.maxMalformedRetries; ask++) {
      const { content, requests: r } = await this.chat(messages, options);
      requests += r;
      const parsed = parseJudgeScore(content, 10);
      if (parsed) return { score: parsed.score / 10, rawScore: parsed.score, malformedAnswers: malformed, requests };
      malformed++;
      this.log({
        level: 'warn',
        event: 'malformed',
        message: `judge answer holds no score in 0-10: ${JSON.stringify(content.slice(0, 200))}`,
        attempt: ask + 1,
      });
    }
    return {
      score: null,
      rawScore: null,
      malformedAnswers: malformed,
      requests,
      error: `no valid score after ${malformed} malformed answers`,
    };
  }

  /**
   * Rate many texts with at most `concurrency` requests in flight. Items whose
   * retries run out get `score: null` and an `error`; a non-retryable HTTP
   * error (401, 404, …) or an abort rejects the whole batch at once.
   */
  async scoreMany(texts: readonly string[], rubric: StyleRubric, options: { signal?: AbortSignal } = {}): Promise<JudgeBatchResult> {
    buildRubricMessages(rubric, ''); // validate the rubric before any request
    const items: JudgeItemResult[] = new Array(texts.length);
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    let next = 0;
    const worker = async () => {
      while (next < texts.length) {
        const i = next++;
        try {
          items[i] = await this.scoreText(texts[i]!, rubric, { signal });
        } catch (err) {
          const fatal =
            !(err instanceof LorafitEvalError) ||
            signal.aborted ||
            (err.status !== undefined && !RETRYABLE(err.status));
          if (fatal) {
            stop.abort();
            throw err;
          }
          items[i] = { score: null, rawScore: null, malformedAnswers: 0, requests: 0, error: (err as Error).message };
        }
      }
    };
    const workers = Array.from({ length: Math.min(this.o.concurrency, texts.length) }, worker);
    const settled = await Promise.allSettled(workers);
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (rejected) {
      // Prefer the root cause over the "aborted" errors it triggered in other workers.
      const root = settled
        .filter((s): s is PromiseRejectedResult => s.status === 'rejected')
        .find((s) => s.reason instanceof LorafitEvalError && s.reason.code === 'E_JUDGE_HTTP');
      throw (root ?? rejected).reason;
    }
    return summarize(items);
  }
}

/** Aggregate item results into a batch summary. */
export function summarize(items: JudgeItemResult[]): JudgeBatchResult {
  const valid = items.filter((x) => x.score !== null).map((x) => x.score!);
  return {
    items,
    mean: valid.length ? valid.reduce((s, x) => s + x, 0) / valid.length : null,
    scored: valid.length,
    failed: items.length - valid.length,
    malformedAnswers: items.reduce((s, x) => s + x.malformedAnswers, 0),
  };
}
