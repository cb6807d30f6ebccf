#pragma once
// A model ready for forward and backward in a test: allocated on a backend
// (master dtype, activation dtype), initialised from a seed, prepared for
// (B, T) micro-batches.
#include <memory>

#include "lumina/model/transformer.h"

namespace lumina::test {

inline std::unique_ptr<Transformer> prepared_model(const ModelConfig& cfg, Backend& be, DType act, uint64_t seed,
                                                   int64_t B, int64_t T, DType master = DType::f32) {
  auto model = std::make_unique<Transformer>(cfg);
  model->allocate(be, master, act);
  model->params().init_weights(seed);
  model->prepare(B, T);
  return model;
}

}  // namespace lumina::test
