#pragma once
// ParamStore: every parameter of a model in one flat buffer, its gradients in
// a second flat buffer of the same layout, with named views (Hugging Face
// names, e.g. "model.layers.0.self_attn.q_proj.weight").
//
// Invariants:
// - declare() all parameters first, then allocate() once; layout = declaration order.
// - params and grads have the dtype given to allocate() (f32 master weights on
//   every device; f64 for gradient checks on the CPU; bf16 only for layer benchmarks
//   without an optimizer, `lumina bench moe`).
// - gradients accumulate (+=) during backward; zero_grads() clears them per step,
//   or overwrite_grads_next() has the step's first write of each gradient
//   overwrite it (no clearing pass over the whole buffer; see below).
// - frozen element ranges (pruned experts) are left alone by the optimizer: no
//   update, no weight decay, moments kept; the model guarantees zero gradients there.
// Flat buffers make the optimizer, grad-norm, all-reduce and checkpoint I/O one call each.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
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
  // Freezes elements [begin, end) of parameter `id` (flat order within the parameter).
  void freeze(ParamId id, int64_t begin, int64_t end);
  // Frozen [begin, end) ranges of the flat buffers, sorted and disjoint.
  const std::vector<std::pair<int64_t, int64_t>>& frozen() const { return frozen_; }

  // Initialises every parameter from (seed, parameter index): normal(0, std) or ones.
  // Draws on the host in f64 then copies, so weights are identical on every backend.
  void init_weights(uint64_t seed);
  void zero_grads();

  // One step's gradient writes without zero_grads(): after overwrite_grads_next(),
  // the first write of each gradient overwrites it. A GEMM asks grad_beta() for
  // its beta (0 on the first write, then 1); an op that can only accumulate takes
  // grad_to_accumulate(), zeroed on its first write. end_overwrite() zeroes the
  // gradients nothing wrote (a skipped expert, a MoD layer that routed no token)
  // and makes later writes accumulate (the step's other micro-batches). Outside
  // that window every write accumulates. Saves a pass over the f32 gradients
  // (3.4 GB at dense-1b) and the GEMMs' reads of them.
  void overwrite_grads_next();
  // beta for a GEMM writing the gradients of parameters first .. first + count - 1
  // (stacked, ParamStore::stacked); marks them written.
  double grad_beta(ParamId first, int count = 1);
  Tensor grad_to_accumulate(ParamId id);
  void end_overwrite();

  Tensor param(ParamId id) const { return in_layout(params_, id); }
  Tensor grad(ParamId id) const { return in_layout(grads_, id); }
  // Parameter `id`'s view inside any flat buffer laid out like the parameters
  // (gradients, optimizer state, a compute-dtype copy, a staged host copy).
  Tensor in_layout(const Tensor& flat, ParamId id) const;
  // Parameters first .. first + count - 1 as one tensor stacked along dim 0 of
  // `flat` (e.g. q/k/v projections for one fused GEMM): they are adjacent in
  // every flat layout; their trailing dims must agree.
  Tensor stacked(const Tensor& flat, ParamId first, int count) const;
  ParamId find(const std::string& name) const;  // throws when unknown
  bool contains(const std::string& name) const { return by_name_.count(name) > 0; }

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
  std::vector<std::pair<int64_t, int64_t>> frozen_;
  Backend* backend_ = nullptr;
  Buffer param_buffer_, grad_buffer_;
  Tensor params_, grads_;
  bool overwriting_ = false;      // between overwrite_grads_next() and end_overwrite()
  std::vector<uint8_t> written_;  // per parameter, while overwriting_
  // Zeroes the gradients of the parameters in [first, end) not yet written, marking them.
  void zero_unwritten(ParamId first, ParamId end);
};

// Copies every parameter of `to` from the parameter of the same name in `from`
// (any flat buffers laid out like the two stores: weights, gradients, optimizer
// moments). A parameter whose leading dim grew (an expert added to an [E, ...]
// tensor) gets the old rows and zeros after them. Throws on a parameter missing
// from `from` or another shape change.
void copy_by_name(const ParamStore& from, const Tensor& from_flat, const ParamStore& to, Tensor to_flat);

}  // namespace lumina
