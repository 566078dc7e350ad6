// native/small_gemm.cc's LoRA products at the Qwen2.5-0.5B shape (512 tokens, rank 16, bf16
// activations, fp32 LoRA weights), best of 20 calls each, GFLOP/s and microseconds:
// xA' = x A^T, y+=dB' = y += s down B^T, gB = g B, dA = dDown^T x, dB = down^T g, dx = dDown A;
// and at::mm's fp32 x A^T for comparison. Run: bash bench/cpp-probes/run.sh lora-kernels
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <chrono>
#include <cstdio>
#include "small_gemm.h"
using namespace lorafit;
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <class F> double best(F f, int reps = 20) { f(); double b = 1e9; for (int r = 0; r < reps; ++r) { double t0 = now(); f(); b = std::min(b, now() - t0); } return b; }
int main() {
  at::set_num_threads(2);
  const int64_t N = 512, R = 16;
  for (int64_t in : {896, 4864}) for (int64_t out : {896, 4864}) {
    if (in == 4864 && out == 4864) continue;
    at::Tensor x = at::randn({N, in}).to(at::kBFloat16), A = at::randn({R, in}) * 0.01, Bt = at::randn({R, out}) * 0.01;
    at::Tensor y = at::randn({N, out}).to(at::kBFloat16), g = at::randn({N, out}).to(at::kBFloat16);
    at::Tensor down, dd;
    double t1 = best([&] { down = rows_dot_rows(x, A, 1.0); });                 // x A^T  [N, r]
    double t2 = best([&] { add_small_k(y, down, Bt, 2.0, true); });              // y += down Bt
    double t3 = best([&] { dd = rows_dot_rows(g, Bt, 2.0); });                   // g B [N, r]
    double t4 = best([&] { transposed_times(dd, x, 1.0); });                     // dA [r, in]
    double t5 = best([&] { transposed_times(down, g, 2.0); });                   // dB^T [r, out]
    at::Tensor dx = at::empty({N, in}, x.options());
    double t6 = best([&] { add_small_k(dx, dd, A, 1.0, false); });               // dx [N, in]
    // the at::mm forms for comparison (bf16 inputs as PEFT-in-bf16 would, fp32 here like lorafit's LoRA)
    at::Tensor xf = x.to(at::kFloat);
    double m1 = best([&] { at::mm(xf, A.t()); });
    auto gf = [&](double t, int64_t a, int64_t b, int64_t c) { return 2.0 * a * b * c / t / 1e9; };
    std::printf("in %ld out %ld: xA' %.0f  y+=dB' %.0f  gB %.0f  dA %.0f  dB %.0f  dx %.0f GFLOP/s | mm fp32 xA' %.0f | us: %.0f %.0f %.0f %.0f %.0f %.0f\n", in, out,
                gf(t1, N, in, R), gf(t2, N, out, R), gf(t3, N, out, R), gf(t4, N, in, R), gf(t5, N, out, R), gf(t6, N, in, R), gf(m1, N, in, R),
                t1 * 1e6, t2 * 1e6, t3 * 1e6, t4 * 1e6, t5 * 1e6, t6 * 1e6);
  }
}
