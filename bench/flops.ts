// Model FLOPs of one LoRA training step (what the hardware must do at least; gradient
// checkpointing's recompute is not counted), and the matmul peak measured in this process.
//
//   per token:         4 * (P_lin + r_lora)          frozen linears: forward 2 P, input-gradient backward 2 P
//   per trained token: 4 * V * H                      lm_head + its input gradient, at labelled positions only
//   LoRA per token:    6 * r * sum(in + out)          forward 2, input + weight gradients 4
//   attention:         6 * L * heads * head_dim * sum over sequences of n (n + 1)
//                      (causal QK^T and PV forward over n(n+1)/2 pairs: 2 * 2 * hd * n(n+1)/2 per head;
//                       backward twice that)
// P_lin = L * (H*q + 2*H*kv + q*H + 3*H*I) with q = heads*hd, kv = kv_heads*hd.
import { readFileSync } from 'node:fs';
import type { ModelConfig } from '../lib/model/model.js';
import { native } from '../lib/model/native.js';

export const FLOPS_FORMULA =
  'gflop/step = [4*P_lin*tokens + 4*V*H*labelled + 6*r*sum(in+out)*tokens + 6*L*heads*hd*sum_seq n(n+1)] / 1e9; ' +
  'P_lin = L*(H*q + 2*H*kv + q*H + 3*H*I) (frozen linears: forward + input-gradient backward), q = heads*hd, kv = kv_heads*hd; ' +
  'recompute under gradient checkpointing not counted';

/** The shape fields of a model config the FLOP count needs. */
export type ShapeConfig = Pick<ModelConfig, 'hiddenSize' | 'intermediateSize' | 'numHiddenLayers' | 'numAttentionHeads' | 'numKeyValueHeads' | 'headDim' | 'vocabSize'>;

/** GFLOP of one optimizer step over sequences of `lengths` tokens with `labelled` loss tokens. */
export function stepGflop(c: ShapeConfig, lengths: number[], labelled: number, rank: number, loraModules: 'all' | number = 'all'): number {
  const attnPairs = lengths.reduce((s, n) => s + n * (n + 1), 0);
  return linearGflop(c, lengths, labelled, rank, loraModules) + (6 * c.numHiddenLayers * c.numAttentionHeads * c.headDim * attnPairs) / 1e9;
}

/** The part of stepGflop done by the linear layers: frozen projections, lm_head and LoRA (no attention). */
export function linearGflop(c: ShapeConfig, lengths: number[], labelled: number, rank: number, loraModules: 'all' | number = 'all'): number {
  const H = c.hiddenSize, I = c.intermediateSize, L = c.numHiddenLayers;
  const q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim;
  const pLin = L * (H * q + 2 * H * kv + q * H + 3 * H * I);
  const loraInOut = (H + q) + 2 * (H + kv) + (q + H) + 2 * (H + I) + (I + H);  // the 7 projections
  const lora = loraModules === 'all' ? L * loraInOut : loraModules;
  const tokens = lengths.reduce((s, n) => s + n, 0);
  return (4 * pLin * tokens + 4 * c.vocabSize * H * labelled + 6 * rank * lora * tokens) / 1e9;
}

/**
 * GFLOP/s of the best of `reps` 2048^3 matmuls through the addon (this process's threads):
 * float32 and bfloat16 as lorafit's frozen weights compute them (fp32: oneDNN, native/cpu_matmul.h),
 * float32_at_mm through at::mm (MKL), what PyTorch code such as HF's gets. Before session 9
 * (2026-12-04) float32 was at::mm's.
 */
export async function matmulPeaks(n = 2048, reps = 5): Promise<{ float32: number; bfloat16: number; float32_at_mm: number }> {
  const gflops = (secs: number[]) => Math.round((2 * n ** 3) / Math.min(...secs) / 1e8) / 10;
  return {
    float32: gflops(await native().benchMatmul(n, 'float32', reps, 'cpu', true)),
    bfloat16: gflops(await native().benchMatmul(n, 'bfloat16', reps, 'cpu', true)),
    float32_at_mm: gflops(await native().benchMatmul(n, 'float32', reps, 'cpu', false)),
  };
}

/** /proc/loadavg's 1, 5 and 15 minute load averages. */
export function loadAverage(): number[] {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return [];
  }
}
