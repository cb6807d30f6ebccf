#include "lumina/model/moe_experts.h"

namespace lumina {
namespace {

// One operand of an expert GEMM: rows (R, X) split by the layout, or an expert tensor (E, P, Q).
struct Operand {
  Tensor t;
  bool weight;
};

// Expert e's part: its rows, or its (P, Q) matrix.
Tensor part(const Operand& o, const std::vector<int32_t>& group_begin, int64_t e) {
  if (o.weight) return o.t.slice(e, e + 1).view(Shape{o.t.dim(1), o.t.dim(2)});
  return o.t.slice(group_begin[static_cast<size_t>(e)], group_begin[static_cast<size_t>(e + 1)]);
}

// All experts at once: rows as (E, S, X) slabs, weights as they are.
Tensor slabs(const Operand& o, const MoeLayout& layout, int64_t experts) {
  if (o.weight) return o.t;
  return o.t.prefix(Shape{experts * layout.group_stride, o.t.dim(1)})
      .view(Shape{experts, layout.group_stride, o.t.dim(1)});
}

// c_e = op(a_e) op(b_e) + beta c_e for every expert e.
void expert_gemm(Backend& be, const MoeLayout& layout, const std::vector<int32_t>& group_begin, const Operand& c,
                 const Operand& a, bool trans_a, const Operand& b, bool trans_b, double beta) {
  const int64_t E = (a.weight ? a.t : b.weight ? b.t : c.t).dim(0);
  if (layout.gemm != MoeGemm::loop) {
    be.gemm_batched(slabs(c, layout, E), slabs(a, layout, E), trans_a, slabs(b, layout, E), trans_b, 1.0, beta);
    return;
  }
  for (int64_t e = 0; e < E; ++e) {
    if (group_begin[static_cast<size_t>(e)] == group_begin[static_cast<size_t>(e + 1)]) continue;  // no rows
    be.gemm(part(c, group_begin, e), part(a, group_begin, e), trans_a, part(b, group_begin, e), trans_b, 1.0, beta);
  }
}

// The rows the experts use: the filled groups (loop), or every slab row.
int64_t used_rows(const MoeLayout& layout, const std::vector<int32_t>& group_begin) {
  return layout.gemm == MoeGemm::loop ? group_begin.back() : layout.rows;
}

}  // namespace

void experts_forward(Backend& be, const MoeLayout& layout, const std::vector<int32_t>& group_begin,
                     const ExpertWeights& w, const Tensor& xg, Tensor gate, Tensor up, Tensor h, Tensor y) {
  const int64_t R = used_rows(layout, group_begin);
  if (R == 0) return;
  auto rows_of = [R](const Tensor& t) { return t.prefix(Shape{R, t.dim(1)}); };
  const Operand x{rows_of(xg), false}, g{rows_of(gate), false}, u{rows_of(up), false};
  const Operand hh{rows_of(h), false}, yy{rows_of(y), false};
  expert_gemm(be, layout, group_begin, g, x, false, {w.w1, true}, true, 0.0);
  expert_gemm(be, layout, group_begin, u, x, false, {w.w3, true}, true, 0.0);
  be.swiglu_forward(hh.t, g.t, u.t);
  expert_gemm(be, layout, group_begin, yy, hh, false, {w.w2, true}, true, 0.0);
}

void experts_backward(Backend& be, const MoeLayout& layout, const std::vector<int32_t>& group_begin,
                      const ExpertWeights& w, const ExpertWeights& dw, const Tensor& xg, const Tensor& gate,
                      const Tensor& up, const Tensor& h, const Tensor& dy, Tensor dh, Tensor dgate, Tensor dup,
                      Tensor dxg) {
  const int64_t R = used_rows(layout, group_begin);
  if (R == 0) return;
  auto rows_of = [R](const Tensor& t) { return t.prefix(Shape{R, t.dim(1)}); };
  const Operand x{rows_of(xg), false}, hh{rows_of(h), false}, d{rows_of(dy), false};
  const Operand dhh{rows_of(dh), false}, dg{rows_of(dgate), false}, du{rows_of(dup), false};
  const Operand dx{rows_of(dxg), false};
  expert_gemm(be, layout, group_begin, {dw.w2, true}, d, true, hh, false, 1.0);
  expert_gemm(be, layout, group_begin, dhh, d, false, {w.w2, true}, false, 0.0);
  be.swiglu_backward(dg.t, du.t, dhh.t, rows_of(gate), rows_of(up));
  expert_gemm(be, layout, group_begin, {dw.w1, true}, dg, true, x, false, 1.0);
  expert_gemm(be, layout, group_begin, {dw.w3, true}, du, true, x, false, 1.0);
  expert_gemm(be, layout, group_begin, dx, dg, false, {w.w1, true}, false, 0.0);
  expert_gemm(be, layout, group_begin, dx, du, false, {w.w3, true}, false, 1.0);
}

}  // namespace lumina
