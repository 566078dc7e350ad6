#include "gguf_weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "error.h"

namespace lorafit {

namespace {
// A tensor of more values than this is a corrupt header (2^50 floats are 4 PiB).
constexpr int64_t kMaxValues = int64_t{1} << 50;
}  // namespace

at::Tensor gguf_unpermute_heads(const at::Tensor& w, int64_t n_head) {
  if (w.dim() < 1 || n_head <= 0 || w.size(0) % (2 * n_head) != 0)
    throw Error("E_GGUF", "cannot undo the Q/K head permutation of shape " + shape_string(w.sizes()) + " with " + std::to_string(n_head) +
                              " heads: dimension 0 must be a multiple of 2 * heads");
  std::vector<int64_t> split = {n_head, w.size(0) / n_head / 2, 2};  // [heads, rot/2, 2, *rest]
  for (int64_t d = 1; d < w.dim(); ++d) split.push_back(w.size(d));
  return w.reshape(split).transpose(1, 2).contiguous().view(w.sizes());
}

GgufWeights::GgufWeights(const std::string& path, std::vector<GgufTensorRef> tensors) : path_(path), tensors_(std::move(tensors)) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error("E_GGUF", path + ": cannot open (" + std::strerror(errno) + ")");
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw Error("E_GGUF", path + ": cannot stat (" + std::strerror(errno) + ")");
    map_size_ = static_cast<size_t>(st.st_size);
    const uint64_t file_size = map_size_;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const GgufTensorRef& t = tensors_[i];
      const std::string where = path + ": tensor '" + t.name + "': ";
      if (t.name.empty()) throw Error("E_GGUF", path + ": tensor #" + std::to_string(i) + " has an empty name");
      if (index_.count(t.name)) throw Error("E_GGUF", where + "listed twice");
      const GgmlTypeInfo* info = ggml_type_info(t.type);
      if (!info)
        throw Error("E_GGUF", where + "unsupported ggml type " + std::to_string(static_cast<int32_t>(t.type)) + " (lorafit dequantizes " +
                                  ggml_supported_types() + ")");
      if (t.shape.empty()) throw Error("E_GGUF", where + "has no dimensions");
      int64_t numel = 1;
      for (int64_t d : t.shape) {
        if (d <= 0) throw Error("E_GGUF", where + "shape " + shape_string(t.shape) + " has a dimension that is not positive");
        if (numel > kMaxValues / d) throw Error("E_GGUF", where + "shape " + shape_string(t.shape) + " is absurdly large");
        numel *= d;
      }
      if (t.shape.back() % info->block_size != 0)
        throw Error("E_GGUF", where + "innermost dimension " + std::to_string(t.shape.back()) + " of shape " + shape_string(t.shape) +
                                  " is not a multiple of the " + info->name + " block size " + std::to_string(info->block_size));
      const uint64_t nbytes = static_cast<uint64_t>(ggml_nbytes(t.type, numel));
      if (t.offset > file_size || nbytes > file_size - t.offset)
        throw Error("E_GGUF", where + info->name + " " + shape_string(t.shape) + " needs bytes [" + std::to_string(t.offset) + ", " +
                                  std::to_string(t.offset + nbytes) + "), which lie outside the file (" + std::to_string(file_size) +
                                  " bytes): truncated or corrupt file");
      if (!std::isfinite(t.add)) throw Error("E_GGUF", where + "add must be a finite number");
      if (t.permute_heads < 0) throw Error("E_GGUF", where + "permute_heads must not be negative");
      if (t.permute_heads > 0 && t.shape[0] % (2 * t.permute_heads) != 0)
        throw Error("E_GGUF", where + "cannot undo the Q/K head permutation: dimension 0 of " + shape_string(t.shape) +
                                  " is not a multiple of 2 * " + std::to_string(t.permute_heads) + " heads");
      index_[t.name] = i;
      nbytes_.push_back(nbytes);
    }
    if (map_size_ > 0) {
      map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (map_ == MAP_FAILED) {
        map_ = nullptr;
        throw Error("E_GGUF", path + ": mmap failed (" + std::strerror(errno) + ")");
      }
    }
  } catch (...) {
    if (map_) ::munmap(map_, map_size_);
    ::close(fd_);
    throw;
  }
}

GgufWeights::~GgufWeights() {
  if (map_) ::munmap(map_, map_size_);
  if (fd_ >= 0) ::close(fd_);
}

const GgufTensorRef& GgufWeights::find(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw Error("E_GGUF", path_ + ": weight '" + name + "' is missing from the GGUF file");
  return tensors_[it->second];
}

at::Tensor GgufWeights::dequantize(const GgufTensorRef& ref) {
  at::Tensor out = at::empty(ref.shape, at::TensorOptions().dtype(at::kFloat));
  const auto* src = static_cast<const uint8_t*>(map_) + ref.offset;
  ggml_dequantize(ref.type, src, out.numel(), out.data_ptr<float>());
  // The result owns its memory: the source pages are not needed again.
  release(ref.name);
  if (ref.permute_heads > 0) out = gguf_unpermute_heads(out, ref.permute_heads);
  if (ref.add != 0) {
    // one float32 addition a value, as transformers' `weights - 1` (numpy float32)
    float* p = out.data_ptr<float>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) p[i] = p[i] + ref.add;
  }
  return out;
}

at::Tensor GgufWeights::view(const std::string& name, at::IntArrayRef expected) {
  const GgufTensorRef& ref = find(name);
  if (at::IntArrayRef(ref.shape) != expected)
    throw Error("E_SHAPE", path_ + ": weight '" + name + "' has shape " + shape_string(ref.shape) + " but the model config implies " +
                               shape_string(expected));
  loaded_.insert(name);
  return dequantize(ref);
}

at::Tensor GgufWeights::load(const std::string& name, at::IntArrayRef expected, at::ScalarType dtype, at::Device device) {
  // view() is already an owned copy: no second copy when dtype and device are float32 on CPU.
  return view(name, expected).to(device, dtype);
}

at::Tensor GgufWeights::raw(const std::string& name) {
  if (!has(name)) return at::Tensor();
  loaded_.insert(name);
  return dequantize(find(name));
}

void GgufWeights::release(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end() || !map_) return;
  const GgufTensorRef& ref = tensors_[it->second];
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(map_) + ref.offset;
  const uintptr_t end = begin + static_cast<uintptr_t>(nbytes_[it->second]);
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::vector<std::string> GgufWeights::unused() const {
  std::vector<std::string> out;
  for (const auto& [name, i] : index_)
    if (!loaded_.count(name)) out.push_back(name);
  return out;
}

}  // namespace lorafit
