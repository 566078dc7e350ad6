// PromiseWorker: runs a closure on libuv's thread pool and settles a Promise with the result.
// Execute() touches only what the closure captured (never napi values); errors thrown by
// native/ become JS Errors with a stable `code`.
#pragma once
#include <napi.h>

#include <functional>
#include <string>

namespace lorafit_bindings {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Resolve = std::function<Napi::Value(Napi::Env)>;

  // keep_alive: a JS object (the wrap) referenced until the worker finishes, so GC cannot free it.
  static Napi::Promise Start(Napi::Env env, Work work, Resolve resolve, Napi::Object keep_alive = Napi::Object());

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  PromiseWorker(Napi::Env env, Work work, Resolve resolve, Napi::Object keep_alive);

  Napi::Promise::Deferred deferred_;
  Work work_;
  Resolve resolve_;
  Napi::ObjectReference keep_alive_;
  std::string code_ = "E_NATIVE";
};

// Throws a JS Error with `code` set (for synchronous methods).
[[noreturn]] void ThrowCoded(Napi::Env env, const std::string& code, const std::string& message);
// Runs fn; converts native exceptions into a thrown JS Error with a code.
void GuardNative(Napi::Env env, const std::function<void()>& fn);

}  // namespace lorafit_bindings
