// Where a model's weights come from. WeightSource is the interface CausalLM loads from;
// SafetensorsWeights reads a Hugging Face folder (model.safetensors, or the shards listed in
// model.safetensors.index.json; pickle checkpoints are refused: loading them runs code), and
// GgufWeights (gguf_weights.h) a llama.cpp GGUF file.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "safetensors.h"

namespace lorafit {

class WeightSource {
 public:
  virtual ~WeightSource() = default;

  virtual bool has(const std::string& name) const = 0;
  // Copies one tensor to dtype/device, checking its shape. Throws Error(E_SHAPE) naming the
  // file and tensor when the shape differs, Error(error_code()) when it is missing.
  virtual at::Tensor load(const std::string& name, at::IntArrayRef expected_shape, at::ScalarType dtype, at::Device device) = 0;
  // The stored tensor (a CPU tensor, checked against the shape; marks it loaded), for quantizing
  // at load. It may be a view of a file map: use it, then copy or drop it before this object dies.
  virtual at::Tensor view(const std::string& name, at::IntArrayRef expected_shape) = 0;
  // A copy of the stored tensor (no shape check), or undefined when absent.
  virtual at::Tensor raw(const std::string& name) = 0;
  // Releases the mapped pages of a tensor taken with view().
  virtual void release(const std::string& name) = 0;
  // Names not yet loaded (to warn about unexpected weights).
  virtual std::vector<std::string> unused() const = 0;
  // The error code of this format's faults (E_SAFETENSORS, E_GGUF).
  virtual const char* error_code() const = 0;
};

class SafetensorsWeights : public WeightSource {
 public:
  explicit SafetensorsWeights(const std::string& model_dir);

  bool has(const std::string& name) const override { return where_.count(name) != 0; }
  at::Tensor load(const std::string& name, at::IntArrayRef expected_shape, at::ScalarType dtype, at::Device device) override;
  // The stored tensor itself in its own dtype: a zero-copy view of the map.
  at::Tensor view(const std::string& name, at::IntArrayRef expected_shape) override;
  // In the stored dtype.
  at::Tensor raw(const std::string& name) override;
  // SafetensorsFile::release.
  void release(const std::string& name) override;
  std::vector<std::string> unused() const override;
  const char* error_code() const override { return "E_SAFETENSORS"; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> file index
  std::set<std::string> loaded_;
};

}  // namespace lorafit
