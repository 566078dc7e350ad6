// ggml tensor types as GGUF stores them, and their dequantizers. Block layouts are llama.cpp's
// (ggml-common.h); the arithmetic mirrors gguf-py's gguf/quants.py (numpy, float32 intermediates,
// one rounding per operation, no fused multiply-add) so the results are bit-for-bit equal to
// gguf.quants.dequantize(data, qtype).
#pragma once
#include <cstdint>
#include <string>

namespace lorafit {

// ggml's ggml_type numbers (ggml.h); only the types lorafit dequantizes.
enum class GgmlType : int32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

struct GgmlTypeInfo {
  const char* name;     // "Q4_K"
  int64_t block_size;   // values per block
  int64_t block_bytes;  // bytes per block
};

// nullptr for a type number lorafit does not dequantize.
const GgmlTypeInfo* ggml_type_info(GgmlType type);
// "Q4_K", or "type 9" for one lorafit does not know.
std::string ggml_type_name(GgmlType type);
// The supported names, comma-separated (for messages).
const char* ggml_supported_types();
// Throw Error(E_GGUF) naming the type number when the type is unknown.
int64_t ggml_block_size(GgmlType type);
int64_t ggml_block_bytes(GgmlType type);
// Bytes that n values of `type` occupy. Throws Error(E_GGUF) when the type is unknown or n is
// negative or not a multiple of the block size.
int64_t ggml_nbytes(GgmlType type, int64_t n_elements);
// Decodes n values (ggml_nbytes(type, n) bytes at src, any alignment) into dst, in parallel
// over blocks (at::parallel_for).
void ggml_dequantize(GgmlType type, const uint8_t* src, int64_t n, float* dst);

}  // namespace lorafit
