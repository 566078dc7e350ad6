// The NCCL plugin (lorafit_nccl.so, built only with -DLORAFIT_NCCL=ON against a CUDA libtorch
// whose nccl.h is found): sums CUDA gradient buckets with c10d's ProcessGroupNCCL. It is a
// separate shared object so that the addon itself never links libtorch_cuda (CPU-only machines
// load it without the CUDA runtime); native/process_group.cc dlopen()s it for backend 'nccl'.
// A C interface: the one C++ object crossing it is the c10d::Store* of the rendezvous.
#pragma once
#include <cstddef>
#include <cstdint>

extern "C" {
// A ProcessGroupNCCL over `store` (a c10d::Store*, under the prefix "lorafit/nccl") for
// CUDA device `device`; nullptr with a message in `error` on failure.
void* lorafit_nccl_open(void* store, int rank, int world_size, int64_t timeout_ms, int device, char* error, size_t error_size);
// Sums `tensor` (an at::Tensor*, contiguous, on this rank's CUDA device) over the ranks in place
// and waits for it; 0 on success, else -1 with a message in `error`.
int lorafit_nccl_all_reduce(void* group, void* tensor, char* error, size_t error_size);
void lorafit_nccl_close(void* group);
}
