#include "lumina/model/moe.h"

#include <algorithm>
#include <cmath>

#include "lumina/core/rng.h"
#include "lumina/model/host_transfer.h"
#include "lumina/model/moe_experts.h"
#include "lumina/model/moe_layout.h"

namespace lumina {
namespace {

constexpr int64_t kSlabAlignRows = 8;    // grouped: slab rows keep 16-byte aligned rows for any C
constexpr int64_t kGemmTileRows = 128;   // the M tile of the expert GEMMs (tile rounding; loop groups on a GPU)

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

MoeFfn::MoeFfn(ParamStore& ps, const ModelConfig& cfg, const std::string& prefix, int64_t layer)
    : gemm_(cfg.moe_gemm), layer_(layer), hidden_(cfg.hidden_size), ffn_(cfg.ffn_size()) {
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
  LUMINA_CHECK(!cfg.dropless || gemm_ == "auto" || gemm_ == "loop",
               "MoE: moe_gemm = \"{}\" needs a capacity; set dropless = false or moe_gemm = \"loop\"", gemm_);
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

MoeLayout MoeFfn::layout(int64_t N, int64_t available, Device device) const {
  const int64_t E = routing_.num_experts;
  MoeLayout l;
  l.gemm = gemm_ == "loop"                    ? MoeGemm::loop
           : gemm_ == "grouped"               ? MoeGemm::grouped
           : gemm_ == "grouped_tile_rounding" ? MoeGemm::grouped_tile_rounding
           : (device == Device::cuda && !routing_.dropless) ? MoeGemm::grouped
                                                            : MoeGemm::loop;
  l.capacity = moe_capacity(N, available, routing_);
  if (l.gemm == MoeGemm::loop) {
    l.row_align = device == Device::cuda ? kGemmTileRows : 1;
    l.rows = N * routing_.top_k + E * (l.row_align - 1);
    return l;
  }
  // Slabs sized for all routable experts (the most a pass has available).
  const auto routable = static_cast<int64_t>(std::count(routing_.routable.begin(), routing_.routable.end(), 1));
  const int64_t base = moe_capacity(N, routable, routing_);
  l.group_stride = round_up(base, l.gemm == MoeGemm::grouped ? kSlabAlignRows : kGemmTileRows);
  l.capacity = l.gemm == MoeGemm::grouped ? std::min(l.capacity, l.group_stride) : l.group_stride;
  l.rows = E * l.group_stride;
  return l;
}

int64_t MoeFfn::planned_rows(int64_t N) const {
  return std::max(layout(N, 1, Device::cpu).rows, layout(N, 1, Device::cuda).rows);
}

MoeFfn::Activations MoeFfn::plan(Arena& arena, DType act, int64_t N) const {
  const DType stat = stat_dtype_for(act);
  const int64_t E = routing_.num_experts, k = routing_.top_k, R = planned_rows(N);
  Activations a;
  a.logits = arena.alloc(act, Shape{N, E});
  a.probs = arena.alloc(stat, Shape{N, E});
  a.lse = arena.alloc(stat, Shape{N});
  a.weight = arena.alloc(stat, Shape{N, k});
  a.sums = arena.alloc(stat, Shape{E + 2});
  a.choice = arena.alloc(DType::i32, Shape{N, k});
  a.slot_row = arena.alloc(DType::i32, Shape{N, k});
  a.row_token = arena.alloc(DType::i32, Shape{R});
  a.group_begin = arena.alloc(DType::i32, Shape{E + 1});
  a.assigned = arena.alloc(DType::i32, Shape{E});
  a.available = arena.alloc(DType::i32, Shape{E});
  for (Tensor* t : {&a.xg, &a.y}) *t = arena.alloc(act, Shape{R, hidden_});
  for (Tensor* t : {&a.gate, &a.up, &a.h}) *t = arena.alloc(act, Shape{R, ffn_});
  return a;
}

MoeFfn::Scratch MoeFfn::plan_scratch(Arena& arena, DType act, int64_t N) const {
  const DType stat = stat_dtype_for(act);
  const int64_t E = routing_.num_experts, R = planned_rows(N);
  Scratch s;
  if (routing_.noise_std > 0.0) s.noise = arena.alloc(stat, Shape{N, E});
  for (Tensor* t : {&s.dy, &s.dxg}) *t = arena.alloc(act, Shape{R, hidden_});
  for (Tensor* t : {&s.dh, &s.dgate, &s.dup}) *t = arena.alloc(act, Shape{R, ffn_});
  s.dweight = arena.alloc(stat, Shape{N, routing_.top_k});
  s.dlogits = arena.alloc(act, Shape{N, E});
  return s;
}

void MoeFfn::forward(const ModelContext& c, const Tensor& x, Tensor residual, Activations& a, Scratch& s) const {
  Backend& be = c.be();
  const int64_t N = x.dim(0), E = routing_.num_experts, k = routing_.top_k;
  a.tokens = N;
  const Tensor logits = a.logits.prefix(Shape{N, E});  // a may be planned for more tokens
  linear_forward(c, logits, x, router);                // (N, E)
  // The experts this pass may choose (pruned and, in training, dropped ones out), uploaded.
  const MoeDrawKey key{c.seed, c.step, c.micro, layer_};
  a.experts_dropped = moe_available_experts(routing_, c.training ? &key : nullptr, a.available_host);
  a.available_experts = static_cast<int64_t>(std::count(a.available_host.begin(), a.available_host.end(), 1));
  LUMINA_CHECK(a.available_experts >= k, "MoE layer {}: {} routable experts, fewer than moe_top_k = {}", layer_,
               a.available_experts, k);
  a.available_i32.assign(a.available_host.begin(), a.available_host.end());
  be.copy(a.available.prefix(Shape{E}), Tensor(a.available_i32.data(), DType::i32, Device::cpu, Shape{E}));
  // Training noise: noise_std * N(0, 1) per (token, expert), drawn on the host (moe_routing.h).
  Tensor noise;
  if (c.training && routing_.noise_std > 0.0) {
    const Rng rng(c.seed, RngPurpose::routing_noise, static_cast<uint64_t>(c.step));
    s.host_a.resize(static_cast<size_t>(N * E));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t e = 0; e < E; ++e)
        s.host_a[static_cast<size_t>(n * E + e)] = routing_.noise_std * rng.normal(moe_draw_index(key, n, e));
    noise = s.noise.prefix(Shape{N, E});
    upload_doubles(be, noise, s.host_a, s.staging);
  }
  const Tensor choice = a.choice.prefix(Shape{N, k}), slot_row = a.slot_row.prefix(Shape{N, k});
  const Tensor weight = a.weight.prefix(Shape{N, k});
  be.moe_router_forward(a.probs.prefix(Shape{N, E}), a.lse.prefix(Shape{N}), choice, weight,
                        a.sums.prefix(Shape{E + 2}), logits, noise, a.available.prefix(Shape{E}),
                        1.0 / routing_.temperature);
  a.layout = layout(N, a.available_experts, be.device());
  const int64_t R = a.layout.rows;
  const Tensor row_token = a.row_token.prefix(Shape{R}), group_begin = a.group_begin.prefix(Shape{E + 1});
  be.moe_dispatch(slot_row, row_token, group_begin, a.assigned.prefix(Shape{E}), choice, a.layout.capacity,
                  a.layout.row_align, a.layout.group_stride);
  be.moe_gather(a.xg.prefix(Shape{R, hidden_}), x, row_token);
  if (a.layout.gemm == MoeGemm::loop) {  // the per-expert row counts, read back once per forward
    a.group_begin_host.resize(static_cast<size_t>(E + 1));
    be.copy(Tensor(a.group_begin_host.data(), DType::i32, Device::cpu, Shape{E + 1}), group_begin);
  }
  experts_forward(be, a.layout, a.group_begin_host, {c.weight(w1), c.weight(w3), c.weight(w2)}, a.xg, a.gate, a.up,
                  a.h, a.y);
  be.moe_combine(residual, a.y.prefix(Shape{R, hidden_}), slot_row, weight, true);  // residual_n += sum w y_r
}

const MoeStats& MoeFfn::collect_stats(Backend& be, Activations& a, Scratch& s) const {
  const int64_t N = a.tokens, E = routing_.num_experts, k = routing_.top_k;
  download_doubles(be, a.sums.prefix(Shape{E + 2}), s.staging, s.host_a);  // sum_n p_e, entropy, lse^2
  a.assigned_host.resize(static_cast<size_t>(E));
  be.copy(Tensor(a.assigned_host.data(), DType::i32, Device::cpu, Shape{E}), a.assigned.prefix(Shape{E}));
  MoeStats& st = a.stats;
  st.expert_utilization.assign(static_cast<size_t>(E), 0.0);
  const double assignments = static_cast<double>(N * k);
  double balance = 0.0;  // sum_e f_e P_e
  int64_t kept = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n_e = a.assigned_host[static_cast<size_t>(e)];
    const double f = static_cast<double>(n_e) / assignments;
    st.expert_utilization[static_cast<size_t>(e)] = f;
    balance += f * s.host_a[static_cast<size_t>(e)] / static_cast<double>(N);
    kept += std::min(n_e, a.layout.capacity);
  }
  st.tokens_dropped = N * k - kept;
  st.experts_dropped = a.experts_dropped;
  st.routing_entropy = s.host_a[static_cast<size_t>(E)] / static_cast<double>(N);
  st.aux_loss = routing_.load_balancing_weight * static_cast<double>(a.available_experts) * balance;
  st.z_loss = routing_.z_loss_weight * s.host_a[static_cast<size_t>(E + 1)] / static_cast<double>(N);
  return st;
}

MoeRoutingSnapshot MoeFfn::snapshot(Backend& be, const Activations& a) const {
  const int64_t N = a.tokens, E = routing_.num_experts, k = routing_.top_k;
  MoeRoutingSnapshot out;
  out.choice.resize(static_cast<size_t>(N * k));
  out.slot_row.resize(static_cast<size_t>(N * k));
  out.assigned.resize(static_cast<size_t>(E));
  be.copy(Tensor(out.choice.data(), DType::i32, Device::cpu, Shape{N, k}), a.choice.prefix(Shape{N, k}));
  be.copy(Tensor(out.slot_row.data(), DType::i32, Device::cpu, Shape{N, k}), a.slot_row.prefix(Shape{N, k}));
  be.copy(Tensor(out.assigned.data(), DType::i32, Device::cpu, Shape{E}), a.assigned.prefix(Shape{E}));
  return out;
}

void MoeFfn::backward(const ModelContext& c, const Tensor& x, const Tensor& dresidual, Tensor dx, double dloss_scale,
                      const Activations& a, Scratch& s) const {
  Backend& be = c.be();
  const int64_t N = a.tokens, E = routing_.num_experts, k = routing_.top_k, R = a.layout.rows;
  const Tensor slot_row = a.slot_row.prefix(Shape{N, k}), weight = a.weight.prefix(Shape{N, k});
  const Tensor dweight = s.dweight.prefix(Shape{N, k}), dxg = s.dxg.prefix(Shape{R, hidden_});
  // dy_r = w dresidual_n (0 on unused rows); dweight = dresidual_n . y_r.
  be.moe_combine_backward(s.dy.prefix(Shape{R, hidden_}), dweight, dresidual, a.y.prefix(Shape{R, hidden_}),
                          slot_row, weight, a.row_token.prefix(Shape{R}));
  experts_backward(be, a.layout, a.group_begin_host, {c.weight(w1), c.weight(w3), c.weight(w2)},
                   {c.grad(w1), c.grad(w3), c.grad(w2)}, a.xg, a.gate, a.up, a.h, s.dy, s.dh, s.dgate, s.dup, s.dxg);
  be.moe_combine(dx, dxg, slot_row, Tensor{}, false);  // dx_n = sum_j d(expert input) of its rows
  // Router: d aux / d p_{n,e} = lbw E_A f_e / N with f_e = assigned_e / (N k); d z / d s = 2 zw lse p / N.
  const double aux_coef = dloss_scale * routing_.load_balancing_weight * static_cast<double>(a.available_experts) /
                          static_cast<double>(N * k) / static_cast<double>(N);
  const double z_coef = dloss_scale * routing_.z_loss_weight * 2.0 / static_cast<double>(N);
  const Tensor dlogits = s.dlogits.prefix(Shape{N, E});  // s may be planned for a wider layer
  be.moe_router_backward(dlogits, a.probs.prefix(Shape{N, E}), a.lse.prefix(Shape{N}), a.choice.prefix(Shape{N, k}),
                         weight, slot_row, dweight, a.assigned.prefix(Shape{E}), 1.0 / routing_.temperature, aux_coef,
                         z_coef);
  linear_backward(c, dx, dlogits, x, router, 1.0);
}

}  // namespace lumina
