#include "gguf_quants.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>

#include "error.h"

// Bit-exactness with numpy needs every product and sum rounded on its own: a fused multiply-add
// (which GCC forms by default on targets that have one, e.g. aarch64 or -march=native) would
// round once and differ in the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lorafit {

namespace {

constexpr int64_t QK_K = 256;

// Indexed by ggml type number; a null name marks a type lorafit does not dequantize.
constexpr int kMaxType = 31;
const GgmlTypeInfo kTypes[kMaxType] = {
    {"F32", 1, 4},      // 0
    {"F16", 1, 2},      // 1
    {"Q4_0", 32, 18},   // 2
    {"Q4_1", 32, 20},   // 3
    {nullptr, 0, 0},    // 4 (Q4_2, removed)
    {nullptr, 0, 0},    // 5 (Q4_3, removed)
    {"Q5_0", 32, 22},   // 6
    {"Q5_1", 32, 24},   // 7
    {"Q8_0", 32, 34},   // 8
    {nullptr, 0, 0},    // 9 Q8_1 (an activation format)
    {"Q2_K", 256, 84},  // 10
    {"Q3_K", 256, 110}, // 11
    {"Q4_K", 256, 144}, // 12
    {"Q5_K", 256, 176}, // 13
    {"Q6_K", 256, 210}, // 14
    {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0},  // 15-19
    {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0},  // 20-24
    {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0}, {nullptr, 0, 0},  // 25-29
    {"BF16", 1, 2},     // 30
};

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// IEEE half -> float, exact (numpy's npy_halfbits_to_floatbits: NaN payloads are kept).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = h & 0x7c00u, man = h & 0x03ffu;
  if (exp == 0x7c00u) return bits_to_float(sign | 0x7f800000u | (man << 13));  // inf / NaN
  if (exp != 0) return bits_to_float(sign | ((static_cast<uint32_t>(h & 0x7fffu) + 0x1c000u) << 13));
  // zero or subnormal: man * 2^-24 is exact in float
  const float mag = static_cast<float>(man) * 0x1p-24f;
  return sign ? -mag : mag;
}
inline float f16(const uint8_t* p) { return half_to_float(rd16(p)); }

// One block each: b points at block_bytes bytes, y receives block_size floats.

void block_q4_0(const uint8_t* b, float* y) {
  const float d = f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(static_cast<int>(qs[j] & 0x0F) - 8);
    y[j + 16] = d * static_cast<float>(static_cast<int>(qs[j] >> 4) - 8);
  }
}

void block_q4_1(const uint8_t* b, float* y) {
  const float d = f16(b), m = f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

void block_q5_0(const uint8_t* b, float* y) {
  const float d = f16(b);
  const uint32_t qh = rd32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo - 16);
    y[j + 16] = d * static_cast<float>(hi - 16);
  }
}

void block_q5_1(const uint8_t* b, float* y) {
  const float d = f16(b), m = f16(b + 2);
  const uint32_t qh = rd32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo) + m;
    y[j + 16] = d * static_cast<float>(hi) + m;
  }
}

void block_q8_0(const uint8_t* b, float* y) {
  const float d = f16(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// Q2_K: scales[16] (low nibble: scale, high nibble: min), qs[64] (2 bits), d, dmin.
void block_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = f16(b + 80), dmin = f16(b + 82);
  float dl[16], ml[16];
  for (int k = 0; k < 16; ++k) {
    dl[k] = d * static_cast<float>(scales[k] & 0x0F);
    ml[k] = dmin * static_cast<float>(scales[k] >> 4);
  }
  // value e = half*128 + shift*32 + l comes from qs[half*32 + l] >> (2*shift)
  for (int e = 0; e < QK_K; ++e) {
    const int half = e >> 7, shift = (e >> 5) & 3, l = e & 31;
    const int q = (qs[half * 32 + l] >> (2 * shift)) & 3;
    y[e] = dl[e >> 4] * static_cast<float>(q) - ml[e >> 4];
  }
}

// Q3_K: hmask[32], qs[64] (low 2 bits), scales[12] (16 six-bit scales), d.
void block_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = f16(b + 108);
  float dl[16];
  for (int k = 0; k < 16; ++k) {
    const int lo = k < 8 ? (sc[k] & 0x0F) : (sc[k - 8] >> 4);
    const int hi = (sc[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
    dl[k] = d * static_cast<float>((lo | (hi << 4)) - 32);
  }
  for (int e = 0; e < QK_K; ++e) {
    const int half = e >> 7, shift = (e >> 5) & 3, l = e & 31;
    const int ql = (qs[half * 32 + l] >> (2 * shift)) & 3;
    const int hbit = (hmask[l] >> (e >> 5)) & 1;  // set: no offset; clear: -4
    y[e] = dl[e >> 4] * static_cast<float>(ql - ((hbit ^ 1) << 2));
  }
}

// The eight 6-bit (scale, min) pairs of Q4_K/Q5_K (get_scale_min_k4).
void scale_min_k4(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K: d, dmin, scales[12], qs[128]; sub-block j = 2c+h holds the nibbles h of qs[32c .. 32c+31].
void block_q4_k(const uint8_t* b, float* y) {
  const float d = f16(b), dmin = f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(scales, j, &sc, &m);
    const float dj = d * static_cast<float>(sc), mj = dmin * static_cast<float>(m);
    const uint8_t* q = qs + 32 * (j >> 1);
    const int shift = 4 * (j & 1);
    for (int l = 0; l < 32; ++l) y[32 * j + l] = dj * static_cast<float>((q[l] >> shift) & 0x0F) - mj;
  }
}

// Q5_K: Q4_K plus qh[32]: bit j of qh[l] is the fifth bit of value l of sub-block j.
void block_q5_k(const uint8_t* b, float* y) {
  const float d = f16(b), dmin = f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(scales, j, &sc, &m);
    const float dj = d * static_cast<float>(sc), mj = dmin * static_cast<float>(m);
    const uint8_t* q = qs + 32 * (j >> 1);
    const int shift = 4 * (j & 1);
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 0x0F) | (((qh[l] >> j) & 1) << 4);
      y[32 * j + l] = dj * static_cast<float>(v) - mj;
    }
  }
}

// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), d.
void block_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const uint8_t* sc = b + 192;
  const float d = f16(b + 208);
  float dl[16];
  for (int k = 0; k < 16; ++k) dl[k] = d * static_cast<float>(static_cast<int8_t>(sc[k]));
  for (int e = 0; e < QK_K; ++e) {
    const int half = e >> 7, r = e & 127;
    const int lo = (ql[half * 64 + (r & 63)] >> (4 * (r >> 6))) & 0x0F;
    const int hi = (qh[half * 32 + (r & 31)] >> (2 * (r >> 5))) & 3;
    y[e] = dl[e >> 4] * static_cast<float>((lo | (hi << 4)) - 32);
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_fn(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return block_q4_0;
    case GgmlType::Q4_1: return block_q4_1;
    case GgmlType::Q5_0: return block_q5_0;
    case GgmlType::Q5_1: return block_q5_1;
    case GgmlType::Q8_0: return block_q8_0;
    case GgmlType::Q2_K: return block_q2_k;
    case GgmlType::Q3_K: return block_q3_k;
    case GgmlType::Q4_K: return block_q4_k;
    case GgmlType::Q5_K: return block_q5_k;
    case GgmlType::Q6_K: return block_q6_k;
    default: return nullptr;
  }
}

const GgmlTypeInfo& checked_info(GgmlType type) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  if (!info)
    throw Error("E_GGUF", "unsupported ggml tensor type " + std::to_string(static_cast<int32_t>(type)) +
                              " (lorafit dequantizes " + ggml_supported_types() + ")");
  return *info;
}

// ~64K values a task: big enough to amortise scheduling, small enough to split an embedding.
constexpr int64_t kGrainValues = 1 << 16;

}  // namespace

const GgmlTypeInfo* ggml_type_info(GgmlType type) {
  const int32_t t = static_cast<int32_t>(type);
  if (t < 0 || t >= kMaxType || !kTypes[t].name) return nullptr;
  return &kTypes[t];
}

std::string ggml_type_name(GgmlType type) {
  const GgmlTypeInfo* info = ggml_type_info(type);
  return info ? info->name : "type " + std::to_string(static_cast<int32_t>(type));
}

const char* ggml_supported_types() { return "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"; }

int64_t ggml_block_size(GgmlType type) { return checked_info(type).block_size; }
int64_t ggml_block_bytes(GgmlType type) { return checked_info(type).block_bytes; }

int64_t ggml_nbytes(GgmlType type, int64_t n) {
  const GgmlTypeInfo& info = checked_info(type);
  if (n < 0 || n % info.block_size != 0)
    throw Error("E_GGUF", std::to_string(n) + " values of " + info.name + " are not a whole number of blocks of " +
                              std::to_string(info.block_size));
  if (n / info.block_size > (int64_t{1} << 56) / info.block_bytes) throw Error("E_GGUF", std::to_string(n) + " values: absurdly large");
  return n / info.block_size * info.block_bytes;
}

void ggml_dequantize(GgmlType type, const uint8_t* src, int64_t n, float* dst) {
  ggml_nbytes(type, n);  // validates type and n
  if (n == 0) return;
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
      at::parallel_for(0, n, kGrainValues, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) dst[i] = f16(src + 2 * i);
      });
      return;
    case GgmlType::BF16:
      at::parallel_for(0, n, kGrainValues, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) dst[i] = bits_to_float(static_cast<uint32_t>(rd16(src + 2 * i)) << 16);
      });
      return;
    default: break;
  }
  const GgmlTypeInfo& info = checked_info(type);
  const BlockFn fn = block_fn(type);
  const int64_t blocks = n / info.block_size;
  at::parallel_for(0, blocks, std::max<int64_t>(1, kGrainValues / info.block_size), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) fn(src + i * info.block_bytes, dst + i * info.block_size);
  });
}

}  // namespace lorafit
