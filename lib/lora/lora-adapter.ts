// LoraAdapter: a named PEFT-compatible LoRA adapter attached to a Model.
//   const adapter = await LoraAdapter.create(model, { rank: 16, alpha: 32, targetModules: 'all-linear' });
//   await adapter.save('out/adapter');                       // adapter_config.json + adapter_model.safetensors
//   const again = await LoraAdapter.load(model, 'out/adapter', { name: 'tuned' });
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LorafitError, optionError, fromNative } from '../errors.js';
import { looksLikeHubId, resolveModelPath } from '../hub/resolve.js';
import { writeDirAtomic, writeFileAtomicSync } from '../util/fs-atomic.js';
import { checkLoraInit, convertedConfigFields, convertTensors, initFromPeft, rewritesBase, type LoraInit } from './init-weights.js';
import { moduleFileKeys, resolveModulesToSave } from './modules-to-save.js';
import { checkPeftConfig, makePeftConfig, type PeftLoraConfig } from './peft-config.js';
import { DEFAULT_TARGETS, resolveTargets, shortNames, type TargetModules } from './targets.js';
import type { Model } from '../model/model.js';
import { channelOf } from '../model/channel.js';
import type { NativeAdapter, NativeNamedTensor } from '../model/native.js';
import { fromFloat32, readSafetensors, serializeSafetensors, toFloat32, type StTensor } from '../util/safetensors.js';

export const PEFT_PREFIX = 'base_model.model.';
export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

export interface LoraOptions {
  /** LoRA rank r. Default 8 (PEFT's). */
  rank?: number;
  /** lora_alpha; scaling = alpha / r (alpha / sqrt(r) with useRslora). Default 8 (PEFT's). */
  alpha?: number;
  /** Dropout on the LoRA path only. Default 0. */
  dropout?: number;
  /** Module names (['q_proj', 'v_proj']), a regex over module paths, or 'all-linear'. Default: PEFT's per architecture. */
  targetModules?: TargetModules;
  useRslora?: boolean;
  /**
   * DoRA (PEFT's use_dora): a trained magnitude per output row on top of the LoRA direction,
   * W' = m / ||W + scaling B A||_row * (W + scaling B A), the norm detached as PEFT detaches it.
   */
  useDora?: boolean;
  /**
   * PEFT's init_lora_weights: 'kaiming' (PEFT's default True: A kaiming-uniform, B zeros),
   * 'gaussian' (A ~ N(0, 1/r^2)), 'pissa' / 'pissa_niter_<N>' (A, B from the top-r singular
   * triplets of each base weight, exact SVD or torch.svd_lowrank with N iterations), 'olora' (A, B
   * from its QR decomposition), 'none' (both zero). pissa and olora replace the base weights by
   * their residual W - scaling B A (outputs unchanged at init); save with { convertToLora: true }
   * for an adapter that loads on the untouched base. A seed N draws what PEFT draws after
   * torch.manual_seed(N). See lib/lora/init-weights.ts.
   */
  init?: LoraInit;
  seed?: number;
  /**
   * PEFT's modules_to_save: modules trained in full beside the LoRA ones ('lm_head',
   * 'embed_tokens'), saved as base_model.model.<path>.weight. With tied embeddings the copy
   * replaces the weight on its side only, as PEFT does by default (ensure_weight_tying false).
   */
  modulesToSave?: string[];
  /** Adapter name on the model. Default 'default'. */
  name?: string;
  /** Make it the active adapter. Default true. */
  activate?: boolean;
}

export interface TrainableParameters {
  trainable: number;
  total: number;
  /** trainable / total * 100 */
  percent: number;
}

/** [in, out] of a decoder projection, from the model config. */
function linearDims(c: Model['config'], path: string): [number, number] {
  const kind = path.split('.').pop();
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  switch (kind) {
    case 'q_proj': return [c.hiddenSize, q];
    case 'k_proj': case 'v_proj': return [c.hiddenSize, kv];
    case 'o_proj': return [q, c.hiddenSize];
    case 'gate_proj': case 'up_proj': return [c.hiddenSize, c.intermediateSize];
    case 'down_proj': return [c.intermediateSize, c.hiddenSize];
    default: throw new LorafitError('E_ADAPTER', `unknown module kind ${kind}`);
  }
}

/** The native adapter behind each LoraAdapter (for lib/: the Trainer's training state). */
const natives = new WeakMap<LoraAdapter, NativeAdapter>();

/** @internal The native adapter of `adapter` (lib/train only); E_DISPOSED once deleted. */
export function nativeAdapterOf(adapter: LoraAdapter): NativeAdapter {
  const n = natives.get(adapter);
  if (!n) throw new LorafitError('E_DISPOSED', `adapter '${adapter.name}' was deleted`);
  return n;
}

/** The adapters attached to a model: the owners of its native adapters (the model's channel keeps the one list). */
function adaptersOf(model: Model): LoraAdapter[] {
  return channelOf(model).owners().filter((o): o is LoraAdapter => o instanceof LoraAdapter);
}

export class LoraAdapter {
  #deleted = false;
  /** The factors right after a base-rewriting init (PiSSA / OLoRA), keys as in the file. */
  #initial: Map<string, { shape: number[]; data: Float32Array }> | undefined;

  private constructor(
    readonly model: Model,
    readonly name: string,
    readonly config: PeftLoraConfig,
    /** Module paths the adapter wraps. */
    readonly modules: string[],
  ) {}

  static async create(model: Model, options: LoraOptions = {}): Promise<LoraAdapter> {
    const rank = options.rank ?? 8;
    const alpha = options.alpha ?? 8;
    const dropout = options.dropout ?? 0;
    const name = options.name ?? 'default';
    const init = options.init ?? 'kaiming';
    if (!Number.isInteger(rank) || rank < 1) throw optionError('rank', `must be a positive integer, got ${rank}`);
    if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) throw optionError('alpha', `must be a positive number, got ${alpha}`);
    if (typeof dropout !== 'number' || dropout < 0 || dropout >= 1) throw optionError('dropout', `must be in [0, 1), got ${dropout}`);
    checkLoraInit(init);
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw optionError('name', `'${name}' may hold only letters, digits, '_', '.', '-'`);
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed) || seed < 0) throw optionError('seed', 'must be a non-negative integer');
    const targets = options.targetModules ?? DEFAULT_TARGETS[model.config.modelType];
    const modules = resolveTargets(channelOf(model).sync((h) => h.linearNames()), targets, model.config.modelType);
    const peftTargets = targets === 'all-linear' ? shortNames(modules) : typeof targets === 'string' ? targets : [...targets];
    const useDora = options.useDora ?? false;
    if (typeof useDora !== 'boolean') throw optionError('useDora', 'must be a boolean');
    const modulesToSave = options.modulesToSave ?? [];
    resolveModulesToSave(modulesToSave);
    const config = makePeftConfig({ rank, alpha, dropout, targetModules: peftTargets, useRslora: options.useRslora ?? false, init, baseModel: model.dir, useDora, modulesToSave: [...modulesToSave] });
    return LoraAdapter.attach(model, name, config, modules, { seed, init }, options.activate ?? true);
  }

  /**
   * Loads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors).
   * An adapter whose init_lora_weights is pissa / olora is loaded as PEFT loads it: the init runs
   * on this model first (its base weights become the residual), then the file's factors replace
   * the initial ones. Pass initBase: false when the model already is the residual (PEFT's
   * "residual model" recipe, or a resumed training run). seed: the draws of a pissa_niter_N
   * init (PEFT draws from torch's global generator; seed N draws as after torch.manual_seed(N)).
   */
  static async load(model: Model, dir: string, options: { name?: string; activate?: boolean; revision?: string; initBase?: boolean; seed?: number } = {}): Promise<LoraAdapter> {
    let abs = resolve(dir);
    if (!existsSync(abs) && looksLikeHubId(dir)) {
      // a hub id ('org/my-adapter'): download into (or find in) the shared HF cache
      abs = await resolveModelPath(dir, { revision: options.revision });
    }
    const configFile = join(abs, ADAPTER_CONFIG);
    const weightsFile = join(abs, ADAPTER_WEIGHTS);
    if (!existsSync(configFile)) throw new LorafitError('E_ADAPTER', `${abs}: no ${ADAPTER_CONFIG} (is this a PEFT adapter folder?)`);
    if (!existsSync(weightsFile)) {
      const hint = existsSync(join(abs, 'adapter_model.bin')) ? ' (it has adapter_model.bin, a pickle file lorafit does not load; re-save it with safe_serialization=True)' : '';
      throw new LorafitError('E_ADAPTER', `${abs}: no ${ADAPTER_WEIGHTS}${hint}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(configFile, 'utf8'));
    } catch (e) {
      throw new LorafitError('E_ADAPTER_CONFIG', `${configFile}: not valid JSON (${(e as Error).message})`);
    }
    const config = checkPeftConfig(raw, configFile);
    const file = readSafetensors(weightsFile);
    // Modules named by the weights file; they must all be linears of this model.
    const linearNames = channelOf(model).sync((h) => h.linearNames());
    const linears = new Set(linearNames);
    const modules = new Set<string>();
    const dora = config.use_dora === true;
    // modules_to_save: whole-module copies under the module's own key
    const saved = resolveModulesToSave(config.modules_to_save);
    const entries: NativeNamedTensor[] = [];
    const moduleKeys = new Set<string>();
    for (const path of saved) {
      const keys = moduleFileKeys(PEFT_PREFIX, path);
      const key = keys.find((k) => file.tensors.has(k));
      if (!key) throw new LorafitError('E_ADAPTER', `${weightsFile}: '${keys[0]}' is missing (adapter_config.json lists it in modules_to_save)`);
      const t = file.tensors.get(key)!;
      entries.push({ key: `${path}.weight`, shape: t.shape, data: toFloat32(t) });
      moduleKeys.add(key);
    }
    for (const key of file.tensors.keys()) {
      if (moduleKeys.has(key)) continue;
      const m = /^base_model\.model\.(.+)\.(?:lora_([AB])(?:\.[^.]+)?\.weight|lora_magnitude_vector)$/.exec(key);
      if (!m) throw new LorafitError('E_ADAPTER', `${weightsFile}: unexpected tensor '${key}' (expected base_model.model.<module>.lora_A.weight / .lora_B.weight${dora ? ' / .lora_magnitude_vector' : ''})`);
      if (!m[2] && !dora) throw new LorafitError('E_ADAPTER', `${weightsFile}: '${key}' is a DoRA magnitude, but adapter_config.json has no use_dora: true`);
      if (!linears.has(m[1])) throw new LorafitError('E_ADAPTER', `${weightsFile}: tensor '${key}' targets '${m[1]}', which is not a linear module of this ${model.config.modelType} model`);
      modules.add(m[1]);
    }
    if (modules.size === 0) throw new LorafitError('E_ADAPTER', `${weightsFile}: holds no LoRA tensors`);
    const ordered = linearNames.filter((p) => modules.has(p));
    for (const path of ordered) {
      for (const ab of ['A', 'B'] as const) {
        const t = file.tensors.get(`${PEFT_PREFIX}${path}.lora_${ab}.weight`) ?? file.tensors.get(`${PEFT_PREFIX}${path}.lora_${ab}.default.weight`);
        if (!t) throw new LorafitError('E_ADAPTER', `${weightsFile}: '${PEFT_PREFIX}${path}.lora_${ab}.weight' is missing`);
        const rankDim = ab === 'A' ? t.shape[0] : t.shape[1];
        if (t.shape.length !== 2 || rankDim !== config.r) {
          throw new LorafitError('E_SHAPE', `${weightsFile}: '${PEFT_PREFIX}${path}.lora_${ab}.weight' has shape [${t.shape.join(', ')}] but r is ${config.r}`);
        }
        entries.push({ key: `${path}.lora_${ab}.weight`, shape: t.shape, data: toFloat32(t) });
      }
      if (dora) {
        const key = `${PEFT_PREFIX}${path}.lora_magnitude_vector`;
        const t = file.tensors.get(key);
        if (!t) throw new LorafitError('E_ADAPTER', `${weightsFile}: '${key}' is missing (use_dora: true needs a magnitude for every module)`);
        if (t.shape.length !== 1) throw new LorafitError('E_SHAPE', `${weightsFile}: '${key}' has shape [${t.shape.join(', ')}]; a DoRA magnitude is one value per output row`);
        entries.push({ key: `${path}.lora_magnitude_vector`, shape: t.shape, data: toFloat32(t) });
      }
    }
    const name = options.name ?? 'default';
    const fileInit = initFromPeft(config.init_lora_weights);
    const init: LoraInit = fileInit && rewritesBase(fileInit) && options.initBase !== false ? fileInit : 'none';
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed) || seed < 0) throw optionError('seed', 'must be a non-negative integer');
    if (init !== 'none') {
      // the init rewrites the base weights, which a later refusal could not undo: check shapes first
      const c = model.config;
      for (const e of entries) {
        const path = e.key.replace(/\.(?:lora_[AB]\.weight|lora_magnitude_vector|weight)$/, '');
        const want = path === 'lm_head' || path === 'model.embed_tokens' ? [c.vocabSize, c.hiddenSize]
          : e.key.endsWith('.lora_A.weight') ? [config.r, linearDims(c, path)[0]] : e.key.endsWith('.lora_B.weight') ? [linearDims(c, path)[1], config.r] : [linearDims(c, path)[1]];
        if (e.shape.join() !== want.join()) throw new LorafitError('E_SHAPE', `${weightsFile}: '${PEFT_PREFIX}${e.key}' has shape [${e.shape.join(', ')}] but the model needs [${want.join(', ')}] (was it trained on another base model?)`);
      }
    }
    const adapter = await LoraAdapter.attach(model, name, config, ordered, { seed, init }, options.activate ?? true);
    try {
      await channelOf(model).call(() => nativeAdapterOf(adapter).setState(entries));
    } catch (e) {
      await adapter.delete();
      throw new LorafitError((e as { code?: string }).code === 'E_SHAPE' ? 'E_SHAPE' : 'E_ADAPTER', `${weightsFile}: ${fromNative(e).message} (was it trained on another base model?)`);
    }
    return adapter;
  }

  private static async attach(model: Model, name: string, config: PeftLoraConfig, modules: string[], init: { seed: number; init: LoraInit }, activate: boolean): Promise<LoraAdapter> {
    if (adaptersOf(model).some((a) => a.name === name)) throw new LorafitError('E_ADAPTER', `the model already has an adapter named '${name}'; pass another name`);
    const channel = channelOf(model);
    const spec = {
      name, rank: config.r, alpha: config.lora_alpha, dropout: config.lora_dropout ?? 0, rslora: config.use_rslora === true, init: init.init, seed: init.seed, targets: modules,
      useDora: config.use_dora === true, modulesToSave: resolveModulesToSave(config.modules_to_save),
    };
    const native = await channel.call((h) => h.addAdapter(spec));
    const adapter = new LoraAdapter(model, name, config, modules);
    natives.set(adapter, native);
    channel.own(native, adapter);
    // PiSSA / OLoRA: the initial factors, for the conversion to a plain LoRA adapter on save
    if (rewritesBase(init.init)) adapter.#initial = await adapter.tensors();
    if (activate) await adapter.activate();
    return adapter;
  }

  /** Adapters attached to a model, by name. */
  static list(model: Model): LoraAdapter[] {
    return adaptersOf(model);
  }

  /** Runs the base model alone (no adapter applied). */
  static async disableAll(model: Model): Promise<void> {
    await channelOf(model).call((h) => h.setActiveAdapters([]));
  }

  get scaling(): number {
    return this.config.use_rslora ? this.config.lora_alpha / Math.sqrt(this.config.r) : this.config.lora_alpha / this.config.r;
  }

  private check(): void {
    if (this.#deleted) throw new LorafitError('E_DISPOSED', `adapter '${this.name}' was deleted`);
  }

  /** Makes this the (only) active adapter. */
  async activate(): Promise<void> {
    this.check();
    const native = nativeAdapterOf(this);
    await channelOf(this.model).call((h) => h.setActiveAdapters([native]));
  }

  trainableParameters(): TrainableParameters {
    this.check();
    const c = this.model.config;
    const dims = (path: string) => linearDims(c, path);
    const dora = this.config.use_dora === true;
    const trainable = this.modules.reduce((n, p) => {
      const [i, o] = dims(p);
      return n + this.config.r * (i + o) + (dora ? o : 0);  // DoRA: one magnitude per output row
    }, 0);
    const copies = resolveModulesToSave(this.config.modules_to_save).length * c.vocabSize * c.hiddenSize;  // modules_to_save
    const total = this.model.numParameters() + trainable + copies;
    return { trainable: trainable + copies, total, percent: (100 * (trainable + copies)) / total };
  }

  /** The adapter's tensors (or their gradients) keyed as in adapter_model.safetensors. */
  async tensors(options: { grads?: boolean } = {}): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    this.check();
    const native = nativeAdapterOf(this);
    const entries = await channelOf(this.model).call(() => native.state(options.grads ?? false));
    return new Map(entries.map((e) => [PEFT_PREFIX + e.key, { shape: e.shape, data: e.data }]));
  }

  /** Replaces the adapter's weights (keys as in adapter_model.safetensors). */
  async setTensors(values: Map<string, { shape: number[]; data: Float32Array }>): Promise<void> {
    this.check();
    const entries = [...values].map(([k, v]) => ({ key: k.startsWith(PEFT_PREFIX) ? k.slice(PEFT_PREFIX.length) : k, shape: v.shape, data: v.data }));
    const native = nativeAdapterOf(this);
    await channelOf(this.model).call(() => native.setState(entries));
  }

  /**
   * Writes a PEFT adapter folder; the folder appears complete or not at all.
   * convertToLora (a PiSSA / OLoRA adapter): write it as PEFT's save_pretrained(...,
   * path_initial_model_for_weight_conversion=...) does, a plain LoRA adapter of rank 2r
   * (A' = [A; A0], B' = [B, -B0], same scaling) that gives the trained model on the untouched
   * base model instead of on the residual.
   */
  async save(dir: string, options: { baseModelNameOrPath?: string; convertToLora?: boolean } = {}): Promise<void> {
    let tensors = await this.tensors();
    let fields: Partial<PeftLoraConfig> = {};
    if (options.convertToLora) {
      if (!this.#initial) {
        throw optionError('convertToLora', `adapter '${this.name}' has init_lora_weights ${JSON.stringify(this.config.init_lora_weights)}; only an adapter whose init rewrote the base (pissa, pissa_niter_N, olora) in this process can be converted`);
      }
      if (this.config.use_dora) throw optionError('convertToLora', `adapter '${this.name}' is a DoRA adapter; its magnitudes have no rank-2r LoRA form (PEFT drops them)`);
      tensors = convertTensors(tensors, this.#initial);
      fields = convertedConfigFields(this.config);
    }
    const st = new Map<string, StTensor>();
    for (const [k, v] of tensors) {
      for (let i = 0; i < v.data.length; i++) {
        if (!Number.isFinite(v.data[i])) throw new LorafitError('E_NON_FINITE', `adapter '${this.name}': '${k}' holds NaN or infinite values; not saving it`);
      }
      st.set(k, fromFloat32(v.data, v.shape));
    }
    const config = { ...this.config, ...fields, base_model_name_or_path: options.baseModelNameOrPath ?? this.config.base_model_name_or_path, inference_mode: true };
    await writeDirAtomic(dir, (tmp) => {
      writeFileAtomicSync(join(tmp, ADAPTER_WEIGHTS), serializeSafetensors(st, { format: 'pt' }));
      writeFileAtomicSync(join(tmp, ADAPTER_CONFIG), `${JSON.stringify(config, null, 2)}\n`);
    });
  }

  /**
   * Folds scaling * B @ A into the base weights (outputs unchanged, adapter inactive in forward).
   * On a quantized base (QLoRA) each merged layer is dequantized and becomes dense in the compute
   * dtype (a note lands in model.warnings: quantizing it again would change the outputs);
   * unmerge() returns to the exact quantized base.
   */
  async merge(): Promise<void> {
    await this.mergeOp('merge');
  }

  async unmerge(): Promise<void> {
    await this.mergeOp('unmerge');
  }

  /** PEFT's merge_and_unload: the model becomes a plain model with the adapter folded in. */
  async mergeAndUnload(): Promise<void> {
    await this.mergeOp('unload');
    this.#forget();
  }

  private async mergeOp(mode: 'merge' | 'unmerge' | 'unload'): Promise<void> {
    this.check();
    const native = nativeAdapterOf(this);
    await channelOf(this.model).call(() => native.merge(mode));
    // Merging into a quantized base leaves the merged layers dense; the native side says so in
    // the model's warnings.
    this.model.syncWarnings();
  }

  /** Removes the adapter from the model. */
  async delete(): Promise<void> {
    if (this.#deleted) return;
    const native = natives.get(this);
    this.#forget();
    if (this.model.disposed || !native) return;
    await channelOf(this.model).call(() => native.delete());
  }

  #forget(): void {
    this.#deleted = true;
    const native = natives.get(this);
    natives.delete(this);
    if (native && !this.model.disposed) channelOf(this.model).release(native);
  }

  /**
   * A new adapter combining others, as PEFT's add_weighted_adapter:
   *  'linear': same rank; A = sum sign(w_i) sqrt(|w_i * s_i|) A_i, B = sum sqrt(|w_i * s_i|) B_i (scaling 1 folded in)
   *  'cat':    rank = sum r_i; A = concat(w_i * s_i * A_i), B = concat(B_i) (exact sum of deltas)
   */
  static async combine(model: Model, parts: { adapter: LoraAdapter; weight: number }[], options: { name: string; combinationType?: 'linear' | 'cat'; activate?: boolean }): Promise<LoraAdapter> {
    const type = options.combinationType ?? 'cat';
    if (parts.length === 0) throw optionError('parts', 'needs at least one adapter');
    const modules = parts[0].adapter.modules;
    for (const p of parts) {
      if (p.adapter.modules.join() !== modules.join()) throw new LorafitError('E_ADAPTER', `combine: adapter '${p.adapter.name}' targets other modules than '${parts[0].adapter.name}'`);
    }
    const saving = parts.find((p) => (p.adapter.config.modules_to_save ?? []).length > 0);
    if (saving) throw new LorafitError('E_ADAPTER', `combine: '${saving.adapter.name}' trains whole modules (modules_to_save ${JSON.stringify(saving.adapter.config.modules_to_save)}), which a combination cannot weigh`);
    const dora = parts.find((p) => p.adapter.config.use_dora === true);
    if (dora) throw new LorafitError('E_ADAPTER', `combine: '${dora.adapter.name}' is a DoRA adapter; DoRA adapters cannot be combined (as in PEFT)`);
    if (type === 'linear' && !parts.every((p) => p.adapter.config.r === parts[0].adapter.config.r)) {
      throw new LorafitError('E_ADAPTER', "combine: 'linear' needs adapters of the same rank; use 'cat'");
    }
    const rank = type === 'linear' ? parts[0].adapter.config.r : parts.reduce((n, p) => n + p.adapter.config.r, 0);
    const alpha = rank;  // scaling 1: the per-adapter scalings are folded into the weights
    const config = makePeftConfig({ rank, alpha, dropout: 0, targetModules: parts[0].adapter.config.target_modules, useRslora: false, init: 'kaiming', baseModel: model.dir });
    const combined = await LoraAdapter.attach(model, options.name, config, modules, { seed: 0, init: 'none' }, options.activate ?? true);
    const native = nativeAdapterOf(combined);
    const nativeParts = parts.map((p) => ({ adapter: nativeAdapterOf(p.adapter), weight: p.weight }));
    await channelOf(model).call(() => native.combineFrom(nativeParts, type));
    return combined;
  }
}
