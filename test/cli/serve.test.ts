// `lorafit serve` answering the official openai npm client, and `lorafit chat` over piped stdin,
// on a tiny random qwen2 model with the real Qwen3 tokenizer and chat template.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { Model } from '../../lib/model/model.js';
import { makeTinyQwen3Model } from '../helpers/tiny-qwen3.js';
import { ensureBuilt, runCli, startServer, tempDir } from './helpers.js';

describe('lorafit serve (OpenAI API) and chat', () => {
  let work: string;
  let modelDir: string;
  let adapterDir: string;
  let server: ChildProcess | undefined;
  let url: string;
  let logFile: string;
  let client: OpenAI;
  const messages = [{ role: 'user' as const, content: 'Say something about the moon.' }];

  beforeAll(async () => {
    ensureBuilt();
    work = tempDir();
    modelDir = (await makeTinyQwen3Model({ dir: join(work, 'tiny-qwen3') })).dir;
    // An adapter with non-zero B, so that it changes greedy answers.
    const model = await Model.load(modelDir);
    const adapter = await LoraAdapter.create(model, { rank: 4, alpha: 8, seed: 5 });
    const t = await adapter.tensors();
    let s = 1;
    for (const [k, v] of t) if (k.includes('lora_B')) for (let i = 0; i < v.data.length; i++) v.data[i] = Math.cos(s++) * 2;
    await adapter.setTensors(t);
    adapterDir = join(work, 'tuned-adapter');
    logFile = join(work, 'serve.log');
    await adapter.save(adapterDir);
    await model.dispose();
    const started = await startServer(['--model', modelDir, '--adapter', `tuned=${adapterDir}`, '--model-name', 'tiny-base', '--log-file', logFile]);
    server = started.child;
    url = started.url;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-needed', maxRetries: 0, timeout: 30_000 });
  });
  afterAll(() => {
    server?.kill('SIGTERM');
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('lists the base model and the adapter', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny-base', 'tuned']);
  });

  it('answers a chat completion, and the same one streamed', async () => {
    const r = await client.chat.completions.create({ model: 'tiny-base', messages, max_tokens: 12, temperature: 0 });
    expect(r.object).toBe('chat.completion');
    expect(r.model).toBe('tiny-base');
    const text = r.choices[0].message.content!;
    expect(typeof text).toBe('string');
    expect(text.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(r.choices[0].finish_reason);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);

    const stream = await client.chat.completions.create({ model: 'tiny-base', messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let streamed = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      streamed += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
    expect(streamed).toBe(text);
    expect(chunks).toBeGreaterThan(2);
    expect(finish).toBe(r.choices[0].finish_reason);
    expect(usage).toEqual(r.usage);
  });

  it('picks the adapter by the model field', async () => {
    const base = await client.chat.completions.create({ model: 'tiny-base', messages, max_tokens: 12, temperature: 0 });
    const tuned = await client.chat.completions.create({ model: 'tuned', messages, max_tokens: 12, temperature: 0 });
    expect(tuned.model).toBe('tuned');
    expect(tuned.choices[0].message.content).not.toBe(base.choices[0].message.content);
  });

  it('answers /v1/completions, streamed too', async () => {
    const r = await client.completions.create({ model: 'tiny-base', prompt: 'The moon is', max_tokens: 8, temperature: 0 });
    expect(r.object).toBe('text_completion');
    const text = r.choices[0].text;
    const stream = await client.completions.create({ model: 'tiny-base', prompt: 'The moon is', max_tokens: 8, temperature: 0, stream: true });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(text);
  });

  it('runs concurrent requests one at a time with the same answers as alone; a dropped stream frees the queue', async () => {
    const ask = (model: string) => client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0 }).then((r) => r.choices[0].message.content);
    const alone = [await ask('tiny-base'), await ask('tuned')];
    const ac = new AbortController();
    const dropped = (async () => {
      const stream = await client.chat.completions.create({ model: 'tuned', messages, max_tokens: 500, temperature: 0, stream: true }, { signal: ac.signal });
      for await (const _ of stream) ac.abort();
    })().catch(() => undefined);
    const together = await Promise.all([ask('tiny-base'), ask('tuned'), ask('tiny-base')]);
    expect(together).toEqual([alone[0], alone[1], alone[0]]);
    await dropped;
    expect(await ask('tuned')).toBe(alone[1]);
    // The server saw the client go and stopped that generation (status 499 in its log).
    const log = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.some((l) => l.msg === 'request' && l.status === 499 && l.completionTokens < 500)).toBe(true);
  });

  it('gives 400 for bad requests and 404 for an unknown model', async () => {
    await expect(client.chat.completions.create({ model: 'tiny-base', messages: [] })).rejects.toMatchObject({ status: 400, param: 'messages' });
    await expect(client.chat.completions.create({ model: 'tiny-base', messages, temperature: 7 })).rejects.toMatchObject({ status: 400, param: 'temperature' });
    await expect(client.chat.completions.create({ model: 'tiny-base', messages: [{ role: 'wizard', content: 'x' }] as never })).rejects.toMatchObject({ status: 400 });
    await expect(client.chat.completions.create({ model: 'gpt-9', messages })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    const raw = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "tiny-base", "messages": [' });
    expect(raw.status).toBe(400);
    const body = (await raw.json()) as { error: { message: string; type: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/not valid JSON/);
  });

  it('refuses a bad --max-queue or --max-body-bytes before loading the model', async () => {
    const q = await runCli(['serve', '--model', modelDir, '--port', '0', '--max-queue', '-1']);
    expect(q.code).toBe(1);
    expect(q.stderr).toMatch(/--max-queue must be a non-negative integer, got -1/);
    const b = await runCli(['serve', '--model', modelDir, '--port', '0', '--max-body-bytes', '0']);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/--max-body-bytes must be a positive integer/);
  });

  it('eval: perplexity and F1/EM against the reference answers of a conversations file', async () => {
    const data = join(work, 'qa.jsonl');
    const rows = [
      { messages: [{ role: 'user', content: 'Capital of France?' }, { role: 'assistant', content: 'Paris' }] },
      { messages: [{ role: 'user', content: '床前明月光，' }, { role: 'assistant', content: '疑是地上霜。' }] },
      { messages: [{ role: 'user', content: 'Two plus two?' }, { role: 'assistant', content: 'Four' }] },
    ];
    writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n'));
    const r = await runCli(['eval', '--model', modelDir, '--adapter', `tuned=${adapterDir}`, '--dataset', data, '--max-new-tokens', '4', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.results.map((x: { name: string }) => x.name)).toEqual(['base', 'tuned']);
    for (const x of j.results) {
      expect(x.perplexity.perplexity).toBeGreaterThan(1);
      expect(x.answers).toBe(3);
      expect(x.f1).toBeGreaterThanOrEqual(0);
      expect(x.exactMatch).toBeGreaterThanOrEqual(0);
    }
    // The two models score the same tokens (the answers only) but differently.
    expect(j.results[0].perplexity.tokens).toBe(j.results[1].perplexity.tokens);
    expect(j.results[0].perplexity.meanNll).not.toBe(j.results[1].perplexity.meanNll);
  });

  it('chat: streams answers from piped stdin and switches adapters with /adapter', async () => {
    const r = await runCli(['chat', '--model', modelDir, '--adapter', `tuned=${adapterDir}`, '--max-new-tokens', '6'], { input: 'Hello there\n/adapter none\nHello there\n/reset\n/exit\n' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\[tuned\] .+$/m);
    expect(r.stdout).toContain('using the base model');
    expect(r.stdout).toMatch(/^\[base\] .+$/m);
    expect(r.stdout).toContain('history cleared');
  });
});
