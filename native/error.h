// lorafit::Error: the one exception type native/ throws. `code` is stable and reaches JavaScript
// as error.code (E_SAFETENSORS, E_MODEL_CONFIG, E_SHAPE, ...); the message says what to do.
#pragma once
#include <stdexcept>
#include <string>

namespace lorafit {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

}  // namespace lorafit
