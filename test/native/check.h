// A few lines of test harness for the C++ tests of native/ (run by ctest): CHECK prints a FAIL
// line naming the file and line and counts it; main returns check::result().
#pragma once
#include <cstdio>
#include <exception>
#include <string>

namespace check {
inline int failures = 0;
inline int passes = 0;

inline void report(bool ok, const char* expr, const char* file, int line, const std::string& detail = "") {
  if (ok) {
    ++passes;
    return;
  }
  ++failures;
  std::printf("FAIL %s:%d: %s%s%s\n", file, line, expr, detail.empty() ? "" : ": ", detail.c_str());
}

inline int result(const char* name) {
  std::printf("%s %s: %d checks passed, %d failed\n", failures ? "FAIL" : "PASS", name, passes, failures);
  return failures ? 1 : 0;
}
}  // namespace check

#define CHECK(cond) ::check::report(static_cast<bool>(cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ(a, b) ::check::report((a) == (b), #a " == " #b, __FILE__, __LINE__)
// The expression throws an exception of type T whose what() contains `part`.
#define CHECK_THROWS(T, expr, part)                                                                            \
  do {                                                                                                         \
    std::string what_;                                                                                         \
    bool thrown_ = false;                                                                                      \
    try {                                                                                                      \
      (void)(expr);                                                                                            \
    } catch (const T& e_) {                                                                                    \
      thrown_ = true;                                                                                          \
      what_ = e_.what();                                                                                       \
    } catch (const std::exception& e_) {                                                                       \
      what_ = std::string("other exception: ") + e_.what();                                                    \
    }                                                                                                          \
    ::check::report(thrown_ && what_.find(part) != std::string::npos, #expr " throws " #T " with \"" part "\"", \
                    __FILE__, __LINE__, what_.empty() ? "nothing thrown" : what_);                             \
  } while (0)
