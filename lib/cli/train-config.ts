// The `lorafit train` configuration: one table of keys drives the config-file validation, the
// command-line flags that override any key (`loraRank` <-> `--lora-rank`), and the help text.
// Keys may be written camelCase, snake_case or kebab-case in the file; errors name the key as it
// was written (or the flag) and list what is allowed.
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DATASET_FORMATS } from '../data/formats.js';
import { LorafitError } from '../errors.js';
import { defaultJobDataset, DEFAULT_JOB_SETTINGS } from '../train/default-job.js';
import { defaultModel } from '../model/default-model.js';

type Kind = 'string' | 'number' | 'integer' | 'boolean' | 'list';

interface KeySpec {
  kind: Kind;
  describe: string;
  values?: readonly string[];
  min?: number;
  /** Values must be > min instead of >= min. */
  minExclusive?: boolean;
  max?: number;
  maxExclusive?: boolean;
  required?: boolean;
}

export const TRAIN_KEYS = {
  model: { kind: 'string', describe: 'Base model: a Hugging Face folder, a .gguf file, ollama:NAME[:TAG] or a hub id (org/name); default: SmolLM2-135M-Instruct (scripts/fetch-default-model.sh), else the embedded models/lorafit-tiny' },
  dataset: { kind: 'string', required: true, describe: "Training data: a file or folder (jsonl, json, csv, tsv, parquet, txt); with neither model nor dataset given: the default job (Yoda's lines as chats)" },
  evalDataset: { kind: 'string', describe: 'Held-out data (default: an evalSplit of the dataset)' },
  format: { kind: 'string', values: ['auto', ...DATASET_FORMATS], describe: 'Dataset format (default auto: detected per file)' },
  textColumn: { kind: 'string', describe: 'Column holding raw text (default text)' },
  promptColumn: { kind: 'string', describe: 'Column holding the prompt (prompt-completion data)' },
  completionColumn: { kind: 'string', describe: 'Column holding the completion (prompt-completion data)' },
  messagesColumn: { kind: 'string', describe: 'Column holding the list of messages' },
  textMode: { kind: 'string', values: ['line', 'paragraph', 'file'], describe: 'Plain text files: one record per line (default), paragraph or file' },
  limit: { kind: 'integer', min: 1, describe: 'Use at most this many records' },
  skipInvalid: { kind: 'boolean', describe: 'Skip malformed dataset rows (each printed as file:line, then the count) instead of stopping at the first' },
  tokenCache: { kind: 'boolean', describe: 'Keep tokenized datasets in an on-disk cache keyed by the data, tokenizer and options (default true; --no-token-cache turns it off)' },
  tokenCacheDir: { kind: 'string', describe: 'Folder of the tokenization cache (default <LORAFIT_CACHE or ~/.cache/lorafit>/tokenized)' },
  outputDir: { kind: 'string', describe: 'Where checkpoints, metrics and the adapter go (default lorafit-output)' },
  dtype: { kind: 'string', values: ['float32', 'bfloat16', 'float16'], describe: 'Compute dtype of the base weights (default float32)' },
  device: { kind: 'string', describe: "cpu (default), cuda or cuda:N" },
  threads: { kind: 'integer', min: 1, describe: 'libtorch threads (default: all cores)' },
  loadIn4bit: { kind: 'boolean', describe: 'QLoRA: 4-bit NF4 base weights' },
  loadIn8bit: { kind: 'boolean', describe: '8-bit base weights' },
  loraRank: { kind: 'integer', min: 1, describe: 'LoRA rank r (default 16)' },
  loraAlpha: { kind: 'number', min: 0, minExclusive: true, describe: 'LoRA alpha (default 2 x rank)' },
  loraDropout: { kind: 'number', min: 0, max: 1, maxExclusive: true, describe: 'Dropout on the LoRA path (default 0)' },
  targetModules: { kind: 'list', describe: "Modules to adapt: names (q_proj,v_proj) or all-linear (default: PEFT's per architecture)" },
  useRslora: { kind: 'boolean', describe: 'rsLoRA scaling alpha/sqrt(r)' },
  useDora: { kind: 'boolean', describe: 'DoRA: a trained magnitude per output row (PEFT use_dora)' },
  modulesToSave: { kind: 'list', describe: 'Modules trained in full beside the LoRA ones and saved with the adapter (PEFT modules_to_save): lm_head, embed_tokens' },
  initLoraWeights: { kind: 'string', describe: "LoRA init (PEFT init_lora_weights): kaiming (default), gaussian, pissa, pissa_niter_<N> or olora; pissa/olora turn the base weights into their residual" },
  convertToLora: { kind: 'boolean', describe: 'Save a pissa/olora adapter converted to plain LoRA of rank 2r that loads on the untouched base (PEFT path_initial_model_for_weight_conversion)' },
  loraplusLrRatio: { kind: 'number', min: 0, minExclusive: true, describe: 'LoRA+: lora_B learns at learning-rate x this (PEFT loraplus_lr_ratio; LoRA+ suggests 16; default 1, off)' },
  maxSeqLength: { kind: 'integer', min: 2, describe: 'Longest example in tokens (default 512)' },
  packing: { kind: 'boolean', describe: 'Pack examples into maxSeqLength blocks (documents stay isolated)' },
  trainOn: { kind: 'string', values: ['all-assistant', 'last-assistant', 'all'], describe: 'Tokens that carry the loss in conversations (default all-assistant)' },
  maxSteps: { kind: 'integer', min: 1, describe: 'Optimizer steps (overrides epochs)' },
  epochs: { kind: 'integer', min: 1, describe: 'Passes over the data (default 1)' },
  learningRate: { kind: 'number', min: 0, minExclusive: true, describe: 'Peak learning rate (default 2e-4)' },
  batchSize: { kind: 'integer', min: 1, describe: 'Examples per micro-batch (default 4)' },
  gradientAccumulationSteps: { kind: 'integer', min: 1, describe: 'Micro-batches per optimizer step (default 1)' },
  lrScheduler: { kind: 'string', values: ['constant', 'linear', 'cosine'], describe: 'Learning-rate schedule (default linear)' },
  warmupSteps: { kind: 'integer', min: 0, describe: 'Warm-up steps' },
  warmupRatio: { kind: 'number', min: 0, max: 1, maxExclusive: true, describe: 'Warm-up as a share of all steps' },
  weightDecay: { kind: 'number', min: 0, describe: 'AdamW weight decay (default 0)' },
  maxGradNorm: { kind: 'number', min: 0, describe: 'Gradient clipping norm; 0 disables (default 1)' },
  seed: { kind: 'integer', min: 0, describe: 'Seed of data order, split, init and dropout (default 42)' },
  evalSplit: { kind: 'number', min: 0, describe: 'Held-out share (0-1) or count (>= 1) of the dataset; 0 = none (default 0.1)' },
  evalSteps: { kind: 'integer', min: 0, describe: 'Evaluate every N steps (default: at the end)' },
  saveSteps: { kind: 'integer', min: 0, describe: 'Checkpoint every N steps (default: at the end)' },
  saveTotalLimit: { kind: 'integer', min: 1, describe: 'Keep at most N checkpoints (the best one is always kept)' },
  resumeFrom: { kind: 'string', describe: "Resume from a checkpoint folder, or 'latest' in --output-dir" },
  earlyStoppingPatience: { kind: 'integer', min: 0, describe: 'Stop after N evaluations without improvement (0: off)' },
  onNonFinite: { kind: 'string', values: ['error', 'skip'], describe: 'A NaN/inf loss or gradient: stop with an error (default) or skip the step' },
  loggingSteps: { kind: 'integer', min: 1, describe: 'Report every N steps (default 1)' },
  gradientCheckpointing: { kind: 'boolean', describe: 'Recompute activations in backward (less memory)' },
  paddingFree: { kind: 'boolean', describe: "Run each micro-batch's examples as one row, isolated per example, no padding (default true)" },
  nprocPerNode: { kind: 'integer', min: 1, describe: 'Data-parallel ranks to start on this machine (torch.distributed, Gloo; 1 thread each unless threads is set); under torchrun leave it out' },
  masterPort: { kind: 'integer', min: 1, max: 65535, describe: 'nprocPerNode: the rendezvous port of rank 0 on 127.0.0.1 (default: a free one)' },
  distBackend: { kind: 'string', values: ['gloo', 'nccl'], describe: 'Distributed backend (default gloo; nccl needs an addon built with LORAFIT_NCCL)' },
  distTimeout: { kind: 'number', min: 0, minExclusive: true, describe: 'Seconds before a missing or dead rank stops the others with an error (default 300)' },
  samplePrompts: { kind: 'list', describe: 'Questions answered by the base and the tuned model after training (chat template, greedy)' },
} as const satisfies Record<string, KeySpec>;

export type TrainKey = keyof typeof TRAIN_KEYS;

type ValueOf<S extends KeySpec> = S['kind'] extends 'string'
  ? string
  : S['kind'] extends 'boolean'
    ? boolean
    : S['kind'] extends 'list'
      ? string[]
      : number;

export type TrainConfig = { [K in TrainKey]?: ValueOf<(typeof TRAIN_KEYS)[K]> } & {
  model: string;
  dataset: string;
  /** Set when neither model nor dataset was given: lib/train/default-job.ts. */
  defaultJob?: boolean;
  /** A line for the user about the model choice (the real default missing). */
  modelNote?: string;
};

/** `lora_rank`, `lora-rank` and `loraRank` all name loraRank. */
export function canonicalKey(key: string): string {
  return key.replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** loraRank -> lora-rank, loadIn4bit -> load-in-4bit (yargs camel-cases these back to the key). */
export function kebabKey(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/([a-zA-Z])(\d)/g, '$1-$2').toLowerCase();
}

export function flagName(key: string): string {
  return `--${kebabKey(key)}`;
}

/** A value and where it came from, for messages. */
interface Sourced {
  value: unknown;
  where: string;
}

export function readConfigFile(path: string): Record<string, unknown> {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    throw new LorafitError('E_CONFIG', `cannot read config file ${abs}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = extname(abs).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new LorafitError('E_CONFIG', `${abs}: not valid ${extname(abs).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new LorafitError('E_CONFIG', `${abs}: the config must be a mapping of keys to values`);
  return raw as Record<string, unknown>;
}

/**
 * The effective config: file values, then flags over them. `flags` holds canonical keys (what
 * yargs made of --kebab-flags). Throws E_CONFIG naming the key or flag at fault.
 */
export function resolveTrainConfig(file: Record<string, unknown>, fileName: string | undefined, flags: Record<string, unknown>): TrainConfig {
  const merged = new Map<string, Sourced>();
  const allowed = Object.keys(TRAIN_KEYS);
  for (const [key, value] of Object.entries(file)) {
    const canonical = canonicalKey(key);
    const where = `key '${key}' in ${fileName ?? 'the config'}`;
    if (!(canonical in TRAIN_KEYS)) {
      const hint = closest(canonical, allowed);
      throw new LorafitError('E_CONFIG', `unknown ${where}${hint ? ` (did you mean '${hint}'?)` : ''}; allowed keys: ${allowed.join(', ')}`);
    }
    if (merged.has(canonical)) throw new LorafitError('E_CONFIG', `${where}: '${canonical}' is set twice in the file`);
    merged.set(canonical, { value, where });
  }
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined || !(key in TRAIN_KEYS)) continue;
    merged.set(key, { value, where: `flag ${flagName(key)}` });
  }
  const out: Record<string, unknown> = {};
  for (const [key, { value, where }] of merged) out[key] = checkValue(TRAIN_KEYS[key as TrainKey], value, where);
  // No model: the default one. Neither model nor dataset: the default job, whose settings fill
  // the keys the user left unset.
  if (out.model === undefined) {
    const dm = defaultModel();
    out.model = dm.path;
    if (dm.note) out.modelNote = dm.note;
    if (out.dataset === undefined) {
      out.dataset = defaultJobDataset();
      out.defaultJob = true;
      for (const [key, value] of Object.entries(DEFAULT_JOB_SETTINGS)) {
        if (out[key] === undefined) out[key] = Array.isArray(value) ? [...value] : value;
      }
    }
  }
  for (const [key, spec] of Object.entries(TRAIN_KEYS) as [TrainKey, KeySpec][]) {
    if (spec.required && out[key] === undefined) {
      throw new LorafitError('E_CONFIG', `missing '${key}': set it in the config file or pass ${flagName(key)} (${spec.describe})`);
    }
  }
  if (out.loadIn4bit && out.loadIn8bit) throw new LorafitError('E_CONFIG', "'loadIn4bit' and 'loadIn8bit' exclude each other");
  const split = out.evalSplit as number | undefined;
  if (split !== undefined && split >= 1 && !Number.isInteger(split)) {
    throw new LorafitError('E_CONFIG', `'evalSplit' must be a share in [0, 1) or a whole count of examples, got ${split}`);
  }
  return out as TrainConfig;
}

function checkValue(spec: KeySpec, value: unknown, where: string): unknown {
  const fail = (what: string): never => {
    throw new LorafitError('E_CONFIG', `${where}: ${what}, got ${JSON.stringify(value)}`);
  };
  switch (spec.kind) {
    case 'string': {
      if (typeof value !== 'string' || value.length === 0) fail('must be a non-empty string');
      if (spec.values && !spec.values.includes(value as string)) fail(`must be one of ${spec.values.join(', ')}`);
      return value;
    }
    case 'boolean': {
      if (value === 'true') return true;
      if (value === 'false') return false;
      if (typeof value !== 'boolean') fail('must be true or false');
      return value;
    }
    case 'list': {
      const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
      if (!Array.isArray(list) || list.length === 0 || list.some((s) => typeof s !== 'string' || s.length === 0)) {
        fail('must be a list of names (or a comma-separated string)');
      }
      return list;
    }
    default: {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) fail(spec.kind === 'integer' ? 'must be an integer' : 'must be a number');
      const num = n as number;
      if (spec.kind === 'integer' && !Number.isInteger(num)) fail('must be an integer');
      if (spec.min !== undefined && (spec.minExclusive ? !(num > spec.min) : !(num >= spec.min))) fail(`must be ${spec.minExclusive ? '>' : '>='} ${spec.min}`);
      if (spec.max !== undefined && (spec.maxExclusive ? !(num < spec.max) : !(num <= spec.max))) fail(`must be ${spec.maxExclusive ? '<' : '<='} ${spec.max}`);
      return num;
    }
  }
}

/** The allowed key nearest to `key` (edit distance <= 3), for "did you mean". */
function closest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 4;
  for (const a of allowed) {
    const d = editDistance(key.toLowerCase(), a.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}
