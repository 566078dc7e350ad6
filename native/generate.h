// Autoregressive decoding with a KV cache: one prefill over the (left-padded) prompt, then one
// token per step. Sampling follows transformers' logits processors in their order:
// repetition penalty -> temperature -> top-k -> top-p -> softmax -> multinomial (greedy: argmax).
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "causal_lm.h"
#include "layers/attention.h"

namespace lorafit {

struct SamplingOptions {
  bool greedy = true;
  double temperature = 1.0;
  int64_t top_k = 0;                 // 0: off
  double top_p = 1.0;                // 1: off
  double repetition_penalty = 1.0;   // 1: off
  uint64_t seed = 0;
  std::vector<int64_t> eos_token_ids;  // a row stops after emitting one of these
  bool use_model_adapters = true;      // true: the model's active adapters at start; false: `adapters`
  std::vector<std::string> adapters;
};

class GenerationSession {
 public:
  // input_ids: [B, T] left-padded; attention_mask: [B, T] (undefined: all ones)
  GenerationSession(CausalLM& model, at::Tensor input_ids, at::Tensor attention_mask, SamplingOptions options);

  // Decodes up to n more tokens for every unfinished row: [steps, B] (finished rows repeat eos / -1).
  std::vector<std::vector<int64_t>> next(CausalLM& model, int64_t n);
  bool done() const { return done_; }

 private:
  at::Tensor sample(at::Tensor logits);  // [B, V] fp32 -> [B] int64

  SamplingOptions options_;
  std::vector<std::string> active_;  // adapters applied for the whole session
  KVCache cache_;
  at::Tensor mask_;       // [B, S] int64: 1 = real token
  at::Tensor seen_;       // [B, V] float counts of tokens in prompt and output (repetition penalty)
  at::Tensor next_ids_;   // [B, 1] the last sampled token, fed next
  at::Tensor finished_;   // [B] bool
  at::Tensor prompt_ids_;
  at::Generator generator_;
  bool prefilled_ = false;
  bool done_ = false;
};

}  // namespace lorafit
