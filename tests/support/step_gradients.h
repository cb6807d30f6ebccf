#pragma once
// The gradients of one optimizer step of two (B 2, T 8) micro-batches on the
// CPU in f32 (fixed seeds), as f64: what tests compare between two ways of
// computing the same step. overwrite: the step's first gradient writes
// overwrite (ParamStore::overwrite_grads_next), starting from NaN gradients so
// that a gradient no op wrote would show; otherwise zero_grads() then accumulate.
#include <limits>
#include <vector>

#include "lumina/model/transformer.h"
#include "support/prepared_model.h"
#include "support/tiny_model.h"

namespace lumina::test {

inline std::vector<double> step_gradients(const ModelConfig& cfg, bool overwrite) {
  auto be = make_cpu_backend();
  const int64_t B = 2, T = 8;
  const auto owned = prepared_model(cfg, *be, DType::f32, 9, B, T);
  Transformer& model = *owned;
  if (overwrite) {
    be->fill(model.params().grads_flat(), std::numeric_limits<double>::quiet_NaN());
    model.params().overwrite_grads_next();
  } else {
    model.params().zero_grads();
  }
  for (int64_t micro = 0; micro < 2; ++micro) {
    const auto tokens = random_tokens(B * T, cfg.vocab_size, 30 + static_cast<uint64_t>(micro));
    const auto targets = random_tokens(B * T, cfg.vocab_size, 40 + static_cast<uint64_t>(micro), 5);
    model.set_training_step(true, 3, 0, micro);
    model.forward(tokens.data(), targets.data(), 1.0 / static_cast<double>(2 * B * T));
    model.backward(0.5);
  }
  std::vector<double> grads(static_cast<size_t>(model.params().numel()));
  be->cast(Tensor(grads.data(), DType::f64, Device::cpu, Shape{model.params().numel()}), model.params().grads_flat());
  return grads;
}

}  // namespace lumina::test
