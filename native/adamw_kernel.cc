#include "adamw_kernel.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>

#include "vec16.h"

namespace lorafit {

namespace {
struct Span {  // one tensor's slice of the joint element range
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t begin;  // offset of element 0 in the joint range
  float lr, decay, step_size;
};

// One tensor's elements [from, to). Built with -O3 -fno-math-errno (CMakeLists.txt) so the
// loop, sqrtf included, vectorizes in each clone.
LORAFIT_VECTOR_CLONES
void update_range(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n,
                  float grad_scale, float decay, float one_minus_b1, float b2, float one_minus_b2, float step_size,
                  float inv_bc2_sqrt, float eps) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * grad_scale;
    const float pi = p[i] * decay;
    const float mi = m[i] + one_minus_b1 * (gi - m[i]);  // lerp(m, g, 1 - b1), as aten's lerp for weight < 0.5
    const float vi = b2 * v[i] + one_minus_b2 * gi * gi;
    const float denom = std::sqrt(vi) * inv_bc2_sqrt + eps;
    p[i] = pi - step_size * mi / denom;
    m[i] = mi;
    v[i] = vi;
  }
}
}  // namespace

bool adamw_kernel_applies(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                          const std::vector<at::Tensor>& exp_avg, const std::vector<at::Tensor>& exp_avg_sq) {
  auto plain = [](const at::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.layout() == at::kStrided &&
           t.is_contiguous();
  };
  for (size_t i = 0; i < params.size(); ++i) {
    if (!plain(params[i]) || !plain(grads[i]) || !plain(exp_avg[i]) || !plain(exp_avg_sq[i])) return false;
    const int64_t n = params[i].numel();
    if (grads[i].numel() != n || exp_avg[i].numel() != n || exp_avg_sq[i].numel() != n) return false;
  }
  return true;
}

void adamw_kernel(std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads, std::vector<at::Tensor>& exp_avg,
                  std::vector<at::Tensor>& exp_avg_sq, const std::vector<double>& lr, const AdamwScalars& s) {
  RECORD_FUNCTION("lorafit::adamw_kernel", std::vector<c10::IValue>{});  // a row of its own in step profiles
  // The scalars in double, then rounded once, as the fused kernel does.
  const double bc1 = 1 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bc2 = 1 - std::pow(s.beta2, static_cast<double>(s.step));
  const float inv_bc2_sqrt = static_cast<float>(1 / std::sqrt(bc2));
  std::vector<Span> spans;
  spans.reserve(params.size());
  int64_t total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    spans.push_back({params[i].data_ptr<float>(), grads[i].data_ptr<float>(), exp_avg[i].data_ptr<float>(),
                     exp_avg_sq[i].data_ptr<float>(), total, static_cast<float>(lr[i]),
                     static_cast<float>(1 - lr[i] * s.weight_decay), static_cast<float>(lr[i] / bc1)});
    total += params[i].numel();
  }
  if (total == 0) return;
  const float grad_scale = static_cast<float>(s.grad_scale), b2 = static_cast<float>(s.beta2);
  const float one_minus_b1 = static_cast<float>(1 - s.beta1), one_minus_b2 = static_cast<float>(1 - s.beta2);
  const float eps = static_cast<float>(s.eps);
  // Chunks of the joint range, not tensors: a 576x8 lora_A and a 1536x8 lora_B weigh the same per element.
  at::parallel_for(0, total, 1 << 15, [&](int64_t from, int64_t to) {
    // the span holding element `from`: the last one that begins at or before it
    auto it = std::upper_bound(spans.begin(), spans.end(), from, [](int64_t x, const Span& sp) { return x < sp.begin; }) - 1;
    for (; it != spans.end() && it->begin < to; ++it) {
      const int64_t end = (it + 1 == spans.end()) ? total : (it + 1)->begin;
      const int64_t a = std::max(from, it->begin), b = std::min(to, end);
      if (a >= b) continue;
      const int64_t o = a - it->begin;
      update_range(it->p + o, it->g + o, it->m + o, it->v + o, b - a, grad_scale, it->decay, one_minus_b1, b2, one_minus_b2,
                   it->step_size, inv_bc2_sqrt, eps);
    }
  });
}

}  // namespace lorafit
