// LoRA initialisations as PEFT names them (init_lora_weights), and PEFT's conversion of an adapter
// whose init rewrote the base (PiSSA, OLoRA) into a plain LoRA adapter for the untouched base
// (save_pretrained(path_initial_model_for_weight_conversion=...)).
//   kaiming         PEFT's True: A kaiming-uniform, B zeros
//   gaussian        A ~ N(0, 1/r^2), B zeros
//   pissa           A, B from the top-r singular triplets of W (torch.linalg.svd); the base becomes W - s B A
//   pissa_niter_N   the same from torch.svd_lowrank(W, r, niter=N) (randomised, seeded)
//   olora           A, B from W's QR decomposition (A = R[:r], B = Q[:, :r]); the base becomes W - s B A
//   none            A and B zeros (PEFT's False leaves nn.Linear's init; lorafit zeros both)
// The maths is native (native/lora_init.cc); this file holds the names and the conversion.
import { optionError } from '../errors.js';

export type LoraInit = 'kaiming' | 'gaussian' | 'pissa' | `pissa_niter_${number}` | 'olora' | 'none';

const NITER = /^pissa_niter_(\d{1,6})$/;

export function isLoraInit(v: unknown): v is LoraInit {
  return typeof v === 'string' && (['kaiming', 'gaussian', 'pissa', 'olora', 'none'].includes(v) || NITER.test(v));
}

/** Throws E_OPTION naming `option` unless `v` is an init lorafit knows. */
export function checkLoraInit(v: unknown, option = 'init'): LoraInit {
  if (!isLoraInit(v)) throw optionError(option, `must be 'kaiming', 'gaussian', 'pissa', 'pissa_niter_<N>', 'olora' or 'none', got ${JSON.stringify(v)}`);
  return v;
}

/** Inits that replace the base weight of each wrapped module by a residual. */
export function rewritesBase(init: LoraInit | string | boolean | undefined): boolean {
  return init === 'pissa' || init === 'olora' || (typeof init === 'string' && NITER.test(init));
}

/** adapter_config.json's init_lora_weights for an init. */
export function peftInitValue(init: LoraInit): boolean | string {
  return init === 'kaiming' ? true : init === 'none' ? false : init;
}

/** The init an adapter_config.json names (true -> kaiming, false -> none). */
export function initFromPeft(v: unknown): LoraInit | undefined {
  if (v === true || v === undefined || v === null) return 'kaiming';
  if (v === false) return 'none';
  return isLoraInit(v) ? v : undefined;
}

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;

/**
 * PEFT's subtract_mutated_init: trained (A, B) and initial (A0, B0) -> the rank-2r plain LoRA
 * A' = [A; A0] [2r, in], B' = [B, -B0] [out, 2r], so that s B' A' = s (B A - B0 A0): on the
 * untouched base W = W_res + s B0 A0 it gives W_res + s B A, the trained model.
 */
export function convertTensors(trained: Tensors, initial: Tensors): Tensors {
  const out: Tensors = new Map();
  for (const [key, t] of trained) {
    const t0 = initial.get(key);
    if (!t0) throw optionError('convertToLora', `no initial value of '${key}'`);
    if (key.endsWith('.lora_A.weight')) {
      const data = new Float32Array(t.data.length * 2);  // rows of A, then rows of A0
      data.set(t.data, 0);
      data.set(t0.data, t.data.length);
      out.set(key, { shape: [t.shape[0] * 2, t.shape[1]], data });
    } else if (key.endsWith('.lora_B.weight')) {
      const [rows, r] = t.shape;
      const data = new Float32Array(rows * r * 2);  // each row: B's r values, then -B0's
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < r; j++) {
          data[i * 2 * r + j] = t.data[i * r + j];
          data[i * 2 * r + r + j] = -t0.data[i * r + j];
        }
      }
      out.set(key, { shape: [rows, 2 * r], data });
    } else {
      // modules_to_save copies go as they are: the untouched base needs the trained module too.
      // (PEFT 0.21's subtract_mutated_init keeps only lora_A / lora_B, so its converted file lacks
      // them while its config still lists modules_to_save.)
      out.set(key, t);
    }
  }
  return out;
}

/** The converted adapter's config fields, as PEFT's save_pretrained writes them: same scaling at rank 2r. */
export function convertedConfigFields(c: { r: number; lora_alpha: number; use_rslora: boolean }): { r: number; lora_alpha: number; init_lora_weights: true } {
  return { r: c.r * 2, lora_alpha: c.use_rslora ? c.lora_alpha * 2 ** 0.5 : c.lora_alpha * 2, init_lora_weights: true };
}
