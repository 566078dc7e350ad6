// ProcessGroup: a torch.distributed (c10d) process group of this process's rank: a TCPStore
// rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 serves it) and ProcessGroupGloo. Backend 'nccl'
// adds ProcessGroupNCCL for CUDA gradient buckets (as torch's "cpu:gloo,cuda:nccl"), from the
// lorafit_nccl.so plugin (native/nccl/, built with -DLORAFIT_NCCL=ON); Gloo keeps the rendezvous,
// the heartbeats and the scalar sums. Only process_group.cc (and the plugin) include c10d headers
// (each costs seconds and ~1 GB of compiler memory).
//
// Errors are lorafit::Error with code E_DISTRIBUTED and a message naming this rank and, where it
// can be known, the rank at fault; a collective that cannot complete throws within `timeout_ms`.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gradient_reducer.h"

namespace lorafit {

struct ProcessGroupOptions {
  std::string backend;      // "gloo" | "nccl"
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;       // nccl: the CUDA device index
  std::string master_addr;  // the TCPStore host (rank 0 listens there)
  int master_port = 0;
  int64_t timeout_ms = 0;   // rendezvous and every collective
  int64_t bucket_bytes = 0; // gradient bucket size (flattened float32)
};

// True when this build has c10d + Gloo (libgloo-dev was found at build time).
bool distributed_available();

class ProcessGroup : public GradientReducer {
 public:
  // Rendezvous: blocks until every rank has joined (or throws E_DISTRIBUTED after timeout_ms).
  explicit ProcessGroup(const ProcessGroupOptions& options);
  ~ProcessGroup() override;

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }
  const ProcessGroupOptions& options() const { return options_; }
  void all_reduce_sum(std::vector<double>& values) override;
  void all_reduce_sum(const std::vector<at::Tensor>& tensors) override;
  void barrier();
  // Milliseconds spent in collectives since construction (benchmarks).
  double collective_ms() const { return collective_ms_; }

  struct Impl;

 private:
  void open_nccl();
  ProcessGroupOptions options_;
  std::unique_ptr<Impl> impl_;
  std::mutex mutex_;  // collectives are issued in one order on every rank
  double collective_ms_ = 0;
};

}  // namespace lorafit
