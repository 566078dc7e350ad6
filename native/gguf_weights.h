// The weights of a llama.cpp GGUF file. The header is read elsewhere (lib/gguf, TypeScript): it
// hands over one GgufTensorRef per tensor, already under its Hugging Face name. This class maps the
// file read-only, checks every ref up front, and dequantizes a tensor to float32 only when it is
// asked for (one at a time, then drops the mapped pages), undoing llama.cpp's Q/K row permutation
// and Gemma's norm + 1 where the ref says so.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gguf_quants.h"
#include "state_dict.h"

namespace lorafit {

struct GgufTensorRef {
  std::string name;             // HF name, e.g. model.layers.0.self_attn.q_proj.weight
  uint64_t offset = 0;          // absolute byte offset of the tensor data in the file
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> shape;   // HF/numpy order (outermost first) = ggml ne reversed
  int64_t permute_heads = 0;    // >0: undo llama.cpp's Q/K rotary permutation with this many heads
  float add = 0;                // added to every value after dequantizing (-1: Gemma norms, stored as w + 1)
};

// llama.cpp's convert_hf_to_gguf.py stores q_proj/k_proj rows (weights [out, in] and biases
// [out]) interleaved per head for its rotary kernel; this is transformers' reverse_permute_weights:
// w.reshape(n_head, out / n_head / 2, 2, *rest).swapaxes(2, 1).reshape(w.shape). Exact (a copy).
at::Tensor gguf_unpermute_heads(const at::Tensor& w, int64_t n_head);

class GgufWeights : public WeightSource {
 public:
  // Throws Error(E_GGUF, "<path>: tensor '<name>': ...") for a ref that does not fit the file.
  GgufWeights(const std::string& path, std::vector<GgufTensorRef> tensors);
  ~GgufWeights() override;
  GgufWeights(const GgufWeights&) = delete;
  GgufWeights& operator=(const GgufWeights&) = delete;

  bool has(const std::string& name) const override { return index_.count(name) != 0; }
  at::Tensor load(const std::string& name, at::IntArrayRef expected_shape, at::ScalarType dtype, at::Device device) override;
  // The dequantized float32 tensor (owned memory, not a view of the map).
  at::Tensor view(const std::string& name, at::IntArrayRef expected_shape) override;
  // Dequantized float32, or undefined when absent.
  at::Tensor raw(const std::string& name) override;
  void release(const std::string& name) override;
  std::vector<std::string> unused() const override;
  const char* error_code() const override { return "E_GGUF"; }

  const std::string& path() const { return path_; }
  const std::vector<GgufTensorRef>& tensors() const { return tensors_; }

 private:
  const GgufTensorRef& find(const std::string& name) const;
  at::Tensor dequantize(const GgufTensorRef& ref);  // [shape] float32, pages released

  std::string path_;
  int fd_ = -1;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<GgufTensorRef> tensors_;
  std::vector<uint64_t> nbytes_;  // per tensor
  std::map<std::string, size_t> index_;
  std::set<std::string> loaded_;
};

}  // namespace lorafit
