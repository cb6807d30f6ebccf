#include "lumina/optim/adamw.h"

#include <cmath>

namespace lumina {

AdamW::AdamW(ParamStore& params, const AdamWConfig& cfg) : params_(params), cfg_(cfg) {
  LUMINA_CHECK(params.allocated(), "AdamW: parameters must be allocated first");
  Backend& be = params.backend();
  const size_t bytes = static_cast<size_t>(params.numel()) * dtype_size_bytes(params.dtype());
  m_buffer_ = be.allocate(bytes);
  v_buffer_ = be.allocate(bytes);
  m_ = m_buffer_.as_tensor(params.dtype(), Shape{params.numel()});
  v_ = v_buffer_.as_tensor(params.dtype(), Shape{params.numel()});
}

void AdamW::step(double lr, double grad_scale, Tensor compute_copy) {
  LUMINA_CHECK(compute_copy.empty() || compute_copy.numel() == params_.numel(),
               "AdamW::step: the compute copy has {} elements, the parameters {}", compute_copy.numel(),
               params_.numel());
  ++step_;
  Backend& be = params_.backend();
  AdamWParams h;
  h.lr = lr;
  h.beta1 = cfg_.beta1;
  h.beta2 = cfg_.beta2;
  h.eps = cfg_.eps;
  h.step = step_;
  h.grad_scale = grad_scale;
  auto update = [&](int64_t begin, int64_t end) {
    if (begin < end)
      be.adamw_update(params_.params_flat().slice(begin, end), params_.grads_flat().slice(begin, end),
                      m_.slice(begin, end), v_.slice(begin, end), h,
                      compute_copy.empty() ? Tensor{} : compute_copy.slice(begin, end));
  };
  // Consecutive parameters with the same decay setting form one flat range: one
  // call each, split around the frozen ranges inside it.
  const auto& specs = params_.specs();
  const auto& frozen = params_.frozen();
  size_t i = 0, f = 0;
  while (i < specs.size()) {
    size_t j = i + 1;
    while (j < specs.size() && specs[j].weight_decay == specs[i].weight_decay) ++j;
    int64_t begin = specs[i].offset;
    const int64_t end = specs[j - 1].offset + specs[j - 1].shape.numel();
    h.weight_decay = specs[i].weight_decay ? cfg_.weight_decay : 0.0;
    for (; f < frozen.size() && frozen[f].first < end; ++f) {
      update(begin, frozen[f].first);
      begin = frozen[f].second;
    }
    update(begin, end);
    i = j;
  }
}

double grad_global_norm(ParamStore& params) { return std::sqrt(params.backend().sum_squares(params.grads_flat())); }

double clip_scale(double grad_norm, double max_norm) {
  if (max_norm <= 0.0 || !(grad_norm > max_norm)) return 1.0;
  return max_norm / (grad_norm + 1e-6);
}

}  // namespace lumina
