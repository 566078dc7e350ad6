#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "error.h"
#include "json.h"

namespace lorafit {

namespace {
// The format caps headers at 100 MB; anything larger is a corrupt length field.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void bad_file(const std::string& path, const std::string& what) {
  throw Error("E_SAFETENSORS", path + ": " + what);
}

// A non-negative whole number: integers exactly (data_offsets above 2^53 keep every digit), other
// numbers when integral and below 2^64 (4.0, 1e3, as the TS reader takes them). The range test
// comes first: casting a double beyond uint64 (1e30, inf, NaN) is undefined behaviour.
bool whole_number(const Json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {  // negative, or -0
    const int64_t i = v.get<int64_t>();
    out = static_cast<uint64_t>(i);
    return i >= 0;
  }
  if (!v.is_number_float()) return false;
  const double d = v.get<double>();
  if (!(d >= 0 && d < 18446744073709551616.0) || d != std::floor(d)) return false;
  out = static_cast<uint64_t>(d);
  return true;
}
}  // namespace

std::string shape_string(at::IntArrayRef shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

at::ScalarType safetensors_dtype(const std::string& name, const std::string& where) {
  if (name == "F32") return at::kFloat;
  if (name == "F16") return at::kHalf;
  if (name == "BF16") return at::kBFloat16;
  if (name == "F64") return at::kDouble;
  if (name == "I64") return at::kLong;
  if (name == "I32") return at::kInt;
  if (name == "I16") return at::kShort;
  if (name == "I8") return at::kChar;
  if (name == "U8") return at::kByte;
  if (name == "BOOL") return at::kBool;
  throw Error("E_SAFETENSORS", where + ": unsupported dtype '" + name +
                                   "' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error("E_SAFETENSORS", path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd_, &st) != 0) { ::close(fd_); bad_file(path, "cannot stat"); }
  map_size_ = static_cast<size_t>(st.st_size);
  try {
    if (map_size_ < 8) bad_file(path, "truncated: " + std::to_string(map_size_) + " bytes, shorter than the 8-byte header length");
    map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (map_ == MAP_FAILED) { map_ = nullptr; bad_file(path, std::string("mmap failed: ") + std::strerror(errno)); }
    const auto* bytes = static_cast<const uint8_t*>(map_);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian u64
    if (header_len > kMaxHeaderBytes) bad_file(path, "header length " + std::to_string(header_len) + " exceeds the 100 MB limit (corrupt file?)");
    if (8 + header_len > map_size_)
      bad_file(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" + std::to_string(map_size_) + " bytes): truncated file?");
    data_ = bytes + 8 + header_len;
    parse_header(reinterpret_cast<const char*>(bytes + 8), header_len, map_size_ - 8 - header_len);
  } catch (...) {
    if (map_) ::munmap(map_, map_size_);
    ::close(fd_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
  if (fd_ >= 0) ::close(fd_);
}

void SafetensorsFile::parse_header(const char* text, size_t size, uint64_t data_size) {
  Json header;
  try {
    header = parse_json(text, size);
  } catch (const std::exception& e) {
    bad_file(path_, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) bad_file(path_, "header is not a JSON object");
  // parse_json refuses a key given twice ("listed twice" below stays as a guard).
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) bad_file(path_, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) bad_file(path_, "__metadata__." + k + " is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = path_ + ": tensor '" + name + "'";
    const Json* dtype = json_find(entry, "dtype");
    const Json* shape = json_find(entry, "shape");
    const Json* offsets = json_find(entry, "data_offsets");
    if (!dtype || !dtype->is_string() || !shape || !shape->is_array() || !offsets || !offsets->is_array() || offsets->size() != 2)
      throw Error("E_SAFETENSORS", where + ": entry needs dtype (string), shape (array) and data_offsets ([begin, end])");
    TensorInfo info;
    info.name = name;
    info.dtype_name = dtype->get<std::string>();
    info.dtype = safetensors_dtype(info.dtype_name, where);
    uint64_t numel = 1;
    for (const auto& d : *shape) {
      uint64_t dim = 0;
      if (!whole_number(d, dim) || dim > 1000000000000000ull) throw Error("E_SAFETENSORS", where + ": shape entries must be non-negative integers");
      info.shape.push_back(static_cast<int64_t>(dim));
      // test before multiplying: [2^40, 2^40] would wrap numel to 0 and pass as a 0-byte tensor
      if (dim != 0 && numel > (1ull << 50) / dim) throw Error("E_SAFETENSORS", where + ": shape is absurdly large");
      numel *= dim;
    }
    if (!whole_number((*offsets)[0], info.begin) || !whole_number((*offsets)[1], info.end))
      throw Error("E_SAFETENSORS", where + ": data_offsets must be non-negative integers");
    if (info.begin > info.end) throw Error("E_SAFETENSORS", where + ": data_offsets begin > end");
    if (info.end > data_size)
      throw Error("E_SAFETENSORS", where + ": data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                                       "] lie outside the data section (" + std::to_string(data_size) + " bytes): truncated or corrupt file");
    const uint64_t expected = numel * c10::elementSize(info.dtype);
    if (info.end - info.begin != expected)
      throw Error("E_SAFETENSORS", where + ": holds " + std::to_string(info.end - info.begin) + " bytes but " + info.dtype_name +
                                       " " + shape_string(info.shape) + " needs " + std::to_string(expected));
    if (index_.count(name)) throw Error("E_SAFETENSORS", where + ": listed twice");
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(info));
  }
  // Overlapping byte ranges mean a corrupt (or hostile) header.
  std::vector<const TensorInfo*> sorted;
  for (const auto& t : tensors_) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->begin < sorted[i - 1]->end && sorted[i]->begin != sorted[i]->end && sorted[i - 1]->begin != sorted[i - 1]->end)
      throw Error("E_SAFETENSORS", path_ + ": tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap in the data section");
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

at::Tensor SafetensorsFile::view(const TensorInfo& info) const {
  // from_blob needs a mutable pointer; the map is MAP_PRIVATE + PROT_READ and nobody writes to it.
  void* ptr = const_cast<uint8_t*>(data_ + info.begin);
  return at::from_blob(ptr, info.shape, at::TensorOptions().dtype(info.dtype));
}

void SafetensorsFile::release(const TensorInfo& info) const {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data_ + info.begin);
  const uintptr_t end = reinterpret_cast<uintptr_t>(data_ + info.end);
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace lorafit
