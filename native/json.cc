#include "json.h"

#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace lorafit {

namespace {
constexpr int kMaxDepth = 64;
}

class JsonParser {
 public:
  JsonParser(const char* p, size_t n) : p_(p), end_(p + n), begin_(p) {}

  Json parse_document() {
    Json v = value(0);
    skip_ws();
    if (p_ != end_) fail("trailing characters after the JSON value");
    return v;
  }

 private:
  const char* p_;
  const char* end_;
  const char* begin_;

  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("invalid JSON at byte " + std::to_string(p_ - begin_) + ": " + what);
  }
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool consume(const char* word) {
    const char* q = p_;
    for (; *word; ++word, ++q)
      if (q >= end_ || *q != *word) return false;
    p_ = q;
    return true;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 64");
    skip_ws();
    if (p_ >= end_) fail("unexpected end of input");
    Json v;
    switch (*p_) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"': v.type_ = Json::Type::String; v.text_ = string(); break;
      case 't': if (!consume("true")) fail("bad literal"); v.type_ = Json::Type::Bool; v.bool_ = true; break;
      case 'f': if (!consume("false")) fail("bad literal"); v.type_ = Json::Type::Bool; break;
      case 'n': if (!consume("null")) fail("bad literal"); break;
      default: number(v);
    }
    return v;
  }

  void object(Json& v, int depth) {
    v.type_ = Json::Type::Object;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == '}') { ++p_; return; }
    for (;;) {
      skip_ws();
      if (p_ >= end_ || *p_ != '"') fail("expected a string key");
      std::string key = string();
      skip_ws();
      if (p_ >= end_ || *p_ != ':') fail("expected ':'");
      ++p_;
      v.object_.emplace_back(std::move(key), value(depth + 1));
      skip_ws();
      if (p_ < end_ && *p_ == ',') { ++p_; continue; }
      if (p_ < end_ && *p_ == '}') { ++p_; return; }
      fail("expected ',' or '}'");
    }
  }

  void array(Json& v, int depth) {
    v.type_ = Json::Type::Array;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == ']') { ++p_; return; }
    for (;;) {
      v.array_.push_back(value(depth + 1));
      skip_ws();
      if (p_ < end_ && *p_ == ',') { ++p_; continue; }
      if (p_ < end_ && *p_ == ']') { ++p_; return; }
      fail("expected ',' or ']'");
    }
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += char(cp);
    else if (cp < 0x800) { out += char(0xC0 | (cp >> 6)); out += char(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) { out += char(0xE0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
    else { out += char(0xF0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3F)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
  }

  uint32_t hex4() {
    if (end_ - p_ < 4) fail("short \\u escape");
    uint32_t cp = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      char c = *p_;
      cp <<= 4;
      if (c >= '0' && c <= '9') cp |= c - '0';
      else if (c >= 'a' && c <= 'f') cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') cp |= c - 'A' + 10;
      else fail("bad \\u escape");
    }
    return cp;
  }

  std::string string() {
    ++p_;  // opening quote
    std::string out;
    while (p_ < end_ && *p_ != '"') {
      if (static_cast<unsigned char>(*p_) < 0x20) fail("control character in string");
      if (*p_ != '\\') { out += *p_++; continue; }
      if (++p_ >= end_) fail("unterminated escape");
      char c = *p_++;
      switch (c) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            p_ += 2;
            uint32_t lo = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
    if (p_ >= end_) fail("unterminated string");
    ++p_;
    return out;
  }

  void number(Json& v) {
    const char* start = p_;
    if (p_ < end_ && (*p_ == '-' || *p_ == '+')) ++p_;
    while (p_ < end_ && ((*p_ >= '0' && *p_ <= '9') || *p_ == '.' || *p_ == 'e' || *p_ == 'E' || *p_ == '-' || *p_ == '+')) ++p_;
    std::string text(start, p_);
    // Python's json writes Infinity/NaN; accept them as transformers does when it reads them back.
    if (text.empty() || text == "-" || text == "+") {
      if (consume("Infinity")) { v.type_ = Json::Type::Number; v.number_ = text == "-" ? -INFINITY : INFINITY; v.text_ = text + "Infinity"; return; }
      if (consume("NaN")) { v.type_ = Json::Type::Number; v.number_ = NAN; v.text_ = "NaN"; return; }
      fail("unexpected character");
    }
    char* endp = nullptr;
    double d = std::strtod(text.c_str(), &endp);
    if (endp != text.c_str() + text.size()) fail("bad number '" + text + "'");
    v.type_ = Json::Type::Number;
    v.number_ = d;
    v.text_ = std::move(text);
  }
};

Json Json::parse(const char* data, size_t size) { return JsonParser(data, size).parse_document(); }

double Json::number() const {
  if (type_ != Type::Number) throw std::runtime_error("expected a number");
  return number_;
}
bool Json::boolean() const {
  if (type_ != Type::Bool) throw std::runtime_error("expected true or false");
  return bool_;
}
const std::string& Json::string() const {
  if (type_ != Type::String) throw std::runtime_error("expected a string");
  return text_;
}
const std::vector<Json>& Json::array() const {
  if (type_ != Type::Array) throw std::runtime_error("expected an array");
  return array_;
}
const std::vector<std::pair<std::string, Json>>& Json::object() const {
  if (type_ != Type::Object) throw std::runtime_error("expected an object");
  return object_;
}
const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& kv : object_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

}  // namespace lorafit
