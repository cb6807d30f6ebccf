// [dist]: multi-process training (DistConfig, dist/dist_config.h).
#include "lumina/config/field_builder.h"

namespace lumina {

void add_dist_fields(std::vector<Field>& fields) {
  using D = DistConfig;
  SectionBuilder<D> s(fields, "dist", &RunConfig::dist);

  s.choice(&D::communicator, "communicator",
           {{"auto"}, {"single"}, {"nccl", Feature::data_parallel}, {"mpi", Feature::data_parallel}},
           "auto: nccl on GPUs and mpi on CPUs when the launcher started several ranks, else single.");
  s.needs(Feature::zero);
  s.integer(&D::zero_stage, "zero_stage", at_least(0), at_most(3),
            "0: replicated data parallel; 1: shard optimizer state; 2: and gradients; 3: and parameters.");
  s.needs(Feature::cpu_offload);
  s.flag(&D::cpu_offload, "cpu_offload", "Keep optimizer state in host memory (needs zero_stage >= 1).");
  s.needs(Feature::expert_parallel);
  s.integer(&D::expert_parallel_size, "expert_parallel_size", at_least(1), at_most(4096),
            "Ranks that split one layer's experts (all-to-all dispatch); must divide model.num_experts.");
  s.needs(Feature::data_parallel);
  s.real(&D::ddp_bucket_size_mb, "ddp_bucket_size_mb", above(0), at_most(65536),
         "Gradient bytes per all-reduce bucket, overlapped with backward (MiB).");
}

}  // namespace lumina
