// Process-wide settings: threads and devices.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace lorafit {

// Process-wide malloc settings for tensor work (called once at addon load): one malloc arena.
// Native calls run on libuv's pool threads; glibc would give each its own arena of 64 MB heaps
// whose freed middles are never returned: training peak RSS grew ~200 MB per layer (bf16).
// MALLOC_ARENA_MAX in the environment wins.
void configure_allocator();
// Process settings of the allocator (lib: configureProcess): arena_max > 0 sets glibc's
// M_ARENA_MAX (0 leaves it); trim: release_free_memory() returns free pages after each step.
void set_allocator(int arena_max, bool trim);
int allocator_arena_max();
// True when the environment variable `name` is "0": the off switch of an optional CPU kernel
// (LORAFIT_SEGMENT_ATTENTION, LORAFIT_BLOCKED_ATTENTION, LORAFIT_LORA_KERNELS, LORAFIT_SWIGLU_KERNEL, LORAFIT_ADAMW_KERNEL) or
// of LORAFIT_MALLOC_TRIM. Callers read it at each use, so that a test can compare both paths in one process.
bool switched_off(const char* name);  // 0: glibc's default
bool allocator_trim();
// Returns the allocator's free pages to the OS (glibc malloc_trim) when allocator_trim(): called
// after each training step and evaluation, whose activations are freed all at once.
void release_free_memory();

// Threads for libtorch's intra-op pool (and OpenBLAS when libtorch uses it). n <= 0: all cores.
void set_threads(int n);
int get_threads();
// Gives the calling thread the set_threads() team size. MKL keeps its thread count per thread
// (ATen re-applies only OpenMP's, lazily): a libuv pool thread kept every core for its fp32
// matmuls whatever set_threads said, so every native job calls this first (bindings/worker.cc).
void apply_threads();
// The calling thread's own team sizes (what its tensor work uses now): libtorch's intra-op
// (OpenMP) pool and the BLAS's (MKL or OpenBLAS; 0 when neither is loaded), which MKL keeps per thread.
struct ThreadCounts {
  int intra_op = 0;
  int blas = 0;
};
ThreadCounts this_thread_threads();
// How many threads run an at::parallel_for compiled into lorafit's own code, on the calling thread
// (1 if it was built without OpenMP, whatever the thread count). Starts a parallel region: for
// diagnostics (workerThreads), not for every job as this_thread_threads is.
int parallel_team_size();
// "cpu", "cuda", "cuda:1" -> a device; loads libtorch_cuda on first use. Throws Error(E_DEVICE).
at::Device parse_device(const std::string& name);
bool cuda_available();
// "float32" | "bfloat16" | "float16" -> dtype; throws Error(E_OPTION).
at::ScalarType parse_dtype(const std::string& name);
std::string torch_version();
// Benchmarks only: seconds of each of `reps` n x n x n matmuls (C = A B, preallocated output) in
// `dtype` on `device`, after one untimed run. 2 n^3 / seconds is the achieved FLOP rate.
// lorafit_path: through frozen_mm_out (oneDNN for fp32 on the CPU, cpu_matmul.h), the GEMM of
// lorafit's frozen weights; else at::mm_out (MKL for fp32 on the CPU), what PyTorch code gets.
std::vector<double> time_matmul(int64_t n, at::ScalarType dtype, at::Device device, int reps, bool lorafit_path = false);

}  // namespace lorafit
