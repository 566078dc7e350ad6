#include "train_step.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "error.h"
#include "loss.h"
#include "runtime.h"

namespace lorafit {

std::vector<at::Tensor> trainable_parameters(CausalLM& model) {
  std::vector<at::Tensor> out;
  if (model.full_training()) {
    for (auto& [name, t] : model.named_parameters()) out.push_back(t);
    return out;
  }
  for (const auto& name : model.active_adapters())
    for (auto& [path, lin] : model.named_linears()) {
      auto it = lin->adapters().find(name);
      if (it == lin->adapters().end() || it->second.merged) continue;
      out.push_back(it->second.A);
      out.push_back(it->second.B);
      if (it->second.magnitude.defined()) out.push_back(it->second.magnitude);
    }
  // modules_to_save: the active adapters' whole-module copies
  for (const auto& name : model.active_adapters()) {
    auto copies = model.module_copies().find(name);
    if (copies != model.module_copies().end())
      for (auto& [module, t] : copies->second) out.push_back(t);
  }
  return out;
}

at::Tensor effective_labels(const MicroBatch& mb) {
  if (mb.segments.size() <= 1) return mb.labels;
  at::Tensor labels = mb.labels.to(at::kLong).clone();
  at::Tensor flat = labels.view({-1});
  std::vector<int64_t> starts;
  starts.reserve(mb.segments.size());
  int64_t offset = 0;
  for (int64_t len : mb.segments) {
    if (offset >= flat.numel()) throw Error("E_SHAPE", "segment lengths sum to more than the batch's tokens");
    starts.push_back(offset);
    offset += len;
  }
  flat.index_fill_(0, at::tensor(starts, at::kLong).to(flat.device()), kIgnoreIndex);
  return labels;
}

double grad_norm(const std::vector<at::Tensor>& params) {
  at::NoGradGuard no_grad;
  // As clip_grad_norm_ does: one norm per tensor in one foreach kernel, then the norm of those.
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0;
  std::vector<at::Tensor> norms = at::_foreach_norm(grads, 2, at::kFloat);  // fp32 even for bf16 grads
  return at::stack(norms).to(at::kDouble).norm().item<double>();
}

int64_t count_step_tokens(const std::vector<MicroBatch>& batches) {
  int64_t n = 0;
  for (const auto& mb : batches) n += count_loss_tokens(effective_labels(mb));
  return n;
}

StepResult accumulate_gradients(CausalLM& model, const std::vector<MicroBatch>& batches, const std::vector<at::Tensor>& params,
                                const at::Generator& generator, bool gradient_checkpointing, int64_t normaliser) {
  at::AutoGradMode grad_mode(true);
  for (const auto& p : params) {
    if (!p.requires_grad()) throw Error("E_ADAPTER", "a trainable tensor does not require grad");
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
  std::vector<at::Tensor> labels;
  int64_t total = 0;
  for (const auto& mb : batches) {
    labels.push_back(effective_labels(mb));
    total += count_loss_tokens(labels.back());
  }
  const int64_t local = total;
  if (normaliser > 0) total = normaliser;
  if (total == 0) throw Error("E_INPUT", "the batch has no labelled tokens (every label is -100 after the shift)");
  ForwardContext ctx = model.context(/*training=*/true);
  ctx.generator = generator;
  ctx.gradient_checkpointing = gradient_checkpointing;
  double sum = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    const MicroBatch& mb = batches[i];
    ForwardOptions fo;
    fo.attention_mask = mb.attention_mask;
    fo.segments = mb.segments;
    at::Tensor h = model.hidden(mb.input_ids, fo, ctx);
    auto [loss_sum, n] = masked_lm_loss_sum(h, labels[i], model.lm_head_weight(), model.config().final_logit_softcapping);
    if (n == 0) continue;
    (loss_sum / static_cast<double>(total)).backward();
    sum += loss_sum.item<double>();
  }
  StepResult r;
  r.loss = sum / static_cast<double>(total);
  r.loss_sum = sum;
  r.tokens = local;
  r.grad_norm = grad_norm(params);
  return r;
}

StepResult loss_and_grad(CausalLM& model, const std::vector<MicroBatch>& batches, uint64_t dropout_seed, bool gradient_checkpointing) {
  auto params = trainable_parameters(model);
  if (params.empty()) throw Error("E_ADAPTER", "nothing to train: no active adapter");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(dropout_seed);
  return accumulate_gradients(model, batches, params, gen, gradient_checkpointing);
}

std::pair<double, int64_t> evaluate_loss(CausalLM& model, const std::vector<MicroBatch>& batches) {
  at::NoGradGuard no_grad;
  ForwardContext ctx = model.context(/*training=*/false);
  double sum = 0;
  int64_t tokens = 0;
  for (const auto& mb : batches) {
    ForwardOptions fo;
    fo.attention_mask = mb.attention_mask;
    fo.segments = mb.segments;
    at::Tensor h = model.hidden(mb.input_ids, fo, ctx);
    auto [loss_sum, n] = masked_lm_loss_sum(h, effective_labels(mb), model.lm_head_weight(), model.config().final_logit_softcapping);
    sum += loss_sum.item<double>();
    tokens += n;
  }
  release_free_memory();  // see TrainState::step
  return {sum, tokens};
}

}  // namespace lorafit
