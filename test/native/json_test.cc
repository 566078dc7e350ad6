// native/json (parse_json over nlohmann::ordered_json): values, key order, int64/uint64 kept
// exactly, escapes and \u surrogate pairs, NaN/Infinity as Python writes them, and the error
// messages (byte offset + what) that callers put in their E_SAFETENSORS / E_MODEL_CONFIG text.
#include "../../native/json.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "check.h"

using lorafit::Json;
using lorafit::json_find;
using lorafit::json_number_text;
using lorafit::parse_json;

int main() {
  {
    const Json j = parse_json(R"({"b": 1, "a": [true, false, null, -2.5e3, "x"], "n": {"k": {}}})");
    CHECK(j.is_object());
    CHECK_EQ(j.size(), 3u);
    CHECK_EQ(j.begin().key(), "b");  // source order, not sorted
    CHECK_EQ(std::next(j.begin()).key(), "a");
    CHECK_EQ(json_find(j, "b")->get<double>(), 1.0);
    const Json& a = *json_find(j, "a");
    CHECK_EQ(a.size(), 5u);
    CHECK(a[0].is_boolean() && a[0].get<bool>());
    CHECK(a[1].is_boolean() && !a[1].get<bool>());
    CHECK(a[2].is_null());
    CHECK_EQ(a[3].get<double>(), -2500.0);
    CHECK_EQ(a[4].get<std::string>(), "x");
    CHECK(json_find(*json_find(j, "n"), "k")->is_object());
    CHECK(json_find(j, "missing") == nullptr);
    CHECK(json_find(a[0], "x") == nullptr);  // not an object
    CHECK(json_find(a, "x") == nullptr);     // an array
  }
  {
    // safetensors header order (not sorted) survives, also past nlohmann's small-object sizes
    std::string text = "{";
    for (int i = 0; i < 40; ++i) {
      if (i) text += ",";
      text += "\"k";
      text += std::to_string(39 - i) + "\": " + std::to_string(i);
    }
    const Json j = parse_json(text + "}");
    int i = 0;
    bool ordered = true;
    for (const auto& [key, value] : j.items()) {
      ordered = ordered && key.substr(1) == std::to_string(39 - i) && value.get<int>() == i;
      ++i;
    }
    CHECK(ordered && i == 40);
  }
  {
    // int64 offsets above 2^53 keep their digits
    const Json j = parse_json(R"({"data_offsets": [9007199254740993, 18446744073709551615, -9223372036854775808]})");
    const Json& o = *json_find(j, "data_offsets");
    CHECK(o[0].is_number_unsigned() && o[0].get<uint64_t>() == 9007199254740993ull);
    CHECK(o[1].is_number_unsigned() && o[1].get<uint64_t>() == 18446744073709551615ull);
    CHECK(o[2].is_number_integer() && o[2].get<int64_t>() == INT64_MIN);
    CHECK_EQ(json_number_text(o[0]), "9007199254740993");
    CHECK_EQ(json_number_text(o[1]), "18446744073709551615");
    CHECK_EQ(json_number_text(o[2]), "-9223372036854775808");
    CHECK_EQ(json_number_text(parse_json("-64")), "-64");
    CHECK_EQ(json_number_text(parse_json("1e30")), "1e+30");
    CHECK_EQ(json_number_text(parse_json("-100000000000000000000")), "-100000000000000000000");  // past int64: a double
    CHECK_EQ(json_number_text(parse_json("-64.0")), "-64");
    CHECK_EQ(json_number_text(parse_json("64.5")), "64.5");
    CHECK(parse_json("18446744073709551616").is_number_float());  // past uint64: a double, as in Python's float()
  }
  {
    const Json j = parse_json(R"(["a\"b\\c\/d\n\t\r\b\f", "\u00e9\u4e2d", "\ud83d\ude00"])");
    CHECK_EQ(j[0].get<std::string>(), "a\"b\\c/d\n\t\r\b\f");
    CHECK_EQ(j[1].get<std::string>(), "\xc3\xa9\xe4\xb8\xad");  // é中 in UTF-8
    CHECK_EQ(j[2].get<std::string>(), "\xf0\x9f\x98\x80");      // 😀 from a surrogate pair
  }
  CHECK(parse_json("  \n 42 \t").get<double>() == 42.0);
  {
    // Python's json writes Infinity and NaN (transformers reads them back); 1e400 reads as infinity
    const Json j = parse_json(R"([Infinity, -Infinity, NaN, {"x": [1, NaN, 2]}, 1e400, -1e400, 3, "NaN"])");
    CHECK(j[0].is_number_float() && j[0].get<double>() > 1e308);
    CHECK(j[1].get<double>() < -1e308);
    CHECK(std::isnan(j[2].get<double>()));
    CHECK_EQ((*json_find(j[3], "x"))[0].get<int>(), 1);
    CHECK(std::isnan((*json_find(j[3], "x"))[1].get<double>()));
    CHECK_EQ((*json_find(j[3], "x"))[2].get<int>(), 2);
    CHECK(std::isinf(j[4].get<double>()) && j[4].get<double>() > 0);
    CHECK(std::isinf(j[5].get<double>()) && j[5].get<double>() < 0);
    CHECK_EQ(j[6].get<int>(), 3);
    CHECK_EQ(j[7].get<std::string>(), "NaN");  // a string stays a string
    CHECK_EQ(json_number_text(j[1]), "-Infinity");
    CHECK_EQ(json_number_text(j[2]), "NaN");
  }
  // only whole tokens: these stay errors, at the byte of the token
  CHECK_THROWS(std::runtime_error, parse_json("[1NaN]"), "invalid JSON at byte ");
  CHECK_THROWS(std::runtime_error, parse_json("[NaNx]"), "invalid JSON at byte 1: ");
  CHECK_THROWS(std::runtime_error, parse_json("[-NaN]"), "invalid JSON at byte ");
  CHECK_THROWS(std::runtime_error, parse_json("{\"a\" NaN}"), "invalid JSON at byte 5: syntax error while parsing object separator");

  CHECK_THROWS(std::runtime_error, parse_json(""), "invalid JSON at byte 0: syntax error while parsing value - unexpected end of input");
  CHECK_THROWS(std::runtime_error, parse_json("{"), "invalid JSON at byte 1: syntax error while parsing object key - unexpected end of input");
  CHECK_THROWS(std::runtime_error, parse_json("{\"a\": 1,}"), "invalid JSON at byte 8: syntax error while parsing object key - unexpected '}'; expected string literal");
  CHECK_THROWS(std::runtime_error, parse_json("{\"a\" 1}"), "invalid JSON at byte 5: syntax error while parsing object separator - unexpected number literal; expected ':'");
  CHECK_THROWS(std::runtime_error, parse_json("{\"a\" 123}"), "invalid JSON at byte 5: ");  // the token's first byte
  CHECK_THROWS(std::runtime_error, parse_json("[1 2]"), "invalid JSON at byte 3: syntax error while parsing array - unexpected number literal; expected ']'");
  CHECK_THROWS(std::runtime_error, parse_json("{\"a\": 1 \"b\"}"), "invalid JSON at byte 8: syntax error while parsing object - unexpected string literal; expected '}'");
  CHECK_THROWS(std::runtime_error, parse_json("[1] x"), "invalid JSON at byte 4: syntax error while parsing value - invalid literal");
  CHECK_THROWS(std::runtime_error, parse_json("[1]]"), "invalid JSON at byte 3: syntax error while parsing value - unexpected ']'; expected end of input");
  CHECK_THROWS(std::runtime_error, parse_json("tru"), "invalid JSON at byte 3: syntax error while parsing value - invalid literal; last read: 'tru'");
  CHECK_THROWS(std::runtime_error, parse_json("\"abc"), "invalid JSON at byte 4: syntax error while parsing value - invalid string: missing closing quote");
  CHECK_THROWS(std::runtime_error, parse_json("\"a\\qb\""), "invalid JSON at byte 3: syntax error while parsing value - invalid string: forbidden character after backslash");
  CHECK_THROWS(std::runtime_error, parse_json("\"\\u12\""), "invalid JSON at byte 5: syntax error while parsing value - invalid string: '\\u' must be followed by 4 hex digits");
  CHECK_THROWS(std::runtime_error, parse_json("\"\\ud800\""), "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF");
  CHECK_THROWS(std::runtime_error, parse_json(std::string("\"a\x01\"")), "invalid JSON at byte 2: syntax error while parsing value - invalid string: control character U+0001 (SOH) must be escaped");
  CHECK_THROWS(std::runtime_error, parse_json("-"), "invalid JSON at byte 1: syntax error while parsing value - invalid number; expected digit after '-'");
  CHECK_THROWS(std::runtime_error, parse_json("@"), "invalid JSON at byte 0: syntax error while parsing value - invalid literal; last read: '@'");
  CHECK_THROWS(std::runtime_error, parse_json("[1.]"), "invalid JSON at byte 3: syntax error while parsing value - invalid number; expected digit after '.'");
  CHECK_THROWS(std::runtime_error, parse_json("+1"), "invalid JSON at byte 0: ");
  CHECK_THROWS(std::runtime_error, parse_json("01"), "invalid JSON at byte 0: syntax error while parsing value - unexpected number literal; expected end of input");
  // a long bad token is cut short in the message
  {
    std::string what;
    try {
      (void)parse_json("\"" + std::string(100000, 'x'));
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CHECK(what.rfind("invalid JSON at byte 100001: syntax error while parsing value - invalid string: missing closing quote", 0) == 0);
    CHECK(what.size() < 300);
  }

  // nesting: 64 arrays/objects deep is fine, the 65th is refused at its bracket
  CHECK(parse_json(std::string(64, '[') + std::string(64, ']')).is_array());
  CHECK_THROWS(std::runtime_error, parse_json(std::string(65, '[') + std::string(65, ']')), "invalid JSON at byte 64: nesting deeper than 64");
  CHECK_THROWS(std::runtime_error, parse_json("[\"[[[[\", {\"a\": " + std::string(100, '[') + std::string(100, ']') + "}]"),
               "invalid JSON at byte 77: nesting deeper than 64");  // 2 levels open, then the 63rd [ from byte 15
  // an error before the depth limit is reported first
  CHECK_THROWS(std::runtime_error, parse_json("[1 " + std::string(100, '[')), "invalid JSON at byte 3: syntax error while parsing array");

  // a key given twice in one object (the same key in two objects is fine)
  CHECK(parse_json(R"({"a": {"x": 1}, "b": {"x": 2}})").is_object());
  CHECK_THROWS(std::runtime_error, parse_json(R"({"a": 1, "b": {"x": 1, "y": 2}, "a": 2})"), "invalid JSON at byte 32: key \"a\" appears twice in one object");
  CHECK_THROWS(std::runtime_error, parse_json(R"({"t": {"a": 1, "a" : 2}})"), "invalid JSON at byte 15: key \"a\" appears twice in one object");

  // nlohmann's typed access: call sites test the type first (is_string() ...); get<T>() of another type throws
  CHECK_THROWS(Json::type_error, parse_json("1").get<std::string>(), "type must be string, but is number");
  CHECK_THROWS(Json::type_error, parse_json("\"1\"").get<double>(), "type must be number, but is string");
  CHECK_THROWS(Json::type_error, parse_json("[]").get<bool>(), "type must be boolean, but is array");
  return check::result("json_test");
}
