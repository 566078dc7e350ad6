#include "layers/blocked_attention.h"

#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "error.h"
#include "runtime.h"
#include "vec16.h"

namespace lorafit {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using bf16 = c10::BFloat16;
using vec16::kLanes;
using vec16::v16;

constexpr int64_t kRows = 32;  // queries per tile
constexpr int64_t kKeys = 64;  // keys per chunk (4 vectors of 16)

// ---- brgemm operands -------------------------------------------------------------------------
// C [M, N] (fp32, row stride ldc) (+)= A [M, K] B [K, N] through libtorch's exported oneDNN
// ukernel, on one thread. A is row-major (row stride lda). B is packed: row-major [K, N] for fp32,
// and for bf16 the VNNI layout [K/2, N, 2] (each pair of consecutive k side by side per n).
template <typename T>
void brgemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, float* C, int64_t ldc, bool add) {
  at::native::cpublas::brgemm(M, N, K, lda, N, ldc, add, A, B, C, /*is_vnni=*/std::is_same_v<T, bf16>);
}

// Index of element (k, n) of a packed [K, N] B operand.
template <typename T>
LORAFIT_INLINE int64_t packed_index(int64_t k, int64_t n, int64_t N) {
  if constexpr (std::is_same_v<T, float>) return k * N + n;
  else return ((k >> 1) * N + n) * 2 + (k & 1);
}

// out: the packed B operand [K, N] with element (k, n) = src(k, n).
template <typename T, typename F>
LORAFIT_INLINE void pack(T* out, int64_t K, int64_t N, F src) {
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) out[packed_index<T>(k, n, N)] = src(k, n);
}

// Whether the ukernel runs here for T (it throws on a CPU without the ISA oneDNN needs). Tried once.
template <typename T>
bool brgemm_runs() {
  static const bool ok = [] {
    try {
      std::vector<T> a(2 * 2, T(1)), b(2 * 2, T(1));
      std::vector<float> c(2 * 2);
      brgemm<T>(2, 2, 2, a.data(), 2, b.data(), c.data(), 2, false);
      at::native::cpublas::brgemm_release(std::is_same_v<T, bf16>);
      return c[0] == 2.0f;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return ok;
}

// ---- geometry --------------------------------------------------------------------------------
// A tile: kRows queries (from i0) of one query head of one segment. It reads key chunks 0..chunks-1.
struct Tile {
  int64_t seg, s0, n, head, i0;
  int64_t rows() const { return std::min(kRows, n - i0); }
  int64_t chunks() const { return (i0 + rows() + kKeys - 1) / kKeys; }
};

int64_t chunks_of(int64_t n) { return (n + kKeys - 1) / kKeys; }

// The tiles in one list per thread, each to the least loaded list, the longest first.
std::vector<std::vector<Tile>> balance_tiles(const std::vector<int64_t>& segments, int64_t heads) {
  std::vector<Tile> tiles;
  int64_t s0 = 0;
  for (size_t s = 0; s < segments.size(); ++s) {
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i0 = 0; i0 < segments[s]; i0 += kRows) tiles.push_back({static_cast<int64_t>(s), s0, segments[s], h, i0});
    s0 += segments[s];
  }
  std::stable_sort(tiles.begin(), tiles.end(), [](const Tile& a, const Tile& b) { return a.chunks() > b.chunks(); });
  const auto bins = static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tiles.size())));
  std::vector<std::vector<Tile>> out(bins);
  std::vector<int64_t> load(bins, 0);
  for (const Tile& t : tiles) {
    const size_t b = std::min_element(load.begin(), load.end()) - load.begin();
    out[b].push_back(t);
    load[b] += t.chunks();
  }
  return out;
}

// The key chunks of every (segment, kv head) as packed B operands, zero past each segment's end.
// kind kTransposed: chunk c is [D, kKeys] with (d, j) = rows[64 c + j][d] (for Q K^T, dO V^T);
// kind kRowMajor: chunk c is [kKeys, D] with (j, d) = rows[64 c + j][d] (for P V, dS K).
enum class Layout { kTransposed, kRowMajor };
template <typename T>
struct PackedChunks {
  std::vector<T> data;
  std::vector<int64_t> first;  // per segment: its first chunk's index
  int64_t total = 0, D = 0;
  const T* chunk(int64_t seg, int64_t kv, int64_t c) const { return data.data() + ((kv * total) + first[seg] + c) * D * kKeys; }
};

// x: [KV, T, D] rows of type T (row stride D), the keys or values.
template <typename T>
PackedChunks<T> pack_chunks(const T* x, int64_t KV, int64_t T_, int64_t D, const std::vector<int64_t>& segments, Layout layout) {
  PackedChunks<T> p;
  p.D = D;
  for (int64_t n : segments) {
    p.first.push_back(p.total);
    p.total += chunks_of(n);
  }
  p.data.resize(KV * p.total * D * kKeys);
  std::vector<int64_t> starts;  // token offset of each segment
  int64_t s0 = 0;
  for (int64_t n : segments) {
    starts.push_back(s0);
    s0 += n;
  }
  at::parallel_for(0, KV * p.total, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t kv = item / p.total, global = item % p.total;
      const int64_t seg = std::upper_bound(p.first.begin(), p.first.end(), global) - p.first.begin() - 1;
      const int64_t c = global - p.first[seg], j0 = c * kKeys, n = segments[seg];
      const T* rows = x + (kv * T_ + starts[seg] + j0) * D;
      T* out = p.data.data() + item * D * kKeys;
      const int64_t valid = std::min(kKeys, n - j0);
      if (layout == Layout::kTransposed)
        pack(out, D, kKeys, [&](int64_t d, int64_t j) { return j < valid ? rows[j * D + d] : T(0); });
      else
        pack(out, kKeys, D, [&](int64_t j, int64_t d) { return j < valid ? rows[j * D + d] : T(0); });
    }
  });
  return p;
}

// ---- row operations (vectorized over a chunk's 64 keys) ----------------------------------------
// Scores s[0..64) of a query that sees keys < limit (limit <= 64 here; negative: none): x = scale s,
// -inf where masked. Returns max x.
LORAFIT_INLINE float masked_scaled(const float* s, int64_t limit, float scale, float* x) {
  const vec16::i32x16 lanes = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const auto lim = static_cast<int32_t>(std::clamp<int64_t>(limit, -1, kKeys));
  const v16 none = v16{} - __builtin_inff();
  v16 mv = none;
  for (int64_t j = 0; j < kKeys; j += kLanes) {
    const v16 val = (lanes + static_cast<int32_t>(j)) < lim ? vec16::load16(s + j) * scale : none;
    vec16::store16(x + j, val);
    mv = val > mv ? val : mv;
  }
  return vec16::max16(mv);
}

// One forward chunk of one query row: online softmax (flash attention's rescaling).
// s: the chunk's raw scores; m, l: the row's running max and sum; o: its fp32 output accumulator
// [D]; p: the chunk's probabilities (T, unnormalized exp(x - m)) as the A operand of P V.
template <typename T>
LORAFIT_INLINE void forward_row(const float* s, int64_t limit, float scale, float& m, float& l, float* o, int64_t D, T* p) {
  float x[kKeys];
  const float cmax = masked_scaled(s, limit, scale, x);
  const float m_new = std::max(m, cmax);
  if (m_new == -__builtin_inff()) {  // nothing seen yet
    for (int64_t j = 0; j < kKeys; ++j) p[j] = T(0);
    return;
  }
  const float alpha = std::exp(m - m_new);  // 0 on the first chunk with a key (m = -inf)
  v16 sum{};
  for (int64_t j = 0; j < kKeys; j += kLanes) {
    const v16 e = vec16::exp16(vec16::load16(x + j) - m_new);  // exp(-inf) = 0
    sum += e;
    vec16::store16(p + j, e);
  }
  if (alpha != 1.0f)
    for (int64_t d = 0; d < D; ++d) o[d] *= alpha;
  l = l * alpha + vec16::sum16(sum);
  m = m_new;
}

// One backward chunk of one query row: s := P = exp(scale s - lse) (0 where masked); dp := dS =
// P (dp - delta). ds_row: dS as T, row r of [kRows, kKeys] (for dS K); pt_col, dst_col: P and dS
// as T, column r of the transposed [kKeys, kRows] copies (for P^T dO, dS^T Q).
template <typename T>
LORAFIT_INLINE void backward_row(const float* s, const float* dp, int64_t limit, float scale, float lse, float delta,
                                        T* ds_row, T* pt_col, T* dst_col) {
  float x[kKeys];
  masked_scaled(s, limit, scale, x);
  float pv[kKeys], dsv[kKeys];
  for (int64_t j = 0; j < kKeys; j += kLanes) {
    const v16 p = vec16::exp16(vec16::load16(x + j) - lse);
    vec16::store16(pv + j, p);
    vec16::store16(dsv + j, p * (vec16::load16(dp + j) - delta));
  }
  T pr[kKeys];  // rounded once here, then moved into the transposed copies
  for (int64_t j = 0; j < kKeys; j += kLanes) {
    vec16::store16(ds_row + j, vec16::load16(dsv + j));
    vec16::store16(pr + j, vec16::load16(pv + j));
  }
  for (int64_t j = 0; j < kKeys; ++j) {
    pt_col[j * kRows] = pr[j];
    dst_col[j * kRows] = ds_row[j];
  }
}

// A chunk's kRows rows (row r sees keys < first_limit + r of the chunk; rows >= rows are padding),
// one function per dtype, each compiled for AVX-512, AVX2 and plain x86-64 (LORAFIT_VECTOR_CLONES).
#define LORAFIT_ROW_KERNELS(T)                                                                                          \
  LORAFIT_VECTOR_CLONES void forward_rows(const float* s, int64_t rows, int64_t first_limit, float scale, float* m, float* l,   \
                                          float* o, int64_t D, T* p) {                                                 \
    for (int64_t r = 0; r < kRows; ++r)                                                                                 \
      forward_row<T>(s + r * kKeys, r < rows ? first_limit + r : -1, scale, m[r], l[r], o + r * D, D, p + r * kKeys);   \
  }                                                                                                                     \
  LORAFIT_VECTOR_CLONES void backward_rows(const float* s, const float* dp, int64_t rows, int64_t first_limit, float scale,     \
                                           const float* lse, const float* delta, T* ds, T* pt, T* dst) {                \
    for (int64_t r = 0; r < kRows; ++r)                                                                                 \
      backward_row<T>(s + r * kKeys, dp + r * kKeys, r < rows ? first_limit + r : -1, scale, lse[r], delta[r], ds + r * kKeys, \
                      pt + r, dst + r);                                                                                 \
  }
LORAFIT_ROW_KERNELS(float)
LORAFIT_ROW_KERNELS(bf16)
#undef LORAFIT_ROW_KERNELS

// ---- forward ---------------------------------------------------------------------------------
// q: [H, T, D]; k, v: [KV, T, D], contiguous T -> out [T, H, D] (T), lse [H, T] fp32.
template <typename T>
void forward_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::vector<int64_t>& segments, float scale,
                    const at::Tensor& out, const at::Tensor& lse) {
  const int64_t H = q.size(0), T_ = q.size(1), D = q.size(2), KV = k.size(0), G = H / KV;
  const T *qp = q.data_ptr<T>(), *kp = k.data_ptr<T>(), *vp = v.data_ptr<T>();
  T* op = out.data_ptr<T>();
  float* lp = lse.data_ptr<float>();
  const PackedChunks<T> kt = pack_chunks(kp, KV, T_, D, segments, Layout::kTransposed);
  const PackedChunks<T> vr = pack_chunks(vp, KV, T_, D, segments, Layout::kRowMajor);
  const auto bins = balance_tiles(segments, H);
  at::parallel_for(0, static_cast<int64_t>(bins.size()), 1, [&](int64_t begin, int64_t end) {
    std::vector<T> qa(kRows * D), pa(kRows * kKeys);
    std::vector<float> s(kRows * kKeys), o(kRows * D), m(kRows), l(kRows);
    for (int64_t b = begin; b < end; ++b)
      for (const Tile& t : bins[b]) {
        const int64_t rows = t.rows(), kv = t.head / G;
        const T* qrows = qp + (t.head * T_ + t.s0 + t.i0) * D;
        std::copy(qrows, qrows + rows * D, qa.begin());
        std::fill(qa.begin() + rows * D, qa.end(), T(0));
        std::fill(o.begin(), o.end(), 0.0f);
        std::fill(m.begin(), m.end(), -__builtin_inff());
        std::fill(l.begin(), l.end(), 0.0f);
        for (int64_t c = 0; c < t.chunks(); ++c) {
          brgemm<T>(kRows, kKeys, D, qa.data(), D, kt.chunk(t.seg, kv, c), s.data(), kKeys, false);  // S = Q K^T [32, 64]
          // row r sees keys j <= i0 + r: of this chunk's, those below i0 + r + 1 - 64 c
          forward_rows(s.data(), rows, t.i0 + 1 - c * kKeys, scale, m.data(), l.data(), o.data(), D, pa.data());
          brgemm<T>(kRows, D, kKeys, pa.data(), kKeys, vr.chunk(t.seg, kv, c), o.data(), D, true);  // O += P V
        }
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t token = t.s0 + t.i0 + r;
          T* orow = op + (token * H + t.head) * D;
          for (int64_t d = 0; d < D; ++d) orow[d] = static_cast<T>(o[r * D + d] / l[r]);
          lp[t.head * T_ + token] = m[r] + std::log(l[r]);
        }
      }
    at::native::cpublas::brgemm_release(std::is_same_v<T, bf16>);
  });
}

// ---- backward --------------------------------------------------------------------------------
// As forward_kernel's, with dO and O [T, H, D] (T) -> dq [H, T, D], dk, dv [KV, T, D] (fp32).
template <typename T>
void backward_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& dout, const at::Tensor& out,
                     const at::Tensor& lse, const std::vector<int64_t>& segments, float scale, const at::Tensor& dq, const at::Tensor& dk,
                     const at::Tensor& dv) {
  const int64_t H = q.size(0), T_ = q.size(1), D = q.size(2), KV = k.size(0), G = H / KV;
  const T *qp = q.data_ptr<T>(), *kp = k.data_ptr<T>(), *vp = v.data_ptr<T>(), *gp = dout.data_ptr<T>(), *op = out.data_ptr<T>();
  const float* lp = lse.data_ptr<float>();
  float* dqp = dq.data_ptr<float>();
  const PackedChunks<T> kt = pack_chunks(kp, KV, T_, D, segments, Layout::kTransposed);  // for S = Q K^T
  const PackedChunks<T> vt = pack_chunks(vp, KV, T_, D, segments, Layout::kTransposed);  // for dP = dO V^T
  const PackedChunks<T> kr = pack_chunks(kp, KV, T_, D, segments, Layout::kRowMajor);    // for dQ = dS K
  const auto bins = balance_tiles(segments, H);
  // Each thread sums its tiles' dK and dV per chunk ([KV, chunks, 64, D]); the threads' sums are added after.
  const int64_t acc_size = KV * kt.total * kKeys * D;
  std::vector<std::vector<float>> dk_acc(bins.size()), dv_acc(bins.size());
  at::parallel_for(0, static_cast<int64_t>(bins.size()), 1, [&](int64_t begin, int64_t end) {
    std::vector<T> qa(kRows * D), ga(kRows * D), qb(kRows * D), gb(kRows * D), ds(kRows * kKeys), pt(kKeys * kRows), dst(kKeys * kRows);
    std::vector<float> s(kRows * kKeys), dp(kRows * kKeys), dqa(kRows * D), delta(kRows), row_lse(kRows);
    for (int64_t b = begin; b < end; ++b) {
      std::vector<float>& dka = dk_acc[b];
      std::vector<float>& dva = dv_acc[b];
      dka.assign(acc_size, 0.0f);
      dva.assign(acc_size, 0.0f);
      for (const Tile& t : bins[b]) {
        const int64_t rows = t.rows(), kv = t.head / G;
        const T* qrows = qp + (t.head * T_ + t.s0 + t.i0) * D;
        std::copy(qrows, qrows + rows * D, qa.begin());
        std::fill(qa.begin() + rows * D, qa.end(), T(0));
        for (int64_t r = 0; r < kRows; ++r) {
          const int64_t token = t.s0 + t.i0 + r;
          float dot = 0;
          for (int64_t d = 0; d < D; ++d) {
            const T g = r < rows ? gp[(token * H + t.head) * D + d] : T(0);
            ga[r * D + d] = g;
            if (r < rows) dot += static_cast<float>(g) * static_cast<float>(op[(token * H + t.head) * D + d]);
          }
          delta[r] = dot;
          row_lse[r] = r < rows ? lp[t.head * T_ + token] : 0.0f;
        }
        pack(qb.data(), kRows, D, [&](int64_t r, int64_t d) { return qa[r * D + d]; });  // B operands [32, D]
        pack(gb.data(), kRows, D, [&](int64_t r, int64_t d) { return ga[r * D + d]; });
        for (int64_t c = 0; c < t.chunks(); ++c) {
          brgemm<T>(kRows, kKeys, D, qa.data(), D, kt.chunk(t.seg, kv, c), s.data(), kKeys, false);   // S = Q K^T
          brgemm<T>(kRows, kKeys, D, ga.data(), D, vt.chunk(t.seg, kv, c), dp.data(), kKeys, false);  // dP = dO V^T
          backward_rows(s.data(), dp.data(), rows, t.i0 + 1 - c * kKeys, scale, row_lse.data(), delta.data(), ds.data(), pt.data(), dst.data());
          brgemm<T>(kRows, D, kKeys, ds.data(), kKeys, kr.chunk(t.seg, kv, c), dqa.data(), D, c > 0);  // dQ += dS K
          float* dk_chunk = dka.data() + ((kv * kt.total) + kt.first[t.seg] + c) * kKeys * D;
          float* dv_chunk = dva.data() + ((kv * kt.total) + kt.first[t.seg] + c) * kKeys * D;
          brgemm<T>(kKeys, D, kRows, dst.data(), kRows, qb.data(), dk_chunk, D, true);  // dK += dS^T Q
          brgemm<T>(kKeys, D, kRows, pt.data(), kRows, gb.data(), dv_chunk, D, true);   // dV += P^T dO
        }
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t d = 0; d < D; ++d) dqp[(t.head * T_ + t.s0 + t.i0 + r) * D + d] = dqa[r * D + d] * scale;
      }
    }
    at::native::cpublas::brgemm_release(std::is_same_v<T, bf16>);
  });
  // The chunks back to tokens: dk[kv, s0 + j] = scale * sum over threads of chunk row j.
  float *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
  int64_t s0 = 0;
  for (size_t seg = 0; seg < segments.size(); ++seg) {
    const int64_t n = segments[seg];
    for (int64_t kv = 0; kv < KV; ++kv) {
      const int64_t base = ((kv * kt.total) + kt.first[seg]) * kKeys * D;
      float *dk_rows = dkp + (kv * T_ + s0) * D, *dv_rows = dvp + (kv * T_ + s0) * D;
      for (int64_t i = 0; i < n * D; ++i) {
        float a = 0, bsum = 0;
        for (size_t b = 0; b < bins.size(); ++b) {
          a += dk_acc[b][base + i];
          bsum += dv_acc[b][base + i];
        }
        dk_rows[i] = a * scale;
        dv_rows[i] = bsum;
      }
    }
    s0 += n;
  }
}

// The kernels' dtype: bf16 as it is, fp32 and fp16 in fp32 (the ukernel's fp16 form needs AVX512-FP16).
at::ScalarType compute_type(const at::Tensor& q) { return q.scalar_type() == at::kBFloat16 ? at::kBFloat16 : at::kFloat; }

struct BlockedAttention : torch::autograd::Function<BlockedAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::vector<int64_t>& segments, double scale) {
    RECORD_FUNCTION("lorafit::blocked_attention", std::vector<c10::IValue>({q, k}));
    const auto ct = compute_type(q);
    const at::Tensor qc = q[0].to(ct).contiguous(), kc = k[0].to(ct).contiguous(), vc = v[0].to(ct).contiguous();  // [H|KV, T, D]
    const int64_t H = q.size(1), T = q.size(2), D = q.size(3);
    at::Tensor out = at::empty({T, H, D}, qc.options());
    at::Tensor lse = at::empty({H, T}, qc.options().dtype(at::kFloat));
    if (ct == at::kBFloat16) forward_kernel<bf16>(qc, kc, vc, segments, static_cast<float>(scale), out, lse);
    else forward_kernel<float>(qc, kc, vc, segments, static_cast<float>(scale), out, lse);
    out = out.to(q.scalar_type()).unsqueeze(0);  // [1, T, H, D]
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["segments"] = segments;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    RECORD_FUNCTION("lorafit::blocked_attention_backward", std::vector<c10::IValue>());
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const std::vector<int64_t> segments = ctx->saved_data["segments"].toIntVector();
    const auto scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const auto ct = compute_type(q);
    const at::Tensor qc = q[0].to(ct).contiguous(), kc = k[0].to(ct).contiguous(), vc = v[0].to(ct).contiguous();
    const at::Tensor dc = grad_outputs[0][0].to(ct).contiguous(), oc = out[0].to(ct).contiguous();  // [T, H, D]
    const auto f32 = q.options().dtype(at::kFloat);
    at::Tensor dq = at::empty(qc.sizes(), f32), dk = at::empty(kc.sizes(), f32), dv = at::empty(vc.sizes(), f32);
    if (ct == at::kBFloat16) backward_kernel<bf16>(qc, kc, vc, dc, oc, lse, segments, scale, dq, dk, dv);
    else backward_kernel<float>(qc, kc, vc, dc, oc, lse, segments, scale, dq, dk, dv);
    return {dq.to(q.scalar_type()).unsqueeze(0), dk.to(k.scalar_type()).unsqueeze(0), dv.to(v.scalar_type()).unsqueeze(0), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

bool blocked_attention_supported(const at::Tensor& q) {
  const auto t = q.scalar_type();
  if (switched_off("LORAFIT_BLOCKED_ATTENTION") || !q.is_cpu() || q.dim() != 4 || !(t == at::kFloat || t == at::kBFloat16 || t == at::kHalf))
    return false;
  return compute_type(q) == at::kBFloat16 ? q.size(3) % 2 == 0 && brgemm_runs<bf16>() : brgemm_runs<float>();
}

at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::vector<int64_t>& segments,
                             double scale) {
  int64_t total = 0;
  for (int64_t len : segments) total += len;
  if (q.dim() != 4 || q.size(0) != 1 || k.size(1) == 0 || q.size(1) % k.size(1) != 0 || total != q.size(2) ||
      k.sizes() != v.sizes() || k.size(2) != q.size(2) || k.size(3) != q.size(3) || segments.empty() ||
      std::any_of(segments.begin(), segments.end(), [](int64_t n) { return n <= 0; }))
    throw Error("E_INTERNAL", "blocked_attention: q [1, H, T, D], k/v [1, KV, T, D] and positive segments summing to T expected");
  return BlockedAttention::apply(q, k, v, segments, scale);
}

}  // namespace lorafit
