// native/layers/blocked_attention.cc against SDPA (libtorch's CPU flash kernel, the kv heads
// repeated as transformers does) at the 0.5B shape: 14 query heads, 2 kv heads, head_dim 64, one
// 512-token segment (then four), forward and forward+backward, ms per layer (best of 5), and the
// largest differences of output and gradients from SDPA's fp32 results on the same inputs.
// Run: bash bench/cpp-probes/run.sh blocked-attention
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <chrono>
#include <cstdio>
#include "layers/blocked_attention.h"
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
template <typename F> double best(F f) {
  f();
  double b = 1e9;
  for (int r = 0; r < 5; ++r) { double t0 = now(); f(); b = std::min(b, now() - t0); }
  return b * 1e3;
}
at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::vector<int64_t>& segs, int64_t G) {
  std::vector<at::Tensor> outs;
  int64_t s0 = 0;
  for (int64_t n : segs) {
    auto kk = k.narrow(2, s0, n).repeat_interleave(G, 1), vv = v.narrow(2, s0, n).repeat_interleave(G, 1);
    outs.push_back(at::scaled_dot_product_attention(q.narrow(2, s0, n), kk, vv, {}, 0.0, true, 0.125));
    s0 += n;
  }
  return at::cat(outs, 2).transpose(1, 2);  // [1, T, H, D]
}
int main() {
  at::set_num_threads(2);
  const int64_t H = 14, KV = 2, D = 64, G = H / KV;
  for (auto segs : {std::vector<int64_t>{512}, std::vector<int64_t>{512, 512, 512, 512}, std::vector<int64_t>{300, 77, 640}}) {
    int64_t T = 0;
    for (auto n : segs) T += n;
    for (auto dt : {at::kFloat, at::kBFloat16}) {
      auto opt = at::TensorOptions().dtype(dt);
      at::Tensor q0 = at::randn({1, H, T, D}), k0 = at::randn({1, KV, T, D}), v0 = at::randn({1, KV, T, D}), g0 = at::randn({1, T, H, D});
      auto run = [&](bool blocked, bool backward, at::ScalarType t, std::vector<at::Tensor>* grads) {
        auto leaf = [&](const at::Tensor& x) { return x.to(t).detach().clone().requires_grad_(backward); };
        auto q = leaf(q0), k = leaf(k0), v = leaf(v0);
        at::Tensor o = blocked ? lorafit::blocked_attention(q, k, v, segs, 0.125) : sdpa(q, k, v, segs, G);
        if (backward) o.backward(g0.to(t));
        if (grads) *grads = {o.detach().to(at::kFloat), q.grad().to(at::kFloat), k.grad().to(at::kFloat), v.grad().to(at::kFloat)};
      };
      std::vector<at::Tensor> ref, mine, theirs;
      run(false, true, at::kFloat, &ref);
      run(true, true, dt, &mine);
      run(false, true, dt, &theirs);
      const char* names[] = {"out", "dq", "dk", "dv"};
      std::printf("segments %zu x ~%ld, %s: blocked fwd %.2f ms, fwd+bwd %.2f | SDPA fwd %.2f, fwd+bwd %.2f ms\n", segs.size(), T / (int64_t)segs.size(),
                  dt == at::kFloat ? "fp32" : "bf16", best([&] { run(true, false, dt, nullptr); }), best([&] { run(true, true, dt, nullptr); }),
                  best([&] { run(false, false, dt, nullptr); }), best([&] { run(false, true, dt, nullptr); }));
      for (int i = 0; i < 4; ++i)
        std::printf("   %s vs SDPA fp32: max |diff| blocked %.2e, SDPA %s %.2e (scale %.2e); rms diff blocked %.3e, SDPA %.3e\n", names[i],
                    (mine[i] - ref[i]).abs().max().item<float>(), dt == at::kFloat ? "fp32" : "bf16", (theirs[i] - ref[i]).abs().max().item<float>(),
                    ref[i].abs().max().item<float>(), (mine[i] - ref[i]).pow(2).mean().sqrt().item<float>(), (theirs[i] - ref[i]).pow(2).mean().sqrt().item<float>());
    }
  }
}
