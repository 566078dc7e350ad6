#include "small_gemm.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "error.h"
#include "vec16.h"

namespace lorafit {

namespace {

using namespace vec16;

constexpr int kRows = 4;    // output rows per register tile
constexpr int kCols = 64;   // output columns per register tile (add_small_k, transposed_times)

// C[m, j] = alpha * sum_k x[m, k] w[j, k] for rows m of [m0, m1). Register tiles of kRows rows
// of x by four rows of w, each pair a 16-lane accumulator over k: per 16 k, kRows + 4 loads feed
// 4 kRows FMAs (one row of x against four of w was 5 loads per 4, and ran at half the speed).
// xf: kRows * K floats, the tile's rows of x in fp32.
template <typename T>
LORAFIT_INLINE void rows_dot_rows_kernel(const T* x, int64_t x_row, const float* w, int64_t w_row, int64_t R, int64_t K, float alpha,
                                         float* c, int64_t c_row, int64_t m0, int64_t m1, float* xf) {
  constexpr int kW = 4;  // rows of w per tile
  const int64_t k_vec = K / kLanes * kLanes;
  for (int64_t mb = m0; mb < m1; mb += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, m1 - mb));
    const float* xr[kRows];
    for (int t = 0; t < kRows; ++t) {
      xr[t] = xf + std::min(t, rows - 1) * K;  // past m1: a repeat of the last row, not stored
      if (t >= rows) continue;
      const T* src = x + (mb + t) * x_row;
      float* dst = xf + t * K;
      for (int64_t k = 0; k < k_vec; k += kLanes) store16(dst + k, load16(src + k));
      for (int64_t k = k_vec; k < K; ++k) dst[k] = static_cast<float>(src[k]);
    }
    for (int64_t j0 = 0; j0 < R; j0 += kW) {
      const float* wr[kW];
      for (int u = 0; u < kW; ++u) wr[u] = w + std::min<int64_t>(j0 + u, R - 1) * w_row;  // past R: repeats, not stored
      v16 acc[kRows][kW] = {};
      for (int64_t k = 0; k < k_vec; k += kLanes) {
        v16 wv[kW];
#pragma GCC unroll 4
        for (int u = 0; u < kW; ++u) wv[u] = load16(wr[u] + k);
#pragma GCC unroll 4
        for (int t = 0; t < kRows; ++t) {
          const v16 xv = load16(xr[t] + k);
#pragma GCC unroll 4
          for (int u = 0; u < kW; ++u) acc[t][u] += xv * wv[u];
        }
      }
      for (int t = 0; t < rows; ++t)
        for (int u = 0; u < kW && j0 + u < R; ++u) {
          float sum = sum16(acc[t][u]);
          for (int64_t k = k_vec; k < K; ++k) sum += xr[t][k] * wr[u][k];
          c[(mb + t) * c_row + j0 + u] = alpha * sum;
        }
    }
  }
}

// One register tile of C = alpha * A B (+ C): rows m0..m0+kRows (clamped to M), columns
// n0..n0+16 kNv. A(m, k) = a[m a_row + k a_col].
template <int kNv, typename TB, typename TC>
LORAFIT_INLINE void tile(const float* a, int64_t a_row, int64_t a_col, const TB* b, int64_t b_row, TC* c, int64_t c_row, int64_t M,
                         int64_t K, float alpha, bool accumulate, int64_t m0, int64_t n0) {
  const float* ar[kRows];
  for (int t = 0; t < kRows; ++t) ar[t] = a + std::min<int64_t>(m0 + t, M - 1) * a_row;  // past M: a repeat, not stored
  v16 acc[kRows][kNv] = {};
  for (int64_t k = 0; k < K; ++k) {
    v16 bk[kNv];
    const TB* br = b + k * b_row + n0;
#pragma GCC unroll 4
    for (int v = 0; v < kNv; ++v) bk[v] = load16(br + v * kLanes);
#pragma GCC unroll 4
    for (int t = 0; t < kRows; ++t) {
      const float at = ar[t][k * a_col];
#pragma GCC unroll 4
      for (int v = 0; v < kNv; ++v) acc[t][v] += at * bk[v];
    }
  }
  for (int t = 0; t < kRows && m0 + t < M; ++t) {
    TC* cr = c + (m0 + t) * c_row + n0;
    for (int v = 0; v < kNv; ++v) {
      const v16 sum = alpha * acc[t][v];
      store16(cr + v * kLanes, accumulate ? load16(cr + v * kLanes) + sum : sum);
    }
  }
}

// The last columns (fewer than 16) of a tile, one at a time.
template <typename TB, typename TC>
LORAFIT_INLINE void column(const float* a, int64_t a_row, int64_t a_col, const TB* b, int64_t b_row, TC* c, int64_t c_row, int64_t M,
                           int64_t K, float alpha, bool accumulate, int64_t m0, int64_t n) {
  for (int64_t m = m0; m < std::min<int64_t>(m0 + kRows, M); ++m) {
    float sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += a[m * a_row + k * a_col] * static_cast<float>(b[k * b_row + n]);
    TC& out = c[m * c_row + n];
    out = static_cast<TC>((accumulate ? static_cast<float>(out) : 0.0f) + alpha * sum);
  }
}

// The tiles of row block m0 and column chunk n0..n0+kCols (the last chunk may be narrower).
template <typename TB, typename TC>
LORAFIT_INLINE void chunk(const float* a, int64_t a_row, int64_t a_col, const TB* b, int64_t b_row, TC* c, int64_t c_row, int64_t M,
                          int64_t N, int64_t K, float alpha, bool accumulate, int64_t m0, int64_t n0) {
  const int64_t end = std::min<int64_t>(n0 + kCols, N);
  int64_t n = n0;
  if (end - n == kCols) {
    tile<kCols / kLanes>(a, a_row, a_col, b, b_row, c, c_row, M, K, alpha, accumulate, m0, n);
    return;
  }
  for (; n + kLanes <= end; n += kLanes) tile<1>(a, a_row, a_col, b, b_row, c, c_row, M, K, alpha, accumulate, m0, n);
  for (; n < end; ++n) column(a, a_row, a_col, b, b_row, c, c_row, M, K, alpha, accumulate, m0, n);
}

// Non-template entry points, so that each can carry its vector clones.
#define LORAFIT_ROWS_DOT_ROWS(NAME, T)                                                                                     \
  LORAFIT_VECTOR_CLONES void NAME(const T* x, int64_t x_row, const float* w, int64_t w_row, int64_t R, int64_t K, float alpha, \
                                  float* c, int64_t c_row, int64_t m0, int64_t m1, float* xf) {                           \
    rows_dot_rows_kernel(x, x_row, w, w_row, R, K, alpha, c, c_row, m0, m1, xf);                                          \
  }
LORAFIT_ROWS_DOT_ROWS(rows_dot_rows_f32, float)
LORAFIT_ROWS_DOT_ROWS(rows_dot_rows_bf16, bf16)
#undef LORAFIT_ROWS_DOT_ROWS

#define LORAFIT_CHUNK(NAME, TB, TC)                                                                                        \
  LORAFIT_VECTOR_CLONES void NAME(const float* a, int64_t a_row, int64_t a_col, const TB* b, int64_t b_row, TC* c,          \
                                  int64_t c_row, int64_t M, int64_t N, int64_t K, float alpha, bool accumulate, int64_t m0, \
                                  int64_t n0) {                                                                             \
    chunk(a, a_row, a_col, b, b_row, c, c_row, M, N, K, alpha, accumulate, m0, n0);                                         \
  }
LORAFIT_CHUNK(chunk_f32_f32, float, float)
LORAFIT_CHUNK(chunk_f32_bf16, float, bf16)
LORAFIT_CHUNK(chunk_bf16_f32, bf16, float)
LORAFIT_CHUNK(chunk_bf16_bf16, bf16, bf16)
#undef LORAFIT_CHUNK

void chunk_of(const float* a, int64_t a_row, int64_t a_col, const at::Tensor& b, const at::Tensor& c, int64_t M, int64_t N, int64_t K,
              float alpha, bool accumulate, int64_t m0, int64_t n0) {
  const int64_t b_row = b.stride(0), c_row = c.stride(0);
  const bool b16 = b.scalar_type() == at::kBFloat16, c16 = c.scalar_type() == at::kBFloat16;
  if (!b16 && !c16) chunk_f32_f32(a, a_row, a_col, b.data_ptr<float>(), b_row, c.data_ptr<float>(), c_row, M, N, K, alpha, accumulate, m0, n0);
  else if (!b16) chunk_f32_bf16(a, a_row, a_col, b.data_ptr<float>(), b_row, c.data_ptr<bf16>(), c_row, M, N, K, alpha, accumulate, m0, n0);
  else if (!c16) chunk_bf16_f32(a, a_row, a_col, b.data_ptr<bf16>(), b_row, c.data_ptr<float>(), c_row, M, N, K, alpha, accumulate, m0, n0);
  else chunk_bf16_bf16(a, a_row, a_col, b.data_ptr<bf16>(), b_row, c.data_ptr<bf16>(), c_row, M, N, K, alpha, accumulate, m0, n0);
}

// C = alpha A B (+ C) over all tiles, in parallel; A(m, k) = a[m a_row + k a_col].
void tiled_product(const float* a, int64_t a_row, int64_t a_col, const at::Tensor& b, const at::Tensor& c, int64_t M, int64_t N, int64_t K,
                   double alpha, bool accumulate) {
  const int64_t row_blocks = (M + kRows - 1) / kRows, col_chunks = (N + kCols - 1) / kCols;
  // ~64k multiply-adds per parallel task at least: below that a thread costs more than it saves.
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, kRows * kCols * K));
  at::parallel_for(0, row_blocks * col_chunks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      chunk_of(a, a_row, a_col, b, c, M, N, K, static_cast<float>(alpha), accumulate, (i / col_chunks) * kRows, (i % col_chunks) * kCols);
  });
}

void check(bool ok, const char* what) {
  if (!ok) throw Error("E_INTERNAL", std::string("small_gemm: ") + what);
}

bool dense_rows(const at::Tensor& t) { return t.dim() == 2 && t.stride(1) == 1; }

}  // namespace

bool small_gemm_supported(const at::Tensor& t) {
  return t.is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16);
}

at::Tensor rows_dot_rows(const at::Tensor& x, const at::Tensor& w, double alpha) {
  check(dense_rows(x) && dense_rows(w) && x.size(1) == w.size(1) && w.scalar_type() == at::kFloat && small_gemm_supported(x),
        "rows_dot_rows: x [M, K] (fp32/bf16) and w [R, K] (fp32) with dense rows expected");
  const int64_t M = x.size(0), K = x.size(1), R = w.size(0);
  at::Tensor c = at::empty({M, R}, x.options().dtype(at::kFloat));
  if (M == 0 || R == 0) return c;
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, R * K));
  at::parallel_for(0, M, grain, [&](int64_t m0, int64_t m1) {
    std::vector<float> xf(kRows * K);
    if (x.scalar_type() == at::kBFloat16)
      rows_dot_rows_bf16(x.data_ptr<bf16>(), x.stride(0), w.data_ptr<float>(), w.stride(0), R, K, static_cast<float>(alpha),
                         c.data_ptr<float>(), R, m0, m1, xf.data());
    else
      rows_dot_rows_f32(x.data_ptr<float>(), x.stride(0), w.data_ptr<float>(), w.stride(0), R, K, static_cast<float>(alpha),
                        c.data_ptr<float>(), R, m0, m1, xf.data());
  });
  return c;
}

void add_small_k(const at::Tensor& c, const at::Tensor& a, const at::Tensor& b, double alpha, bool accumulate) {
  check(dense_rows(c) && dense_rows(a) && dense_rows(b) && a.scalar_type() == at::kFloat && small_gemm_supported(b) &&
            small_gemm_supported(c) && a.size(0) == c.size(0) && a.size(1) == b.size(0) && b.size(1) == c.size(1),
        "add_small_k: c [M, N], a [M, K] (fp32), b [K, N] with dense rows expected");
  if (c.numel() == 0) return;
  tiled_product(a.data_ptr<float>(), a.stride(0), 1, b, c, c.size(0), c.size(1), a.size(1), alpha, accumulate);
}

at::Tensor transposed_times(const at::Tensor& a, const at::Tensor& b, double alpha) {
  check(dense_rows(a) && dense_rows(b) && a.scalar_type() == at::kFloat && small_gemm_supported(b) && a.size(0) == b.size(0),
        "transposed_times: a [K, R] (fp32) and b [K, N] with dense rows expected");
  const int64_t K = a.size(0), R = a.size(1), N = b.size(1);
  at::Tensor c = at::empty({R, N}, b.options().dtype(at::kFloat));
  if (c.numel() == 0) return c;
  if (K == 0) return c.zero_();
  // A(m, k) = a[k, m]: row step 1, column step a's row stride
  tiled_product(a.data_ptr<float>(), 1, a.stride(0), b, c, R, N, K, alpha, false);
  return c;
}

}  // namespace lorafit
