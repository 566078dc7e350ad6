// Module entry: registers the native classes and process-wide functions.
#include <napi.h>

#include "gguf.h"
#include "model_wrap.h"
#include "runtime.h"
#include "worker.h"

namespace lorafit_bindings {

namespace {
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  lorafit::set_threads(n);
  return Napi::Number::New(info.Env(), lorafit::get_threads());
}
Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), lorafit::get_threads()); }
Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  bool ok = false;
  GuardNative(info.Env(), [&] { ok = lorafit::cuda_available(); });
  return Napi::Boolean::New(info.Env(), ok);
}
}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  lorafit::configure_allocator();
  // Default to all cores (libtorch's own default here is 1 thread); lib/ may override.
  lorafit::set_threads(0);
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable));
  exports.Set("torchVersion", Napi::String::New(env, lorafit::torch_version()));
  ModelWrap::Init(env, exports);
  InitGguf(env, exports);
  return exports;
}

NODE_API_MODULE(lorafit, Init)

}  // namespace lorafit_bindings
