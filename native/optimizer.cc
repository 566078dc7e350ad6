#include "optimizer.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>

#include "adamw_kernel.h"
#include "error.h"
#include "runtime.h"

namespace lorafit {

namespace {
// AdamW as torch.optim.AdamW(fused=True) computes it. Per element: m = lerp(m, g, 1-b1);
// v = b2 v + (1-b2) g^2; p *= 1 - lr wd; p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
// Dense fp32 CPU tensors (every adapter on CPU) go through adamw_kernel: one parallel loop over
// all of them, with clipping folded in as grad_scale. Anything else (CUDA, LORAFIT_ADAMW_KERNEL=0)
// clips with one foreach kernel and runs aten's fused kernel, one call per learning-rate group.
void adamw_update(std::vector<at::Tensor>& params, OptimizerState& state, const OptimizerConfig& c, double base_lr,
                  const std::vector<double>& lr_scale, double grad_scale) {
  std::vector<at::Tensor> p, g, m, v;
  std::vector<double> lr;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].grad().defined()) continue;
    p.push_back(params[i]);
    g.push_back(params[i].grad());
    m.push_back(state.exp_avg[i]);
    v.push_back(state.exp_avg_sq[i]);
    lr.push_back(lr_scale.empty() ? base_lr : base_lr * lr_scale[i]);
  }
  if (p.empty()) return;
  if (!switched_off("LORAFIT_ADAMW_KERNEL") && adamw_kernel_applies(p, g, m, v)) {
    adamw_kernel(p, g, m, v, lr, {c.beta1, c.beta2, c.eps, c.weight_decay, state.step, grad_scale});
    return;
  }
  if (grad_scale != 1) at::_foreach_mul_(g, grad_scale);  // as clip_grad_norm_'s foreach path
  // The kernel reads the step count from a float tensor per param (torch increments it before
  // the call); every param here is at the same step, so one tensor serves them all.
  at::Tensor step = at::full({}, static_cast<double>(state.step), p.front().options().dtype(at::kFloat));
  std::map<double, std::vector<size_t>> groups;  // lr -> indices into p
  for (size_t i = 0; i < p.size(); ++i) groups[lr[i]].push_back(i);
  for (auto& [group_lr, idx] : groups) {
    std::vector<at::Tensor> gp, gg, gm, gv, steps;
    for (size_t i : idx) {
      gp.push_back(p[i]);
      gg.push_back(g[i]);
      gm.push_back(m[i]);
      gv.push_back(v[i]);
      steps.push_back(step);
    }
    at::_fused_adamw_(gp, gg, gm, gv, /*max_exp_avg_sqs=*/{}, steps, group_lr, c.beta1, c.beta2, c.weight_decay, c.eps,
                      /*amsgrad=*/false, /*maximize=*/false);
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
  // clip_grad_norm_'s coefficient; AdamW applies it as it reads each gradient
  double grad_scale = 1;
  if (max_grad_norm > 0) {
    const double coef = max_grad_norm / (stats.grad_norm + 1e-6);
    if (coef < 1) {
      stats.clipped = true;
      grad_scale = coef;
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
    adamw_update(params, state, c, base_lr, lr_scale, grad_scale);
    return stats;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    if (!p.grad().defined()) continue;
    const double lr = lr_scale.empty() ? base_lr : base_lr * lr_scale[i];
    const at::Tensor g = grad_scale == 1 ? p.grad() : p.grad() * grad_scale;
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
