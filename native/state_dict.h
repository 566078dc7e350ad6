// The weights of a model folder: model.safetensors, or the shards listed in
// model.safetensors.index.json. Pickle checkpoints are refused: loading them runs code.
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
  explicit WeightSource(const std::string& model_dir);

  bool has(const std::string& name) const { return where_.count(name) != 0; }
  // Copies one tensor to dtype/device, checking its shape. Throws Error(E_SHAPE) naming the
  // file and tensor when the shape differs, Error(E_SAFETENSORS) when it is missing.
  at::Tensor load(const std::string& name, at::IntArrayRef expected_shape, at::ScalarType dtype, at::Device device);
  // The stored tensor itself (its own dtype, a CPU view of the map: use it, then copy or drop
  // it before this object dies), checking the shape; marks it loaded. For quantizing at load.
  at::Tensor view(const std::string& name, at::IntArrayRef expected_shape);
  // A copy of the stored tensor in its own dtype (no shape check), or undefined when absent.
  at::Tensor raw(const std::string& name);
  // Releases the mapped pages of a tensor taken with view() (SafetensorsFile::release).
  void release(const std::string& name);
  // Names not yet loaded (to warn about unexpected weights).
  std::vector<std::string> unused() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor name -> file index
  std::set<std::string> loaded_;
};

}  // namespace lorafit
