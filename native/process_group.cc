#include "process_group.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <string>
#include <thread>

#include "error.h"
#include "nccl/nccl_plugin.h"

#ifdef LORAFIT_WITH_GLOO
#include <dlfcn.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <c10/util/Logging.h>
#endif

namespace lorafit {

bool distributed_available() {
#ifdef LORAFIT_WITH_GLOO
  return true;
#else
  return false;
#endif
}

namespace {

[[noreturn]] void fail(const std::string& message) { throw Error("E_DISTRIBUTED", message); }

void check_options(const ProcessGroupOptions& o) {
  if (o.backend != "gloo" && o.backend != "nccl") fail("backend must be 'gloo' or 'nccl', got '" + o.backend + "'");
  if (o.world_size < 1) fail("WORLD_SIZE must be a positive integer, got " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size)
    fail("RANK must be in [0, WORLD_SIZE - 1] = [0, " + std::to_string(o.world_size - 1) + "], got " + std::to_string(o.rank));
  if (o.master_addr.empty()) fail("MASTER_ADDR is empty");
  if (o.master_port < 1 || o.master_port > 65535) fail("MASTER_PORT must be in [1, 65535], got " + std::to_string(o.master_port));
  if (o.timeout_ms <= 0) fail("the process group timeout must be positive");
  if (o.bucket_bytes <= 0) fail("the gradient bucket size must be positive");
}

}  // namespace

#ifdef LORAFIT_WITH_GLOO

// Liveness for error messages: every rank adds 1 to "lorafit/alive/<rank>" each second (its own
// store connection, on its own thread). When a collective fails, the ranks whose counter stopped
// are the ones that died; an unreachable store means rank 0 (its host) did.
constexpr auto kHeartbeat = std::chrono::milliseconds(500);

// lorafit_nccl.so (native/nccl/nccl_plugin.h), beside the addon or at LORAFIT_NCCL_PLUGIN.
struct NcclPlugin {
  void* lib = nullptr;
  void* group = nullptr;
  decltype(&lorafit_nccl_all_reduce) all_reduce = nullptr;
  decltype(&lorafit_nccl_close) close = nullptr;
  ~NcclPlugin() {
    if (group && close) close(group);
  }
};

std::string plugin_path() {
  if (const char* p = std::getenv("LORAFIT_NCCL_PLUGIN"); p && *p) return p;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&distributed_available), &info) && info.dli_fname) {
    std::string self = info.dli_fname;
    return self.substr(0, self.find_last_of('/') + 1) + "lorafit_nccl.so";
  }
  return "lorafit_nccl.so";
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  std::unique_ptr<NcclPlugin> nccl;
  std::thread heartbeat;
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stop = false;

  void start_heartbeat(int rank) {
    auto own = store->clone();
    heartbeat = std::thread([this, own, rank] {
      const std::string key = "lorafit/alive/" + std::to_string(rank);
      std::unique_lock<std::mutex> lock(stop_mutex);
      while (!stop) {
        lock.unlock();
        try {
          own->add(key, 1);
        } catch (...) {  // the store is gone (rank 0 stopped): the collectives will say so
        }
        lock.lock();
        stop_cv.wait_for(lock, kHeartbeat, [this] { return stop; });
      }
    });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(stop_mutex);
      stop = true;
    }
    stop_cv.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
  }
};

namespace {

std::string what(const c10::Error& e) { return e.what_without_backtrace(); }

std::string where(const ProcessGroupOptions& o) { return o.master_addr + ":" + std::to_string(o.master_port); }

// Who is at fault when the group cannot go on: with two ranks it can only be the other one.
std::string suspect(const ProcessGroupOptions& o) {
  if (o.world_size == 2) return "rank " + std::to_string(1 - o.rank) + " stopped or became unreachable";
  return "another rank stopped or became unreachable";
}

// After a failed collective: the ranks whose heartbeat stopped over a few beats, less those that
// reported a failure of their own.
// (The rendezvous connection, already open: a new one to a dead rank 0 would retry until the timeout.)
std::string diagnose(c10d::Store& main_store, const ProcessGroupOptions& o) {
  try {
    c10d::Store* store = &main_store;
    store->setTimeout(std::chrono::milliseconds(2000));
    // A rank that failed too says so first: its heartbeat stops when it exits, but it did not die.
    store->add("lorafit/failed/" + std::to_string(o.rank), 1);
    auto beats = [&] {
      std::vector<int64_t> v;
      for (int r = 0; r < o.world_size; ++r) v.push_back(store->add("lorafit/alive/" + std::to_string(r), 0));
      return v;
    };
    const auto before = beats();
    std::this_thread::sleep_for(kHeartbeat * 5);
    const auto after = beats();
    std::string dead;
    for (int r = 0; r < o.world_size; ++r)
      if (r != o.rank && after[r] == before[r] && store->add("lorafit/failed/" + std::to_string(r), 0) == 0) dead += (dead.empty() ? "rank " : ", rank ") + std::to_string(r);
    if (!dead.empty()) return dead + " stopped (no heartbeat)";
    return "every rank is alive: one may be stuck, or the network between ranks failed";
  } catch (...) {
    if (o.rank != 0) return "rank 0 stopped or became unreachable (the rendezvous it hosts at " + where(o) + " does not answer)";
    return suspect(o);
  }
}

c10::intrusive_ptr<c10d::Store> connect_store(const ProcessGroupOptions& o) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.master_port);
  so.isServer = o.rank == 0;
  so.numWorkers = o.world_size;
  so.waitWorkers = false;  // lorafit's own join check below names the rank that is missing
  so.timeout = std::chrono::milliseconds(o.timeout_ms);
  try {
    return c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const c10::Error& e) {
    const std::string w = what(e);
    if (o.rank == 0) {
      if (w.find("in use") != std::string::npos || w.find("EADDRINUSE") != std::string::npos)
        fail("rank 0 cannot serve the rendezvous: MASTER_PORT " + std::to_string(o.master_port) + " is already in use on " + o.master_addr +
             " (choose another MASTER_PORT): " + w);
      fail("rank 0 cannot serve the rendezvous at " + where(o) + " (MASTER_ADDR:MASTER_PORT): " + w);
    }
    fail("rank " + std::to_string(o.rank) + " cannot reach the rendezvous at " + where(o) + " (MASTER_ADDR:MASTER_PORT) within " +
         std::to_string(o.timeout_ms / 1000) + " s; is rank 0 running with the same MASTER_ADDR and MASTER_PORT? " + w);
  }
}

std::string get_string(c10d::Store& store, const std::string& key) {
  auto v = store.get(key);
  return std::string(v.begin(), v.end());
}

void set_string(c10d::Store& store, const std::string& key, const std::string& value) {
  store.set(key, std::vector<uint8_t>(value.begin(), value.end()));
}

// Every rank agrees on WORLD_SIZE and holds a distinct RANK before Gloo connects: rank 0 publishes
// its world size, each other rank answers "ok" or what differs, rank 0 publishes the verdict.
void check_join(c10d::Store& store, const ProcessGroupOptions& o) {
  const std::string mine = std::to_string(o.world_size);
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  if (o.rank == 0) {
    set_string(store, "lorafit/world_size", mine);
    std::string verdict = "ok";
    for (int r = 1; r < o.world_size && verdict == "ok"; ++r) {
      const std::string key = "lorafit/joined/" + std::to_string(r);
      try {
        store.wait({key}, timeout);
      } catch (const c10::Error&) {
        verdict = "rank " + std::to_string(r) + " did not join the rendezvous at " + where(o) + " within " + std::to_string(o.timeout_ms / 1000) +
                  " s (WORLD_SIZE is " + mine + " on rank 0)";
        break;
      }
      const std::string answer = get_string(store, key);
      if (answer != "ok") verdict = answer;
    }
    set_string(store, "lorafit/verdict", verdict);
    if (verdict != "ok") fail("rank 0: " + verdict);
    return;
  }
  const std::string r = std::to_string(o.rank);
  if (store.add("lorafit/rank/" + r, 1) != 1) fail("rank " + r + ": another process has already joined as rank " + r + " (every process needs its own RANK)");
  const std::string theirs = get_string(store, "lorafit/world_size");
  const std::string answer = theirs == mine ? "ok" : "WORLD_SIZE is " + mine + " on rank " + r + " but " + theirs + " on rank 0";
  set_string(store, "lorafit/joined/" + r, answer);
  if (answer != "ok") fail("rank " + r + ": " + answer);
  store.wait({"lorafit/verdict"}, timeout);
  const std::string verdict = get_string(store, "lorafit/verdict");
  if (verdict != "ok") fail("rank " + r + ": the rendezvous failed: " + verdict);
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const ProcessGroupOptions& o) {
  // As torch.distributed: GLOO_SOCKET_IFNAME names the interface; a loopback master means a
  // single-machine group; otherwise the address this machine's hostname resolves to.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (o.master_addr == "127.0.0.1" || o.master_addr == "localhost" || o.master_addr == "::1")
    return c10d::ProcessGroupGloo::createDeviceForHostname(o.master_addr == "localhost" ? "127.0.0.1" : o.master_addr);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

// Issues a collective and waits for it. A peer that died shows as a Gloo I/O error (a
// gloo::IoException, not a c10::Error) as soon as its sockets close; one that hangs, at the timeout.
template <typename Issue>
void collective(c10d::Store& store, const ProcessGroupOptions& o, const char* op, Issue issue) {
  std::string why;
  try {
    issue()->wait(std::chrono::milliseconds(o.timeout_ms));
    return;
  } catch (const c10::Error& e) {
    why = what(e);
  } catch (const std::exception& e) {
    why = e.what();
  }
  fail("rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ": " + op + " failed: " + diagnose(store, o) + " (timeout " +
       std::to_string(o.timeout_ms / 1000) + " s; " + why + ")");
}

}  // namespace

ProcessGroup::ProcessGroup(const ProcessGroupOptions& options) : options_(options) {
  check_options(options_);
  // c10d logs its own view of every failure (with stack frames) besides the error lorafit throws;
  // TORCH_CPP_LOG_LEVEL (INFO, WARNING, ERROR, FATAL) sets how much, as under PyTorch, once c10's
  // logging has read it (Python does this at import; an addon must ask).
  static std::once_flag logging;
  std::call_once(logging, [] { c10::initLogging(); });
  impl_ = std::make_unique<Impl>();
  impl_->store = connect_store(options_);
  try {
    check_join(*impl_->store, options_);
  } catch (const c10::Error& e) {
    fail("rank " + std::to_string(options_.rank) + ": the rendezvous at " + where(options_) + " failed (" + suspect(options_) + "): " + what(e));
  }  // lorafit::Error (a mismatch found) passes through
  try {
    auto go = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(options_.timeout_ms));
    go->devices.push_back(gloo_device(options_));
    go->threads = 1;  // one collective at a time; the compute threads stay the trainer's
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("lorafit/gloo", impl_->store);
    impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, options_.rank, options_.world_size, go);
    impl_->start_heartbeat(options_.rank);
  } catch (const c10::Error& e) {
    fail("rank " + std::to_string(options_.rank) + ": Gloo could not connect the " + std::to_string(options_.world_size) + " ranks (" + suspect(options_) +
         "): " + what(e));
  } catch (const std::exception& e) {
    fail("rank " + std::to_string(options_.rank) + ": Gloo could not connect the " + std::to_string(options_.world_size) + " ranks (" + suspect(options_) +
         "): " + e.what());
  }
  if (options_.backend == "nccl") open_nccl();
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::open_nccl() {
  const std::string path = plugin_path();
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    fail("rank " + std::to_string(options_.rank) + ": backend 'nccl' is not built into this lorafit addon (it needs a CUDA libtorch, nccl.h and " +
         "-DLORAFIT_NCCL=ON at build time: LORAFIT_NCCL=1 npm run build:native); use backend 'gloo'. (" + (why ? why : path) + ")");
  }
  auto plugin = std::make_unique<NcclPlugin>();
  plugin->lib = lib;
  auto open = reinterpret_cast<decltype(&lorafit_nccl_open)>(dlsym(lib, "lorafit_nccl_open"));
  plugin->all_reduce = reinterpret_cast<decltype(&lorafit_nccl_all_reduce)>(dlsym(lib, "lorafit_nccl_all_reduce"));
  plugin->close = reinterpret_cast<decltype(&lorafit_nccl_close)>(dlsym(lib, "lorafit_nccl_close"));
  if (!open || !plugin->all_reduce || !plugin->close) fail(path + " is not a lorafit NCCL plugin (a symbol is missing)");
  char error[1024] = {0};
  plugin->group = open(impl_->store.get(), options_.rank, options_.world_size, options_.timeout_ms, options_.local_rank, error, sizeof error);
  if (!plugin->group) fail("rank " + std::to_string(options_.rank) + ": NCCL could not start on cuda:" + std::to_string(options_.local_rank) + ": " + error);
  impl_->nccl = std::move(plugin);
}

void ProcessGroup::all_reduce_sum(std::vector<double>& values) {
  if (values.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<at::Tensor> ts{at::tensor(values, at::kDouble)};  // [n]
  collective(*impl_->store, options_, "all-reduce", [&] { return impl_->gloo->allreduce(ts); });
  auto acc = ts[0].accessor<double, 1>();
  for (size_t i = 0; i < values.size(); ++i) values[i] = acc[static_cast<int64_t>(i)];
  collective_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void ProcessGroup::all_reduce_sum(const std::vector<at::Tensor>& tensors) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto t0 = std::chrono::steady_clock::now();
  // Consecutive tensors of one dtype and device share a flat bucket of at most bucket_bytes (a
  // larger tensor is a bucket of its own); Gloo reduces CPU memory, so a bucket is staged there.
  size_t i = 0;
  while (i < tensors.size()) {
    size_t j = i;
    int64_t bytes = 0;
    std::vector<at::Tensor> flat;
    while (j < tensors.size() && tensors[j].scalar_type() == tensors[i].scalar_type() && tensors[j].device() == tensors[i].device() &&
           (j == i || bytes + tensors[j].nbytes() <= static_cast<size_t>(options_.bucket_bytes))) {
      bytes += tensors[j].nbytes();
      flat.push_back(tensors[j].reshape({-1}));
      ++j;
    }
    std::vector<at::Tensor> bucket{at::cat(flat).contiguous()};  // [sum of numel]
    if (impl_->nccl && bucket[0].is_cuda()) {
      char error[1024] = {0};
      if (impl_->nccl->all_reduce(impl_->nccl->group, &bucket[0], error, sizeof error) != 0)
        fail("rank " + std::to_string(options_.rank) + " of " + std::to_string(options_.world_size) + ": NCCL gradient all-reduce failed: " +
             diagnose(*impl_->store, options_) + " (" + error + ")");
    } else {
      bucket[0] = bucket[0].to(at::kCPU);
      collective(*impl_->store, options_, "gradient all-reduce", [&] { return impl_->gloo->allreduce(bucket); });
    }
    int64_t at_ = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = tensors[k].numel();
      tensors[k].copy_(bucket[0].narrow(0, at_, n).view(tensors[k].sizes()));
      at_ += n;
    }
    i = j;
  }
  collective_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void ProcessGroup::barrier() {
  std::lock_guard<std::mutex> lock(mutex_);
  collective(*impl_->store, options_, "barrier", [&] { return impl_->gloo->barrier(); });
}

#else  // built without libgloo-dev

struct ProcessGroup::Impl {};

ProcessGroup::ProcessGroup(const ProcessGroupOptions& options) : options_(options) {
  check_options(options_);
  throw Error("E_DISTRIBUTED_UNAVAILABLE",
              "this lorafit addon was built without distributed training (the Gloo headers were not found): apt-get install libgloo-dev, then rebuild "
              "(npm run build:native)");
}
ProcessGroup::~ProcessGroup() = default;
void ProcessGroup::all_reduce_sum(std::vector<double>&) {}
void ProcessGroup::all_reduce_sum(const std::vector<at::Tensor>&) {}
void ProcessGroup::barrier() {}

#endif

}  // namespace lorafit
