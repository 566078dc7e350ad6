#include "runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>

#include <string>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "cpu_matmul.h"
#include "error.h"

#ifndef LORAFIT_TORCH_LIBDIR
#define LORAFIT_TORCH_LIBDIR ""
#endif

namespace lorafit {

namespace {
struct AllocatorSettings {
  int arena_max = 0;      // 0: glibc's default
  bool trim = true;
};
AllocatorSettings& allocator_settings() {
  static AllocatorSettings s;
  return s;
}
}  // namespace

bool switched_off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::string(v) == "0";
}

void configure_allocator() {
  // MALLOC_ARENA_MAX and LORAFIT_MALLOC_TRIM=0 in the environment win; set_allocator() changes both later.
  if (const char* v = std::getenv("MALLOC_ARENA_MAX")) allocator_settings().arena_max = std::atoi(v);
  else set_allocator(1, allocator_settings().trim);
  if (switched_off("LORAFIT_MALLOC_TRIM")) allocator_settings().trim = false;
}

void set_allocator(int arena_max, bool trim) {
  if (arena_max > 0) {
    mallopt(M_ARENA_MAX, arena_max);
    allocator_settings().arena_max = arena_max;
  }
  allocator_settings().trim = trim;
}

int allocator_arena_max() { return allocator_settings().arena_max; }
bool allocator_trim() { return allocator_settings().trim; }

void release_free_memory() {
  // Only when there is something worth returning: malloc_trim walks the whole heap (~20 ms a
  // call on the tiny model, 12% of its 1,000 steps), a no-op's cost when little is free.
  constexpr size_t kTrimAbove = 64u << 20;
  if (allocator_settings().trim && mallinfo2().fordblks > kTrimAbove) malloc_trim(0);
}

namespace {
std::atomic<int> g_threads{0};  // 0: never set, libtorch's default

// The BLAS's own thread controls where one is loaded: MKL (in the PyTorch wheel's libtorch_cpu)
// or OpenBLAS (Debian's libtorch, which at::set_num_threads does not reach).
struct BlasThreads {
  int (*get)() = nullptr;
  void (*set)(int) = nullptr;  // OpenBLAS only: at::set_num_threads sets MKL's (per thread)
};
const BlasThreads& blas_threads() {
  static const BlasThreads b = [] {
    BlasThreads r;
    if (void* mkl = dlsym(RTLD_DEFAULT, "mkl_get_max_threads")) {
      r.get = reinterpret_cast<int (*)()>(mkl);
    } else if (void* ob = dlsym(RTLD_DEFAULT, "openblas_get_num_threads")) {
      r.get = reinterpret_cast<int (*)()>(ob);
      r.set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    }
    return r;
  }();
  return b;
}

void set_this_thread(int n) {
  at::set_num_threads(n);
  if (blas_threads().set) blas_threads().set(n);
}
}  // namespace

void set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  g_threads.store(n);
  set_this_thread(n);
}

int get_threads() {
  const int n = g_threads.load();
  return n > 0 ? n : at::get_num_threads();
}

ThreadCounts this_thread_threads() {
  ThreadCounts c;
  c.intra_op = at::get_num_threads();
  if (blas_threads().get) c.blas = blas_threads().get();
  return c;
}

int parallel_team_size() {
  std::atomic<uint64_t> seen{0};  // one bit per thread id that ran a part
  at::parallel_for(0, 64, 1, [&](int64_t, int64_t) { seen |= uint64_t{1} << std::min(at::get_thread_num(), 63); });
  return __builtin_popcountll(seen.load());
}

void apply_threads() {
  const int n = g_threads.load();
  if (n <= 0) return;
  const ThreadCounts c = this_thread_threads();
  if (c.intra_op != n || (c.blas != 0 && c.blas != n)) set_this_thread(n);
}

namespace {
// Why CUDA is not usable, for E_DEVICE: dlopen's own error text, or what is missing after loading.
std::string& cuda_problem() {
  static std::string problem;
  return problem;
}
}  // namespace

bool cuda_available() {
  static std::once_flag once;
  // The addon links only the CPU libraries of libtorch; the CUDA kernels register themselves when
  // libtorch_cuda.so is loaded (it needs the CUDA runtime, which CPU-only machines lack).
  std::call_once(once, [] {
    if (at::hasCUDA()) return;
    const std::string dir = LORAFIT_TORCH_LIBDIR;
    for (const char* lib : {"libtorch_cuda.so", "libc10_cuda.so"}) {
      const std::string path = dir.empty() ? std::string(lib) : dir + "/" + lib;
      if (!dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        const char* why = dlerror();
        cuda_problem() += std::string(cuda_problem().empty() ? "" : "; ") + (why ? why : ("cannot load " + path).c_str());
      }
    }
    if (!at::hasCUDA() && cuda_problem().empty())
      cuda_problem() = "libtorch_cuda loaded, but no CUDA device is visible (no GPU, or no NVIDIA driver)";
  });
  return at::hasCUDA();
}

at::Device parse_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    if (!cuda_available())
      throw Error("E_DEVICE", "device '" + name + "' requested, but the libtorch lorafit was built against (" + std::string(LORAFIT_TORCH_LIBDIR) +
                                  ") has no usable CUDA: " + cuda_problem());
    try {
      return at::Device(name);
    } catch (const c10::Error&) {
      throw Error("E_DEVICE", "cannot parse device '" + name + "' (use cpu, cuda or cuda:N)");
    }
  }
  throw Error("E_DEVICE", "unknown device '" + name + "' (use cpu, cuda or cuda:N)");
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16") return at::kHalf;
  throw Error("E_OPTION", "unknown dtype '" + name + "' (use float32, bfloat16 or float16)");
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH);
}

std::vector<double> time_matmul(int64_t n, at::ScalarType dtype, at::Device device, int reps, bool lorafit_path) {
  if (n < 1 || n > 16384 || reps < 1) throw Error("E_OPTION", "time_matmul: n must be 1..16384 and reps >= 1");
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  at::Tensor a = at::randn({n, n}, opts.dtype(at::kFloat)).to(dtype), b = at::randn({n, n}, opts.dtype(at::kFloat)).to(dtype);
  at::Tensor c = at::empty({n, n}, opts);
  std::vector<double> out;
  for (int i = 0; i <= reps; ++i) {
    if (!device.is_cpu()) c.sum().item<double>();  // synchronise
    auto t0 = std::chrono::steady_clock::now();
    if (lorafit_path) frozen_mm_out(c, a, b);
    else at::mm_out(c, a, b);
    if (!device.is_cpu()) c.sum().item<double>();
    auto t1 = std::chrono::steady_clock::now();
    if (i > 0) out.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  return out;
}

}  // namespace lorafit
