// A small JSON reader for the files a model folder holds (safetensors headers, config.json,
// model.safetensors.index.json). Objects keep their key order. Throws std::runtime_error with
// the byte offset of the fault; callers wrap it in a lorafit::Error naming the file.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lorafit {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  static Json parse(const char* data, size_t size);
  static Json parse(const std::string& text) { return parse(text.data(), text.size()); }

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }
  bool is_bool() const { return type_ == Type::Bool; }

  double number() const;
  bool boolean() const;
  const std::string& string() const;
  const std::vector<Json>& array() const;
  const std::vector<std::pair<std::string, Json>>& object() const;
  // nullptr when absent (or when this is not an object)
  const Json* find(const std::string& key) const;
  // the exact text of a number, so int64 values above 2^53 survive
  const std::string& number_text() const { return text_; }

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string text_;  // string value, or a number's source text
  std::vector<Json> array_;
  std::vector<std::pair<std::string, Json>> object_;
};

}  // namespace lorafit
