// quant.cc: NF4 (+ double quant) and int8 row-wise quantization. See quant.h for semantics.
#include "quant.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>

namespace lorafit {
namespace {

// bitsandbytes get_4bit_type("nf4") / dDequantizeNF4 (index = code).
constexpr float kNf4Code[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230123233795f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

// dQuantizeNF4 decision tree thresholds (fp32 literals from kernels.cu), ascending:
// code = #{t : x > t}.
constexpr float kNf4Thresholds[15] = {
    -0.8480964004993439f,  -0.6106329262256622f, -0.4599952697753906f,
    -0.33967943489551544f, -0.23460740596055984f, -0.13791173323988914f,
    -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f,
    0.2035212516784668f,   0.2920137718319893f,  0.3893125355243683f,
    0.5016634166240692f,   0.6427869200706482f,  0.8614784181118011f,
};

// bitsandbytes create_dynamic_map(signed=True) as produced by bitsandbytes 0.43.3 on torch
// 1.13 (the shared/fixtures/hf/nf4 reference), sorted ascending, as exact fp32 hex literals.
// The python function builds it from torch.linspace(0.1, 1, 2^i + 1) fp32 means times 10^(i-6),
// i = 0..6, both signs, plus 0 and 1. Its output depends on the torch version: torch 2.x's CPU
// linspace kernel rounds differently, and bitsandbytes 0.50.2 on torch 2.15 yields a map that
// differs in 42 of the 256 entries by 1-2 ulp. So the table is fixed here, not recomputed;
// checkpoints carry their own map (nested_quant_map), which a loader must use as stored.
constexpr float kDynamicMapSigned[256] = {
    -0x1.fc66660000000p-1f, -0x1.f533320000000p-1f, -0x1.ee00000000000p-1f, -0x1.e6cccc0000000p-1f,
    -0x1.df99980000000p-1f, -0x1.d866660000000p-1f, -0x1.d133340000000p-1f, -0x1.ca00000000000p-1f,
    -0x1.c2cccc0000000p-1f, -0x1.bb99980000000p-1f, -0x1.b466660000000p-1f, -0x1.ad33320000000p-1f,
    -0x1.a600000000000p-1f, -0x1.9ecccc0000000p-1f, -0x1.9799980000000p-1f, -0x1.9066660000000p-1f,
    -0x1.8933340000000p-1f, -0x1.8200000000000p-1f, -0x1.7accce0000000p-1f, -0x1.73999a0000000p-1f,
    -0x1.6c66680000000p-1f, -0x1.6533340000000p-1f, -0x1.5e00000000000p-1f, -0x1.56ccce0000000p-1f,
    -0x1.4f999a0000000p-1f, -0x1.4866660000000p-1f, -0x1.4133340000000p-1f, -0x1.3a00000000000p-1f,
    -0x1.32cccc0000000p-1f, -0x1.2b999a0000000p-1f, -0x1.2466680000000p-1f, -0x1.1d33340000000p-1f,
    -0x1.1600000000000p-1f, -0x1.0ecccc0000000p-1f, -0x1.07999a0000000p-1f, -0x1.0066660000000p-1f,
    -0x1.f266680000000p-2f, -0x1.e400000000000p-2f, -0x1.d599980000000p-2f, -0x1.c733340000000p-2f,
    -0x1.b8cccc0000000p-2f, -0x1.aa66640000000p-2f, -0x1.9c00000000000p-2f, -0x1.8d99980000000p-2f,
    -0x1.7f33340000000p-2f, -0x1.70cccc0000000p-2f, -0x1.6266640000000p-2f, -0x1.5400000000000p-2f,
    -0x1.4599980000000p-2f, -0x1.3733340000000p-2f, -0x1.28cccc0000000p-2f, -0x1.1a66680000000p-2f,
    -0x1.0c00000000000p-2f, -0x1.fb33340000000p-3f, -0x1.de66680000000p-3f, -0x1.c1999a0000000p-3f,
    -0x1.a4cccc0000000p-3f, -0x1.8800000000000p-3f, -0x1.6b33320000000p-3f, -0x1.4e66660000000p-3f,
    -0x1.31999a0000000p-3f, -0x1.14cccc0000000p-3f, -0x1.f000000000000p-4f, -0x1.b666680000000p-4f,
    -0x1.93d70a0000000p-4f, -0x1.8851ea0000000p-4f, -0x1.7cccce0000000p-4f, -0x1.7147ae0000000p-4f,
    -0x1.65c2900000000p-4f, -0x1.5a3d700000000p-4f, -0x1.4eb8500000000p-4f, -0x1.4333340000000p-4f,
    -0x1.37ae140000000p-4f, -0x1.2c28f60000000p-4f, -0x1.20a3d60000000p-4f, -0x1.151eba0000000p-4f,
    -0x1.09999a0000000p-4f, -0x1.fc28f40000000p-5f, -0x1.e51eba0000000p-5f, -0x1.ce147a0000000p-5f,
    -0x1.b70a3e0000000p-5f, -0x1.a000000000000p-5f, -0x1.88f5c20000000p-5f, -0x1.71eb860000000p-5f,
    -0x1.5ae1460000000p-5f, -0x1.43d70a0000000p-5f, -0x1.2cccce0000000p-5f, -0x1.15c28e0000000p-5f,
    -0x1.fd70a40000000p-6f, -0x1.cf5c260000000p-6f, -0x1.a147ae0000000p-6f, -0x1.7333340000000p-6f,
    -0x1.451eb80000000p-6f, -0x1.170a3e0000000p-6f, -0x1.d1eb860000000p-7f, -0x1.75c2900000000p-7f,
    -0x1.3e76c80000000p-7f, -0x1.2c08300000000p-7f, -0x1.19999a0000000p-7f, -0x1.072b020000000p-7f,
    -0x1.e978d40000000p-8f, -0x1.c49ba60000000p-8f, -0x1.9fbe760000000p-8f, -0x1.7ae1480000000p-8f,
    -0x1.56041a0000000p-8f, -0x1.3126e80000000p-8f, -0x1.0c49ba0000000p-8f, -0x1.ced9140000000p-9f,
    -0x1.851eb80000000p-9f, -0x1.3b645a0000000p-9f, -0x1.e353f80000000p-10f, -0x1.4fdf3a0000000p-10f,
    -0x1.eecbfe0000000p-11f, -0x1.b3d07c0000000p-11f, -0x1.78d5000000000p-11f, -0x1.3dd9820000000p-11f,
    -0x1.02de020000000p-11f, -0x1.8fc5060000000p-12f, -0x1.19ce0a0000000p-12f, -0x1.47ae160000000p-13f,
    -0x1.743e960000000p-14f, -0x1.15df660000000p-14f, -0x1.6f00680000000p-15f, -0x1.64840c0000000p-16f,
    -0x1.040bfe0000000p-17f, -0x1.b435280000000p-19f, -0x1.27476e0000000p-21f, 0x0.0p+0f,
    0x1.27476e0000000p-21f, 0x1.b435280000000p-19f, 0x1.040bfe0000000p-17f, 0x1.64840c0000000p-16f,
    0x1.6f00680000000p-15f, 0x1.15df660000000p-14f, 0x1.743e960000000p-14f, 0x1.47ae160000000p-13f,
    0x1.19ce0a0000000p-12f, 0x1.8fc5060000000p-12f, 0x1.02de020000000p-11f, 0x1.3dd9820000000p-11f,
    0x1.78d5000000000p-11f, 0x1.b3d07c0000000p-11f, 0x1.eecbfe0000000p-11f, 0x1.4fdf3a0000000p-10f,
    0x1.e353f80000000p-10f, 0x1.3b645a0000000p-9f, 0x1.851eb80000000p-9f, 0x1.ced9140000000p-9f,
    0x1.0c49ba0000000p-8f, 0x1.3126e80000000p-8f, 0x1.56041a0000000p-8f, 0x1.7ae1480000000p-8f,
    0x1.9fbe760000000p-8f, 0x1.c49ba60000000p-8f, 0x1.e978d40000000p-8f, 0x1.072b020000000p-7f,
    0x1.19999a0000000p-7f, 0x1.2c08300000000p-7f, 0x1.3e76c80000000p-7f, 0x1.75c2900000000p-7f,
    0x1.d1eb860000000p-7f, 0x1.170a3e0000000p-6f, 0x1.451eb80000000p-6f, 0x1.7333340000000p-6f,
    0x1.a147ae0000000p-6f, 0x1.cf5c260000000p-6f, 0x1.fd70a40000000p-6f, 0x1.15c28e0000000p-5f,
    0x1.2cccce0000000p-5f, 0x1.43d70a0000000p-5f, 0x1.5ae1460000000p-5f, 0x1.71eb860000000p-5f,
    0x1.88f5c20000000p-5f, 0x1.a000000000000p-5f, 0x1.b70a3e0000000p-5f, 0x1.ce147a0000000p-5f,
    0x1.e51eba0000000p-5f, 0x1.fc28f40000000p-5f, 0x1.09999a0000000p-4f, 0x1.151eba0000000p-4f,
    0x1.20a3d60000000p-4f, 0x1.2c28f60000000p-4f, 0x1.37ae140000000p-4f, 0x1.4333340000000p-4f,
    0x1.4eb8500000000p-4f, 0x1.5a3d700000000p-4f, 0x1.65c2900000000p-4f, 0x1.7147ae0000000p-4f,
    0x1.7cccce0000000p-4f, 0x1.8851ea0000000p-4f, 0x1.93d70a0000000p-4f, 0x1.b666680000000p-4f,
    0x1.f000000000000p-4f, 0x1.14cccc0000000p-3f, 0x1.31999a0000000p-3f, 0x1.4e66660000000p-3f,
    0x1.6b33320000000p-3f, 0x1.8800000000000p-3f, 0x1.a4cccc0000000p-3f, 0x1.c1999a0000000p-3f,
    0x1.de66680000000p-3f, 0x1.fb33340000000p-3f, 0x1.0c00000000000p-2f, 0x1.1a66680000000p-2f,
    0x1.28cccc0000000p-2f, 0x1.3733340000000p-2f, 0x1.4599980000000p-2f, 0x1.5400000000000p-2f,
    0x1.6266640000000p-2f, 0x1.70cccc0000000p-2f, 0x1.7f33340000000p-2f, 0x1.8d99980000000p-2f,
    0x1.9c00000000000p-2f, 0x1.aa66640000000p-2f, 0x1.b8cccc0000000p-2f, 0x1.c733340000000p-2f,
    0x1.d599980000000p-2f, 0x1.e400000000000p-2f, 0x1.f266680000000p-2f, 0x1.0066660000000p-1f,
    0x1.07999a0000000p-1f, 0x1.0ecccc0000000p-1f, 0x1.1600000000000p-1f, 0x1.1d33340000000p-1f,
    0x1.2466680000000p-1f, 0x1.2b999a0000000p-1f, 0x1.32cccc0000000p-1f, 0x1.3a00000000000p-1f,
    0x1.4133340000000p-1f, 0x1.4866660000000p-1f, 0x1.4f999a0000000p-1f, 0x1.56ccce0000000p-1f,
    0x1.5e00000000000p-1f, 0x1.6533340000000p-1f, 0x1.6c66680000000p-1f, 0x1.73999a0000000p-1f,
    0x1.7accce0000000p-1f, 0x1.8200000000000p-1f, 0x1.8933340000000p-1f, 0x1.9066660000000p-1f,
    0x1.9799980000000p-1f, 0x1.9ecccc0000000p-1f, 0x1.a600000000000p-1f, 0x1.ad33320000000p-1f,
    0x1.b466660000000p-1f, 0x1.bb99980000000p-1f, 0x1.c2cccc0000000p-1f, 0x1.ca00000000000p-1f,
    0x1.d133340000000p-1f, 0x1.d866660000000p-1f, 0x1.df99980000000p-1f, 0x1.e6cccc0000000p-1f,
    0x1.ee00000000000p-1f, 0x1.f533320000000p-1f, 0x1.fc66660000000p-1f, 0x1.0000000000000p+0f,
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// kernels.cu dQuantize<0>: binary search in the sorted 256-entry code, then pick between the
// final pivot and its neighbour by the fp32 midpoint. Replicated step by step (including the
// asymmetric ends) so codes match bitsandbytes bit for bit.
uint8_t dquantize_8bit(const float* code, float x) {
  int pivot = 127;
  int upper_pivot = 255;
  int lower_pivot = 0;
  float lower = -1.0f;
  float upper = 1.0f;
  float val = code[pivot];
  for (int i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[pivot];
  }
  if (upper_pivot == 255) upper = code[upper_pivot];
  if (lower_pivot == 0) lower = code[lower_pivot];
  if (x > val) {
    float midpoint = (upper + val) * 0.5f;
    return static_cast<uint8_t>(x > midpoint ? upper_pivot : pivot);
  }
  float midpoint = (lower + val) * 0.5f;
  return static_cast<uint8_t>(x < midpoint ? lower_pivot : pivot);
}

// Zero-pad a flat tensor [n] to [nblocks * block_size] and view it as [nblocks, block_size].
at::Tensor as_blocks(const at::Tensor& flat, int64_t block_size) {
  const int64_t n = flat.numel();
  const int64_t nb = ceil_div(n, block_size);
  at::Tensor padded = flat;
  if (nb * block_size != n) padded = at::constant_pad_nd(flat, {0, nb * block_size - n}, 0);
  return padded.view({nb, block_size});
}

// CPU dequantize: per block a 16-entry table T(code[k] * absmax) (the same fp32 multiply and
// rounding as elementwise), then pure lookups. out: [n] of T.
template <typename T>
void dequant_nf4_cpu(const uint8_t* packed, const float* absmax, int64_t n, int64_t block_size,
                     T* out) {
  const int64_t nb = ceil_div(n, block_size);
  const int64_t grain = std::max<int64_t>(1, 16384 / block_size);
  at::parallel_for(0, nb, grain, [&](int64_t b0, int64_t b1) {
    T table[16];
    for (int64_t b = b0; b < b1; ++b) {
      const float am = absmax[b];
      for (int k = 0; k < 16; ++k) table[k] = static_cast<T>(kNf4Code[k] * am);
      const int64_t start = b * block_size;  // even, since block_size is even
      const int64_t end = std::min(n, start + block_size);
      const int64_t npairs = (end - start) / 2;
      const uint8_t* p = packed + start / 2;
      T* o = out + start;
      for (int64_t j = 0; j < npairs; ++j) {
        const uint8_t byte = p[j];
        o[2 * j] = table[byte >> 4];
        o[2 * j + 1] = table[byte & 0x0F];
      }
      if ((end - start) & 1) o[2 * npairs] = table[p[npairs] >> 4];
    }
  });
}

void check_nf4(const Nf4Weight& q) {
  TORCH_CHECK(q.packed.defined() && q.packed.scalar_type() == at::kByte,
              "Nf4Weight.packed must be a uint8 tensor");
  TORCH_CHECK(q.block_size > 0 && q.block_size % 2 == 0, "NF4 block_size must be even, got ",
              q.block_size);
  TORCH_CHECK(q.packed.numel() == ceil_div(q.numel(), 2), "Nf4Weight.packed has ",
              q.packed.numel(), " bytes, expected ", ceil_div(q.numel(), 2));
  if (q.double_quant) {
    TORCH_CHECK(q.absmax_q.defined() && q.absmax2.defined() && q.nested_code.defined(),
                "double-quant Nf4Weight needs absmax_q, absmax2 and nested_code");
    TORCH_CHECK(q.absmax_q.numel() == q.nblocks(), "absmax_q has ", q.absmax_q.numel(),
                " entries, expected ", q.nblocks());
  } else {
    TORCH_CHECK(q.absmax.defined() && q.absmax.numel() == q.nblocks(), "absmax must have ",
                q.nblocks(), " entries");
  }
}

}  // namespace

int64_t Nf4Weight::numel() const { return shape_numel(shape); }
int64_t Nf4Weight::nblocks() const { return ceil_div(numel(), block_size); }

at::Tensor nf4_code() {
  return at::tensor(at::ArrayRef<float>(kNf4Code, 16), at::kFloat);  // [16]
}

at::Tensor nf4_thresholds() {
  return at::tensor(at::ArrayRef<float>(kNf4Thresholds, 15), at::kFloat);  // [15]
}

at::Tensor dynamic_map_signed() {
  return at::tensor(at::ArrayRef<float>(kDynamicMapSigned, 256), at::kFloat);  // [256]
}

void quantize_blockwise_8bit(const at::Tensor& x, const at::Tensor& code, int64_t block_size,
                             at::Tensor* codes_out, at::Tensor* absmax_out) {
  TORCH_CHECK(code.numel() == 256 && code.scalar_type() == at::kFloat, "code must be f32 [256]");
  at::Tensor flat = x.detach().to(at::kCPU, at::kFloat).contiguous().view({-1});  // [n]
  at::Tensor c = code.to(at::kCPU).contiguous();
  const int64_t n = flat.numel();
  at::Tensor blocks = as_blocks(flat, block_size);              // [nb, bs]
  at::Tensor absmax = std::get<0>(blocks.abs().max(1));         // [nb]
  at::Tensor scaled = blocks * at::reciprocal(absmax).unsqueeze(1);  // [nb, bs], fp32 1/a then *
  scaled = scaled.view({-1}).narrow(0, 0, n).contiguous();      // [n]
  at::Tensor codes = at::empty({n}, at::kByte);
  const float* sp = scaled.data_ptr<float>();
  const float* cp = c.data_ptr<float>();
  uint8_t* qp = codes.data_ptr<uint8_t>();
  at::parallel_for(0, n, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) qp[i] = dquantize_8bit(cp, sp[i]);
  });
  *codes_out = codes;
  *absmax_out = absmax;
}

Nf4Weight quantize_nf4(const at::Tensor& w, int64_t block_size, bool double_quant) {
  TORCH_CHECK(w.defined() && w.numel() > 0, "quantize_nf4: empty weight");
  TORCH_CHECK(block_size > 0 && block_size % 2 == 0, "quantize_nf4: block_size must be even, got ",
              block_size);
  const auto st = w.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble,
              "quantize_nf4: unsupported dtype ", st);
  Nf4Weight q;
  q.shape = w.sizes().vec();
  q.dtype = st;
  q.block_size = block_size;
  const int64_t n = w.numel();

  // Blocks are independent: quantize ~1M values at a time so the fp32 temporaries stay a few MB
  // whatever the weight's size (loading a model quantizes tensor by tensor; this keeps its peak
  // memory near the quantized size). Chunks start on block boundaries, which are even.
  const int64_t nb = ceil_div(n, block_size);
  const auto dev = at::TensorOptions().device(w.device());
  at::Tensor src = w.detach().contiguous().view({-1});                // [n], input dtype
  at::Tensor absmax = at::empty({nb}, dev.dtype(at::kFloat));         // [nb]
  at::Tensor packed_all = at::empty({ceil_div(n, 2)}, dev.dtype(at::kByte));
  at::Tensor thr = nf4_thresholds().to(w.device());
  const int64_t chunk_blocks = std::max<int64_t>(1, (int64_t{1} << 20) / block_size);
  for (int64_t b0 = 0; b0 < nb; b0 += chunk_blocks) {
    const int64_t b1 = std::min(nb, b0 + chunk_blocks);
    const int64_t e0 = b0 * block_size, e1 = std::min(n, b1 * block_size);
    // fp16/bf16 -> fp32 is exact: absmax and scaling happen in fp32 of the input values.
    at::Tensor flat = src.narrow(0, e0, e1 - e0).to(at::kFloat);     // [m]
    at::Tensor blocks = as_blocks(flat, block_size);                   // [b1-b0, bs], zero padded
    at::Tensor am = std::get<0>(blocks.abs().max(1));                  // [b1-b0]
    // fp32 reciprocal then multiply (CUDA kQuantizeBlockwise). The clamp only matters for an
    // all-zero block: 0 * (1/1e-38) = 0 -> code 7 (value 0.0), as bitsandbytes' CPU/default
    // backend does; CUDA would compute 0 * inf = NaN -> code 0 (-1.0), which after double quant
    // (nonzero dequantized absmax) would not dequantize to 0.
    at::Tensor scaled = blocks * at::reciprocal(am.clamp_min(1e-38f)).unsqueeze(1);  // [b1-b0, bs]
    // bucketize(right=false) = number of thresholds strictly below x (the CUDA decision tree).
    at::Tensor codes = at::bucketize(scaled, thr, /*out_int32=*/true, /*right=*/false).to(at::kByte).view({-1});
    // an even count (bs even): pair up, earlier element in the high nibble.
    at::Tensor pairs = codes.view({-1, 2});                            // [(b1-b0)*bs/2, 2]
    at::Tensor packed = pairs.select(1, 0).bitwise_left_shift(4).bitwise_or(pairs.select(1, 1));
    const int64_t nbytes = ceil_div(e1 - e0, 2);
    packed_all.narrow(0, e0 / 2, nbytes).copy_(packed.narrow(0, 0, nbytes));
    absmax.narrow(0, b0, b1 - b0).copy_(am);
  }
  q.packed = packed_all.view({-1, 1});  // [ceil(n/2), 1]

  if (!double_quant) {
    q.absmax = absmax.contiguous();
    return q;
  }
  q.double_quant = true;
  at::Tensor absmax_cpu = absmax.to(at::kCPU);
  at::Tensor offset = absmax_cpu.mean();  // fp32 mean, as absmax.mean() in bitsandbytes
  q.offset = offset.item<float>();
  at::Tensor centered = absmax_cpu - offset;  // [nb]
  q.nested_code = dynamic_map_signed();
  at::Tensor aq, a2;
  quantize_blockwise_8bit(centered, q.nested_code, q.nested_block_size, &aq, &a2);
  q.absmax_q = aq.to(w.device());
  q.absmax2 = a2.to(w.device());
  q.nested_code = q.nested_code.to(w.device());
  return q;
}

at::Tensor nf4_absmax(const Nf4Weight& q) {
  if (!q.double_quant) return q.absmax;
  const int64_t nb = q.absmax_q.numel();
  // dequantize_blockwise: code[q] * absmax2[block], then += offset (two fp32 ops).
  at::Tensor vals = q.nested_code.index_select(0, q.absmax_q.to(at::kInt));  // [nb]
  at::Tensor blocks = as_blocks(vals, q.nested_block_size);                   // [nb2, 256]
  at::Tensor out = (blocks * q.absmax2.unsqueeze(1)).view({-1}).narrow(0, 0, nb);
  return (out + q.offset).contiguous();                                       // [nb]
}

at::Tensor nf4_unpack_codes(const Nf4Weight& q) {
  at::Tensor p = q.packed.view({-1});                                          // [nbytes]
  at::Tensor codes = at::stack({p.bitwise_right_shift(4), p.bitwise_and(0x0F)}, 1);  // [nbytes, 2]
  return codes.view({-1}).narrow(0, 0, q.numel()).contiguous();                // [n]
}

at::Tensor dequantize_nf4_aten(const Nf4Weight& q, at::ScalarType out_dtype) {
  check_nf4(q);
  const int64_t n = q.numel();
  at::Tensor codes = nf4_unpack_codes(q).to(at::kInt);                        // [n]
  at::Tensor lut = nf4_code().to(q.packed.device());                           // [16]
  at::Tensor vals = lut.index_select(0, codes);                                // [n] f32
  at::Tensor blocks = as_blocks(vals, q.block_size);                           // [nb, bs]
  at::Tensor absmax = nf4_absmax(q).to(at::kFloat);                            // [nb]
  at::Tensor out = (blocks * absmax.unsqueeze(1)).view({-1}).narrow(0, 0, n);  // [n] f32
  return out.to(out_dtype).view(q.shape);
}

at::Tensor dequantize_nf4(const Nf4Weight& q, at::ScalarType out_dtype) {
  check_nf4(q);
  if (!q.packed.device().is_cpu()) return dequantize_nf4_aten(q, out_dtype);
  const int64_t n = q.numel();
  at::Tensor packed = q.packed.contiguous();
  at::Tensor absmax = nf4_absmax(q).to(at::kFloat).contiguous();  // [nb]
  at::Tensor out = at::empty(q.shape, at::TensorOptions().dtype(out_dtype));
  const uint8_t* pp = packed.data_ptr<uint8_t>();
  const float* ap = absmax.data_ptr<float>();
  switch (out_dtype) {
    case at::kFloat:
      dequant_nf4_cpu<float>(pp, ap, n, q.block_size, out.data_ptr<float>());
      break;
    case at::kBFloat16:
      dequant_nf4_cpu<c10::BFloat16>(pp, ap, n, q.block_size, out.data_ptr<c10::BFloat16>());
      break;
    case at::kHalf:
      dequant_nf4_cpu<c10::Half>(pp, ap, n, q.block_size, out.data_ptr<c10::Half>());
      break;
    default:
      return dequantize_nf4_aten(q, out_dtype);
  }
  return out;
}

Int8Weight quantize_int8_rowwise(const at::Tensor& w) {
  TORCH_CHECK(w.defined() && w.dim() >= 1 && w.numel() > 0, "quantize_int8_rowwise: empty weight");
  Int8Weight q;
  q.shape = w.sizes().vec();
  q.dtype = w.scalar_type();
  at::Tensor src = w.detach().reshape({w.size(0), -1});  // [out, in], input dtype
  const int64_t rows = src.size(0), cols = src.size(1);
  at::Tensor out = at::empty({rows, cols}, at::TensorOptions().dtype(at::kChar).device(w.device()));
  at::Tensor absmax = at::empty({rows}, at::TensorOptions().dtype(at::kFloat).device(w.device()));
  // ~1M values at a time: the fp32 temporaries stay small whatever the weight's size.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(cols, 1));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t m = std::min(chunk, rows - r0);
    at::Tensor x = src.narrow(0, r0, m).to(at::kFloat);  // [m, in]
    at::Tensor am = std::get<0>(x.abs().max(1));         // [m]
    // bitsandbytes int8_vectorwise_quant: round(x * (127 / absmax)); zero rows stay zero.
    at::Tensor inv = at::where(am > 0, 127.0f / am, at::zeros_like(am));  // [m]
    out.narrow(0, r0, m).copy_(at::round(x * inv.unsqueeze(1)).clamp(-127, 127).to(at::kChar));
    absmax.narrow(0, r0, m).copy_(am);
  }
  q.q = out.view(q.shape);
  q.scale = absmax / 127.0f;  // [out]
  return q;
}

namespace {
// out[r, c] = T(float(q[r, c]) * scale[r]): the fp32 product rounded once, as the ATen formula
// below, without its [out, in] fp32 temporary (forward and backward dequantize every step).
template <typename T>
void dequant_int8_cpu(const int8_t* q, const float* scale, int64_t rows, int64_t cols, T* out) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float s = scale[r];
      const int8_t* qr = q + r * cols;
      T* o = out + r * cols;
      for (int64_t c = 0; c < cols; ++c) o[c] = static_cast<T>(static_cast<float>(qr[c]) * s);
    }
  });
}
}  // namespace

at::Tensor dequantize_int8(const Int8Weight& q, at::ScalarType out_dtype) {
  if (q.q.device().is_cpu() && (out_dtype == at::kFloat || out_dtype == at::kBFloat16 || out_dtype == at::kHalf)) {
    at::Tensor qq = q.q.contiguous();
    at::Tensor sc = q.scale.to(at::kFloat).contiguous();
    const int64_t rows = qq.size(0), cols = qq.numel() / std::max<int64_t>(rows, 1);
    at::Tensor out = at::empty(q.shape, at::TensorOptions().dtype(out_dtype));
    const int8_t* qp = qq.data_ptr<int8_t>();
    const float* sp = sc.data_ptr<float>();
    if (out_dtype == at::kFloat) dequant_int8_cpu<float>(qp, sp, rows, cols, out.data_ptr<float>());
    else if (out_dtype == at::kBFloat16) dequant_int8_cpu<c10::BFloat16>(qp, sp, rows, cols, out.data_ptr<c10::BFloat16>());
    else dequant_int8_cpu<c10::Half>(qp, sp, rows, cols, out.data_ptr<c10::Half>());
    return out;
  }
  at::Tensor x = q.q.reshape({q.q.size(0), -1}).to(at::kFloat);       // [out, in]
  return (x * q.scale.unsqueeze(1)).to(out_dtype).view(q.shape);
}

int64_t storage_bytes(const Nf4Weight& q) {
  int64_t bytes = q.packed.numel();  // uint8
  if (q.double_quant) {
    bytes += q.absmax_q.numel();            // uint8 [nblocks]
    bytes += 4 * q.absmax2.numel();         // f32 [ceil(nblocks/256)]
    bytes += 4 * q.nested_code.numel();     // f32 [256]
    bytes += 4;                             // offset
  } else {
    bytes += 4 * q.absmax.numel();          // f32 [nblocks]
  }
  bytes += 4 * 16;                          // NF4 code book (quant_map)
  return bytes;
}

int64_t storage_bytes(const Int8Weight& q) { return q.q.numel() + 4 * q.scale.numel(); }

}  // namespace lorafit
