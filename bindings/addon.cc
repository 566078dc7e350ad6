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
// Benchmarks only: benchMatmul(n, dtype, reps, device?) -> Promise<number[]> (seconds of each run).
Napi::Value BenchMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber())
    ThrowCoded(env, "E_INPUT", "benchMatmul(n, dtype, reps, device?)");
  const int64_t n = info[0].As<Napi::Number>().Int64Value();
  const std::string dtype = info[1].As<Napi::String>().Utf8Value();
  const int reps = info[2].As<Napi::Number>().Int32Value();
  const std::string device = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "cpu";
  auto out = std::make_shared<std::vector<double>>();
  return PromiseWorker::Start(
      env, [n, dtype, reps, device, out] { *out = lorafit::time_matmul(n, lorafit::parse_dtype(dtype), lorafit::parse_device(device), reps); },
      [out](Napi::Env env) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, (*out)[i]));
        return a;
      });
}
}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  lorafit::configure_allocator();
  // Default to all cores (libtorch's own default here is 1 thread); lib/ may override.
  lorafit::set_threads(0);
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("cudaAvailable", Napi::Function::New(env, CudaAvailable));
  exports.Set("benchMatmul", Napi::Function::New(env, BenchMatmul));
  exports.Set("torchVersion", Napi::String::New(env, lorafit::torch_version()));
  ModelWrap::Init(env, exports);
  InitGguf(env, exports);
  return exports;
}

NODE_API_MODULE(lorafit, Init)

}  // namespace lorafit_bindings
