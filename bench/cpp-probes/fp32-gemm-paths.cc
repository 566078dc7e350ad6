// fp32 GEMMs on lorafit's SmolLM2 shapes through at::mm (MKL's sgemm in the PyTorch wheel) and
// through libtorch's oneDNN entry point, which native/cpu_matmul.cc uses: GFLOP/s of the best of
// 20 calls each, and the largest difference between the two results. Then 60 calls with a new
// row count each (200..259, as packed steps give), with each path's largest error against fp64.
// Run: bash bench/cpp-probes/run.sh fp32-gemm-paths
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <chrono>
#include <cstdio>
namespace at::native { void mkldnn_matmul(const at::Tensor&, const at::Tensor&, const at::Tensor&, float beta, float alpha); }
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
int main() {
  at::set_num_threads(2);
  struct S { int64_t m, k, n; bool wt; } shapes[] = {{256,576,3072,true},{256,3072,576,false},{256,576,1536,true},{256,1536,576,false},{256,576,576,true},{256,576,576,false},{252,576,49152,true},{252,49152,576,false},{1024,576,3072,true},{1024,3072,576,false}};
  for (auto s : shapes) {
    at::Tensor x = at::randn({s.m, s.k});
    // wt: y = x W^T with W [n, k] (forward); else y = g W with W [k, n] row-major (backward dX = dY W, W [out=k, in=n])
    at::Tensor W = s.wt ? at::randn({s.n, s.k}) : at::randn({s.k, s.n});
    at::Tensor B = s.wt ? W.t() : W;
    at::Tensor y1 = at::empty({s.m, s.n}), y2 = at::empty({s.m, s.n});
    for (int w = 0; w < 3; ++w) { at::mm_out(y1, x, B); at::native::mkldnn_matmul(x, B, y2, 0, 1); }
    const int reps = 20;
    double t0 = now(); for (int r = 0; r < reps; ++r) at::mm_out(y1, x, B); double t1 = now();
    for (int r = 0; r < reps; ++r) at::native::mkldnn_matmul(x, B, y2, 0, 1); double t2 = now();
    const double f = 2.0 * s.m * s.k * s.n;
    std::printf("[%ld,%ld]x[%ld,%ld]%s mkl %.1f dnnl %.1f GFLOP/s maxdiff %.2e\n", s.m, s.k, s.k, s.n, s.wt ? "T" : " ", f * reps / (t1 - t0) / 1e9, f * reps / (t2 - t1) / 1e9, (y1 - y2).abs().max().item<float>());
  }
  double tm = 0, td = 0, f = 0, e1 = 0, e2 = 0;
  at::Tensor W = at::randn({3072, 576});
  for (int64_t m = 200; m < 260; ++m) {
    at::Tensor x = at::randn({m, 576});
    at::Tensor y1 = at::empty({m, 3072}), y2 = at::empty({m, 3072});
    double t0 = now(); at::mm_out(y1, x, W.t()); double t1 = now(); at::native::mkldnn_matmul(x, W.t(), y2, 0, 1); double t2 = now();
    tm += t1 - t0; td += t2 - t1; f += 2.0 * m * 576 * 3072;
    at::Tensor ref = at::mm(x.to(at::kDouble), W.t().to(at::kDouble));
    e1 = std::max(e1, (y1.to(at::kDouble) - ref).abs().max().item<double>());
    e2 = std::max(e2, (y2.to(at::kDouble) - ref).abs().max().item<double>());
  }
  std::printf("[200..259,576]x[576,3072]T, a new row count each call: mkl %.1f dnnl %.1f GFLOP/s; max error vs fp64: mkl %.2e dnnl %.2e\n", f / tm / 1e9, f / td / 1e9, e1, e2);
}
