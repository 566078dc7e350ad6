// JSON for the files a model folder holds (safetensors headers, config.json,
// model.safetensors.index.json, bitsandbytes quant_state blobs): nlohmann::ordered_json, so objects
// keep their key order (the safetensors header order) and integers keep all 64 bits (data_offsets
// above 2^53). parse_json() adds what these files need on top of nlohmann's parser:
//   - errors as std::runtime_error "invalid JSON at byte N: <what>" (N counted from 0), which callers
//     wrap in a lorafit::Error naming the file;
//   - NaN, Infinity and -Infinity, which Python's json module writes (and transformers reads back),
//     and numbers too large for a double (1e400: +-infinity, as Python and JavaScript read them);
//   - at most 64 nested arrays/objects;
//   - a key given twice in one object is an error (nlohmann would keep the last value silently, the
//     old reader the first; a safetensors header listing a tensor twice is refused either way).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lorafit {

using Json = nlohmann::ordered_json;

// Throws std::runtime_error("invalid JSON at byte N: ...").
Json parse_json(const char* data, size_t size);
inline Json parse_json(std::string_view text) { return parse_json(text.data(), text.size()); }

// The member `key`, or nullptr when absent or when `j` is not an object.
inline const Json* json_find(const Json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// A number as messages show it, which is the source text for what JSON.stringify and Python's json
// write for integers: integers with all their digits (also whole doubles below 1e21: -64.0 -> "-64",
// -100000000000000000000 stays so), other numbers as the shortest text that reads back the same
// double (1e30 -> "1e+30", 64.5), NaN / Infinity / -Infinity as Python writes them.
std::string json_number_text(const Json& number);

}  // namespace lorafit
