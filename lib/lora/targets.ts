// Which linear modules an adapter wraps, matched as PEFT matches `target_modules`:
//   a list: a module path equal to an entry or ending in "." + entry;
//   a string: a regular expression that must match the whole path (re.fullmatch);
//   'all-linear': every projection of the decoder (never lm_head).
import { LorafitError } from '../errors.js';

/** PEFT's defaults when target_modules is not given (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
export const DEFAULT_TARGETS: Record<string, string[]> = {
  llama: ['q_proj', 'v_proj'],
  mistral: ['q_proj', 'v_proj'],
  qwen2: ['q_proj', 'v_proj'],
  gemma: ['q_proj', 'v_proj'],
  gemma2: ['q_proj', 'v_proj'],
};

export type TargetModules = string[] | string;

export function resolveTargets(linearPaths: string[], targets: TargetModules, modelType: string): string[] {
  let matched: string[];
  if (targets === 'all-linear') {
    matched = linearPaths;
  } else if (typeof targets === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targets})$`);
    } catch (e) {
      throw new LorafitError('E_OPTION', `option 'targetModules': '${targets}' is not a valid regular expression (${(e as Error).message})`);
    }
    matched = linearPaths.filter((p) => re.test(p));
  } else if (Array.isArray(targets)) {
    if (targets.length === 0 || !targets.every((t) => typeof t === 'string' && t.length > 0)) {
      throw new LorafitError('E_OPTION', "option 'targetModules' must be a non-empty list of module names, a regex string or 'all-linear'");
    }
    matched = linearPaths.filter((p) => targets.some((t) => p === t || p.endsWith(`.${t}`)));
    const unused = targets.filter((t) => !linearPaths.some((p) => p === t || p.endsWith(`.${t}`)));
    if (unused.length) {
      const names = [...new Set(linearPaths.map((p) => p.split('.').pop()))].join(', ');
      throw new LorafitError('E_OPTION', `option 'targetModules': ${unused.map((u) => `'${u}'`).join(', ')} match no module of this ${modelType} model (its linear modules: ${names})`);
    }
  } else {
    throw new LorafitError('E_OPTION', "option 'targetModules' must be a list of module names, a regex string or 'all-linear'");
  }
  if (matched.length === 0) throw new LorafitError('E_OPTION', `option 'targetModules': ${JSON.stringify(targets)} matches no module of this model`);
  return matched;
}

/** The short names (q_proj, ...) of the matched paths, as PEFT writes target_modules. */
export function shortNames(paths: string[]): string[] {
  return [...new Set(paths.map((p) => p.split('.').pop() as string))].sort();
}
