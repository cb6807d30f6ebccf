#pragma once
// Shape checks shared by the CPU and CUDA packed SwiGLU ops (backend.h,
// "SwiGLU"). Dtype and device checks stay with each backend.
#include <cstdint>

#include "lumina/core/error.h"
#include "lumina/core/tensor.h"

namespace lumina {

// F of a packed op: gate_up (and dgate_up, when given) must be (N, 2F) for `rows_f` (N, F).
inline int64_t check_swiglu_packed(const char* op, const Tensor& gate_up, const Tensor& dgate_up,
                                   const Tensor& rows_f, const char* rows_f_name) {
  LUMINA_CHECK(rows_f.rank() == 2 && gate_up.rank() == 2 && gate_up.dim(0) == rows_f.dim(0) &&
                   gate_up.dim(1) == 2 * rows_f.dim(1),
               "{}: gate_up {} must be (N, 2F) for {} (N, F) {}", op, gate_up.shape.str(), rows_f_name,
               rows_f.shape.str());
  LUMINA_CHECK(dgate_up.empty() || dgate_up.shape == gate_up.shape, "{}: dgate_up {} must be shaped as gate_up {}",
               op, dgate_up.shape.str(), gate_up.shape.str());
  return rows_f.dim(1);
}

}  // namespace lumina
