#include "layers/attention_mask.h"

#include <limits>

namespace lorafit {

at::Tensor attention_bias(const at::Tensor& attention_mask, int64_t batch, int64_t query_len, int64_t past_len,
                          int64_t sliding_window, at::ScalarType dtype, at::Device device) {
  const int64_t key_len = past_len + query_len;
  auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor q_pos = at::arange(past_len, key_len, long_opts).unsqueeze(1);  // [T, 1]
  at::Tensor k_pos = at::arange(0, key_len, long_opts).unsqueeze(0);         // [1, S]
  at::Tensor visible = k_pos <= q_pos;                                         // [T, S]
  if (sliding_window > 0) visible = at::logical_and(visible, (q_pos - k_pos) < sliding_window);
  visible = visible.view({1, 1, query_len, key_len}).expand({batch, 1, query_len, key_len});
  if (attention_mask.defined()) {
    at::Tensor keys = attention_mask.to(device).to(at::kBool).view({batch, 1, 1, key_len});
    visible = at::logical_and(visible, keys);
  }
  const double lowest = dtype == at::kBFloat16 ? -3.3895313892515355e38
                        : dtype == at::kHalf   ? -65504.0
                        : dtype == at::kDouble ? std::numeric_limits<double>::lowest()
                                               : static_cast<double>(std::numeric_limits<float>::lowest());
  at::Tensor bias = at::zeros({batch, 1, query_len, key_len}, at::TensorOptions().dtype(dtype).device(device));
  return bias.masked_fill(at::logical_not(visible), lowest);
}

}  // namespace lorafit
