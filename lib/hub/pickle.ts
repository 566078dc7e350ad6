// Pickle refusal. *.bin / *.pt checkpoints are Python pickles: loading one runs whatever code the
// file carries, so lorafit reads safetensors only and tells the user how to convert once.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HubError } from './errors.js';

const PICKLE_EXT = /\.(bin|pt|pth|pkl|pickle|ckpt)$/i;
// Trainer state saved next to checkpoints; pickles, but not weights.
const NOT_WEIGHTS = /(^|\/)(training_args\.bin|optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state[^/]*\.pth)$/;

export function isPickleWeight(file: string): boolean {
  return PICKLE_EXT.test(file) && !NOT_WEIGHTS.test(file);
}

export function isSafetensors(file: string): boolean {
  return file.endsWith('.safetensors');
}

/** The pickle weight files of `files` when it holds no safetensors weights; otherwise []. */
export function pickleOnlyWeights(files: readonly string[]): string[] {
  if (files.some(isSafetensors)) return [];
  return files.filter(isPickleWeight);
}

/**
 * The message for a folder or repo that only has pickle weights. `source` is what the user gave
 * (a folder or `org/name`), `adapter` picks the PEFT one-liner instead of the transformers one.
 */
export function pickleMessage(source: string, pickles: readonly string[], adapter: boolean, fromHub = false): string {
  const out = `${source.replace(/\/+$/, '').split('/').pop()}-safetensors`;
  const q = (s: string) => s.replace(/'/g, "\\'");
  const line = adapter
    ? `python -c "from peft import PeftConfig, PeftModel; from transformers import AutoModelForCausalLM as M; ` +
      `c = PeftConfig.from_pretrained('${q(source)}'); ` +
      `PeftModel.from_pretrained(M.from_pretrained(c.base_model_name_or_path), '${q(source)}').save_pretrained('${q(out)}', safe_serialization=True)"`
    : `python -c "from transformers import AutoModelForCausalLM as M, AutoTokenizer as T; ` +
      `M.from_pretrained('${q(source)}').save_pretrained('${q(out)}', safe_serialization=True); ` +
      `T.from_pretrained('${q(source)}').save_pretrained('${q(out)}')"`;
  const shown = pickles.slice(0, 3).join(', ') + (pickles.length > 3 ? `, ... (${pickles.length} files)` : '');
  return (
    `${source} has only pickle weights (${shown}) and no .safetensors. Loading a pickle runs arbitrary code stored in the file, ` +
    `so lorafit refuses it. Convert once, in Python, from a copy you trust:\n  ${line}\nthen use ./${out}` +
    (fromHub
      ? ` (or push it). On the hub, a "safetensors" pull request by SFconvertbot may already exist: pass its revision, e.g. revision: 'refs/pr/1'.`
      : '.')
  );
}

function listFiles(dir: string, prefix = '', depth = 0): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    const full = join(dir, e.name);
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      try {
        isDir = statSync(full).isDirectory();
      } catch {
        continue;
      }
    }
    if (isDir) {
      if (depth < 1 && !e.name.startsWith('.')) out.push(...listFiles(full, rel, depth + 1));
    } else out.push(rel);
  }
  return out;
}

/**
 * Throws E_PICKLE when `dir` holds pickle weights (pytorch_model.bin, adapter_model.bin, *.pt, ...)
 * and no .safetensors file. A folder without any weights passes: other checks report that.
 */
export function assertNoPickleOnly(dir: string): void {
  const files = listFiles(dir);
  const pickles = pickleOnlyWeights(files);
  if (pickles.length === 0) return;
  const adapter = files.includes('adapter_config.json');
  throw new HubError('E_PICKLE', pickleMessage(dir, pickles, adapter));
}
