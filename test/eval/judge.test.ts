import { afterEach, describe, expect, it } from 'vitest';
import { JudgeClient, type JudgeLogEvent } from '../../lib/eval/judge.js';
import { judgeWithControls } from '../../lib/eval/judge-controls.js';
import { LorafitEvalError } from '../../lib/eval/errors.js';
import { startMockServer, type Handler, type MockServer } from './helpers/openai-mock-server.js';

const KEY = 'sk-test-SECRET-0123456789abcdef';
const rubric = { styleDescription: 'Terse hard-boiled noir narration.', examples: ['The rain came down like a debt collector.'] };

let server: MockServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(handler: Handler, extra: ConstructorParameters<typeof JudgeClient>[0] = {}) {
  server = await startMockServer(handler);
  const logs: JudgeLogEvent[] = [];
  const client = new JudgeClient({
    baseUrl: server.baseUrl,
    apiKey: KEY,
    model: 'judge-model',
    env: {},
    retryBaseDelayMs: 5,
    timeoutMs: 2000,
    logger: (e) => logs.push(e),
    ...extra,
  });
  return { client, logs, server };
}

async function catchErr(p: Promise<unknown>): Promise<LorafitEvalError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LorafitEvalError);
    return e as LorafitEvalError;
  }
  throw new Error('expected a rejection');
}

describe('JudgeClient against a local OpenAI-compatible server', () => {
  it('sends a proper chat.completions request and normalises a fenced JSON score to 0-1', async () => {
    const { client, server } = await setup(() => ({ content: '```json\n{"score": 8}\n```' }));
    const r = await client.scoreText('It was a dark night.', rubric);
    expect(r).toEqual({ score: 0.8, rawScore: 8, malformedAnswers: 0, requests: 1 });
    const req = server.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body.model).toBe('judge-model');
    expect(req.body.temperature).toBe(0);
    expect(req.body.messages).toHaveLength(2);
    expect(req.body.messages[1].content).toContain('<candidate>\nIt was a dark night.\n</candidate>');
  });

  it('re-asks after a malformed answer, counts it, and accepts a "Score: 7/10" fallback', async () => {
    const answers = ['I like it a lot!', 'Score: 7/10'];
    const { client, logs, server } = await setup((_r, i) => ({ content: answers[i]! }));
    const r = await client.scoreText('text', rubric);
    expect(r).toEqual({ score: 0.7, rawScore: 7, malformedAnswers: 1, requests: 2 });
    expect(server.requests).toHaveLength(2);
    expect(logs.filter((l) => l.event === 'malformed')).toHaveLength(1);
  });

  it('gives up after maxMalformedRetries and reports the item as failed, not thrown', async () => {
    const { client, server } = await setup(() => ({ content: '{"score": 42}' }), { maxMalformedRetries: 2 });
    const r = await client.scoreMany(['a', 'b'], rubric);
    expect(r.items[0]).toMatchObject({ score: null, malformedAnswers: 3 });
    expect(r.items[0]!.error).toMatch(/3 malformed answers/);
    expect(r).toMatchObject({ mean: null, scored: 0, failed: 2, malformedAnswers: 6 });
    expect(server.requests).toHaveLength(6);
  });

  it('retries HTTP 500 then succeeds', async () => {
    const { client, logs, server } = await setup((_r, i) =>
      i === 0 ? { status: 500, raw: '{"error":{"message":"upstream exploded"}}' } : { content: '{"score": 6}' },
    );
    const r = await client.scoreText('text', rubric);
    expect(r).toEqual({ score: 0.6, rawScore: 6, malformedAnswers: 0, requests: 2 });
    expect(server.requests).toHaveLength(2);
    const retry = logs.find((l) => l.event === 'retry')!;
    expect(retry.message).toContain('HTTP 500');
  });

  it('honours Retry-After on 429', async () => {
    const { client, logs } = await setup((_r, i) =>
      i === 0 ? { status: 429, raw: '{"error":"rate limited"}', headers: { 'retry-after': '0' } } : { content: '{"score": 10}' },
    );
    const r = await client.scoreText('text', rubric);
    expect(r.score).toBe(1);
    expect(logs.find((l) => l.event === 'retry')!.delayMs).toBe(0);
  });

  it('fails with E_JUDGE_HTTP after maxRetries of 503', async () => {
    const { client, server } = await setup(() => ({ status: 503, raw: 'overloaded' }), { maxRetries: 2 });
    const e = await catchErr(client.chat([{ role: 'user', content: 'hi' }]));
    expect(e.code).toBe('E_JUDGE_HTTP');
    expect(e.status).toBe(503);
    expect(e.message).toMatch(/after 3 attempts.*HTTP 503.*overloaded/);
    expect(server.requests).toHaveLength(3);
  });

  it('times out a request that never answers (E_JUDGE_TIMEOUT), retrying first', async () => {
    const { client, server } = await setup(() => ({ hang: true }), { timeoutMs: 150, maxRetries: 1 });
    const t0 = Date.now();
    const e = await catchErr(client.scoreText('text', rubric));
    const elapsed = Date.now() - t0;
    expect(e.code).toBe('E_JUDGE_TIMEOUT');
    expect(e.message).toMatch(/within 150 ms/);
    expect(server.requests).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2000);
  });

  it('a slow answer times out, the retry succeeds', async () => {
    const { client } = await setup((_r, i) => (i === 0 ? { delayMs: 400, content: '{"score": 1}' } : { content: '{"score": 3}' }), {
      timeoutMs: 150,
    });
    expect((await client.scoreText('text', rubric)).rawScore).toBe(3);
  });

  it('never leaks the API key: 401 echoing the key is not retried and is redacted everywhere', async () => {
    const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${KEY}. Check Bearer ${KEY}`, code: 'invalid_api_key' } });
    const { client, logs, server } = await setup(() => ({ status: 401, raw: body }));
    const single = await catchErr(client.chat([{ role: 'user', content: 'x' }]));
    expect(server.requests).toHaveLength(1); // a 401 is never retried
    expect(single.message).not.toContain(KEY);
    const e = await catchErr(client.scoreMany(['a', 'b', 'c'], rubric));
    expect(e.code).toBe('E_JUDGE_HTTP');
    expect(e.status).toBe(401);
    expect(e.message).toContain('HTTP 401');
    expect(e.message).toContain('[REDACTED]');
    expect(e.message).not.toContain(KEY);
    expect(e.message).not.toContain('SECRET');
    expect(String(e.stack)).not.toContain(KEY);
    expect(JSON.stringify(e)).not.toContain(KEY);
    expect(server.requests.length).toBeLessThanOrEqual(4); // no retries; the batch stops
    expect(JSON.stringify(logs)).not.toContain(KEY);
    expect(logs.filter((l) => l.event === 'retry')).toHaveLength(0);
  });

  it('redacts the key from retry logs and final errors of retryable failures too', async () => {
    const { client, logs } = await setup(() => ({ status: 502, raw: `bad gateway for key ${KEY}` }), { maxRetries: 1 });
    const e = await catchErr(client.chat([{ role: 'user', content: 'x' }]));
    expect(e.message).not.toContain(KEY);
    expect(logs.length).toBe(1);
    expect(JSON.stringify(logs)).not.toContain(KEY);
    expect(JSON.stringify(logs)).toContain('[REDACTED]');
  });

  it('limits concurrency and keeps results in input order', async () => {
    const { client, server } = await setup(
      (req) => {
        const m = /<candidate>\nitem (\d)\n/.exec(req.body.messages[1].content)!;
        return { delayMs: 40, content: `{"score": ${m[1]}}` };
      },
      { concurrency: 2 },
    );
    const texts = ['item 1', 'item 2', 'item 3', 'item 4', 'item 5', 'item 6'];
    const r = await client.scoreMany(texts, rubric);
    expect(r.items.map((x) => x.rawScore)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.mean).toBeCloseTo(0.35, 12);
    expect(server.maxInFlight).toBe(2);
  });

  it('aborts with the caller signal', async () => {
    const { client } = await setup(() => ({ hang: true }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const e = await catchErr(client.scoreText('x', rubric, { signal: ac.signal }));
    expect(e.code).toBe('E_JUDGE_TIMEOUT');
    expect(e.message).toMatch(/aborted by the caller/);
  });

  it('treats a 200 with an unexpected body as a malformed answer', async () => {
    const { client } = await setup((_r, i) => (i === 0 ? { raw: '{"unexpected": true}' } : { content: 'Score: 5/10' }));
    expect(await client.scoreText('x', rubric)).toMatchObject({ rawScore: 5, malformedAnswers: 1 });
  });
});

describe('JudgeClient configuration', () => {
  it('reads base URL, key and model from env, LORAFIT_* before OPENAI_*', () => {
    const c = new JudgeClient({
      env: {
        LORAFIT_JUDGE_BASE_URL: 'http://127.0.0.1:9/v1/',
        OPENAI_BASE_URL: 'http://other.invalid/v1',
        LORAFIT_JUDGE_MODEL: 'm',
        OPENAI_API_KEY: KEY,
      },
    });
    expect(c.endpoint).toBe('http://127.0.0.1:9/v1/chat/completions');
    expect(c.model).toBe('m');
    expect(c.redact(`x ${KEY} y`)).toBe('x [REDACTED] y');
    expect(new JudgeClient({ env: { OPENAI_BASE_URL: 'https://api.example.com/v1' }, model: 'm' }).endpoint).toBe(
      'https://api.example.com/v1/chat/completions',
    );
    expect(new JudgeClient({ baseUrl: 'http://h:1', model: 'm', env: {} }).endpoint).toBe('http://h:1/v1/chat/completions');
    expect(new JudgeClient({ baseUrl: 'http://h/api/paas/v4', model: 'm', env: {} }).endpoint).toBe('http://h/api/paas/v4/chat/completions');
    expect(new JudgeClient({ baseUrl: 'http://h/x/chat/completions', model: 'm', env: {} }).endpoint).toBe('http://h/x/chat/completions');
  });

  it('E_JUDGE_CONFIG without base URL or model, without echoing the key', () => {
    const noBase = (() => {
      try {
        new JudgeClient({ env: { OPENAI_API_KEY: KEY }, model: 'm' });
      } catch (e) {
        return e as LorafitEvalError;
      }
    })()!;
    expect(noBase.code).toBe('E_JUDGE_CONFIG');
    expect(noBase.message).toContain('LORAFIT_JUDGE_BASE_URL');
    expect(noBase.message).not.toContain(KEY);
    expect(() => new JudgeClient({ baseUrl: 'http://h/v1', env: {} })).toThrowError(/no judge model/);
    expect(() => new JudgeClient({ baseUrl: 'not a url', model: 'm', env: {} })).toThrowError(/not a valid URL/);
  });

  it('sends no Authorization header when no key is configured', async () => {
    server = await startMockServer(() => ({ content: '{"score": 1}' }));
    const c = new JudgeClient({ baseUrl: server.baseUrl, model: 'm', env: {} });
    await c.scoreText('x', rubric);
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
  });
});

describe('judgeWithControls', () => {
  it('reports candidates beside negative and positive controls', async () => {
    const { client } = await setup((req) => {
      const c: string = req.body.messages[1].content.split('<candidate>')[1];
      if (c.includes('NEG')) return { content: '{"score": 1}' };
      if (c.includes('POS')) return { content: 'Score: 9/10' };
      if (c.includes('BROKEN')) return { content: 'no idea' };
      return { content: '```json\n{"score": 6}\n```' };
    }, { maxMalformedRetries: 1 });
    const r = await judgeWithControls(client, rubric, {
      candidates: ['cand one', 'cand two', 'BROKEN cand'],
      negativeControls: ['NEG plain text', 'NEG wiki text'],
      positiveControls: ['POS held-out sample'],
    });
    expect(r.candidates.mean).toBeCloseTo(0.6, 12);
    expect(r.candidates.failed).toBe(1);
    expect(r.negativeControl.mean).toBeCloseTo(0.1, 12);
    expect(r.positiveControl.mean).toBeCloseTo(0.9, 12);
    expect(r.separation).toBeCloseTo(0.8, 12);
    expect(r.relativeToControls).toBeCloseTo(0.625, 12); // (0.6 - 0.1) / 0.8
    expect(r.malformedAnswers).toBe(2);
    expect(r.failed).toBe(1);
  });

  it('refuses a positive control that the judge sees as an example', async () => {
    const { client } = await setup(() => ({ content: '{"score": 5}' }));
    const e = await catchErr(
      judgeWithControls(client, rubric, { candidates: ['c'], negativeControls: ['n'], positiveControls: [rubric.examples[0]!] }),
    );
    expect(e.code).toBe('E_EVAL_ARG');
  });
});
