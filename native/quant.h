// quant.h: NF4 (QLoRA, bitsandbytes') and int8 per-row absmax weight quantization.
//
// Pure ATen, no Node. Semantics follow bitsandbytes (csrc/kernels.cu: kQuantizeBlockwise,
// dQuantizeNF4, dQuantize, kDequantizeBlockwise; functional.py: quantize_4bit, quantize_blockwise,
// create_dynamic_map). Checked value for value against test/fixtures/hf/nf4/ and against the real
// bitsandbytes 0.50.2 CPU backend (test/native/quant.test.ts): packed codes, fp32 absmax, absmax2,
// offset and the dequantization of a given state are bit-exact. The 8-bit codes of the double-quant
// absmax follow the CUDA search (nearest code) and the torch-1.13 dynamic map, so they can differ
// from bitsandbytes-CPU's (one code lower, 2 of 612 in that test) and the dequantized weights of
// our own double quantization are within ~1e-3 x max|w| of bitsandbytes' (not equal).
//
// NF4 quantization of a weight w (fp32, fp16 or bf16; any shape, usually [out, in]):
//   * flatten row-major to n values, split into nblocks = ceil(n / block_size) blocks; the last
//     block may be partial (it is zero-padded, exactly like the CUDA kernel's masked load);
//   * absmax[b] = max |x| over the block, in fp32 of the input values (a bf16 input is widened
//     to fp32 exactly first; no rounding happens before the absmax);
//   * code = number of the 15 fixed dQuantizeNF4 thresholds strictly below x * (1 / absmax[b])
//     (fp32 reciprocal, then one fp32 multiply); an all-zero block gets code 7 (0.0) everywhere,
//     like bitsandbytes' CPU backend (absmax clamped to 1e-38 for the reciprocal; stored as 0);
//   * two codes per byte, the earlier (even flat index) element in the HIGH nibble; for odd n the
//     last low nibble holds the code of the zero padding (7).
// Dequantization: out = nf4_code()[code] * absmax[b], one fp32 multiply, then rounded to the
// output dtype (as the CUDA kernel stores T).
//
// Double quantization (bitsandbytes compress_statistics=True): offset = mean(absmax) (fp32),
// centered = absmax - offset is quantized blockwise (blocks of 256) with the signed 8-bit dynamic
// map: absmax2[j] = max |centered| of block j, absmax_q = dQuantize(centered * (1/absmax2[j]))
// (binary search + fp32 midpoints). Dequantized absmax = nested_code[absmax_q] * absmax2 + offset.
//
// Int8: symmetric per-row absmax (bitsandbytes int8_vectorwise_quant without outlier handling):
// q = round(w * (127 / absmax_row)), scale = absmax_row / 127, w ~= q * scale.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace lorafit {

// bitsandbytes Params4bit / QuantState layout (quant_type "nf4").
struct Nf4Weight {
  at::Tensor packed;           // uint8 [ceil(numel/2), 1], first value in the HIGH nibble
  at::Tensor absmax;           // float32 [nblocks]; defined only when !double_quant
  // Double quant (compress_statistics): absmax stored as uint8 codes of (absmax - offset).
  bool double_quant = false;
  at::Tensor absmax_q;         // uint8 [nblocks]
  at::Tensor absmax2;          // float32 [ceil(nblocks/256)]
  at::Tensor nested_code;      // float32 [256], dynamic_map_signed()
  float offset = 0.f;          // mean of the fp32 absmax
  int64_t nested_block_size = 256;
  int64_t block_size = 64;
  std::vector<int64_t> shape;  // original shape, e.g. [out, in]
  at::ScalarType dtype = at::kFloat;  // original dtype

  int64_t numel() const;
  int64_t nblocks() const;  // ceil(numel / block_size)
};

// NF4 code book, index = 4-bit code: float32 [16] (bitsandbytes get_4bit_type("nf4")).
at::Tensor nf4_code();
// The 15 dQuantizeNF4 decision thresholds, ascending: float32 [15].
at::Tensor nf4_thresholds();
// bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): float32 [256]
// (the fixed table bitsandbytes 0.43.3 + torch 1.13 produce; see quant.cc about torch versions),
// sorted ascending, code[0] = -0.99297..., code[127] = 0, code[255] = 1.
at::Tensor dynamic_map_signed();

// Quantize w (fp32/fp16/bf16, any device; computed on w's device, the 8-bit search on CPU).
// block_size must be even and > 0 (bitsandbytes uses 64 for QLoRA; 32..4096 are valid there).
Nf4Weight quantize_nf4(const at::Tensor& w, int64_t block_size = 64, bool double_quant = true);

// Dequantize to out_dtype and the original shape. CPU: one parallel pass (per-block 16-entry
// table already multiplied by absmax and rounded to out_dtype). Other devices: vectorised ATen
// (unpack nibbles -> index_select the LUT -> multiply by the broadcast absmax). Both equal
// bitsandbytes' dequantize_4bit of the same state bit for bit (fp32 and bf16 outputs).
at::Tensor dequantize_nf4(const Nf4Weight& q, at::ScalarType out_dtype);
// The device-agnostic ATen formulation (exposed for tests/benchmarks; same result).
at::Tensor dequantize_nf4_aten(const Nf4Weight& q, at::ScalarType out_dtype);

// Per-block absmax, float32 [nblocks]; dequantized (code[q] * absmax2 + offset) if double quant.
at::Tensor nf4_absmax(const Nf4Weight& q);

// Codes 0..15 per element, uint8 [numel] (unpacked from q.packed). For tests and debugging.
at::Tensor nf4_unpack_codes(const Nf4Weight& q);

// bitsandbytes quantize_blockwise with a given code (sorted, [256]): x float32 [n] ->
// codes uint8 [n] and absmax float32 [ceil(n/block_size)]. CPU tensors.
void quantize_blockwise_8bit(const at::Tensor& x, const at::Tensor& code, int64_t block_size,
                             at::Tensor* codes_out, at::Tensor* absmax_out);

struct Int8Weight {
  at::Tensor q;                // int8 [out, in]
  at::Tensor scale;            // float32 [out] = absmax_row / 127
  std::vector<int64_t> shape;  // [out, in]
  at::ScalarType dtype = at::kFloat;  // original dtype
};

// w: [out, in] (or any [rows, ...]: rows = size(0)), fp32/fp16/bf16.
Int8Weight quantize_int8_rowwise(const at::Tensor& w);
at::Tensor dequantize_int8(const Int8Weight& q, at::ScalarType out_dtype);  // [out, in]

// Bytes of everything needed to dequantize (packed codes + statistics + code books + offset).
// Always counted: packed ceil(n/2) + the NF4 code book 4*16 (quant_map in checkpoints).
// With double quant: + nblocks (absmax_q) + 4*ceil(nblocks/256) (absmax2) + 4*256 (nested code)
// + 4 (offset); for 4864x896: 2179072+68096+1064+1024+4+64 = 2249324 B = 0.5161 B/param
// (<= 0.53). Without double quant: + 4*nblocks (fp32 absmax) = 0.5626 B/param.
int64_t storage_bytes(const Nf4Weight& q);
// Int8: n + 4*rows.
int64_t storage_bytes(const Int8Weight& q);

}  // namespace lorafit
