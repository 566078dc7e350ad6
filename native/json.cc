#include "json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_set>
#include <vector>

namespace lorafit {

namespace {

constexpr int kMaxDepth = 64;

[[noreturn]] void fail(size_t at, const std::string& what) {
  throw std::runtime_error("invalid JSON at byte " + std::to_string(at) + ": " + what);
}

// A token-level walk over JSON text: strings are skipped whole (so no bracket, digit or letter
// inside one is seen), numbers and words are taken as maximal runs. It is only used on text that
// nlohmann accepts (or on the prefix of it that nlohmann read before it stopped), where each
// Number token is exactly one number value in document order and each Key token one object key.
enum class Tok { Open, Close, Key, String, Number, Word };

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
bool is_number_char(char c) { return is_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'; }

// f(kind, begin, end) returns false to stop the walk.
template <class F>
void scan(const char* s, size_t n, F&& f) {
  size_t i = 0;
  while (i < n) {
    const char c = s[i];
    const size_t b = i;
    Tok kind;
    if (c == '"') {
      for (++i; i < n && s[i] != '"'; ++i)
        if (s[i] == '\\') ++i;
      i = std::min(i + 1, n);
      size_t j = i;
      while (j < n && is_space(s[j])) ++j;
      kind = j < n && s[j] == ':' ? Tok::Key : Tok::String;
    } else if (c == '[' || c == '{') {
      ++i;
      kind = Tok::Open;
    } else if (c == ']' || c == '}') {
      ++i;
      kind = Tok::Close;
    } else if (c == '-' || is_digit(c)) {
      ++i;
      if (c == '-' && n - i >= 8 && std::memcmp(s + i, "Infinity", 8) == 0) i += 8;
      else
        while (i < n && is_number_char(s[i])) ++i;
      kind = Tok::Number;
    } else if (is_alpha(c)) {
      while (i < n && (is_alpha(s[i]) || is_digit(s[i]))) ++i;
      kind = Tok::Word;
    } else {
      ++i;  // whitespace, ',' and ':' (or a stray byte nlohmann refuses)
      continue;
    }
    if (!f(kind, b, i)) return;
  }
}

// Where nlohmann cannot go: NaN, Infinity and -Infinity (Python's json writes them for float('nan')
// and float('inf'), and transformers reads them back), and numbers beyond a double (nlohmann throws
// "number overflow"; Python and JavaScript read +-infinity, and so did lorafit's own reader). Each is
// overwritten with a "0" padded with spaces, which keeps every byte offset, and its value is put
// back when nlohmann hands over the number value of that ordinal.
struct Special {
  size_t ordinal;  // among the document's number values
  double value;
};

std::vector<Special> find_specials(const char* s, size_t n, std::string& patched) {
  std::vector<Special> specials;
  size_t ordinal = 0;
  auto word_edge = [&](size_t i) { return i >= n || !(is_alpha(s[i]) || is_number_char(s[i]) || s[i] == '_'); };
  scan(s, n, [&](Tok kind, size_t b, size_t e) {
    if (kind != Tok::Number && kind != Tok::Word) return true;
    const std::string_view t(s + b, e - b);
    double value = 0;
    bool special = false;
    if (t == "NaN" || t == "Infinity" || t == "-Infinity") {
      // only a whole token: "1NaN" or "NaNx" stay invalid
      if (!(b == 0 || word_edge(b - 1)) || !word_edge(e)) return true;
      value = t == "NaN" ? std::numeric_limits<double>::quiet_NaN()
                         : (t[0] == '-' ? -1 : 1) * std::numeric_limits<double>::infinity();
      special = true;
    } else if (kind == Tok::Word) {
      return true;  // true, false, null (or garbage nlohmann refuses)
    } else if (t.find_first_of("eE") != std::string_view::npos || t.size() > 300) {
      const std::string text(t);
      char* end = nullptr;
      const double d = std::strtod(text.c_str(), &end);
      if (end == text.c_str() + text.size() && std::isinf(d)) {
        value = d;
        special = true;
      }
    }
    if (special) {
      if (patched.empty()) patched.assign(s, n);
      patched.replace(b, e - b, "0" + std::string(e - b - 1, ' '));
      specials.push_back({ordinal, value});
    }
    ++ordinal;
    return true;
  });
  return specials;
}

// The offset of the first token for which pick(kind) says yes (n when none).
template <class Pick>
size_t offset_of(const char* s, size_t n, Pick&& pick) {
  size_t at = n;
  scan(s, n, [&](Tok kind, size_t b, size_t) {
    if (!pick(kind)) return true;
    at = b;
    return false;
  });
  return at;
}

struct DepthExceeded {};
struct DuplicateKey {
  std::string key;
  size_t ordinal;  // among the document's keys
};

// "[json.exception.parse_error.101] parse error at line 1, column 6: syntax error ..." -> "syntax error ..."
std::string nlohmann_detail(const std::string& what) {
  size_t at = what.find("] ");
  at = at == std::string::npos ? 0 : at + 2;
  if (const size_t col = what.find("column ", at); col != std::string::npos)
    if (const size_t colon = what.find(": ", col); colon != std::string::npos) at = colon + 2;
  std::string detail = what.substr(at);
  // "last read: '...'" quotes the whole token, which can be a 100 MB unterminated string
  if (detail.size() > 240) detail = detail.substr(0, 200) + "...";
  return detail;
}

}  // namespace

Json parse_json(const char* data, size_t size) {
  std::string patched;
  const std::vector<Special> specials = find_specials(data, size, patched);
  const char* text = patched.empty() ? data : patched.data();

  size_t numbers = 0, keys = 0, next_special = 0;
  std::vector<std::unordered_set<std::string>> open_objects;
  using Event = Json::parse_event_t;
  auto callback = [&](int depth, Event event, Json& parsed) {
    switch (event) {
      case Event::object_start:
        if (depth >= kMaxDepth) throw DepthExceeded{};
        open_objects.emplace_back();
        break;
      case Event::array_start:
        if (depth >= kMaxDepth) throw DepthExceeded{};
        break;
      case Event::object_end:
        open_objects.pop_back();
        break;
      case Event::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second) throw DuplicateKey{key, keys};
        ++keys;
        break;
      }
      case Event::value:
        if (parsed.is_number()) {
          if (next_special < specials.size() && specials[next_special].ordinal == numbers) parsed = specials[next_special++].value;
          ++numbers;
        }
        break;
      default:
        break;
    }
    return true;
  };

  try {
    return Json::parse(text, text + size, callback);
  } catch (const DepthExceeded&) {
    int depth = 0;
    const size_t at = offset_of(text, size, [&](Tok kind) {
      if (kind == Tok::Close) --depth;
      return kind == Tok::Open && depth++ == kMaxDepth;
    });
    fail(at, "nesting deeper than " + std::to_string(kMaxDepth));
  } catch (const DuplicateKey& d) {
    size_t seen = 0;
    const size_t at = offset_of(text, size, [&](Tok kind) { return kind == Tok::Key && seen++ == d.ordinal; });
    fail(at, "key \"" + d.key + "\" appears twice in one object");
  } catch (const Json::parse_error& e) {
    // e.byte counts the bytes read, up to and including the one that stopped nlohmann (size + 1 at
    // the end of the input). A token that is well formed but misplaced ('{"a" 123}') was read whole:
    // point at its first byte, as the old reader did; a malformed one ("tru", "\q") at the byte where it broke.
    size_t at = e.byte > 0 ? e.byte - 1 : 0;
    const std::string detail = nlohmann_detail(e.what());
    if (at < size && detail.find("last read: ") == std::string::npos) {
      size_t begin = at;
      scan(text, size, [&](Tok, size_t b, size_t end) {
        if (b > at) return false;
        if (at < end) begin = b;
        return true;
      });
      at = begin;
    }
    fail(at, detail);
  } catch (const Json::exception& e) {
    throw std::runtime_error("invalid JSON: " + nlohmann_detail(e.what()));
  }
}

std::string json_number_text(const Json& number) {
  if (number.is_number_float()) {
    const double d = number.get<double>();
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    // a whole number below 1e21 in digits, as JavaScript prints it: JSON.stringify(-1e20) writes
    // -100000000000000000000, which nlohmann reads as a double (past int64)
    if (d == std::floor(d) && std::fabs(d) < 1e21) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.0f", d);
      return buf;
    }
  }
  return number.dump();  // integers with all their digits; other doubles shortest ("1e+30", "0.1")
}

}  // namespace lorafit
