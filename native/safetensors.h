// Reads safetensors files by mmap: the header is validated once (offsets inside the data,
// sizes equal to numel * itemsize, no overlaps), then tensors are zero-copy views of the map.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace lorafit {

struct TensorInfo {
  std::string name;
  at::ScalarType dtype;
  std::string dtype_name;        // as written in the header: F32, BF16, ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;   // byte offsets inside the data section
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  // A CPU tensor over the mapped bytes. Valid only while this file object lives: copy it
  // (tensor.to(dtype, device, false, true)) before the file is closed.
  at::Tensor view(const TensorInfo& info) const;
  // Drops the mapped pages that lie wholly inside the tensor from this process (madvise
  // MADV_DONTNEED; the page cache keeps them): call once a copy was taken, so resident memory
  // while loading stays near what the model keeps, not the size of the file.
  void release(const TensorInfo& info) const;

 private:
  void parse_header(const char* json, size_t size, uint64_t data_size);

  std::string path_;
  int fd_ = -1;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// "F32" -> at::kFloat etc.; throws lorafit::Error(E_SAFETENSORS) for unsupported names.
at::ScalarType safetensors_dtype(const std::string& name, const std::string& where);
std::string shape_string(at::IntArrayRef shape);

}  // namespace lorafit
