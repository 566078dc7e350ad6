// Export a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) to a llama.cpp
// LoRA adapter GGUF, as convert_lora_to_gguf.py does: `general.type=adapter`, `adapter.type=lora`,
// `adapter.lora.alpha`, and per adapted weight `<gguf name>.lora_a` [r, in] / `.lora_b` [out, r]
// (ggml ne = [in, r] / [r, out], which llama.cpp checks against the base weight).
// llama.cpp scales every pair by alpha/rank. PEFT's rsLoRA scales by alpha/sqrt(rank), so the file
// stores alpha*sqrt(r); per-module alphas (alpha_pattern) or ranks differing from `r` are folded into
// lora_b so each pair's effective scale equals PEFT's. For llama/mistral the rows of q/k lora_b get
// the same permutation as the base weights.
// The base model (an HF folder or a GGUF file) gives the architecture and the layer shapes every
// pair is checked against, so an adapter for another model is refused here, naming the tensor,
// rather than by llama.cpp at load time.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { LorafitError } from '../errors.js';
import { rewritesBase } from '../lora/init-weights.js';
import { readSafetensors, toFloat32 } from '../util/safetensors.js';
import { adapterBase, baseLinearShape, openExportBase, type ExportBase } from './export-base.js';
import { ggufTensorName, needsQkPermute, permuteQk, qkHeads } from './gguf-arch.js';
import { GgufWriter, type GgmlDtype } from './gguf-writer.js';

export interface ExportLoraGgufOptions {
  /**
   * The base model: an HF folder, a .gguf file, `ollama:NAME[:TAG]` or a hub id. Default: the
   * adapter's base_model_name_or_path when that is a local folder, GGUF file or ollama: spec.
   */
  baseModel?: string;
  /** The base model folder (the older name of `baseModel`; either may be given). */
  baseModelDir?: string;
  /** Tensor type: 'F32' (default), 'F16' or 'BF16'. */
  dtype?: Exclude<GgmlDtype, 'Q8_0'>;
  /** `general.name`; default: the adapter folder's name. */
  name?: string;
}

export interface ExportLoraGgufResult {
  file: string;
  architecture: string;
  /** The `adapter.lora.alpha` written (alpha*sqrt(r) for rsLoRA). */
  alpha: number;
  rank: number;
  /** GGUF base-tensor names that received a lora_a/lora_b pair. */
  targets: string[];
  /** The base model the adapter was checked against. */
  base: { format: 'hf' | 'gguf'; path: string; spec: string };
}

interface AdapterConfig {
  peft_type?: string;
  r?: number;
  lora_alpha?: number;
  use_rslora?: boolean;
  use_dora?: boolean;
  bias?: string;
  fan_in_fan_out?: boolean;
  modules_to_save?: string[] | null;
  init_lora_weights?: boolean | string;
  alpha_pattern?: Record<string, number>;
  base_model_name_or_path?: string;
}

/** PEFT's pattern lookup: the first key that matches the end of the module path (at a dot boundary). */
function patternValue(patterns: Record<string, number> | undefined, module: string): number | undefined {
  for (const [key, value] of Object.entries(patterns ?? {})) {
    if (new RegExp(`(.*\\.)?${key}$`).test(module)) return value;
  }
  return undefined;
}

async function resolveBase(adapterDir: string, cfg: AdapterConfig, options: ExportLoraGgufOptions): Promise<ExportBase> {
  if (options.baseModel !== undefined && options.baseModelDir !== undefined && resolve(options.baseModel) !== resolve(options.baseModelDir)) {
    throw new LorafitError('E_OPTION', `baseModel '${options.baseModel}' and baseModelDir '${options.baseModelDir}' differ; give one`);
  }
  const given = options.baseModel ?? options.baseModelDir;
  if (given !== undefined) return openExportBase(given);
  const found = await adapterBase(adapterDir, cfg.base_model_name_or_path);
  if (found) return found;
  throw new LorafitError(
    'E_EXPORT',
    `${join(adapterDir, 'adapter_config.json')}: base model '${cfg.base_model_name_or_path ?? '?'}' is not a local folder, GGUF file or ollama: model; ` +
      'pass baseModel (or baseModelDir): the base gives the GGUF architecture and the shapes the adapter must fit',
  );
}

export async function exportLoraGguf(adapterDir: string, outFile: string, options: ExportLoraGgufOptions = {}): Promise<ExportLoraGgufResult> {
  const cfgFile = join(adapterDir, 'adapter_config.json');
  const stFile = join(adapterDir, 'adapter_model.safetensors');
  if (!existsSync(cfgFile)) throw new LorafitError('E_EXPORT', `${cfgFile}: not found (expected a PEFT adapter folder)`);
  if (!existsSync(stFile)) throw new LorafitError('E_EXPORT', `${stFile}: not found (only safetensors adapters are supported)`);
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as AdapterConfig;
  const fail = (msg: string): never => {
    throw new LorafitError('E_EXPORT', `${cfgFile}: ${msg}`);
  };
  if (cfg.peft_type !== undefined && cfg.peft_type !== 'LORA') fail(`peft_type '${cfg.peft_type}' is not LORA`);
  if (cfg.use_dora) fail('DoRA adapters cannot be expressed as a llama.cpp LoRA adapter; merge the adapter and export the model instead');
  if (cfg.bias && cfg.bias !== 'none') fail(`bias '${cfg.bias}' (trained biases) is not supported by llama.cpp LoRA adapters; merge and export the model instead`);
  if (cfg.modules_to_save?.length) fail(`modules_to_save ${JSON.stringify(cfg.modules_to_save)} (fully trained modules) cannot go into a llama.cpp LoRA adapter; merge and export the model instead`);
  if (cfg.fan_in_fan_out) fail('fan_in_fan_out adapters (GPT-2 Conv1D) are not supported');
  if (rewritesBase(cfg.init_lora_weights)) {
    fail(`init_lora_weights ${JSON.stringify(cfg.init_lora_weights)}: this adapter applies to the residual base its init made, not to the base model llama.cpp loads; save it converted (adapter.save(dir, { convertToLora: true }) or lorafit train --convert-to-lora) and export that`);
  }
  const r = cfg.r ?? fail("'r' is missing");
  const loraAlpha = cfg.lora_alpha ?? 8;
  const rslora = cfg.use_rslora === true;
  const dtype = options.dtype ?? 'F32';
  if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new LorafitError('E_EXPORT', `dtype '${String(dtype)}' is not F32, F16 or BF16 for a LoRA adapter`);

  const base = await resolveBase(adapterDir, cfg, options);
  const { arch } = base;
  const st = readSafetensors(stFile);
  const baseName = `the base model ${base.spec === base.path ? base.path : `${base.spec} (${base.path})`}`;

  // Written alpha: llama.cpp's scale alpha'/r must equal PEFT's alpha/r or alpha/sqrt(r).
  const alphaOut = rslora ? loraAlpha * Math.sqrt(r) : loraAlpha;

  const w = new GgufWriter();
  w.addString('general.architecture', arch.ggufArch);
  w.addString('general.type', 'adapter');
  w.addString('general.name', options.name ?? basename(resolve(adapterDir)));
  w.addString('adapter.type', 'lora');
  w.addFloat32('adapter.lora.alpha', alphaOut);

  const modules = new Map<string, { a?: string; b?: string }>();
  for (const key of st.tensors.keys()) {
    const m = /^(?:base_model\.model\.)?(.+)\.lora_(A|B)(?:\.[^.]+)?\.weight$/.exec(key);
    if (!m) {
      throw new LorafitError('E_EXPORT', `${stFile}: tensor '${key}' is not a lora_A/lora_B weight (embedding LoRA, DoRA magnitudes and trained modules are not supported)`);
    }
    const entry = modules.get(m[1]) ?? {};
    if (m[2] === 'A') entry.a = key;
    else entry.b = key;
    modules.set(m[1], entry);
  }
  const targets: string[] = [];
  const sorted = [...modules.keys()].sort(compareModules);
  for (const module of sorted) {
    const { a, b } = modules.get(module)!;
    if (!a || !b) throw new LorafitError('E_EXPORT', `${stFile}: module '${module}' has ${a ? 'lora_A' : 'lora_B'} but not its pair`);
    const gName = ggufTensorName(`${module}.weight`, arch, stFile);
    if (gName === null) throw new LorafitError('E_EXPORT', `${stFile}: module '${module}' has no llama.cpp tensor to adapt`);
    const ta = st.tensors.get(a)!;
    const tb = st.tensors.get(b)!;
    if (ta.shape.length !== 2 || tb.shape.length !== 2 || ta.shape[0] !== tb.shape[1]) {
      throw new LorafitError('E_EXPORT', `${stFile}: '${a}' [${ta.shape.join(', ')}] and '${b}' [${tb.shape.join(', ')}] are not a LoRA pair`);
    }
    const rank = ta.shape[0];
    checkFits(stFile, module, a, b, ta.shape, tb.shape, arch, baseName);
    const alphaM = patternValue(cfg.alpha_pattern, module) ?? loraAlpha;
    const peftScale = rslora ? alphaM / Math.sqrt(rank) : alphaM / rank;
    const fold = peftScale / (alphaOut / rank);
    const heads = needsQkPermute(arch) ? qkHeads(gName, arch) : null;
    w.addTensor(`${gName}.lora_a`, { shape: ta.shape, dtype, data: () => toFloat32(ta) });
    w.addTensor(`${gName}.lora_b`, {
      shape: tb.shape,
      dtype,
      data: () => {
        let v = toFloat32(tb);
        if (heads !== null) v = permuteQk(v, tb.shape[0], heads);
        if (Math.abs(fold - 1) > 1e-12) for (let i = 0; i < v.length; i++) v[i] *= fold;
        return v;
      },
    });
    targets.push(gName);
  }
  if (targets.length === 0) throw new LorafitError('E_EXPORT', `${stFile}: no LoRA weights`);
  w.write(outFile);
  return { file: outFile, architecture: arch.ggufArch, alpha: alphaOut, rank: r, targets, base: { format: base.format, path: base.path, spec: base.spec } };
}

/** Throws E_EXPORT when a pair does not fit the base weight it adapts (another model's adapter). */
function checkFits(stFile: string, module: string, a: string, b: string, aShape: number[], bShape: number[], arch: ExportBase['arch'], baseName: string): void {
  const layer = /(?:^|\.)layers\.(\d+)\./.exec(module);
  if (layer && Number(layer[1]) >= arch.numLayers) {
    throw new LorafitError('E_EXPORT', `${stFile}: '${a}' adapts layer ${layer[1]}, but ${baseName} has ${arch.numLayers} layers: was the adapter trained on another model?`);
  }
  if (module === 'lm_head' && arch.tieWordEmbeddings) {
    throw new LorafitError('E_EXPORT', `${stFile}: '${a}' adapts lm_head, but ${baseName} ties it to the embedding (llama.cpp has no output.weight to adapt); merge and export the model instead`);
  }
  const want = baseLinearShape(module, arch);
  if (!want) return;
  const [out, inp] = want;
  if (aShape[1] !== inp || bShape[0] !== out) {
    throw new LorafitError(
      'E_EXPORT',
      `${stFile}: '${a}' [${aShape.join(', ')}] and '${b}' [${bShape.join(', ')}] do not fit ${baseName}, whose ${module} weight is [${out}, ${inp}] (${arch.hfArch}, hidden ${arch.hiddenSize}): was the adapter trained on another model?`,
    );
  }
}

function compareModules(x: string, y: string): number {
  const layer = (s: string): number => Number(/\.layers\.(\d+)\./.exec(s)?.[1] ?? -1);
  return layer(x) - layer(y) || (x < y ? -1 : x > y ? 1 : 0);
}

