#include "optimizer.h"

#include <ATen/core/grad_mode.h>

#include <cmath>

#include "error.h"

namespace lorafit {

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
      for (auto& p : params)
        if (p.grad().defined()) p.mutable_grad().mul_(coef);
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
  const double t = static_cast<double>(state.step);
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    if (!p.grad().defined()) continue;
    const double lr = lr_scale.empty() ? base_lr : base_lr * lr_scale[i];
    const at::Tensor& g = p.grad();
    if (c.kind == "adamw") {
      if (c.weight_decay != 0) p.mul_(1 - lr * c.weight_decay);
      at::Tensor& m = state.exp_avg[i];
      at::Tensor& v = state.exp_avg_sq[i];
      m.lerp_(g, 1 - c.beta1);
      v.mul_(c.beta2).addcmul_(g, g, 1 - c.beta2);
      const double bias1 = 1 - std::pow(c.beta1, t);
      const double bias2_sqrt = std::sqrt(1 - std::pow(c.beta2, t));
      at::Tensor denom = (v.sqrt() / bias2_sqrt).add_(c.eps);
      p.addcdiv_(m, denom, -lr / bias1);
    } else if (c.kind == "sgd") {
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
