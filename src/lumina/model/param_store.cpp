#include "lumina/model/param_store.h"

#include <algorithm>
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
  LUMINA_CHECK(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16,
               "ParamStore: weights must be f32 or f64 (bf16 only for optimizer-free layer benchmarks), got {}",
               dtype_name(dtype));
  backend_ = &backend;
  const size_t bytes = static_cast<size_t>(numel_) * dtype_size_bytes(dtype);
  param_buffer_ = backend.allocate(bytes);
  grad_buffer_ = backend.allocate(bytes);
  params_ = param_buffer_.as_tensor(dtype, Shape{numel_});
  grads_ = grad_buffer_.as_tensor(dtype, Shape{numel_});
}

void ParamStore::freeze(ParamId id, int64_t begin, int64_t end) {
  const ParamSpec& s = specs_.at(static_cast<size_t>(id));
  LUMINA_CHECK(0 <= begin && begin <= end && end <= s.shape.numel(),
               "ParamStore: freeze({}, [{}, {})) outside its {} elements", s.name, begin, end, s.shape.numel());
  if (begin == end) return;
  frozen_.emplace_back(s.offset + begin, s.offset + end);
  std::sort(frozen_.begin(), frozen_.end());
  for (size_t i = 1; i < frozen_.size(); ++i)
    LUMINA_CHECK(frozen_[i - 1].second <= frozen_[i].first, "ParamStore: frozen ranges of {} overlap", s.name);
}

Tensor ParamStore::in_layout(const Tensor& flat, ParamId id) const {
  const ParamSpec& s = specs_.at(static_cast<size_t>(id));
  return flat.slice(s.offset, s.offset + s.shape.numel()).view(s.shape);
}

Tensor ParamStore::stacked(const Tensor& flat, ParamId first, int count) const {
  const ParamSpec& head = specs_.at(static_cast<size_t>(first));
  Shape shape = head.shape;
  int64_t end = head.offset + head.shape.numel();
  for (int i = 1; i < count; ++i) {
    const ParamSpec& s = specs_.at(static_cast<size_t>(first + i));
    LUMINA_CHECK(s.offset == end && s.shape.rank == shape.rank && s.shape.numel() / s.shape[0] == shape.numel() / shape[0],
                 "ParamStore::stacked: {} cannot be stacked under {} (shape {} after {})", s.name, head.name,
                 s.shape.str(), shape.str());
    shape.dims[0] += s.shape[0];
    end += s.shape.numel();
  }
  return flat.slice(head.offset, end).view(shape);
}

ParamId ParamStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  LUMINA_CHECK(it != by_name_.end(), "unknown parameter {}", name);
  return it->second;
}

void ParamStore::init_weights(uint64_t seed) {
  LUMINA_CHECK(allocated(), "ParamStore: init_weights() before allocate()");
  // In chunks, so host memory stays bounded for billion-element expert tensors.
  constexpr int64_t kChunk = int64_t{1} << 24;
  std::vector<double> host;
  for (size_t i = 0; i < specs_.size(); ++i) {
    const ParamSpec& s = specs_[i];
    const int64_t numel = s.shape.numel();
    const Tensor flat = param(static_cast<ParamId>(i)).view(Shape{numel});
    for (int64_t begin = 0; begin < numel; begin += kChunk) {
      const int64_t n = std::min(kChunk, numel - begin);
      host.resize(static_cast<size_t>(n));
      if (s.init == ParamInit::ones) {
        std::fill(host.begin(), host.end(), 1.0);
      } else {
        // Stream keyed by the parameter's index: adding a parameter never changes the others' values.
        Rng(seed, RngPurpose::init, i).fill_normal(host.data(), n, 0.0, s.init_std, static_cast<uint64_t>(begin));
      }
      upload_f64(*backend_, flat.slice(begin, begin + n), host.data());
    }
  }
}

void ParamStore::zero_grads() {
  backend_->fill(grads_, 0.0);
  overwriting_ = false;
}

void ParamStore::overwrite_grads_next() {
  LUMINA_CHECK(allocated(), "ParamStore::overwrite_grads_next: allocate() first");
  overwriting_ = true;
  written_.assign(specs_.size(), 0);
}

void ParamStore::zero_unwritten(ParamId first, ParamId end) {
  // Consecutive unwritten parameters are adjacent in the flat buffer: one fill each run.
  for (ParamId id = first; id < end;) {
    if (written_[static_cast<size_t>(id)]) {
      ++id;
      continue;
    }
    ParamId last = id;
    while (last + 1 < end && !written_[static_cast<size_t>(last + 1)]) ++last;
    const ParamSpec& a = specs_[static_cast<size_t>(id)];
    const ParamSpec& b = specs_[static_cast<size_t>(last)];
    backend_->fill(grads_.slice(a.offset, b.offset + b.shape.numel()), 0.0);
    for (ParamId i = id; i <= last; ++i) written_[static_cast<size_t>(i)] = 1;
    id = last + 1;
  }
}

double ParamStore::grad_beta(ParamId first, int count) {
  LUMINA_CHECK(first >= 0 && count >= 1 && static_cast<size_t>(first + count) <= specs_.size(),
               "ParamStore::grad_beta: parameters {} .. {} of {}", first, first + count - 1, specs_.size());
  if (!overwriting_) return 1.0;
  bool any_written = false;
  for (ParamId id = first; id < first + count; ++id) any_written = any_written || written_[static_cast<size_t>(id)];
  if (any_written) {  // a stack written in part: the rest joins by accumulating onto zeros
    zero_unwritten(first, first + count);
    return 1.0;
  }
  for (ParamId id = first; id < first + count; ++id) written_[static_cast<size_t>(id)] = 1;
  return 0.0;
}

Tensor ParamStore::grad_to_accumulate(ParamId id) {
  if (overwriting_) zero_unwritten(id, id + 1);
  return grad(id);
}

void ParamStore::end_overwrite() {
  if (!overwriting_) return;
  zero_unwritten(0, static_cast<ParamId>(specs_.size()));
  overwriting_ = false;
}

void copy_by_name(const ParamStore& from, const Tensor& from_flat, const ParamStore& to, Tensor to_flat) {
  Backend& be = to.backend();
  for (size_t id = 0; id < to.specs().size(); ++id) {
    const ParamSpec& dst = to.specs()[id];
    LUMINA_CHECK(from.contains(dst.name), "copy_by_name: parameter {} is not in the source model", dst.name);
    const ParamId src_id = from.find(dst.name);
    const Shape& src_shape = from.specs()[static_cast<size_t>(src_id)].shape;
    const Tensor src = from.in_layout(from_flat, src_id), out = to.in_layout(to_flat, static_cast<ParamId>(id));
    if (src_shape == dst.shape) {
      be.copy(out, src);
      continue;
    }
    // A grown leading dim: same rank and trailing dims, more rows.
    bool grown = src_shape.rank == dst.shape.rank && src_shape.rank >= 1 && dst.shape[0] > src_shape[0];
    for (int d = 1; grown && d < dst.shape.rank; ++d) grown = src_shape[d] == dst.shape[d];
    LUMINA_CHECK(grown, "copy_by_name: parameter {} changes shape from {} to {}; only a grown leading (expert) dim "
                 "can be carried over", dst.name, src_shape.str(), dst.shape.str());
    be.copy(out.slice(0, src_shape[0]), src);
    be.fill(out.slice(src_shape[0], dst.shape[0]), 0.0);
  }
}

}  // namespace lumina
