// Adapter set-ups shared by tests.
import type { LoraAdapter } from '../../lib/lora/lora-adapter.js';
import { mulberry32 } from './corrupt.js';

/** Sets every lora_B to seeded uniform values in [-scale, scale) (PEFT starts them at 0): the
 *  adapter then changes the model, and lora_A gets a gradient. */
export async function randomLoraB(adapter: LoraAdapter, seed: number, scale = 0.1): Promise<void> {
  const r = mulberry32(seed);
  const t = await adapter.tensors();
  for (const [k, v] of t) if (k.includes('lora_B')) for (let i = 0; i < v.data.length; i++) v.data[i] = (2 * r() - 1) * scale;
  await adapter.setTensors(t);
}
