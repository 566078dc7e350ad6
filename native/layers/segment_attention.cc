#include "layers/segment_attention.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "error.h"
#include "runtime.h"
#include "vec16.h"  // LORAFIT_VECTOR_CLONES, LORAFIT_INLINE

namespace lorafit {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kBlock = 32;  // score columns per register block
int64_t padded(int64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// The two products every task is made of, with head_dim kD known at compile time so that the
// accumulators live in vector registers (accumulating into memory instead chains each update to
// the last through a store and a load, which ran these loops 3-5x slower).
//
// s[0..len) = q . column j of Mt, for Mt [kD, ld] (a transposed [len, kD] block; ld >= padded(len)).
// Even and odd d accumulate apart: twice the independent FMA chains.
template <int kD>
LORAFIT_INLINE void row_times_columns(const float* __restrict q, const float* __restrict Mt, int64_t ld, int64_t len, float* __restrict s) {
  for (int64_t j0 = 0; j0 < len; j0 += kBlock) {
    float even[kBlock] = {}, odd[kBlock] = {};
    for (int d = 0; d < kD; d += 2) {
      const float q0 = q[d], q1 = q[d + 1];
      const float* m0 = Mt + d * ld + j0;
      const float* m1 = m0 + ld;
      for (int w = 0; w < kBlock; ++w) {
        even[w] += q0 * m0[w];
        odd[w] += q1 * m1[w];
      }
    }
    const int64_t width = std::min(kBlock, len - j0);
    for (int64_t w = 0; w < width; ++w) s[j0 + w] = even[w] + odd[w];
  }
}

// y[0..kD) = sum_r a[r] X[r], for rows X[r] = X + r ld.
template <int kD>
LORAFIT_INLINE void combine_rows(const float* __restrict a, const float* __restrict X, int64_t ld, int64_t rows, float* __restrict y) {
  float acc[kD] = {};
  for (int64_t r = 0; r < rows; ++r) {
    const float ar = a[r];
    const float* x = X + r * ld;
    for (int d = 0; d < kD; ++d) acc[d] += ar * x[d];
  }
  for (int d = 0; d < kD; ++d) y[d] = acc[d];
}

// One (segment, query head) forward, all fp32. Q, V: [n, kD]; Kt: [kD, ld] (K transposed).
// -> P [n, n]: row i holds the softmax over keys 0..i (the rest is never written or read);
//    O [n, kD].
template <int kD>
LORAFIT_INLINE void forward_task(const float* Q, const float* Kt, int64_t ld, const float* V, int64_t n, float scale,
                                 float* P, float* O) {
  for (int64_t i = 0; i < n; ++i) {
    float* s = P + i * n;
    const int64_t len = i + 1;  // causal: keys 0..i
    row_times_columns<kD>(Q + i * kD, Kt, ld, len, s);
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < len; ++j) {
      s[j] *= scale;
      top = std::max(top, s[j]);
    }
    float sum = 0;
    for (int64_t j = 0; j < len; ++j) {
      s[j] = std::exp(s[j] - top);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < len; ++j) s[j] *= inv;
    combine_rows<kD>(s, V, kD, len, O + i * kD);
  }
}

// The same task backward. Q, K, dO: [n, kD]; Vt: [kD, ld]; P from forward_task.
//   dP = dO V^T; dS = P (dP - rowsum(P dP)) scale; dQ = dS K; dK = dS^T Q; dV = P^T dO
// -> dQ, dK, dV: [n, kD] of this query head. dS: [n, n] and cols: [2 n] scratch.
template <int kD>
LORAFIT_INLINE void backward_task(const float* Q, const float* K, const float* Vt, int64_t ld, const float* dO, const float* P, int64_t n,
                                  float scale, float* dQ, float* dK, float* dV, float* dS, float* cols) {
  for (int64_t i = 0; i < n; ++i) {
    const float* p = P + i * n;
    float* ds = dS + i * n;
    const int64_t len = i + 1;
    row_times_columns<kD>(dO + i * kD, Vt, ld, len, ds);
    float dot = 0;
    for (int64_t j = 0; j < len; ++j) dot += p[j] * ds[j];
    for (int64_t j = 0; j < len; ++j) ds[j] = p[j] * (ds[j] - dot) * scale;
    combine_rows<kD>(ds, K, kD, len, dQ + i * kD);
  }
  // Key j is seen by queries j..n-1: its gradients combine column j of dS and of P.
  float *s_col = cols, *p_col = cols + n;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = j; i < n; ++i) {
      s_col[i - j] = dS[i * n + j];
      p_col[i - j] = P[i * n + j];
    }
    combine_rows<kD>(s_col, Q + j * kD, kD, n - j, dK + j * kD);
    combine_rows<kD>(p_col, dO + j * kD, kD, n - j, dV + j * kD);
  }
}

// The kernels for the head sizes of the models lorafit loads, each compiled for AVX-512, AVX2 and
// plain x86-64 (LORAFIT_VECTOR_CLONES).
#define LORAFIT_HEAD_DIM_KERNELS(D)                                                                                      \
  LORAFIT_VECTOR_CLONES void forward_##D(const float* Q, const float* Kt, int64_t ld, const float* V, int64_t n,       \
                                         float scale, float* P, float* O) {                              \
    forward_task<D>(Q, Kt, ld, V, n, scale, P, O);                                                               \
  }                                                                                                                      \
  LORAFIT_VECTOR_CLONES void backward_##D(const float* Q, const float* K, const float* Vt, int64_t ld, const float* dO, \
                                          const float* P, int64_t n, float scale, float* dQ, float* dK,    \
                                          float* dV, float* dS, float* cols) {                                           \
    backward_task<D>(Q, K, Vt, ld, dO, P, n, scale,  dQ, dK, dV, dS, cols);                                    \
  }
LORAFIT_HEAD_DIM_KERNELS(16)
LORAFIT_HEAD_DIM_KERNELS(32)
LORAFIT_HEAD_DIM_KERNELS(64)
LORAFIT_HEAD_DIM_KERNELS(128)
LORAFIT_HEAD_DIM_KERNELS(256)
#undef LORAFIT_HEAD_DIM_KERNELS

using ForwardKernel = void (*)(const float*, const float*, int64_t, const float*, int64_t, float, float*, float*);
using BackwardKernel = void (*)(const float*, const float*, const float*, int64_t, const float*, const float*, int64_t, float, float*,
                                float*, float*, float*, float*);

ForwardKernel forward_kernel(int64_t D) {
  switch (D) {
    case 16: return forward_16;
    case 32: return forward_32;
    case 64: return forward_64;
    case 128: return forward_128;
    case 256: return forward_256;
    default: return nullptr;
  }
}

BackwardKernel backward_kernel(int64_t D) {
  switch (D) {
    case 16: return backward_16;
    case 32: return backward_32;
    case 64: return backward_64;
    case 128: return backward_128;
    case 256: return backward_256;
    default: return nullptr;
  }
}

// Rows t0..t0+n of one head of a [.., T, D] tensor (row stride `stride`) as fp32 [n, D] or [D, ld].
template <typename T>
void load_rows(const T* rows, int64_t stride, int64_t n, int64_t D, float* out) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t d = 0; d < D; ++d) out[t * D + d] = static_cast<float>(rows[t * stride + d]);
}
template <typename T>
void load_transposed(const T* rows, int64_t stride, int64_t n, int64_t D, int64_t ld, float* out) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t d = 0; d < D; ++d) out[d * ld + t] = static_cast<float>(rows[t * stride + d]);
}

struct Task {
  int64_t start, len, head;
  int64_t probs;  // offset of this task's [len, len] block in the probabilities buffer
};

// The (segment, query head) tasks in one list per thread, each task to the least loaded list,
// longest first (a static split of the ordered tasks would give one thread the long segments).
std::vector<std::vector<Task>> balance(const std::vector<int64_t>& segments, int64_t heads) {
  std::vector<Task> tasks;
  int64_t start = 0, probs = 0;
  for (int64_t len : segments) {
    for (int64_t h = 0; h < heads; ++h) tasks.push_back({start, len, h, probs + h * len * len});
    start += len;
    probs += heads * len * len;
  }
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.len > b.len; });
  const auto bins = static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tasks.size())));
  std::vector<std::vector<Task>> out(bins);
  std::vector<int64_t> load(bins, 0);
  for (const Task& t : tasks) {
    const size_t b = std::min_element(load.begin(), load.end()) - load.begin();
    out[b].push_back(t);
    load[b] += t.len * t.len;
  }
  return out;
}

int64_t max_len(const std::vector<int64_t>& segments) { return *std::max_element(segments.begin(), segments.end()); }

// q: [1, H, T, D]; k, v: [1, KV, T, D] -> out [1, T, H, D]; probs: the fp32 softmax of every task.
at::Tensor attention_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::vector<int64_t>& segments,
                             double scale, at::Tensor& probs) {
  const int64_t H = q.size(1), T = q.size(2), D = q.size(3), group = H / k.size(1);
  int64_t total = 0;
  for (int64_t len : segments) total += H * len * len;
  probs = at::empty({total}, q.options().dtype(at::kFloat));
  at::Tensor out = at::empty({1, T, H, D}, q.options());
  const auto bins = balance(segments, H);
  const int64_t longest = max_len(segments), scratch = longest * D, ld_max = padded(longest);
  const ForwardKernel kernel = forward_kernel(D);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q.scalar_type(), "lorafit_segment_attention", [&] {
    const scalar_t *qp = q.data_ptr<scalar_t>(), *kp = k.data_ptr<scalar_t>(), *vp = v.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    float* pp = probs.data_ptr<float>();
    at::parallel_for(0, static_cast<int64_t>(bins.size()), 1, [&](int64_t begin, int64_t end) {
      // Kt's padding columns (a register block is kBlock wide) are read, never used: finite values.
      std::vector<float> Q(scratch), Kt(D * ld_max, 0.0f), V(scratch), O(scratch);
      for (int64_t b = begin; b < end; ++b)
        for (const Task& t : bins[b]) {
          const int64_t kv = t.head / group;
          load_rows(qp + t.head * q.stride(1) + t.start * q.stride(2), q.stride(2), t.len, D, Q.data());
          const int64_t ld = padded(t.len);
          load_transposed(kp + kv * k.stride(1) + t.start * k.stride(2), k.stride(2), t.len, D, ld, Kt.data());
          load_rows(vp + kv * v.stride(1) + t.start * v.stride(2), v.stride(2), t.len, D, V.data());
          kernel(Q.data(), Kt.data(), ld, V.data(), t.len, static_cast<float>(scale), pp + t.probs, O.data());
          for (int64_t i = 0; i < t.len; ++i) {
            scalar_t* row = op + ((t.start + i) * H + t.head) * D;
            for (int64_t d = 0; d < D; ++d) row[d] = static_cast<scalar_t>(O[i * D + d]);
          }
        }
    });
  });
  return out;
}

struct SegmentAttention : torch::autograd::Function<SegmentAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::vector<int64_t>& segments, double scale) {
    at::Tensor probs;
    at::Tensor out = attention_forward(q, k, v, segments, scale, probs);
    ctx->save_for_backward({q, k, v, probs});
    ctx->saved_data["segments"] = segments;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const std::vector<int64_t> segments = ctx->saved_data["segments"].toIntVector();
    const auto scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const int64_t H = q.size(1), KV = k.size(1), T = q.size(2), D = q.size(3), group = H / KV;
    at::Tensor dout = grad_outputs[0].to(q.scalar_type()).contiguous();  // [1, T, H, D]
    at::Tensor dq = at::empty({1, H, T, D}, q.options());
    // Per query head; the heads of a group are summed into their kv head below.
    at::Tensor dk_heads = at::empty({H, T, D}, q.options().dtype(at::kFloat));
    at::Tensor dv_heads = at::empty({H, T, D}, q.options().dtype(at::kFloat));
    const auto bins = balance(segments, H);
    const int64_t longest = max_len(segments), scratch = longest * D, ld_max = padded(longest);
    const BackwardKernel kernel = backward_kernel(D);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q.scalar_type(), "lorafit_segment_attention_backward", [&] {
      const scalar_t *qp = q.data_ptr<scalar_t>(), *kp = k.data_ptr<scalar_t>(), *vp = v.data_ptr<scalar_t>();
      const scalar_t* gp = dout.data_ptr<scalar_t>();
      scalar_t* dqp = dq.data_ptr<scalar_t>();
      float *dkp = dk_heads.data_ptr<float>(), *dvp = dv_heads.data_ptr<float>();
      const float* pp = probs.data_ptr<float>();
      at::parallel_for(0, static_cast<int64_t>(bins.size()), 1, [&](int64_t begin, int64_t end) {
        std::vector<float> Q(scratch), K(scratch), Vt(D * ld_max, 0.0f), dO(scratch), dQ(scratch), dS(longest * longest), cols(2 * longest);
        for (int64_t b = begin; b < end; ++b)
          for (const Task& t : bins[b]) {
            const int64_t kv = t.head / group;
            load_rows(qp + t.head * q.stride(1) + t.start * q.stride(2), q.stride(2), t.len, D, Q.data());
            load_rows(kp + kv * k.stride(1) + t.start * k.stride(2), k.stride(2), t.len, D, K.data());
            const int64_t ld = padded(t.len);
            load_transposed(vp + kv * v.stride(1) + t.start * v.stride(2), v.stride(2), t.len, D, ld, Vt.data());
            load_rows(gp + (t.start * H + t.head) * D, H * D, t.len, D, dO.data());
            float* dk = dkp + (t.head * T + t.start) * D;
            float* dv = dvp + (t.head * T + t.start) * D;
            kernel(Q.data(), K.data(), Vt.data(), ld, dO.data(), pp + t.probs, t.len, scale,  dQ.data(), dk, dv, dS.data(), cols.data());
            scalar_t* dq_rows = dqp + (t.head * T + t.start) * D;
            for (int64_t i = 0; i < t.len * D; ++i) dq_rows[i] = static_cast<scalar_t>(dQ[i]);
          }
      });
    });
    at::Tensor dk = dk_heads.view({1, KV, group, T, D}).sum(2).to(k.scalar_type());  // [1, KV, T, D]
    at::Tensor dv = dv_heads.view({1, KV, group, T, D}).sum(2).to(v.scalar_type());
    return {dq, dk, dv, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool segment_attention_supported(const at::Tensor& q) {
  const bool enabled = !switched_off("LORAFIT_SEGMENT_ATTENTION");
  const auto t = q.scalar_type();
  return enabled && q.is_cpu() && (t == at::kFloat || t == at::kBFloat16 || t == at::kHalf) && q.dim() == 4 &&
         forward_kernel(q.size(3)) != nullptr;
}

at::Tensor segment_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::vector<int64_t>& segments,
                             double scale) {
  int64_t total = 0;
  for (int64_t len : segments) total += len;
  if (q.dim() != 4 || q.size(0) != 1 || k.size(1) == 0 || q.size(1) % k.size(1) != 0 || total != q.size(2) ||
      k.sizes() != v.sizes() || k.size(2) != q.size(2) || k.size(3) != q.size(3) || segments.empty())
    throw Error("E_INTERNAL", "segment_attention: q [1, H, T, D], k/v [1, KV, T, D] and segments summing to T expected");
  // The kernels read rows with a stride; each row (head_dim) must be dense.
  auto dense_rows = [](const at::Tensor& x) { return x.stride(3) == 1 ? x : x.contiguous(); };
  return SegmentAttention::apply(dense_rows(q), dense_rows(k), dense_rows(v), segments, scale);
}

}  // namespace lorafit
