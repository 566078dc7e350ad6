// The playground's routes:
//   POST /api/chat      { run, adapter|null, prompt|messages, system?, sampling... }  SSE:
//                       { type: 'text', text } ..., then { type: 'done', finishReason, completionTokens }
//   POST /api/ab        { run, adapter, prompt|messages, ... }  SSE: { type: 'start', trial },
//                       { type: 'text', side: 'A'|'B', text } ..., { type: 'done', trial }
//                       (base and tuned in random order; which is which stays on the server)
//   POST /api/ab/vote   { run, trial, rating: 'A'|'B'|'tie' }  -> the run's tally (ab-votes.jsonl)
//   GET  /api/ab/tally?run=ID[&adapter=NAME]
// A client that goes away stops its generation (the stream's close aborts it).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AbRating } from '../eval/ab-test.js';
import { appendVote, tallyVotes } from './ab-votes.js';
import type { Playground } from './playground.js';
import { HttpError, messagesOf, readJsonBody, samplingOf, stringField } from './request.js';
import type { RunSummary } from './runs.js';
import type { SseStreams, SseStream } from './sse.js';

interface Trial {
  run: string;
  adapter: string;
  prompt: string;
  a: 'base' | 'tuned';
  answers: { A: string; B: string };
  done: boolean;
  voted: boolean;
}

const MAX_TRIALS = 1000;

export class ChatRoutes {
  private readonly trials = new Map<string, Trial>();

  constructor(
    private readonly playground: Playground | undefined,
    private readonly streams: SseStreams,
    private readonly runOf: (id: string | null) => RunSummary,
  ) {}

  private need(): Playground {
    if (!this.playground) throw new HttpError(503, 'the playground is off (lorafit ui --no-playground)');
    return this.playground;
  }

  async chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    const run = this.runOf(stringField(body, 'run'));
    const adapter = body.adapter === null || body.adapter === undefined || body.adapter === '' ? null : stringField(body, 'adapter');
    const messages = messagesOf(body);
    const sampling = samplingOf(body);
    const playground = this.need();
    playground.modelOf(run); // a run without a base model is a 400 before the stream opens
    if (adapter !== null && !run.adapters.includes(adapter)) throw new HttpError(404, `run '${run.id}' has no adapter '${adapter}'; it has: ${run.adapters.join(', ') || 'none yet'}`);
    const stream = this.streams.start(res);
    const ac = abortOnClose(stream);
    await this.streamErrors(stream, async () => {
      const stats = await playground.generate({ run, adapter, messages, sampling, signal: ac.signal }, (text) => stream.send({ type: 'text', text }));
      stream.send({ type: 'done', finishReason: stats.finishReason, completionTokens: stats.completionTokens });
    });
  }

  async ab(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    const run = this.runOf(stringField(body, 'run'));
    const adapter = stringField(body, 'adapter');
    const messages = messagesOf(body);
    const sampling = samplingOf(body);
    const playground = this.need();
    playground.modelOf(run);
    if (!run.adapters.includes(adapter)) throw new HttpError(404, `run '${run.id}' has no adapter '${adapter}'; it has: ${run.adapters.join(', ') || 'none yet'}`);
    const id = randomUUID();
    const a: Trial['a'] = Math.random() < 0.5 ? 'base' : 'tuned';
    const trial: Trial = { run: run.id, adapter, prompt: messages.filter((m) => m.role === 'user').at(-1)?.content ?? '', a, answers: { A: '', B: '' }, done: false, voted: false };
    this.remember(id, trial);
    const stream = this.streams.start(res);
    const ac = abortOnClose(stream);
    stream.send({ type: 'start', trial: id });
    await this.streamErrors(stream, async () => {
      for (const side of ['A', 'B'] as const) {
        const tuned = (side === 'A') === (a === 'tuned');
        await playground.generate({ run, adapter: tuned ? adapter : null, messages, sampling, signal: ac.signal }, (text) => {
          trial.answers[side] += text;
          stream.send({ type: 'text', side, text });
        });
      }
      trial.done = true;
      stream.send({ type: 'done', trial: id });
    });
  }

  async vote(req: IncomingMessage): Promise<unknown> {
    const body = await readJsonBody(req);
    const run = this.runOf(stringField(body, 'run'));
    const id = stringField(body, 'trial');
    const rating = body.rating;
    if (rating !== 'A' && rating !== 'B' && rating !== 'tie') throw new HttpError(400, `'rating' must be A, B or tie, got ${JSON.stringify(rating)}`);
    const trial = this.trials.get(id);
    if (!trial || trial.run !== run.id) throw new HttpError(404, `no A/B trial '${id}' for run '${run.id}' (the server restarted, or it is another run's)`);
    if (!trial.done) throw new HttpError(409, `A/B trial '${id}' has not finished generating both answers`);
    if (trial.voted) throw new HttpError(409, `A/B trial '${id}' already has a vote`);
    trial.voted = true;
    appendVote(run.dir, { time: new Date().toISOString(), trial: id, adapter: trial.adapter, prompt: trial.prompt, a: trial.a, rating: rating as AbRating, answers: trial.answers });
    return { tally: tallyVotes(run.dir), adapterTally: tallyVotes(run.dir, trial.adapter), revealed: { A: trial.a, B: trial.a === 'base' ? 'tuned' : 'base' } };
  }

  tally(query: URLSearchParams): unknown {
    const run = this.runOf(query.get('run'));
    const adapter = query.get('adapter') ?? undefined;
    return { tally: tallyVotes(run.dir, adapter) };
  }

  private remember(id: string, trial: Trial): void {
    this.trials.set(id, trial);
    if (this.trials.size > MAX_TRIALS) this.trials.delete(this.trials.keys().next().value!);
  }

  /** Runs a streamed generation; its error (headers are out) goes into the stream as { type: 'error' }. */
  private async streamErrors(stream: SseStream, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== 'E_ABORTED') stream.send({ type: 'error', message: (e as Error).message, code });
    }
    stream.end();
  }
}

function abortOnClose(stream: SseStream): AbortController {
  const ac = new AbortController();
  stream.onClose(() => ac.abort());
  return ac;
}
