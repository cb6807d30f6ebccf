#include "lumina/model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lumina/model/host_transfer.h"
#include "lumina/model/moe_layout.h"

namespace lumina {
namespace {

// Expert e's (rows, cols) matrix of an (E, rows, cols) weight or gradient.
Tensor expert_matrix(const Tensor& w, int64_t e) { return w.slice(e, e + 1).view(Shape{w.dim(1), w.dim(2)}); }

Tensor row(const Tensor& t, int64_t r) { return t.slice(r, r + 1); }

// xg row r = x row row_token[r], for all R kept rows: one row gather (the embedding lookup op).
void gather_rows(Backend& be, Tensor xg, const Tensor& x, const Tensor& row_token, int64_t R) {
  if (R > 0) be.embedding_forward(xg.prefix(Shape{R, x.dim(1)}), row_token.prefix(Shape{R}), x);
}

}  // namespace

MoeFfn::MoeFfn(ParamStore& ps, const ModelConfig& cfg, const std::string& prefix, int64_t layer)
    : layer_(layer), hidden_(cfg.hidden_size), ffn_(cfg.ffn_size()) {
  routing_.routable = moe_layer_routable(cfg, layer);
  routing_.num_experts = static_cast<int64_t>(routing_.routable.size());
  routing_.top_k = cfg.moe_top_k;
  routing_.capacity_factor = cfg.capacity_factor;
  routing_.dropless = cfg.dropless;
  routing_.temperature = cfg.routing_temperature;
  routing_.load_balancing_weight = cfg.load_balancing_weight;
  routing_.z_loss_weight = cfg.router_z_loss_weight;
  routing_.noise_std = cfg.routing_noise_std;
  routing_.expert_dropout = cfg.expert_dropout;
  const int64_t E = routing_.num_experts, C = hidden_, F = ffn_;
  const auto routable = std::count(routing_.routable.begin(), routing_.routable.end(), uint8_t{1});
  LUMINA_CHECK(cfg.moe_top_k >= 1 && cfg.moe_top_k <= routable,
               "MoE layer {}: moe_top_k = {} must be between 1 and its {} routable experts", layer, cfg.moe_top_k,
               routable);
  LUMINA_CHECK(cfg.dropless || cfg.capacity_factor > 0.0, "MoE: capacity_factor = {} must be > 0 (or set dropless)",
               cfg.capacity_factor);
  LUMINA_CHECK(cfg.routing_temperature > 0.0, "MoE: routing_temperature = {} must be > 0", cfg.routing_temperature);
  LUMINA_CHECK(cfg.routing_noise_std >= 0.0, "MoE: routing_noise_std = {} must be >= 0", cfg.routing_noise_std);
  LUMINA_CHECK(cfg.expert_dropout >= 0.0 && cfg.expert_dropout < 1.0, "MoE: expert_dropout = {} must be in [0, 1)",
               cfg.expert_dropout);
  const double residual_std = cfg.init_std / std::sqrt(2.0 * static_cast<double>(cfg.num_layers));
  router = ps.declare(prefix + "gate.weight", Shape{E, C}, ParamInit::normal, cfg.init_std, true);
  w1 = ps.declare(prefix + "experts.w1", Shape{E, F, C}, ParamInit::normal, cfg.init_std, true);
  w3 = ps.declare(prefix + "experts.w3", Shape{E, F, C}, ParamInit::normal, cfg.init_std, true);
  w2 = ps.declare(prefix + "experts.w2", Shape{E, C, F}, ParamInit::normal, residual_std, true);
  // A pruned expert's router row and expert matrices are frozen (kept, never updated).
  for (int64_t e = 0; e < E; ++e) {
    if (routing_.routable[static_cast<size_t>(e)]) continue;
    ps.freeze(router, e * C, (e + 1) * C);
    for (const ParamId w : {w1, w3, w2}) ps.freeze(w, e * F * C, (e + 1) * F * C);
  }
}

MoeFfn::Activations MoeFfn::plan(Arena& arena, DType act, int64_t N) const {
  const int64_t rows = N * routing_.top_k;
  Activations a;
  a.logits = arena.alloc(act, Shape{N, routing_.num_experts});
  a.gate = arena.alloc(act, Shape{rows, ffn_});
  a.up = arena.alloc(act, Shape{rows, ffn_});
  a.row_token = arena.alloc(DType::i32, Shape{rows});
  return a;
}

MoeFfn::Scratch MoeFfn::plan_scratch(Arena& arena, DType act, int64_t N) const {
  const int64_t rows = N * routing_.top_k;
  Scratch s;
  for (Tensor* t : {&s.xg, &s.y, &s.dy}) *t = arena.alloc(act, Shape{rows, hidden_});
  for (Tensor* t : {&s.h, &s.dgate, &s.dup, &s.dh}) *t = arena.alloc(act, Shape{rows, ffn_});
  s.dots = arena.alloc(act, Shape{rows});
  s.dlogits = arena.alloc(act, Shape{N, routing_.num_experts});
  return s;
}

const MoeStats& MoeFfn::forward(const ModelContext& c, const Tensor& x, Tensor residual, Activations& a,
                                Scratch& s) const {
  Backend& be = c.be();
  const int64_t N = x.dim(0);
  const Tensor logits = a.logits.prefix(Shape{N, routing_.num_experts});  // a may be planned for more tokens
  linear_forward(c, logits, x, router);  // (N, E)
  download_doubles(be, logits, s.staging, s.host_a);
  MoeRouting& r = a.routing;
  const MoeDrawKey key{c.seed, c.step, c.micro, layer_};
  moe_route(s.host_a.data(), N, routing_, c.training ? &key : nullptr, r);
  const int64_t R = r.rows();
  s.host_rows.assign(r.row_token.begin(), r.row_token.end());
  if (R > 0) be.copy(a.row_token.prefix(Shape{R}), Tensor(s.host_rows.data(), DType::i32, Device::cpu, Shape{R}));
  gather_rows(be, s.xg, x, a.row_token, R);
  const Tensor W1 = c.weight(w1), W3 = c.weight(w3), W2 = c.weight(w2);
  for (int64_t e = 0; e < routing_.num_experts; ++e) {
    const int64_t b = r.row_begin[static_cast<size_t>(e)], end = r.row_begin[static_cast<size_t>(e + 1)];
    if (b == end) continue;
    const Tensor xe = s.xg.slice(b, end), gate = a.gate.slice(b, end), up = a.up.slice(b, end);  // (n_e, C|F)
    be.gemm(gate, xe, false, expert_matrix(W1, e), true);      // (n_e, F) = xe W1_e^T
    be.gemm(up, xe, false, expert_matrix(W3, e), true);        // (n_e, F) = xe W3_e^T
    be.swiglu_forward(s.h.slice(b, end), gate, up);            // h = silu(gate) * up
    be.gemm(s.y.slice(b, end), s.h.slice(b, end), false, expert_matrix(W2, e), true);  // (n_e, C) = h W2_e^T
  }
  for (int64_t i = 0; i < r.rows(); ++i)  // residual_n += w * y_r
    be.axpy(row(residual, r.row_token[static_cast<size_t>(i)]), row(s.y, i),
            r.weight[static_cast<size_t>(r.row_slot[static_cast<size_t>(i)])]);
  return r.stats;
}

void MoeFfn::backward(const ModelContext& c, const Tensor& x, const Tensor& dresidual, Tensor dx, double dloss_scale,
                      const Activations& a, Scratch& s) const {
  Backend& be = c.be();
  const MoeRouting& r = a.routing;
  const int64_t R = r.rows();
  const Tensor W1 = c.weight(w1), W3 = c.weight(w3), W2 = c.weight(w2);
  const Tensor dW1 = c.grad(w1), dW3 = c.grad(w3), dW2 = c.grad(w2);
  gather_rows(be, s.xg, x, a.row_token, R);
  gather_rows(be, s.dy, dresidual, a.row_token, R);  // dy_r = dresidual_n (before the weight)
  // Recompute h and y per expert; the combine weight's gradient is dots_r = dresidual_n . y_r.
  for (int64_t e = 0; e < routing_.num_experts; ++e) {
    const int64_t b = r.row_begin[static_cast<size_t>(e)], end = r.row_begin[static_cast<size_t>(e + 1)];
    if (b == end) continue;
    be.swiglu_forward(s.h.slice(b, end), a.gate.slice(b, end), a.up.slice(b, end));
    be.gemm(s.y.slice(b, end), s.h.slice(b, end), false, expert_matrix(W2, e), true);
  }
  for (int64_t i = 0; i < R; ++i) {
    be.gemm(row(s.dots, i).view(Shape{1, 1}), row(s.dy, i), false, row(s.y, i), true);  // (1,1) = dy_r y_r^T
    be.scale(row(s.dy, i), r.weight[static_cast<size_t>(r.row_slot[static_cast<size_t>(i)])]);  // dy_r = w dresidual_n
  }
  // Experts: dW2_e += dy^T h; dh = dy W2_e; swiglu; dW1_e += dgate^T xe; dW3_e += dup^T xe;
  // d(expert input) (n_e, C) = dgate W1_e + dup W3_e, written into y (no longer needed).
  for (int64_t e = 0; e < routing_.num_experts; ++e) {
    const int64_t b = r.row_begin[static_cast<size_t>(e)], end = r.row_begin[static_cast<size_t>(e + 1)];
    if (b == end) continue;
    const Tensor xe = s.xg.slice(b, end), dy = s.dy.slice(b, end), h = s.h.slice(b, end);
    const Tensor dh = s.dh.slice(b, end), dgate = s.dgate.slice(b, end), dup = s.dup.slice(b, end);
    be.gemm(expert_matrix(dW2, e), dy, true, h, false, 1.0, 1.0);
    be.gemm(dh, dy, false, expert_matrix(W2, e), false);
    be.swiglu_backward(dgate, dup, dh, a.gate.slice(b, end), a.up.slice(b, end));
    be.gemm(expert_matrix(dW1, e), dgate, true, xe, false, 1.0, 1.0);
    be.gemm(expert_matrix(dW3, e), dup, true, xe, false, 1.0, 1.0);
    be.gemm(s.y.slice(b, end), dgate, false, expert_matrix(W1, e), false);
    be.gemm(s.y.slice(b, end), dup, false, expert_matrix(W3, e), false, 1.0, 1.0);
  }
  be.fill(dx, 0.0);
  for (int64_t i = 0; i < R; ++i) be.axpy(row(dx, r.row_token[static_cast<size_t>(i)]), row(s.y, i));
  // Router: d(combine weights) (N, k) from the dots, then d logits on the host, then dWr and dx.
  std::vector<double>& dweight = s.host_b;
  dweight.assign(static_cast<size_t>(r.tokens * r.top_k), 0.0);
  if (R > 0) {
    download_doubles(be, s.dots.prefix(Shape{R}), s.staging, s.host_a);
    for (int64_t i = 0; i < R; ++i)
      dweight[static_cast<size_t>(r.row_slot[static_cast<size_t>(i)])] = s.host_a[static_cast<size_t>(i)];
  }
  s.host_a.resize(static_cast<size_t>(r.tokens * r.experts));
  moe_route_backward(r, routing_, dweight.data(), dloss_scale, s.host_a.data());
  const Tensor dlogits = s.dlogits.prefix(Shape{r.tokens, r.experts});  // s may be planned for a wider layer
  upload_doubles(be, dlogits, s.host_a, s.staging);
  linear_backward(c, dx, dlogits, x, router, 1.0);
}

}  // namespace lumina
