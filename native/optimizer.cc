#include "optimizer.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>

#include "error.h"

namespace lorafit {

namespace {
// AdamW as torch.optim.AdamW(fused=True) runs it: aten's fused kernel, one call per learning-rate
// group (LoRA+ has two), in place of ~6 kernels per tensor (420 tensors on SmolLM2 x 7 projections).
// Per element: m = lerp(m, g, 1-b1); v = b2 v + (1-b2) g^2; p *= 1 - lr wd;
// p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
void adamw_update(std::vector<at::Tensor>& params, OptimizerState& state, const OptimizerConfig& c, double base_lr,
                  const std::vector<double>& lr_scale) {
  // The kernel reads the step count from a float tensor per param (torch increments it before
  // the call); every param here is at the same step, so one tensor serves them all.
  at::Tensor step = at::full({}, static_cast<double>(state.step), params.front().options().dtype(at::kFloat));
  std::map<double, std::vector<size_t>> groups;  // lr -> tensor indices
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].grad().defined()) groups[lr_scale.empty() ? base_lr : base_lr * lr_scale[i]].push_back(i);
  for (auto& [lr, idx] : groups) {
    std::vector<at::Tensor> p, g, m, v, steps;
    for (size_t i : idx) {
      p.push_back(params[i]);
      g.push_back(params[i].grad());
      m.push_back(state.exp_avg[i]);
      v.push_back(state.exp_avg_sq[i]);
      steps.push_back(step);
    }
    at::_fused_adamw_(p, g, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, c.beta1, c.beta2, c.weight_decay, c.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
  }
}
}  // namespace

StepStats optimizer_step(std::vector<at::Tensor>& params, OptimizerState& state, const OptimizerConfig& c, double base_lr,
                         double max_grad_norm, double grad_norm, const std::vector<double>& lr_scale) {
  if (!lr_scale.empty() && lr_scale.size() != params.size()) throw Error("E_OPTIMIZER", "one learning-rate scale per trainable tensor");
  at::NoGradGuard no_grad;
  StepStats stats;
  stats.grad_norm = grad_norm;
  if (!std::isfinite(stats.grad_norm)) throw Error("E_NON_FINITE", "gradient norm is not finite; the update was not applied");
  if (max_grad_norm > 0) {
    const double coef = max_grad_norm / (stats.grad_norm + 1e-6);
    if (coef < 1) {
      stats.clipped = true;
      std::vector<at::Tensor> grads;
      for (auto& p : params)
        if (p.grad().defined()) grads.push_back(p.mutable_grad());
      at::_foreach_mul_(grads, coef);  // one kernel launch for all the tensors, as clip_grad_norm_'s foreach path
    }
  }
  if (state.exp_avg.empty()) {
    for (auto& p : params) {
      state.exp_avg.push_back(at::zeros_like(p));
      if (c.kind == "adamw") state.exp_avg_sq.push_back(at::zeros_like(p));
    }
  }
  if (state.exp_avg.size() != params.size()) throw Error("E_OPTIMIZER", "optimizer state does not match the trainable tensors");
  state.step += 1;
  if (c.kind == "adamw") {
    adamw_update(params, state, c, base_lr, lr_scale);
    return stats;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    if (!p.grad().defined()) continue;
    const double lr = lr_scale.empty() ? base_lr : base_lr * lr_scale[i];
    const at::Tensor& g = p.grad();
    if (c.kind == "sgd") {
      at::Tensor d = g;
      if (c.weight_decay != 0) d = d.add(p, c.weight_decay);
      if (c.momentum != 0) {
        at::Tensor& buf = state.exp_avg[i];
        if (state.step == 1) buf.copy_(d);
        else buf.mul_(c.momentum).add_(d);
        d = buf;
      }
      p.add_(d, -lr);
    } else {
      throw Error("E_OPTION", "option 'optimizer' must be 'adamw' or 'sgd', got '" + c.kind + "'");
    }
  }
  return stats;
}

}  // namespace lorafit
