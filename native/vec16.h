// 16 fp32 lanes as one GCC vector value, for the CPU kernels (small_gemm.cc, layers/swiglu.cc):
// locals of this type stay in registers (one AVX-512 register, two AVX2 or four SSE ones in the
// clones), where GCC keeps a float[4][16] accumulator array in memory and chains every update
// through a store and a load. Include in .cc files only: the vectors pass by value between
// inlined functions of one translation unit (GCC's -Wpsabi note about AVX-512 argument passing
// concerns calls across units, of which there are none).
#pragma once
#include <c10/util/BFloat16.h>

#include <cstdint>

#pragma GCC diagnostic ignored "-Wpsabi"

// AVX-512 and AVX2+FMA clones of a function, picked at load time (the addon is built for plain
// x86-64, whose SSE2 loops run at a third of the speed here); elsewhere it compiles once.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define LORAFIT_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LORAFIT_VECTOR_CLONES
#endif
#define LORAFIT_INLINE __attribute__((always_inline)) inline

namespace lorafit::vec16 {

constexpr int kLanes = 16;
using bf16 = c10::BFloat16;
typedef float v16 __attribute__((vector_size(64)));
typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef uint16_t u16x16 __attribute__((vector_size(32)));

LORAFIT_INLINE v16 load16(const float* p) {
  v16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
LORAFIT_INLINE v16 load16(const bf16* p) {  // bf16 -> fp32 is exact: the bits shifted up
  u16x16 h;
  __builtin_memcpy(&h, p, sizeof h);
  const u32x16 w = __builtin_convertvector(h, u32x16) << 16;
  v16 v;
  __builtin_memcpy(&v, &w, sizeof v);
  return v;
}
// The bf16 bits of v: round to nearest even, NaN as 0x7FC0 (c10::BFloat16's rounding).
LORAFIT_INLINE u32x16 bf16_bits(v16 v) {
  u32x16 b;
  __builtin_memcpy(&b, &v, sizeof b);
  const u32x16 r = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
  return v != v ? u32x16{} + 0x7FC0u : r;
}
LORAFIT_INLINE void store16(float* p, v16 v) { __builtin_memcpy(p, &v, sizeof v); }
LORAFIT_INLINE void store16(bf16* p, v16 v) {
  const u16x16 h = __builtin_convertvector(bf16_bits(v), u16x16);
  __builtin_memcpy(p, &h, sizeof h);
}
// v rounded to T and back: what storing it in a T tensor keeps.
template <typename T>
LORAFIT_INLINE v16 round_to(v16 v) {
  if constexpr (sizeof(T) == sizeof(float)) {
    return v;
  } else {
    const u32x16 w = bf16_bits(v) << 16;
    v16 r;
    __builtin_memcpy(&r, &w, sizeof r);
    return r;
  }
}
LORAFIT_INLINE float sum16(v16 v) {
  float s = 0;
  for (int l = 0; l < kLanes; ++l) s += v[l];
  return s;
}
LORAFIT_INLINE float max16(v16 v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = m < v[i] ? v[i] : m;  // std::max
  return m;
}
// exp(x), within 2 ulp of expf over its range: 2^n * p(r), x = n ln2 + r, |r| <= ln2 / 2, p the
// degree-6 Taylor polynomial (Cephes' expf scheme); exp underflows to 0 below -87.3 and is inf above 88.7.
LORAFIT_INLINE v16 exp16(v16 x) {
  const v16 zero{};
  const v16 hi = zero + 88.72283935546875f, lo = zero - 87.33654022216797f;
  const v16 xc = x > hi ? hi : (x < lo ? lo : x);
  const v16 n = __builtin_convertvector(__builtin_convertvector(xc * 1.44269504088896341f + (xc < zero ? zero - 0.5f : zero + 0.5f), i32x16), v16);
  const v16 r = xc - n * 0.693359375f + n * 2.12194440e-4f;  // ln 2 in two parts (exact first)
  v16 p = zero + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const i32x16 e = (__builtin_convertvector(n, i32x16) + 127) << 23;  // 2^n
  v16 scale;
  __builtin_memcpy(&scale, &e, sizeof scale);
  v16 out = p * scale;
  out = x > hi ? zero + __builtin_inff() : out;
  return x < lo ? zero : out;
}

}  // namespace lorafit::vec16
