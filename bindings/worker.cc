#include "worker.h"

#include <c10/util/Exception.h>

#include "error.h"
#include "runtime.h"

namespace lorafit_bindings {

namespace {
// Runs fn and returns {code, message} of what it threw, or {"", ""}.
std::pair<std::string, std::string> capture(const std::function<void()>& fn) {
  try {
    fn();
    return {"", ""};
  } catch (const lorafit::Error& e) {
    return {e.code(), e.what()};
  } catch (const c10::Error& e) {
    return {"E_TORCH", e.what_without_backtrace()};
  } catch (const std::bad_alloc&) {
    return {"E_OUT_OF_MEMORY", "out of memory"};
  } catch (const std::exception& e) {
    return {"E_NATIVE", e.what()};
  } catch (...) {
    return {"E_NATIVE", "unknown native error"};
  }
}
}  // namespace

PromiseWorker::PromiseWorker(Napi::Env env, Work work, Resolve resolve, Napi::Object keep_alive)
    : Napi::AsyncWorker(env, "lorafit"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)), resolve_(std::move(resolve)) {
  if (!keep_alive.IsEmpty()) keep_alive_ = Napi::Persistent(keep_alive);
}

Napi::Promise PromiseWorker::Start(Napi::Env env, Work work, Resolve resolve, Napi::Object keep_alive) {
  auto* w = new PromiseWorker(env, std::move(work), std::move(resolve), keep_alive);
  Napi::Promise p = w->deferred_.Promise();
  w->Queue();  // the worker deletes itself after OnOK/OnError
  return p;
}

void PromiseWorker::Execute() {
  // This libuv pool thread's MKL team may not have the configured size yet (native/runtime.h).
  auto [code, message] = capture([this] {
    lorafit::apply_threads();
    work_();
  });
  if (!code.empty()) {
    code_ = code;
    SetError(message);
  }
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::Value result;
  auto [code, message] = capture([&] { result = resolve_(env); });
  if (!code.empty()) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, code));
    deferred_.Reject(e.Value());
    return;
  }
  deferred_.Resolve(result.IsEmpty() ? env.Undefined() : result);
}

void PromiseWorker::OnError(const Napi::Error& error) {
  Napi::Env env = Env();
  Napi::Error e = Napi::Error::New(env, error.Message());
  e.Set("code", Napi::String::New(env, code_));
  deferred_.Reject(e.Value());
}

void ThrowCoded(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

void GuardNative(Napi::Env env, const std::function<void()>& fn) {
  auto [code, message] = capture(fn);
  if (!code.empty()) ThrowCoded(env, code, message);
}

}  // namespace lorafit_bindings
