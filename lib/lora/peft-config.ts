// adapter_config.json as PEFT (0.21) writes and reads it. We write every field PEFT writes, and
// read leniently: unknown keys are ignored (newer PEFT releases add fields), but variants that
// would change the maths are refused by name.
import { LorafitError } from '../errors.js';
import { isLoraInit, peftInitValue, type LoraInit } from './init-weights.js';
import { checkWeightTying, resolveModulesToSave } from './modules-to-save.js';

export interface PeftLoraConfig {
  task_type: string;
  peft_type: 'LORA';
  auto_mapping: null;
  peft_version?: string;
  base_model_name_or_path: string | null;
  revision: string | null;
  inference_mode: boolean;
  r: number;
  target_modules: string[] | string;
  exclude_modules: null;
  lora_alpha: number;
  lora_dropout: number;
  fan_in_fan_out: boolean;
  bias: 'none';
  use_rslora: boolean;
  modules_to_save: string[] | null;
  init_lora_weights: boolean | string;
  layers_to_transform: null;
  layers_pattern: null;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  megatron_config: null;
  megatron_core: string;
  trainable_token_indices: null;
  loftq_config: Record<string, never>;
  eva_config: null;
  corda_config: null;
  use_dora: boolean;
  use_qalora: boolean;
  qalora_group_size: number;
  layer_replication: null;
  lora_bias: boolean;
  target_parameters: null;
  ensure_weight_tying: boolean;
  [key: string]: unknown;
}

export function makePeftConfig(o: {
  rank: number;
  alpha: number;
  dropout: number;
  targetModules: string[] | string;
  useRslora: boolean;
  init: LoraInit;
  baseModel: string | null;
  useDora?: boolean;
  modulesToSave?: string[];
}): PeftLoraConfig {
  return {
    task_type: 'CAUSAL_LM',
    peft_type: 'LORA',
    auto_mapping: null,
    peft_version: '0.21.2',
    base_model_name_or_path: o.baseModel,
    revision: null,
    inference_mode: true,
    r: o.rank,
    target_modules: o.targetModules,
    exclude_modules: null,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    fan_in_fan_out: false,
    bias: 'none',
    use_rslora: o.useRslora,
    modules_to_save: o.modulesToSave?.length ? o.modulesToSave : null,
    init_lora_weights: peftInitValue(o.init),
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    megatron_config: null,
    megatron_core: 'megatron.core',
    trainable_token_indices: null,
    loftq_config: {},
    eva_config: null,
    corda_config: null,
    use_dora: o.useDora ?? false,
    use_qalora: false,
    qalora_group_size: 16,
    layer_replication: null,
    lora_bias: false,
    target_parameters: null,
    ensure_weight_tying: false,
  };
}

const isEmpty = (v: unknown) => v === undefined || v === null || v === false || (typeof v === 'object' && Object.keys(v as object).length === 0);

/** Validates a parsed adapter_config.json; throws E_ADAPTER_CONFIG naming the key at fault. */
export function checkPeftConfig(raw: unknown, file: string): PeftLoraConfig {
  const bad = (key: string, msg: string): never => {
    throw new LorafitError('E_ADAPTER_CONFIG', `${file}: '${key}' ${msg}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('(root)', 'must be a JSON object');
  const c = raw as Record<string, unknown>;
  if (c.peft_type !== 'LORA') bad('peft_type', `is ${JSON.stringify(c.peft_type)}; lorafit loads LORA adapters only`);
  if (c.task_type !== undefined && c.task_type !== null && c.task_type !== 'CAUSAL_LM') bad('task_type', `is ${JSON.stringify(c.task_type)}; expected CAUSAL_LM`);
  if (!Number.isInteger(c.r) || (c.r as number) <= 0) bad('r', 'must be a positive integer');
  if (typeof c.lora_alpha !== 'number') bad('lora_alpha', 'must be a number');
  const targets = c.target_modules;
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.every((t) => typeof t === 'string')))) {
    bad('target_modules', 'must be a list of module names or a regex string');
  }
  // Variants that change the forward pass or the base weights: refuse them by name.
  const unsupported: [string, (v: unknown) => boolean, string][] = [
    ['lora_bias', (v) => v === true, 'LoRA bias terms'],
    ['use_qalora', (v) => v === true, 'QALoRA'],
    ['bias', (v) => v !== undefined && v !== 'none', "bias other than 'none'"],
    ['fan_in_fan_out', (v) => v === true, 'fan_in_fan_out (Conv1D models)'],
    ['rank_pattern', (v) => !isEmpty(v), 'per-module ranks (rank_pattern)'],
    ['alpha_pattern', (v) => !isEmpty(v), 'per-module alphas (alpha_pattern)'],
    ['layer_replication', (v) => !isEmpty(v), 'layer_replication'],
    ['layers_to_transform', (v) => !isEmpty(v), 'layers_to_transform'],
    ['trainable_token_indices', (v) => !isEmpty(v), 'trainable_token_indices'],
    ['target_parameters', (v) => !isEmpty(v), 'target_parameters'],
    ['init_lora_weights', (v) => typeof v === 'string' && !(isLoraInit(v) && v !== 'none' && v !== 'kaiming') && !v.startsWith('orthogonal'), 'this initialisation (lorafit has kaiming, gaussian, pissa, pissa_niter_N, olora)'],
  ];
  for (const [key, isBad, what] of unsupported) {
    if (isBad(c[key])) bad(key, `is ${JSON.stringify(c[key])}: ${what} is not supported by lorafit yet`);
  }
  resolveModulesToSave(c.modules_to_save, (msg) => new LorafitError('E_ADAPTER_CONFIG', `${file}: 'modules_to_save' ${msg}`));
  checkWeightTying(c, file);
  return c as PeftLoraConfig;
}
