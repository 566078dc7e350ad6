// LoRA+ (Hayou et al. 2024; PEFT's create_loraplus_optimizer): the learning rate of each trained
// tensor of an adapter. lora_B and every 1-D tensor (DoRA's magnitudes) learn at
// learningRate x ratio, lora_A at learningRate. The native TrainState applies the same rule
// (native/train_state.cc); this is its statement for users and tests.

/** Learning rate per adapter tensor key (keys as in adapter_model.safetensors). */
export function loraPlusLearningRates(tensors: Map<string, { shape: number[] }>, learningRate: number, ratio: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, t] of tensors) out.set(key, key.endsWith('.lora_B.weight') || t.shape.length === 1 ? learningRate * ratio : learningRate);
  return out;
}
