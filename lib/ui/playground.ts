// The playground's model side: the run's base model, loaded on the first chat (its own Model, apart
// from any training in the same process), and the run's adapters (the final one, checkpoints)
// loaded onto it when first asked for and reloaded when their file changes. Generations run one at
// a time (the model admits one native call in flight, and two interleaved generations would only
// both be slower); one whose client has gone before its turn is skipped.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { LorafitError } from '../errors.js';
import { LoraAdapter } from '../lora/lora-adapter.js';
import { chatStream, loadModelAndTokenizer, type ChatMessage, type GenerationStats } from '../model/chat.js';
import type { GenerateOptions } from '../model/generation.js';
import type { Model, ModelLoadOptions } from '../model/model.js';
import { Serial } from '../model/serial.js';
import type { Tokenizer } from '../text/tokenizer.js';
import type { Logger } from '../util/logger.js';
import { adapterDir, type RunSummary } from './runs.js';

export interface PlaygroundOptions {
  /** The base model for every run (default: each run's own, from lorafit-run.json or its adapter). */
  model?: string;
  loadOptions?: ModelLoadOptions & { quantize?: 'nf4' | 'int8' };
  log?: Logger;
}

export interface PlaygroundRequest {
  run: RunSummary;
  /** One of run.adapters, or null for the base model. */
  adapter: string | null;
  messages: ChatMessage[];
  sampling: GenerateOptions;
  signal: AbortSignal;
}

interface Loaded {
  model: Model;
  tokenizer: Tokenizer;
  adapters: Map<string, { adapter: LoraAdapter; mtimeMs: number }>;
}

export class Playground {
  private readonly models = new Map<string, Promise<Loaded>>();
  private readonly serial = new Serial();
  private adapterCount = 0;

  constructor(private readonly options: PlaygroundOptions = {}) {}

  /** The base model a run chats with, or an error saying how to name one. */
  modelOf(run: RunSummary): string {
    const spec = this.options.model ?? run.model;
    if (!spec) throw new LorafitError('E_UI_MODEL', `run '${run.id}' names no base model (no lorafit-run.json, no adapter with base_model_name_or_path); start lorafit ui with --model`);
    return spec;
  }

  /** Generates one answer, handing each text piece to `onPiece`; resolves with the stats. */
  generate(req: PlaygroundRequest, onPiece: (text: string) => void): Promise<GenerationStats> {
    const spec = this.modelOf(req.run);
    if (req.adapter !== null && !adapterDir(req.run, req.adapter)) {
      throw new LorafitError('E_OPTION', `run '${req.run.id}' has no adapter '${req.adapter}'; it has: ${req.run.adapters.join(', ') || 'none yet'}`);
    }
    return this.serial.run(async () => {
      const stats: GenerationStats = { promptTokens: 0, completionTokens: 0, finishReason: null };
      if (req.signal.aborted) throw new LorafitError('E_ABORTED', 'the client went away before its turn');
      const loaded = await this.load(spec);
      const name = req.adapter === null ? null : await this.adapterName(loaded, adapterDir(req.run, req.adapter)!);
      for await (const piece of chatStream(loaded.model, loaded.tokenizer, req.messages, { ...req.sampling, adapter: name, signal: req.signal }, stats)) onPiece(piece);
      return stats;
    });
  }

  private load(spec: string): Promise<Loaded> {
    let p = this.models.get(spec);
    if (!p) {
      const t0 = Date.now();
      p = loadModelAndTokenizer(spec, { ...this.options.loadOptions }).then(({ model, tokenizer }) => {
        this.options.log?.info({ model: spec, ms: Date.now() - t0 }, 'playground model loaded');
        return { model, tokenizer, adapters: new Map() };
      });
      // A failed load is not cached: the next chat tries again (the model may be fixed by then).
      p.catch(() => this.models.delete(spec));
      this.models.set(spec, p);
    }
    return p;
  }

  /** Loads (or reloads, when its weights file changed) the adapter in `dir`; returns its name. */
  private async adapterName(loaded: Loaded, dir: string): Promise<string> {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(join(dir, 'adapter_model.safetensors')).mtimeMs;
    } catch {
      throw new LorafitError('E_UI_ADAPTER', `${join(dir, 'adapter_model.safetensors')} is missing (deleted, or still being written)`);
    }
    const have = loaded.adapters.get(dir);
    if (have && have.mtimeMs === mtimeMs) return have.adapter.name;
    if (have) await have.adapter.delete();
    loaded.adapters.delete(dir);
    const adapter = await LoraAdapter.load(loaded.model, dir, { name: `ui-${++this.adapterCount}`, activate: false });
    loaded.adapters.set(dir, { adapter, mtimeMs });
    this.options.log?.info({ dir, name: adapter.name }, 'playground adapter loaded');
    return adapter.name;
  }

  async dispose(): Promise<void> {
    await this.serial.idle();
    for (const p of this.models.values()) {
      const loaded = await p.catch(() => undefined);
      await loaded?.model.dispose();
    }
    this.models.clear();
  }
}
