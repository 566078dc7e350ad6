#include "generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <limits>

#include "error.h"

namespace lorafit {

GenerationSession::GenerationSession(CausalLM& model, at::Tensor input_ids, at::Tensor attention_mask, SamplingOptions options)
    : options_(std::move(options)) {
  active_ = options_.use_model_adapters ? model.active_adapters() : options_.adapters;
  if (input_ids.dim() != 2 || input_ids.size(1) == 0) throw Error("E_SHAPE", "generate: input ids must be [batch, seq] with seq > 0");
  prompt_ids_ = input_ids.to(model.device(), at::kLong);
  const int64_t B = prompt_ids_.size(0);
  mask_ = attention_mask.defined() ? attention_mask.to(model.device(), at::kLong) : at::ones_like(prompt_ids_);
  cache_.keys.resize(model.config().num_hidden_layers);
  cache_.values.resize(model.config().num_hidden_layers);
  finished_ = at::zeros({B}, at::TensorOptions().dtype(at::kBool).device(model.device()));
  generator_ = at::make_generator<at::CPUGeneratorImpl>(options_.seed);
  if (options_.repetition_penalty != 1.0) {
    // counts of each token in the prompt's real (unpadded) positions
    seen_ = at::zeros({B, model.config().vocab_size}, at::TensorOptions().dtype(at::kFloat).device(model.device()));
    seen_.scatter_add_(1, prompt_ids_, mask_.to(at::kFloat));
  }
}

at::Tensor GenerationSession::sample(at::Tensor logits) {
  at::Tensor scores = logits.to(at::kFloat);  // [B, V]
  if (options_.repetition_penalty != 1.0) {
    const double p = options_.repetition_penalty;
    at::Tensor penalised = at::where(scores < 0, scores * p, scores / p);
    scores = at::where(seen_ > 0, penalised, scores);
  }
  if (options_.greedy) return scores.argmax(-1);
  if (options_.temperature != 1.0) scores = scores / options_.temperature;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (options_.top_k > 0 && options_.top_k < scores.size(-1)) {
    at::Tensor kth = std::get<0>(scores.topk(options_.top_k, -1)).narrow(-1, options_.top_k - 1, 1);  // [B, 1]
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  if (options_.top_p < 1.0) {
    // As HF's TopPLogitsWarper: sort ascending, drop the low tail whose mass is <= 1 - top_p, keep >= 1.
    auto [sorted, idx] = scores.sort(-1, /*descending=*/false);
    at::Tensor cum = sorted.softmax(-1).cumsum(-1);
    at::Tensor remove = cum <= (1 - options_.top_p);
    remove.narrow(-1, remove.size(-1) - 1, 1).fill_(false);
    scores = scores.masked_fill(remove.scatter(-1, idx, remove), neg_inf);
  }
  at::Tensor probs = scores.softmax(-1);
  if (probs.is_cpu()) return at::multinomial(probs, 1, false, generator_).squeeze(-1);
  return at::multinomial(probs, 1, false).squeeze(-1);
}

std::vector<std::vector<int64_t>> GenerationSession::next(CausalLM& model, int64_t n) {
  at::NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> out;
  ForwardContext ctx = model.context();
  ctx.active_adapters = &active_;
  ctx.cache = &cache_;
  const int64_t B = prompt_ids_.size(0);
  const int64_t pad_token = options_.eos_token_ids.empty() ? -1 : options_.eos_token_ids.front();
  for (int64_t i = 0; i < n && !done_; ++i) {
    ForwardOptions fo;
    at::Tensor input;
    if (!prefilled_) {
      input = prompt_ids_;
      fo.attention_mask = mask_;
      // positions count real tokens only (left padding), as HF's generate
      fo.position_ids = (mask_.cumsum(-1) - 1).clamp_min(0);
      prefilled_ = true;
    } else {
      input = next_ids_;
      mask_ = at::cat({mask_, at::ones({B, 1}, mask_.options())}, 1);
      fo.attention_mask = mask_;
      fo.position_ids = mask_.sum(-1, true) - 1;
    }
    at::Tensor h = model.hidden(input, fo, ctx);
    at::Tensor logits = model.logits(h.narrow(1, h.size(1) - 1, 1), ctx).squeeze(1);  // [B, V]
    at::Tensor tok = sample(logits);                                              // [B]
    tok = at::where(finished_, at::full_like(tok, pad_token), tok);
    if (seen_.defined()) seen_.scatter_add_(1, tok.clamp_min(0).unsqueeze(1), at::logical_not(finished_).to(at::kFloat).unsqueeze(1));
    for (int64_t e : options_.eos_token_ids) finished_ = finished_ | tok.eq(e);
    next_ids_ = tok.clamp_min(0).unsqueeze(1);
    at::Tensor cpu = tok.to(at::kCPU);
    out.emplace_back(cpu.data_ptr<int64_t>(), cpu.data_ptr<int64_t>() + B);
    if (finished_.all().item<bool>()) done_ = true;
  }
  return out;
}

}  // namespace lorafit
