#pragma once
// The expert GEMMs of a MoE layer over the expert rows of a layout (moe.h):
// loop = one gemm per expert on its rows [group_begin[e], group_begin[e+1]);
// grouped variants = one gemm_batched over E slabs of group_stride rows.
// Row tensors are (R, X); expert weights (E, P, Q); gradients accumulate (+=).
#include <cstdint>
#include <vector>

#include "lumina/backend/backend.h"
#include "lumina/model/moe.h"

namespace lumina {

struct ExpertWeights {
  Tensor w1, w3, w2;  // (E,F,C) gate, (E,F,C) up, (E,C,F) down
};

// gate, up (R,F) = xg W1_e^T, xg W3_e^T;  h = silu(gate) * up;  y (R,C) = h W2_e^T.
// group_begin: the host copy (loop only).
void experts_forward(Backend& be, const MoeLayout& layout, const std::vector<int32_t>& group_begin,
                     const ExpertWeights& w, const Tensor& xg, Tensor gate, Tensor up, Tensor h, Tensor y);

// dW2_e += dy^T h;  dh = dy W2_e;  (dgate, dup) = swiglu backward;  dW1_e += dgate^T xg;
// dW3_e += dup^T xg;  dxg (R,C) = dgate W1_e + dup W3_e (overwritten).
void experts_backward(Backend& be, const MoeLayout& layout, const std::vector<int32_t>& group_begin,
                      const ExpertWeights& w, const ExpertWeights& dw, const Tensor& xg, const Tensor& gate,
                      const Tensor& up, const Tensor& h, const Tensor& dy, Tensor dh, Tensor dgate, Tensor dup,
                      Tensor dxg);

}  // namespace lumina
