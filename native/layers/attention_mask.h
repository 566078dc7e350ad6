#pragma once
#include <ATen/ATen.h>

namespace lorafit {

// Additive attention bias [B, 1, T, S] (0 where a query may attend, the dtype's lowest value
// where it may not), as transformers builds it:
//   key j is visible from query i (absolute positions past+i and j) when j <= past+i,
//   attention_mask[b, j] == 1, and, with a sliding window w > 0, (past+i) - j < w.
// attention_mask: [B, S] (any integer/bool dtype) or undefined (all ones); S = past + T.
at::Tensor attention_bias(const at::Tensor& attention_mask, int64_t batch, int64_t query_len, int64_t past_len,
                          int64_t sliding_window, at::ScalarType dtype, at::Device device);

}  // namespace lorafit
