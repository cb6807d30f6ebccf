#include "lumina/model/mod.h"

#include <fmt/format.h>

#include "lumina/model/host_transfer.h"

namespace lumina {

bool ModRouter::Selection::uniform() const {
  for (size_t b = 1; b + 1 < begin.size(); ++b)
    if (begin[b + 1] - begin[b] != begin[1] - begin[0]) return false;
  return true;
}

ModRouter::ModRouter(ParamStore& ps, const ModelConfig& cfg, int layer)
    : type_(mod_routing_type_from_string(cfg.mod_routing_type)),
      capacity_factor_(cfg.mod_capacity_factor),
      anneal_steps_(cfg.mod_capacity_anneal_steps),
      layer_(layer),
      num_layers_(cfg.num_layers),
      max_positions_(cfg.max_position_embeddings),
      hidden_(cfg.hidden_size),
      ffn_only_(cfg.mod_ffn_only) {
  LUMINA_CHECK(cfg.mod_capacity_factor > 0.0 && cfg.mod_capacity_factor <= 1.0,
               "MoD: mod_capacity_factor = {} must be in (0, 1]", cfg.mod_capacity_factor);
  if (type_ != ModRoutingType::learned) return;
  // Routing vectors, not decayed: decay would pull every gate towards sigmoid(0) = 0.5.
  // Declared back to back: ParamStore::stacked gives them as one (2, C) matrix (one GEMM each way).
  router = ps.declare(fmt::format("model.layers.{}.mod_router.weight", layer), Shape{1, cfg.hidden_size},
                      ParamInit::normal, cfg.init_std, false);
  predictor = ps.declare(fmt::format("model.layers.{}.mod_predictor.weight", layer), Shape{1, cfg.hidden_size},
                         ParamInit::normal, cfg.init_std, false);
}

ModRouter::Activations ModRouter::plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const {
  const int64_t N = B * T;
  Activations a;
  if (type_ == ModRoutingType::learned) {
    a.logits = arena.alloc(stat, Shape{2, N});
    a.sums = arena.alloc(stat, Shape{2});
  }
  a.row_token = arena.alloc(DType::i32, Shape{N});
  a.positions = arena.alloc(DType::i32, Shape{N});
  a.slot_row = arena.alloc(DType::i32, Shape{N});
  a.gate = arena.alloc(stat, Shape{N});
  a.xs = arena.alloc(act, Shape{N, hidden_});
  a.delta = arena.alloc(act, Shape{N, hidden_});
  return a;
}

ModRouter::Scratch ModRouter::plan_scratch(Arena& arena, DType act, DType stat, int64_t B, int64_t T,
                                           int64_t hidden) {
  const int64_t N = B * T;
  Scratch s;
  s.dys = arena.alloc(act, Shape{N, hidden});
  s.dgate = arena.alloc(stat, Shape{N});
  s.dlogits = arena.alloc(act, Shape{2, N});
  return s;
}

void ModRouter::route(const ModelContext& c, const Tensor& x, int64_t B, int64_t T, Activations& a, Scratch& s,
                      int64_t first_position) const {
  Backend& be = c.be();
  const int64_t N = B * T;
  const bool learned = type_ == ModRoutingType::learned;
  const Tensor logits = learned ? a.logits.prefix(Shape{2, N}) : Tensor();
  if (learned) be.gemm(logits, c.params->stacked(c.weights_flat, router, 2), false, x, true);  // [r; p] = W x^T
  // Capacity: annealed while training, the target otherwise.
  const double fraction = c.training ? mod_capacity_fraction(capacity_factor_, anneal_steps_, c.step) : capacity_factor_;
  const int64_t k = mod_capacity(T, fraction);
  Selection& sel = a.sel;
  sel.batch = B;
  sel.seq_len = T;
  if (learned && !c.mod_causal) {
    LUMINA_CHECK(first_position == 0, "MoD: top-k routing over whole sequences starts at position 0, got {}",
                 first_position);
    be.mod_select_top_k(a.row_token.prefix(Shape{B * k}).view(Shape{B, k}),
                        a.positions.prefix(Shape{B * k}).view(Shape{B, k}), a.slot_row.prefix(Shape{N}),
                        a.gate.prefix(Shape{N}), logits.slice(0, 1).view(Shape{B, T}), k);
    sel.begin.resize(static_cast<size_t>(B + 1));
    for (int64_t b = 0; b <= B; ++b) sel.begin[static_cast<size_t>(b)] = b * k;
  } else {
    route_on_host(c, B, T, k, a, s, first_position);
  }
  if (learned) be.mod_predictor(Tensor(), a.sums, logits.slice(1, 2).view(Shape{N}), a.slot_row.prefix(Shape{N}), 0.0);

  ModLayerStats& st = sel.stats;
  st = ModLayerStats{};
  st.layer = layer_;
  st.tokens = N;
  st.processed = sel.rows();
  st.capacity = static_cast<double>(st.processed) / static_cast<double>(N);
}

void ModRouter::route_on_host(const ModelContext& c, int64_t B, int64_t T, int64_t k, Activations& a, Scratch& s,
                              int64_t first_position) const {
  Backend& be = c.be();
  const int64_t N = B * T;
  const bool learned = type_ == ModRoutingType::learned;
  const Tensor logits = learned ? a.logits.prefix(Shape{2, N}) : Tensor();
  if (learned) download_doubles(be, logits.slice(1, 2), s.staging, s.host);  // causal: p decides
  const int64_t k_causal = mod_capacity(max_positions_, capacity_factor_);
  std::vector<double>& gates = s.host_d;  // (N)
  gates.assign(static_cast<size_t>(N), 0.0);
  s.host_slots.assign(static_cast<size_t>(N), -1);
  s.host_rows.clear();
  s.host_positions.clear();
  a.sel.begin.assign(1, 0);
  std::vector<int32_t> picked;
  for (int64_t b = 0; b < B; ++b) {
    picked.clear();
    if (c.mod_causal) {
      for (int64_t t = 0; t < T; ++t)
        if (learned ? s.host[static_cast<size_t>(b * T + t)] > 0.0
                    : mod_static_selected(first_position + t, max_positions_, k_causal))
          picked.push_back(static_cast<int32_t>(t));
    } else if (type_ == ModRoutingType::random && c.training) {
      const auto first = static_cast<uint64_t>(((c.micro * num_layers_ + layer_) * B + b) * T);
      mod_select_random(Rng(c.seed, RngPurpose::mod_routing, static_cast<uint64_t>(c.step)), first, T, k, picked);
    } else {
      mod_select_static(T, k, picked);
    }
    for (const int32_t t : picked) {
      const int64_t n = b * T + t;
      s.host_slots[static_cast<size_t>(n)] = static_cast<int32_t>(s.host_rows.size());
      gates[static_cast<size_t>(n)] = 1.0;
      s.host_rows.push_back(static_cast<int32_t>(n));
      s.host_positions.push_back(static_cast<int32_t>(first_position + t));
    }
    a.sel.begin.push_back(static_cast<int64_t>(s.host_rows.size()));
  }
  if (learned) {  // the gate of a causal decision: sigmoid of its router logit
    download_doubles(be, logits.slice(0, 1), s.staging, s.host);
    for (int64_t n = 0; n < N; ++n)
      if (s.host_slots[static_cast<size_t>(n)] >= 0) gates[static_cast<size_t>(n)] = mod_sigmoid(s.host[static_cast<size_t>(n)]);
  }
  const int64_t R = a.sel.rows();
  auto upload = [&be](Tensor dst, std::vector<int32_t>& host) {
    be.copy(dst, Tensor(host.data(), DType::i32, Device::cpu, dst.shape));
  };
  upload(a.slot_row.prefix(Shape{N}), s.host_slots);
  upload_doubles(be, a.gate.prefix(Shape{N}), gates, s.staging);
  if (R == 0) return;
  upload(a.row_token.prefix(Shape{R}), s.host_rows);
  upload(a.positions.prefix(Shape{R}), s.host_positions);
}

const ModLayerStats& ModRouter::collect_stats(Backend& be, Activations& a) const {
  ModLayerStats& st = a.sel.stats;
  if (type_ != ModRoutingType::learned || st.tokens == 0) return st;
  std::vector<std::byte> staging;
  std::vector<double> sums;
  download_doubles(be, a.sums, staging, sums);
  st.predictor_loss = sums[0] / static_cast<double>(st.tokens);
  st.predictor_accuracy = sums[1] / static_cast<double>(st.tokens);
  return st;
}

std::vector<int32_t> ModRouter::snapshot(Backend& be, const Activations& a) {
  const int64_t R = a.sel.rows();
  std::vector<int32_t> rows(static_cast<size_t>(R));
  if (R > 0) be.copy(Tensor(rows.data(), DType::i32, Device::cpu, Shape{R}), a.row_token.prefix(Shape{R}));
  return rows;
}

void ModRouter::gather(Backend& be, Tensor xs, const Tensor& x, const Activations& a) {
  be.moe_gather(xs, x, a.row_token.prefix(Shape{a.sel.rows()}));
}

void ModRouter::combine(Backend& be, Tensor out, Tensor ys, const Tensor& x, const Activations& a) {
  be.mod_combine(out, ys, x, ys, a.slot_row.prefix(Shape{out.dim(0)}), a.gate.prefix(Shape{out.dim(0)}));
}

void ModRouter::backward_gates(Backend& be, const Tensor& dout, const Activations& a, Scratch& s) {
  const int64_t N = dout.dim(0), R = a.sel.rows(), C = dout.dim(1);
  be.moe_combine_backward(s.dys.prefix(Shape{R, C}), s.dgate.prefix(Shape{N}).view(Shape{N, 1}), dout,
                          a.delta.prefix(Shape{R, C}), a.slot_row.prefix(Shape{N}),
                          a.gate.prefix(Shape{N}).view(Shape{N, 1}), a.row_token.prefix(Shape{R}));
}

void ModRouter::backward_finish(const ModelContext& c, const Tensor& x, Tensor dresid, const Tensor& dxs,
                                const Activations& a, Scratch& s) const {
  Backend& be = c.be();
  const int64_t N = x.dim(0);
  const Tensor slot_row = a.slot_row.prefix(Shape{N}), gate = a.gate.prefix(Shape{N});
  if (type_ != ModRoutingType::learned) {
    be.mod_input_backward(dresid, Tensor(), dxs, s.dgate.prefix(Shape{N}), slot_row, gate, Tensor());
    return;
  }
  const Tensor dlogits = s.dlogits.prefix(Shape{2, N});  // [d r; d p]
  be.mod_input_backward(dresid, dlogits.slice(0, 1).view(Shape{N}), dxs, s.dgate.prefix(Shape{N}), slot_row, gate,
                        c.weight(router).view(Shape{hidden_}));
  // Predictor: its weighted mean BCE is an auxiliary loss on stop-gradient inputs (weight gradient only).
  const double scale = c.dloss_aux * kModPredictorLossWeight / static_cast<double>(N);
  be.mod_predictor(dlogits.slice(1, 2).view(Shape{N}), Tensor(), a.logits.prefix(Shape{2, N}).slice(1, 2).view(Shape{N}),
                   slot_row, scale);
  const double beta = c.params->grad_beta(router, 2);
  be.gemm(c.params->stacked(c.params->grads_flat(), router, 2), dlogits, false, x, false, 1.0, beta);
}

}  // namespace lumina
