// native/json: values, key order, exact number text, escapes and \u surrogate pairs, and the
// error messages (byte offset + what) that callers put in their E_SAFETENSORS / E_MODEL_CONFIG text.
#include "../../native/json.h"

#include <stdexcept>
#include <string>

#include "check.h"

using lorafit::Json;

int main() {
  {
    const Json j = Json::parse(R"({"b": 1, "a": [true, false, null, -2.5e3, "x"], "n": {"k": {}}})");
    CHECK(j.is_object());
    CHECK_EQ(j.object().size(), 3u);
    CHECK_EQ(j.object()[0].first, "b");  // source order, not sorted
    CHECK_EQ(j.object()[1].first, "a");
    CHECK_EQ(j.find("b")->number(), 1.0);
    const auto& a = j.find("a")->array();
    CHECK_EQ(a.size(), 5u);
    CHECK(a[0].is_bool() && a[0].boolean());
    CHECK(a[1].is_bool() && !a[1].boolean());
    CHECK(a[2].is_null());
    CHECK_EQ(a[3].number(), -2500.0);
    CHECK_EQ(a[4].string(), "x");
    CHECK(j.find("n")->find("k")->is_object());
    CHECK(j.find("missing") == nullptr);
    CHECK(a[0].find("x") == nullptr);  // not an object
  }
  {
    // int64 offsets above 2^53 keep their digits
    const Json j = Json::parse(R"({"data_offsets": [9007199254740993, 18446744073709551615]})");
    CHECK_EQ(j.find("data_offsets")->array()[0].number_text(), "9007199254740993");
    CHECK_EQ(j.find("data_offsets")->array()[1].number_text(), "18446744073709551615");
  }
  {
    const Json j = Json::parse(R"(["a\"b\\c\/d\n\t\r\b\f", "\u00e9\u4e2d", "\ud83d\ude00"])");
    CHECK_EQ(j.array()[0].string(), "a\"b\\c/d\n\t\r\b\f");
    CHECK_EQ(j.array()[1].string(), "\xc3\xa9\xe4\xb8\xad");  // é中 in UTF-8
    CHECK_EQ(j.array()[2].string(), "\xf0\x9f\x98\x80");      // 😀 from a surrogate pair
  }
  CHECK(Json::parse("  \n 42 \t").number() == 42.0);
  {
    // Python's json writes Infinity and NaN (transformers reads them back)
    const Json j = Json::parse(R"([Infinity, -Infinity, NaN])");
    CHECK(j.array()[0].number() > 1e308);
    CHECK(j.array()[1].number() < -1e308);
    CHECK(j.array()[2].number() != j.array()[2].number());
    CHECK_EQ(j.array()[1].number_text(), "-Infinity");
  }

  CHECK_THROWS(std::runtime_error, Json::parse(""), "invalid JSON at byte 0: unexpected end of input");
  CHECK_THROWS(std::runtime_error, Json::parse("{\"a\": 1,}"), "expected a string key");
  CHECK_THROWS(std::runtime_error, Json::parse("{\"a\" 1}"), "invalid JSON at byte 5: expected ':'");
  CHECK_THROWS(std::runtime_error, Json::parse("[1 2]"), "expected ',' or ']'");
  CHECK_THROWS(std::runtime_error, Json::parse("{\"a\": 1 \"b\"}"), "expected ',' or '}'");
  CHECK_THROWS(std::runtime_error, Json::parse("[1] x"), "trailing characters after the JSON value");
  CHECK_THROWS(std::runtime_error, Json::parse("tru"), "bad literal");
  CHECK_THROWS(std::runtime_error, Json::parse("\"abc"), "unterminated string");
  CHECK_THROWS(std::runtime_error, Json::parse("\"a\\qb\""), "bad escape");
  CHECK_THROWS(std::runtime_error, Json::parse("\"\\u12\""), "\\u escape");
  CHECK_THROWS(std::runtime_error, Json::parse(std::string("\"a\x01\"")), "control character in string");
  CHECK_THROWS(std::runtime_error, Json::parse(std::string(100, '[') + std::string(100, ']')), "nesting deeper than 64");
  CHECK_THROWS(std::runtime_error, Json::parse("-"), "invalid JSON");
  CHECK_THROWS(std::runtime_error, Json::parse("@"), "unexpected character");
  CHECK_THROWS(std::runtime_error, Json::parse("1").string(), "expected a string");
  CHECK_THROWS(std::runtime_error, Json::parse("\"1\"").number(), "expected a number");
  CHECK_THROWS(std::runtime_error, Json::parse("[]").object(), "expected an object");
  return check::result("json_test");
}
