#include "lumina/model/param_store.h"

#include <vector>

#include "lumina/core/rng.h"

namespace lumina {

ParamId ParamStore::declare(std::string name, Shape shape, ParamInit init, double init_std, bool weight_decay) {
  LUMINA_CHECK(!allocated(), "ParamStore: declare({}) after allocate()", name);
  LUMINA_CHECK(!by_name_.count(name), "ParamStore: parameter {} declared twice", name);
  const auto id = static_cast<ParamId>(specs_.size());
  by_name_.emplace(name, id);
  specs_.push_back(ParamSpec{std::move(name), shape, init, init_std, weight_decay, numel_});
  numel_ += shape.numel();
  return id;
}

void ParamStore::allocate(Backend& backend, DType dtype) {
  LUMINA_CHECK(!allocated(), "ParamStore: allocate() called twice");
  LUMINA_CHECK(dtype == DType::f32 || dtype == DType::f64, "ParamStore: master weights must be f32 or f64, got {}",
               dtype_name(dtype));
  backend_ = &backend;
  const size_t bytes = static_cast<size_t>(numel_) * dtype_size_bytes(dtype);
  param_buffer_ = backend.allocate(bytes);
  grad_buffer_ = backend.allocate(bytes);
  params_ = param_buffer_.as_tensor(dtype, Shape{numel_});
  grads_ = grad_buffer_.as_tensor(dtype, Shape{numel_});
}

Tensor ParamStore::in_layout(const Tensor& flat, ParamId id) const {
  const ParamSpec& s = specs_.at(static_cast<size_t>(id));
  return flat.slice(s.offset, s.offset + s.shape.numel()).view(s.shape);
}

ParamId ParamStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  LUMINA_CHECK(it != by_name_.end(), "unknown parameter {}", name);
  return it->second;
}

void ParamStore::init_weights(uint64_t seed) {
  LUMINA_CHECK(allocated(), "ParamStore: init_weights() before allocate()");
  std::vector<double> host;
  for (size_t i = 0; i < specs_.size(); ++i) {
    const ParamSpec& s = specs_[i];
    host.resize(static_cast<size_t>(s.shape.numel()));
    if (s.init == ParamInit::ones) {
      std::fill(host.begin(), host.end(), 1.0);
    } else {
      // Stream keyed by the parameter's index: adding a parameter never changes the others' values.
      Rng(seed, RngPurpose::init, i).fill_normal(host.data(), s.shape.numel(), 0.0, s.init_std);
    }
    upload_f64(*backend_, param(static_cast<ParamId>(i)), host.data());
  }
}

void ParamStore::zero_grads() { backend_->fill(grads_, 0.0); }

}  // namespace lumina
