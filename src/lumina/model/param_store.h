#pragma once
// ParamStore: every parameter of a model in one flat buffer, its gradients in
// a second flat buffer of the same layout, with named views (Hugging Face
// names, e.g. "model.layers.0.self_attn.q_proj.weight").
//
// Invariants:
// - declare() all parameters first, then allocate() once; layout = declaration order.
// - params and grads have the dtype given to allocate() (f32 master weights on
//   every device; f64 for gradient checks on the CPU).
// - gradients accumulate (+=) during backward; zero_grads() clears them per step.
// Flat buffers make the optimizer, grad-norm, all-reduce and checkpoint I/O one call each.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "lumina/backend/backend.h"

namespace lumina {

enum class ParamInit { normal, ones };

struct ParamSpec {
  std::string name;     // Hugging Face name
  Shape shape;          // [out, in] for linear weights, as torch.nn.Linear
  ParamInit init;
  double init_std;      // for ParamInit::normal
  bool weight_decay;    // false for norm weights
  int64_t offset = 0;   // element offset in the flat buffers
};

using ParamId = int32_t;

class ParamStore {
 public:
  ParamId declare(std::string name, Shape shape, ParamInit init, double init_std, bool weight_decay);
  void allocate(Backend& backend, DType dtype);

  // Initialises every parameter from (seed, parameter index): normal(0, std) or ones.
  // Draws on the host in f64 then copies, so weights are identical on every backend.
  void init_weights(uint64_t seed);
  void zero_grads();

  Tensor param(ParamId id) const { return in_layout(params_, id); }
  Tensor grad(ParamId id) const { return in_layout(grads_, id); }
  // Parameter `id`'s view inside any flat buffer laid out like the parameters
  // (gradients, optimizer state, a compute-dtype copy, a staged host copy).
  Tensor in_layout(const Tensor& flat, ParamId id) const;
  ParamId find(const std::string& name) const;  // throws when unknown

  const std::vector<ParamSpec>& specs() const { return specs_; }
  int64_t numel() const { return numel_; }  // known right after declare(), before allocate()
  bool allocated() const { return !params_.empty(); }
  DType dtype() const { return params_.dtype; }
  Tensor params_flat() const { return params_; }
  Tensor grads_flat() const { return grads_; }
  Backend& backend() const { return *backend_; }

 private:
  std::vector<ParamSpec> specs_;
  std::unordered_map<std::string, ParamId> by_name_;
  int64_t numel_ = 0;
  Backend* backend_ = nullptr;
  Buffer param_buffer_, grad_buffer_;
  Tensor params_, grads_;
};

}  // namespace lumina
