// Per-call state threaded through the model's forward pass.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lorafit {

struct KVCache;

struct ForwardContext {
  bool training = false;                     // enables LoRA dropout
  const std::vector<std::string>* active_adapters = nullptr;  // LoRA adapters to apply (null/empty: none)
  at::Generator generator;                   // the caller's own RNG for dropout (never the global one)
  KVCache* cache = nullptr;                  // generation: keys/values of earlier positions
  bool gradient_checkpointing = false;       // recompute each decoder layer in backward
  // Padding-free / packed rows: the lengths of the examples laid end to end along the one row
  // [1, N] that the layers see (sum = N). Each example attends only to itself (block-diagonal
  // causal); null: ordinary rows.
  const std::vector<int64_t>* segments = nullptr;
};

}  // namespace lorafit
