#include "cross_entropy_rows.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "error.h"
#include "runtime.h"
#include "vec16.h"

namespace lorafit {

namespace {

using namespace vec16;

// One row: returns logsumexp(z) - z[t]; with write_grad, z = softmax(z) - onehot(t) in T.
template <typename T>
LORAFIT_INLINE float row_loss(T* z, int64_t V, int64_t t, bool write_grad) {
  const int64_t v_end = V / kLanes * kLanes;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  v16 mv = v16{} + neg_inf;
  for (int64_t j = 0; j < v_end; j += kLanes) {
    const v16 x = load16(z + j);
    mv = x > mv ? x : mv;
  }
  float m = max16(mv);
  for (int64_t j = v_end; j < V; ++j) m = std::max(m, static_cast<float>(z[j]));
  v16 sv{};
  for (int64_t j = 0; j < v_end; j += kLanes) sv += exp16(load16(z + j) - m);
  float s = sum16(sv);
  for (int64_t j = v_end; j < V; ++j) s += std::exp(static_cast<float>(z[j]) - m);
  const float lse = m + std::log(s);
  const float zt = static_cast<float>(z[t]);
  if (write_grad) {
    for (int64_t j = 0; j < v_end; j += kLanes) store16(z + j, exp16(load16(z + j) - lse));
    for (int64_t j = v_end; j < V; ++j) z[j] = static_cast<T>(std::exp(static_cast<float>(z[j]) - lse));
    z[t] = static_cast<T>(std::exp(zt - lse) - 1.0f);  // the target's gradient from its own logit, rounded once
  }
  return lse - zt;
}

LORAFIT_VECTOR_CLONES float row_loss_f32(float* z, int64_t V, int64_t t, bool g) { return row_loss(z, V, t, g); }
LORAFIT_VECTOR_CLONES float row_loss_bf16(bf16* z, int64_t V, int64_t t, bool g) { return row_loss(z, V, t, g); }

}  // namespace

bool cross_entropy_rows_supported(const at::Tensor& z) {
  const auto t = z.scalar_type();
  return !switched_off("LORAFIT_CE_KERNEL") && z.is_cpu() && (t == at::kFloat || t == at::kBFloat16) && z.dim() == 2 &&
         z.stride(1) == 1;
}

double cross_entropy_rows(const at::Tensor& z, const at::Tensor& targets, bool write_grad) {
  if (!cross_entropy_rows_supported(z) || targets.dim() != 1 || targets.size(0) != z.size(0) || targets.scalar_type() != at::kLong)
    throw Error("E_INTERNAL", "cross_entropy_rows: z [C, V] (CPU fp32/bf16, dense rows) and targets [C] int64 expected");
  const int64_t C = z.size(0), V = z.size(1), row = z.stride(0);
  at::Tensor t = targets.contiguous();
  const int64_t* tp = t.data_ptr<int64_t>();
  std::vector<double> losses(C);
  const bool b16 = z.scalar_type() == at::kBFloat16;
  float* zf = b16 ? nullptr : z.data_ptr<float>();
  bf16* zb = b16 ? z.data_ptr<bf16>() : nullptr;
  at::parallel_for(0, C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      losses[r] = b16 ? row_loss_bf16(zb + r * row, V, tp[r], write_grad) : row_loss_f32(zf + r * row, V, tp[r], write_grad);
  });
  double total = 0;
  for (double l : losses) total += l;
  return total;
}

}  // namespace lorafit
