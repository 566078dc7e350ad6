// ProcessGroupWrap: this process's rank in a torch.distributed (c10d) process group
// (native/process_group.h). createProcessGroup(options) makes one (the rendezvous runs off the
// main thread); a TrainState step given one is data-parallel. dispose() leaves the group.
#pragma once
#include <napi.h>

#include <memory>

#include "process_group.h"

namespace lorafit_bindings {

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  explicit ProcessGroupWrap(const Napi::CallbackInfo& info);
  // The group of a NativeProcessGroup value; E_INPUT if `value` is not one, E_DISPOSED if disposed.
  static std::shared_ptr<lorafit::ProcessGroup> FromValue(Napi::Env env, Napi::Value value);

 private:
  static Napi::Value Create(const Napi::CallbackInfo& info);
  Napi::Value AllReduce(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value CollectiveMs(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<lorafit::ProcessGroup> group(Napi::Env env) const;

  static Napi::FunctionReference constructor_;
  std::shared_ptr<lorafit::ProcessGroup> group_;
};

}  // namespace lorafit_bindings
