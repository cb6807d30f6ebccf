#pragma once
// Shape checks shared by the CPU and CUDA Mixture-of-Depths ops
// (backend.h, "mixture of depths"). Dtype and device checks stay with each backend.
#include <cstdint>
#include <limits>

#include "lumina/core/error.h"
#include "lumina/core/tensor.h"

namespace lumina {

inline void check_mod_shape(const Tensor& t, const Shape& want, const char* op, const char* name) {
  LUMINA_CHECK(t.shape == want, "{}: {} has shape {}, expected {}", op, name, t.shape.str(), want.str());
}

// mod_select_top_k: scores (B,T), 1 <= k <= T, outputs (B,k), (B,k), (B*T), (B*T).
inline void check_mod_select_top_k(const Tensor& row_token, const Tensor& positions, const Tensor& slot_row,
                                   const Tensor& gate, const Tensor& scores, int64_t k, const char* op) {
  LUMINA_CHECK(scores.rank() == 2, "{}: scores must be (B, T), got {}", op, scores.shape.str());
  const int64_t B = scores.dim(0), T = scores.dim(1);
  LUMINA_CHECK(k >= 1 && k <= T, "{}: k = {} must be in [1, T = {}]", op, k, T);
  LUMINA_CHECK(B * T <= std::numeric_limits<int32_t>::max(), "{}: {} tokens do not fit i32 indices", op, B * T);
  check_mod_shape(row_token, Shape{B, k}, op, "row_token");
  check_mod_shape(positions, Shape{B, k}, op, "positions");
  check_mod_shape(slot_row, Shape{B * T}, op, "slot_row");
  check_mod_shape(gate, Shape{B * T}, op, "gate");
}

// mod_combine: out, x (N,C); delta, ys (R,C); slot_row, gate (N).
inline void check_mod_combine(const Tensor& out, const Tensor& delta, const Tensor& x, const Tensor& ys,
                              const Tensor& slot_row, const Tensor& gate, const char* op) {
  LUMINA_CHECK(x.rank() == 2, "{}: x must be (N, C), got {}", op, x.shape.str());
  LUMINA_CHECK(ys.rank() == 2 && ys.dim(1) == x.dim(1), "{}: ys must be (R, C = {}), got {}", op, x.dim(1),
               ys.shape.str());
  check_mod_shape(out, x.shape, op, "out");
  check_mod_shape(delta, ys.shape, op, "delta");
  check_mod_shape(slot_row, Shape{x.dim(0)}, op, "slot_row");
  check_mod_shape(gate, Shape{x.dim(0)}, op, "gate");
}

// mod_input_backward: dx (N,C), dxs (R,C), dgate / gate / slot_row (N); dscores (N) and w (C), or both empty.
inline void check_mod_input_backward(const Tensor& dx, const Tensor& dscores, const Tensor& dxs, const Tensor& dgate,
                                     const Tensor& slot_row, const Tensor& gate, const Tensor& w, const char* op) {
  LUMINA_CHECK(dx.rank() == 2, "{}: dx must be (N, C), got {}", op, dx.shape.str());
  LUMINA_CHECK(dxs.rank() == 2 && dxs.dim(1) == dx.dim(1), "{}: dxs must be (R, C = {}), got {}", op, dx.dim(1),
               dxs.shape.str());
  const int64_t N = dx.dim(0);
  check_mod_shape(slot_row, Shape{N}, op, "slot_row");
  check_mod_shape(gate, Shape{N}, op, "gate");
  check_mod_shape(dgate, Shape{N}, op, "dgate");
  LUMINA_CHECK(dscores.empty() == w.empty(), "{}: dscores and w go together (a router), got {} and {}", op,
               dscores.empty() ? "none" : dscores.shape.str(), w.empty() ? "none" : w.shape.str());
  if (dscores.empty()) return;
  check_mod_shape(dscores, Shape{N}, op, "dscores");
  check_mod_shape(w, Shape{dx.dim(1)}, op, "w");
}

// mod_predictor: pred / slot_row (N), dpred (N) or empty, sums (2) or empty.
inline void check_mod_predictor(const Tensor& dpred, const Tensor& sums, const Tensor& pred, const Tensor& slot_row,
                                const char* op) {
  LUMINA_CHECK(pred.rank() == 1, "{}: pred must be (N), got {}", op, pred.shape.str());
  check_mod_shape(slot_row, pred.shape, op, "slot_row");
  if (!dpred.empty()) check_mod_shape(dpred, pred.shape, op, "dpred");
  if (!sums.empty()) check_mod_shape(sums, Shape{2}, op, "sums");
}

}  // namespace lumina
