#include "nccl_plugin.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <c10/cuda/CUDAGuard.h>

#include <chrono>
#include <cstdio>
#include <exception>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> pg;
  std::chrono::milliseconds timeout;
  int device;
};

void say(char* error, size_t size, const char* what) { std::snprintf(error, size, "%s", what); }

}  // namespace

extern "C" {

void* lorafit_nccl_open(void* store, int rank, int world_size, int64_t timeout_ms, int device, char* error, size_t error_size) {
  try {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = std::chrono::milliseconds(timeout_ms);
    auto owned = c10::intrusive_ptr<c10d::Store>::reclaim_copy(static_cast<c10d::Store*>(store));
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("lorafit/nccl", owned);
    return new Group{c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, world_size, opts), std::chrono::milliseconds(timeout_ms), device};
  } catch (const c10::Error& e) {
    say(error, error_size, e.what_without_backtrace());
  } catch (const std::exception& e) {
    say(error, error_size, e.what());
  }
  return nullptr;
}

int lorafit_nccl_all_reduce(void* group, void* tensor, char* error, size_t error_size) {
  auto* g = static_cast<Group*>(group);
  try {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(g->device));
    std::vector<at::Tensor> ts{*static_cast<at::Tensor*>(tensor)};
    g->pg->allreduce(ts)->wait(g->timeout);
    return 0;
  } catch (const c10::Error& e) {
    say(error, error_size, e.what_without_backtrace());
  } catch (const std::exception& e) {
    say(error, error_size, e.what());
  }
  return -1;
}

void lorafit_nccl_close(void* group) { delete static_cast<Group*>(group); }

}  // extern "C"
