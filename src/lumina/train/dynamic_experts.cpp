#include "lumina/train/dynamic_experts.h"

#include <algorithm>
#include <vector>

#include "lumina/core/rng.h"
#include "lumina/model/moe_layout.h"

namespace lumina {

namespace {

const MoeFfn& moe_of(const Transformer& model, int64_t layer) {
  LUMINA_CHECK(layer >= 0 && layer < static_cast<int64_t>(model.blocks().size()),
               "layer {} does not exist: the model has layers 0..{}", layer, model.blocks().size() - 1);
  const MoeFfn* moe = model.blocks()[static_cast<size_t>(layer)].moe();
  LUMINA_CHECK(moe, "layer {} is not a MoE layer (model.use_moe, moe_pattern)", layer);
  return *moe;
}

// dst = src + N(0, std^2) elementwise, through the host in f64; noise draw i of
// `rng` is offset + i.
void perturbed_copy(Backend& be, Tensor dst, const Tensor& src, const Rng& rng, double std, uint64_t offset) {
  const auto n = static_cast<size_t>(src.numel());
  std::vector<double> host(n);
  if (src.dtype == DType::f64) {
    be.copy(Tensor(host.data(), DType::f64, Device::cpu, src.shape), src);
  } else {
    std::vector<float> staged(n);
    be.copy(Tensor(staged.data(), DType::f32, Device::cpu, src.shape), src);
    std::copy(staged.begin(), staged.end(), host.begin());
  }
  std::vector<double> noise(n);
  rng.fill_normal(noise.data(), src.numel(), 0.0, std, offset);
  for (size_t i = 0; i < n; ++i) host[i] += noise[i];
  upload_f64(be, dst, host.data());
}

}  // namespace

TrainingModel build_training_model(const ModelConfig& cfg, Backend& backend, DType act_dtype, uint64_t seed, int64_t B,
                                   int64_t T, const AdamWConfig& adamw) {
  TrainingModel m;
  m.model = std::make_unique<Transformer>(cfg);
  m.model->allocate(backend, DType::f32, act_dtype);
  m.model->params().init_weights(seed);
  m.model->prepare(B, T);
  m.optimizer = std::make_unique<AdamW>(m.model->params(), adamw);
  m.batch_size = B;
  m.seq_len = T;
  return m;
}

void relayout(TrainingModel& m, const ModelConfig& next) {
  const Transformer& old = *m.model;
  const ParamStore& from = old.params();
  auto model = std::make_unique<Transformer>(next);
  model->allocate(from.backend(), from.dtype(), old.context().act_dtype);
  model->prepare(m.batch_size, m.seq_len);
  ParamStore& to = model->params();
  auto optimizer = std::make_unique<AdamW>(to, m.optimizer->config());
  copy_by_name(from, from.params_flat(), to, to.params_flat());
  copy_by_name(from, from.grads_flat(), to, to.grads_flat());
  copy_by_name(from, m.optimizer->m_flat(), to, optimizer->m_flat());
  copy_by_name(from, m.optimizer->v_flat(), to, optimizer->v_flat());
  optimizer->set_steps_taken(m.optimizer->steps_taken());
  m.optimizer = std::move(optimizer);  // before the model it refers to goes
  m.model = std::move(model);
}

void add_expert(TrainingModel& m, int64_t layer, int64_t source, uint64_t seed, int64_t step) {
  const MoeFfn& before = moe_of(*m.model, layer);
  const std::vector<uint8_t>& routable = before.routing_params().routable;
  const int64_t j = before.routing_params().num_experts;  // the new expert's index
  LUMINA_CHECK(source >= 0 && source < j && routable[static_cast<size_t>(source)],
               "add_expert: layer {} has no routable expert {} to copy", layer, source);
  relayout(m, with_expert_added(m.model->config(), layer));
  const MoeFfn& moe = moe_of(*m.model, layer);
  ParamStore& ps = m.model->params();
  const Rng rng(seed, RngPurpose::expert_init, static_cast<uint64_t>(step));
  // Draw offsets: (layer, tensor) in the bits above 40, the element below (slices < 2^40 elements).
  const ParamId tensors[] = {moe.router, moe.w1, moe.w3, moe.w2};
  for (uint64_t t = 0; t < 4; ++t) {
    const ParamId id = tensors[t];
    const Tensor w = ps.param(id);
    const double std = kNewExpertNoise * ps.specs()[static_cast<size_t>(id)].init_std;
    perturbed_copy(ps.backend(), w.slice(j, j + 1), w.slice(source, source + 1), rng, std,
                   (static_cast<uint64_t>(layer) << 42) | (t << 40));
  }
}

void prune_expert(TrainingModel& m, int64_t layer, int64_t expert) {
  moe_of(*m.model, layer);
  relayout(m, with_expert_pruned(m.model->config(), layer, expert));
}

int64_t busiest_expert(const std::vector<double>& utilization, const std::vector<uint8_t>& routable) {
  LUMINA_CHECK(utilization.size() == routable.size(), "busiest_expert: {} utilizations for {} experts",
               utilization.size(), routable.size());
  int64_t best = -1;
  for (size_t e = 0; e < routable.size(); ++e)
    if (routable[e] && (best < 0 || utilization[e] > utilization[static_cast<size_t>(best)]))
      best = static_cast<int64_t>(e);
  LUMINA_CHECK(best >= 0, "busiest_expert: no routable expert");
  return best;
}

}  // namespace lumina
