#include "bnb_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "error.h"
#include "json.h"
#include "safetensors.h"

namespace lorafit {

namespace {

// Python's repr(float): the shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16,
// otherwise d.ddde-XX with at least two exponent digits.
std::string python_float_repr(double v) {
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string s(buf, r.ptr);  // [-]d[.ddd]e[+-]XX
  bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  const size_t e = s.find('e');
  std::string digits = s.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(s.substr(e + 1));
  std::string out;
  if (exp >= -4 && exp < 16) {  // Python switches to exponent form below 1e-4
    if (exp >= 0) {
      if (static_cast<int>(digits.size()) <= exp + 1) out = digits + std::string(exp + 1 - digits.size(), '0') + ".0";
      else out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    } else {
      out = "0." + std::string(-exp - 1, '0') + digits;
    }
    return (neg ? "-" : "") + out;
  }
  out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char eb[16];
  std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return (neg ? "-" : "") + out + eb;
}

at::Tensor bytes_tensor(const std::string& s) {
  at::Tensor t = at::empty({static_cast<int64_t>(s.size())}, at::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

at::ScalarType bnb_dtype_from_name(const std::string& name, const std::string& where) {
  std::string n = name.rfind("torch.", 0) == 0 ? name.substr(6) : name;
  if (n == "float32") return at::kFloat;
  if (n == "bfloat16") return at::kBFloat16;
  if (n == "float16") return at::kHalf;
  throw Error("E_QUANT_STATE", where + ": unsupported dtype '" + name + "' (expected float32, bfloat16 or float16)");
}

}  // namespace

std::string bnb_dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: throw Error("E_QUANT_STATE", std::string("no bitsandbytes name for dtype ") + c10::toString(t));
  }
}

std::string bnb_nf4_state_json(const Nf4Weight& q) {
  std::string shape;
  for (size_t i = 0; i < q.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(q.shape[i]);
  std::string s = "{\"quant_type\": \"nf4\", \"blocksize\": " + std::to_string(q.block_size) + ", \"dtype\": \"" +
                  bnb_dtype_name(q.dtype) + "\", \"shape\": [" + shape + "]";
  if (q.double_quant)
    s += ", \"nested_blocksize\": " + std::to_string(q.nested_block_size) +
         ", \"nested_dtype\": \"float32\", \"nested_offset\": " + python_float_repr(static_cast<double>(q.offset));
  return s + "}";
}

std::vector<std::pair<std::string, at::Tensor>> bnb_nf4_serialize(const Nf4Weight& q, const std::string& key) {
  auto cpu = [](const at::Tensor& t, at::ScalarType st) { return t.detach().to(at::kCPU, st).contiguous(); };
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.emplace_back(key, cpu(q.packed, at::kByte).view({-1, 1}));
  if (q.double_quant) {
    out.emplace_back(key + ".absmax", cpu(q.absmax_q, at::kByte));
  } else {
    out.emplace_back(key + ".absmax", cpu(q.absmax, at::kFloat));
  }
  out.emplace_back(key + ".quant_map", nf4_code());
  if (q.double_quant) {
    out.emplace_back(key + ".nested_absmax", cpu(q.absmax2, at::kFloat));
    out.emplace_back(key + ".nested_quant_map", cpu(q.nested_code, at::kFloat));
  }
  out.emplace_back(key + kBnbNf4StateSuffix, bytes_tensor(bnb_nf4_state_json(q)));
  return out;
}

Nf4Weight bnb_nf4_deserialize(const std::function<at::Tensor(const std::string&)>& get, const std::string& key,
                              at::IntArrayRef expected_shape) {
  const std::string state_key = key + kBnbNf4StateSuffix;
  auto fail = [](const std::string& tensor, const std::string& what) -> void {
    throw Error("E_QUANT_STATE", "quantized weight '" + tensor + "': " + what);
  };
  at::Tensor blob = get(state_key);
  if (!blob.defined()) {
    if (get(key + kBnbFp4StateSuffix).defined())
      fail(key + kBnbFp4StateSuffix, "bitsandbytes FP4 is not supported; lorafit reads NF4 (quant_type 'nf4') only");
    fail(state_key, "missing");
  }
  if (blob.scalar_type() != at::kByte || blob.dim() != 1) fail(state_key, "must be a 1-D U8 tensor holding UTF-8 JSON");
  at::Tensor b = blob.contiguous();
  const std::string text(reinterpret_cast<const char*>(b.data_ptr<uint8_t>()), static_cast<size_t>(b.numel()));
  Json js;
  try {
    js = parse_json(text);
  } catch (const std::exception& e) {
    fail(state_key, std::string("the quant_state blob is not valid JSON (") + e.what() + ")");
  }
  if (!js.is_object()) fail(state_key, "the quant_state blob is not a JSON object");
  auto field = [&](const char* name) -> const Json& {
    const Json* f = json_find(js, name);
    if (!f) fail(state_key, std::string("the quant_state blob has no '") + name + "'");
    return *f;
  };
  auto integer = [&](const char* name) -> int64_t {
    const Json& f = field(name);
    const double v = f.is_number() ? f.get<double>() : 0;
    if (v != std::floor(v) || v < 1 || v > (1LL << 40)) fail(state_key, std::string("'") + name + "' must be a positive integer");
    return static_cast<int64_t>(v);
  };

  Nf4Weight q;
  const Json& qt = field("quant_type");
  if (!qt.is_string() || qt.get_ref<const std::string&>() != "nf4") fail(state_key, "quant_type must be \"nf4\"");
  q.block_size = integer("blocksize");
  if (q.block_size % 2 != 0) fail(state_key, "blocksize must be even");
  const Json& dt = field("dtype");
  if (!dt.is_string()) fail(state_key, "'dtype' must be a string");
  q.dtype = bnb_dtype_from_name(dt.get<std::string>(), "quantized weight '" + state_key + "'");
  const Json& shape = field("shape");
  if (!shape.is_array()) fail(state_key, "'shape' must be an array");
  for (const auto& d : shape) {
    const double v = d.is_number() ? d.get<double>() : 0;
    if (v < 1 || v != std::floor(v) || v > 1e12) fail(state_key, "'shape' entries must be positive integers");
    q.shape.push_back(static_cast<int64_t>(v));
  }
  if (at::IntArrayRef(q.shape) != expected_shape)
    fail(state_key, "shape " + shape_string(q.shape) + " differs from the " + shape_string(expected_shape) + " config.json implies");

  auto tensor = [&](const std::string& k, at::ScalarType st, int64_t numel) {
    at::Tensor t = get(k);
    if (!t.defined()) fail(k, "missing");
    if (t.scalar_type() != st) fail(k, std::string("has dtype ") + c10::toString(t.scalar_type()) + ", expected " + c10::toString(st));
    if (t.numel() != numel) fail(k, "has " + std::to_string(t.numel()) + " values, expected " + std::to_string(numel));
    return t.contiguous().view({-1});
  };
  q.packed = tensor(key, at::kByte, (q.numel() + 1) / 2).view({-1, 1});
  at::Tensor qmap = tensor(key + ".quant_map", at::kFloat, 16);
  if (!at::equal(qmap, nf4_code())) fail(key + ".quant_map", "is not the NF4 code book (a custom 4-bit code is not supported)");
  const bool nested = json_find(js, "nested_offset") != nullptr || get(key + ".nested_absmax").defined();
  if (nested) {
    q.double_quant = true;
    q.nested_block_size = integer("nested_blocksize");
    const Json& off = field("nested_offset");
    if (!off.is_number() || !std::isfinite(off.get<double>())) fail(state_key, "'nested_offset' must be a finite number");
    q.offset = static_cast<float>(off.get<double>());
    if (const Json* nd = json_find(js, "nested_dtype"); nd && (!nd->is_string() || (nd->get_ref<const std::string&>() != "float32" && nd->get_ref<const std::string&>() != "torch.float32")))
      fail(state_key, "nested_dtype must be float32");
    q.absmax_q = tensor(key + ".absmax", at::kByte, q.nblocks());
    q.absmax2 = tensor(key + ".nested_absmax", at::kFloat, (q.nblocks() + q.nested_block_size - 1) / q.nested_block_size);
    q.nested_code = tensor(key + ".nested_quant_map", at::kFloat, 256);  // used as stored
  } else {
    q.absmax = tensor(key + ".absmax", at::kFloat, q.nblocks());
  }
  return q;
}

}  // namespace lorafit
