#include "layers/attention.h"

#include <torch/version.h>

#include "layers/attention_mask.h"
#include "layers/rotary.h"

namespace lorafit {

Attention::Attention(const ModelConfig& c, int64_t layer)
    : layer_(layer),
      heads_(c.num_attention_heads),
      kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim),
      scale_(c.attention_scale),
      softcap_(c.attn_logit_softcapping),
      sliding_(c.sliding_layers.at(layer)),
      window_(c.sliding_window) {}

namespace {
// [B, n_kv, S, D] -> [B, n_kv * n_rep, S, D], each kv head repeated n_rep times in a row (HF repeat_kv)
at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  const auto b = x.size(0), kv = x.size(1), s = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, kv, n_rep, s, d}).reshape({b, kv * n_rep, s, d});
}
}  // namespace

at::Tensor Attention::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& bias,
                              const ForwardContext& ctx) const {
  const int64_t B = x.size(0), T = x.size(1);
  std::vector<at::Tensor> qkv_out = qkv.forward({&q_proj, &k_proj, &v_proj}, x, ctx);
  at::Tensor q = qkv_out[0].view({B, T, heads_, head_dim_}).transpose(1, 2);     // [B, H, T, D]
  at::Tensor k = qkv_out[1].view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B, KV, T, D]
  at::Tensor v = qkv_out[2].view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B, KV, T, D]
  q = apply_rotary(q, cos, sin);
  k = apply_rotary(k, cos, sin);
  if (ctx.cache) {
    KVCache& cache = *ctx.cache;
    if (cache.keys[layer_].defined()) {
      k = at::cat({cache.keys[layer_], k}, 2);
      v = at::cat({cache.values[layer_], v}, 2);
    }
    cache.keys[layer_] = k;
    cache.values[layer_] = v;
  }
  const int64_t n_rep = heads_ / kv_heads_;
  k = repeat_kv(k, n_rep);  // [B, H, S, D]
  v = repeat_kv(v, n_rep);
  at::Tensor out = ctx.segments ? attend_segments(q, k, v, *ctx.segments) : attend(q, k, v, bias);  // [B, H, T, D]
  out = out.transpose(1, 2).reshape({B, T, heads_ * head_dim_});
  return o_proj.forward(out, ctx);
}

at::Tensor Attention::attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) const {
#if TORCH_VERSION_MAJOR >= 2
  if (softcap_ <= 0) {
    // bias undefined: plain causal attention (no padding, no cache)
    return bias.defined() ? at::scaled_dot_product_attention(q, k, v, bias, 0.0, false, scale_)
                          : at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true, scale_);
  }
#endif
  // Eager path (Gemma 2's soft-capping sits between the scores and the mask).
  at::Tensor scores = at::matmul(q, k.transpose(2, 3)) * scale_;  // [B, H, T, S]
  if (softcap_ > 0) scores = at::tanh(scores / softcap_) * softcap_;
  scores = scores + bias;
  at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  return at::matmul(probs, v);
}

at::Tensor Attention::attend_segments(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const std::vector<int64_t>& segments) const {
  // split_with_sizes, not one narrow per segment: its backward is one cat, where narrows would
  // each materialise a zero-filled gradient of the whole row.
  std::vector<at::Tensor> qs = q.split_with_sizes(segments, 2), ks = k.split_with_sizes(segments, 2),
                          vs = v.split_with_sizes(segments, 2);
  std::vector<at::Tensor> outs;
  outs.reserve(segments.size());
  const bool sdpa = TORCH_VERSION_MAJOR >= 2 && softcap_ <= 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const int64_t len = segments[i];
    const int64_t window = sliding_ ? window_ : 0;
    // A causal segment needs no mask tensor unless a sliding window cuts into it (or the eager path runs).
    at::Tensor bias;
    if (!sdpa || (window > 0 && len > window)) bias = attention_bias({}, 1, len, 0, window, q.scalar_type(), q.device());
    outs.push_back(attend(qs[i], ks[i], vs[i], bias));  // [1, H, len, D]
  }
  return outs.size() == 1 ? outs[0] : at::cat(outs, 2);
}

}  // namespace lorafit
