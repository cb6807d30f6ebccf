#pragma once
// DistConfig: multi-process training, as the [dist] section of a run config.
// Rank and world size come from the launcher (mpirun, srun, torchrun-style
// environment variables), not from here. Plain data; the field table
// (config/fields_dist.cpp) gives ranges and help.
#include <cstdint>
#include <string>

namespace lumina {

struct DistConfig {
  std::string communicator = "auto";  // auto | single | nccl | mpi
  int64_t zero_stage = 0;             // 0: plain data parallel; 1-3: shard optimizer / grads / params
  bool cpu_offload = false;           // optimizer state in host memory (needs zero_stage >= 1)
  int64_t expert_parallel_size = 1;   // ranks sharing one layer's experts
  double ddp_bucket_size_mb = 25.0;   // gradient all-reduce bucket

  bool operator==(const DistConfig&) const = default;
};

}  // namespace lumina
