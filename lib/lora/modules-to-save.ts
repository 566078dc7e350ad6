// PEFT's modules_to_save: whole modules an adapter trains and saves in full (lm_head and
// embed_tokens, e.g. after adding tokens). PEFT wraps each in a ModulesToSaveWrapper holding a
// deep copy; with tied embeddings (and ensure_weight_tying false, PEFT's default) the copy replaces
// the weight on its own side only, so lm_head and embed_tokens train apart from then on.
// In the file the copy is saved under the module's own key, base_model.model.<path>.weight
// (PEFT 0.21 strips ".modules_to_save.default"); both spellings are read.
import { LorafitError, optionError } from '../errors.js';

/** The modules lorafit can save, by module path. */
const SAVEABLE: Record<string, string> = {
  lm_head: 'lm_head',
  embed_tokens: 'model.embed_tokens',
  'model.embed_tokens': 'model.embed_tokens',
};

/**
 * Module paths for PEFT modules_to_save names (matched like PEFT: a module whose path is the
 * name or ends in "." + name). `where` names the option or config key in errors.
 */
export function resolveModulesToSave(names: unknown, where: (msg: string) => LorafitError = (m) => optionError('modulesToSave', m)): string[] {
  if (names === undefined || names === null) return [];
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && n.length > 0)) throw where('must be a list of module names (lm_head, embed_tokens)');
  const out: string[] = [];
  for (const n of names as string[]) {
    const path = SAVEABLE[n];
    if (!path) throw where(`'${n}' is not a module lorafit can train in full; modules_to_save may hold lm_head and embed_tokens`);
    if (!out.includes(path)) out.push(path);
  }
  return out;
}

/** The file keys of a saved module ("base_model.model.lm_head.weight" and PEFT's wrapper spelling). */
export function moduleFileKeys(prefix: string, path: string): [string, string] {
  return [`${prefix}${path}.weight`, `${prefix}${path}.modules_to_save.default.weight`];
}

/** Refuses configs lorafit would misread: PEFT's ensure_weight_tying shares one copy between tied modules. */
export function checkWeightTying(config: { modules_to_save?: unknown; ensure_weight_tying?: unknown }, file: string): void {
  if (config.ensure_weight_tying === true && Array.isArray(config.modules_to_save) && config.modules_to_save.length > 0) {
    throw new LorafitError('E_ADAPTER_CONFIG', `${file}: 'ensure_weight_tying' is true: one shared copy of tied lm_head / embed_tokens is not supported by lorafit yet`);
  }
}
