#include "train_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cstdlib>
#include <memory>

#include <algorithm>
#include <cmath>

#include "data_parallel.h"
#include "error.h"
#include "lora_adapter.h"
#include "loss.h"
#include "runtime.h"
#include "safetensors.h"
#include "step_profile.h"

namespace lorafit {

TrainState::TrainState(std::string target, OptimizerConfig config) : target_(std::move(target)), config_(std::move(config)) {
  if (config_.kind != "adamw" && config_.kind != "sgd")
    throw Error("E_OPTION", "option 'optimizer' must be 'adamw' or 'sgd', got '" + config_.kind + "'");
  if (!(config_.lora_b_lr_ratio > 0)) throw Error("E_OPTION", "option 'loraplusLrRatio' must be a positive number");
  if (target_.empty() && config_.lora_b_lr_ratio != 1) throw Error("E_OPTION", "option 'loraplusLrRatio' applies to LoRA adapters, not to full-parameter training");
}

TrainState::~TrainState() { release_loss_buffers(); }

std::vector<std::pair<std::string, at::Tensor>> TrainState::trainables(CausalLM& model) const {
  if (target_.empty()) {
    if (!model.full_training()) throw Error("E_OPTION", "full-parameter training state on a model that is not in full-training mode");
    return model.named_parameters();
  }
  auto& active = model.active_adapters();
  if (std::find(active.begin(), active.end(), target_) == active.end())
    throw Error("E_ADAPTER", "adapter '" + target_ + "' is not active; activate() it before training");
  return adapter_tensors(model, target_);
}

TrainStepResult TrainState::step(CausalLM& model, const std::vector<MicroBatch>& batches, const TrainStepOptions& o, GradientReducer* reducer) {
  // Debugging aid: LORAFIT_PROFILE_STEP=N LORAFIT_PROFILE_FILE=trace.json records step N (1-based)
  // with libtorch's profiler as a chrome trace; bench/profile-summary.py sums it by op.
  std::unique_ptr<StepProfile> profile;
  if (const char* n = std::getenv("LORAFIT_PROFILE_STEP"); n && std::atoll(n) == state_.step + 1) {
    const char* f = std::getenv("LORAFIT_PROFILE_FILE");
    profile = std::make_unique<StepProfile>(std::string(f ? f : "lorafit-step.trace.json"));
  }
  auto named = trainables(model);
  std::vector<at::Tensor> params;
  params.reserve(named.size());
  for (auto& [key, t] : named) params.push_back(t);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.dropout_seed);
  // Data-parallel hook: the global token count before, the gradient all-reduce after the micro-batches.
  const int64_t global_tokens = reducer ? global_token_count(*reducer, batches) : 0;
  StepResult r = accumulate_gradients(model, batches, params, gen, o.gradient_checkpointing, global_tokens);
  const double reduce_ms = reducer ? reduce_step(*reducer, params, global_tokens, r) : 0;
  // The step's activations are free now; glibc keeps such pages unless asked (RSS grew from
  // 0.8 to 5.5 GB over 25 SmolLM2 steps without this: bench/memory).
  release_free_memory();
  TrainStepResult out;
  out.loss = r.loss;
  out.tokens = r.tokens;
  out.grad_norm = r.grad_norm;
  out.step = state_.step;
  out.reduce_ms = reduce_ms;
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
    // Skipped by the caller's policy; say whether the weights themselves have overflowed, since
    // then no later step can be finite either.
    at::NoGradGuard no_grad;
    for (auto& [key, t] : named)
      if (!at::isfinite(t).all().item<bool>()) {
        out.non_finite_weight = key;
        break;
      }
    return out;
  }
  // LoRA+ (PEFT's create_loraplus_optimizer): lora_B and every 1-D tensor (DoRA's magnitudes)
  // form the group at lr x ratio; lora_A stays at lr
  std::vector<double> lr_scale;
  if (config_.lora_b_lr_ratio != 1) {
    for (auto& [key, t] : named) {
      const bool b_group = t.dim() == 1 || (key.size() >= 14 && key.compare(key.size() - 14, 14, ".lora_B.weight") == 0);
      lr_scale.push_back(b_group ? config_.lora_b_lr_ratio : 1.0);
    }
  }
  const StepStats s = optimizer_step(params, state_, config_, o.lr, o.max_grad_norm, r.grad_norm, lr_scale);
  out.clipped = s.clipped;
  out.applied = true;
  out.step = state_.step;
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> TrainState::entries(CausalLM& model) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (state_.exp_avg.empty()) return out;
  auto keys = trainables(model);
  for (size_t i = 0; i < keys.size() && i < state_.exp_avg.size(); ++i) {
    out.emplace_back(keys[i].first + ".exp_avg", state_.exp_avg[i].to(at::kCPU, at::kFloat).contiguous());
    if (i < state_.exp_avg_sq.size()) out.emplace_back(keys[i].first + ".exp_avg_sq", state_.exp_avg_sq[i].to(at::kCPU, at::kFloat).contiguous());
  }
  return out;
}

void TrainState::restore(CausalLM& model, int64_t step, const std::map<std::string, at::Tensor>& values) {
  OptimizerState state;
  state.step = step;
  const bool has_sq = config_.kind == "adamw";
  for (auto& [key, t] : trainables(model)) {
    auto find = [&](const std::string& k) {
      auto it = values.find(k);
      if (it == values.end()) throw Error("E_CHECKPOINT", "optimizer state lacks '" + k + "'");
      if (it->second.sizes() != t.sizes())
        throw Error("E_SHAPE", "optimizer state '" + k + "' has shape " + shape_string(it->second.sizes()) + " but the tensor has " +
                                   shape_string(t.sizes()));
      return it->second.to(t.device(), t.scalar_type()).clone();  // as optimizer_step creates them: zeros_like(param)
    };
    state.exp_avg.push_back(find(key + ".exp_avg"));
    if (has_sq) state.exp_avg_sq.push_back(find(key + ".exp_avg_sq"));
  }
  state_ = std::move(state);
}

}  // namespace lorafit
