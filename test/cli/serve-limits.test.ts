// The OpenAI server's limits over real HTTP (in-process server on a free port, tiny random qwen2
// model with the real Qwen3 tokenizer): a request body over the limit is 413, max_tokens is capped
// at the context left after the prompt, a full queue answers 503, and temperature 0 is greedy.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenAiServer, type OpenAiServerOptions } from '../../lib/cli/openai-server.js';
import { channelOf } from '../../lib/model/channel.js';
import { Model } from '../../lib/model/model.js';
import { Tokenizer } from '../../lib/text/tokenizer.js';
import { makeTinyQwen3Model } from '../helpers/tiny-qwen3.js';
import { tempDir } from './helpers.js';

const CONTEXT = 40;

async function listen(options: OpenAiServerOptions): Promise<{ server: Server; url: string }> {
  const server = createOpenAiServer(options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const post = (url: string, body: unknown, init: RequestInit = {}) =>
  fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('serve limits', () => {
  let work: string;
  let model: Model;
  let small: Model;
  let tokenizer: Tokenizer;
  let url: string;
  let smallUrl: string;
  const servers: Server[] = [];
  const health = async () => (await (await fetch(`${url}/health`)).json()) as { running: number; queued: number };

  beforeAll(async () => {
    work = tempDir('lorafit-serve-limits-');
    const dir = (await makeTinyQwen3Model({ dir: join(work, 'tiny') })).dir;
    const smallDir = (await makeTinyQwen3Model({ dir: join(work, 'tiny-small-context') })).dir;
    const config = JSON.parse(readFileSync(join(smallDir, 'config.json'), 'utf8'));
    writeFileSync(join(smallDir, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: CONTEXT }));
    tokenizer = await Tokenizer.fromDir(dir);
    model = await Model.load(dir);
    small = await Model.load(smallDir);
    const a = await listen({ model, tokenizer, baseName: 'tiny', adapters: [], maxQueue: 1, maxBodyBytes: 1024 });
    const b = await listen({ model: small, tokenizer, baseName: 'tiny', adapters: [] });
    servers.push(a.server, b.server);
    ({ url } = a);
    smallUrl = b.url;
  });
  afterAll(async () => {
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await model?.dispose();
    await small?.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('answers 413 in OpenAI error shape for a body over maxBodyBytes, declared or streamed', async () => {
    const big = { model: 'tiny', prompt: 'x'.repeat(2000), max_tokens: 1 };
    const r = await post(url, big);
    expect(r.status).toBe(413);
    const body = (await r.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large', param: null });
    expect(body.error.message).toMatch(/limit of 1024 bytes/);
    // Chunked, with no Content-Length: counted while it arrives.
    const chunk = new TextEncoder().encode(' '.repeat(600));
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"model": "tiny", "prompt": "a"'));
        for (let i = 0; i < 4; i++) c.enqueue(chunk);
        c.enqueue(new TextEncoder().encode('}'));
        c.close();
      },
    });
    const chunked = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
    // A body under the limit is served.
    const ok = await post(url, { model: 'tiny', prompt: 'The moon is', max_tokens: 2, temperature: 0 });
    expect(ok.status).toBe(200);
  });

  it('caps max_tokens at max_position_embeddings minus the prompt', async () => {
    const promptTokens = (await tokenizer.encode('The moon is')).length;
    const r = await post(smallUrl, { model: 'tiny', prompt: 'The moon is', max_tokens: 1000, temperature: 0 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { usage: { prompt_tokens: number; completion_tokens: number }; choices: { finish_reason: string }[] };
    expect(body.usage.prompt_tokens).toBe(promptTokens);
    expect(body.usage.completion_tokens).toBe(CONTEXT - promptTokens);
    expect(body.choices[0].finish_reason).toBe('length');
    const long = await post(smallUrl, { model: 'tiny', prompt: 'moon '.repeat(CONTEXT), max_tokens: 1 });
    expect(long.status).toBe(400);
    expect(((await long.json()) as { error: { code: string } }).error.code).toBe('context_length_exceeded');
  });

  it('answers 503 when maxQueue requests already wait; a waiting client that leaves frees its place', async () => {
    let release!: () => void;
    const blocked = channelOf(model).call(() => new Promise<void>((r) => (release = r)));  // hold the model
    const ask = (init: RequestInit = {}) => post(url, { model: 'tiny', prompt: 'The moon is', max_tokens: 2, temperature: 0 }, init);
    const first = ask();
    await until(async () => (await health()).running === 1, 'the first request to run');
    const leaving = new AbortController();
    const second = ask({ signal: leaving.signal }).catch((e: Error) => e);
    await until(async () => (await health()).queued === 1, 'the second request to wait');
    const third = await ask();
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    const err = (await third.json()) as { error: Record<string, unknown> };
    expect(err.error).toMatchObject({ type: 'server_error', code: 'queue_full', param: null });
    expect(err.error.message).toMatch(/max-queue 1/);
    leaving.abort();
    expect(await second).toBeInstanceOf(Error);
    await until(async () => (await health()).queued === 0, 'the leaving request to give its place up');
    const fourth = ask();
    await until(async () => (await health()).queued === 1, 'the fourth request to wait');
    release();
    await blocked;
    expect((await first).status).toBe(200);
    expect((await fourth).status).toBe(200);
    expect(await health()).toMatchObject({ running: 0, queued: 0 });
  });

  it('temperature 0 decodes greedily whatever the seed', async () => {
    const text = async (extra: Record<string, unknown>) => {
      const r = await post(url, { model: 'tiny', prompt: 'The moon is', max_tokens: 8, ...extra });
      expect(r.status).toBe(200);
      return ((await r.json()) as { choices: { text: string }[] }).choices[0].text;
    };
    const greedy = await text({});
    expect(await text({ temperature: 0, seed: 1 })).toBe(greedy);
    expect(await text({ temperature: 0, seed: 2 })).toBe(greedy);
    expect(await text({ temperature: 1.5, seed: 1 })).not.toBe(greedy);
  });
});
