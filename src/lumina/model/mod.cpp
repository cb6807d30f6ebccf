#include "lumina/model/mod.h"

#include <fmt/format.h>

#include "lumina/model/host_transfer.h"

namespace lumina {
namespace {

Tensor row(const Tensor& t, int64_t r) { return t.slice(r, r + 1); }

}  // namespace

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
  router = ps.declare(fmt::format("model.layers.{}.mod_router.weight", layer), Shape{1, cfg.hidden_size},
                      ParamInit::normal, cfg.init_std, false);
  predictor = ps.declare(fmt::format("model.layers.{}.mod_predictor.weight", layer), Shape{1, cfg.hidden_size},
                         ParamInit::normal, cfg.init_std, false);
}

ModRouter::Activations ModRouter::plan(Arena& arena, DType act, DType stat, int64_t B, int64_t T) const {
  const int64_t N = B * T;
  Activations a;
  if (type_ == ModRoutingType::learned) {
    a.scores = arena.alloc(stat, Shape{N, 1});
    a.predictor = arena.alloc(stat, Shape{N, 1});
  }
  a.positions = arena.alloc(DType::i32, Shape{N});
  a.delta = arena.alloc(act, Shape{N, hidden_});
  return a;
}

ModRouter::Scratch ModRouter::plan_scratch(Arena& arena, DType act, DType stat, int64_t B, int64_t T,
                                           int64_t hidden) {
  const int64_t N = B * T;
  Scratch s;
  s.xs = arena.alloc(act, Shape{N, hidden});
  s.dys = arena.alloc(act, Shape{N, hidden});
  s.dots = arena.alloc(stat, Shape{N});
  s.dscores = arena.alloc(act, Shape{N, 1});
  return s;
}

void ModRouter::route(const ModelContext& c, const Tensor& x, int64_t B, int64_t T, Activations& a, Scratch& s,
                      int64_t first_position) const {
  Backend& be = c.be();
  const int64_t N = B * T;
  const bool learned = type_ == ModRoutingType::learned;
  std::vector<double>& scores = s.host;
  std::vector<double>& predicted = s.host_d;
  if (learned) {
    const Tensor r = a.scores.prefix(Shape{N, 1}), p = a.predictor.prefix(Shape{N, 1});
    linear_forward(c, r, x, router);     // (N, 1) r
    linear_forward(c, p, x, predictor);  // (N, 1) p
    download_doubles(be, r, s.staging, scores);
    download_doubles(be, p, s.staging, predicted);
  }
  Selection& sel = a.sel;
  sel.batch = B;
  sel.seq_len = T;
  sel.begin.assign(1, 0);
  sel.row.clear();
  sel.position.clear();
  sel.gate.clear();
  // Capacity: annealed while training, the target otherwise.
  const double fraction = c.training ? mod_capacity_fraction(capacity_factor_, anneal_steps_, c.step) : capacity_factor_;
  const int64_t k = mod_capacity(T, fraction);
  const int64_t k_causal = mod_capacity(max_positions_, capacity_factor_);
  std::vector<int32_t> picked;
  for (int64_t b = 0; b < B; ++b) {
    picked.clear();
    if (c.mod_causal) {
      for (int64_t t = 0; t < T; ++t)
        if (learned ? predicted[static_cast<size_t>(b * T + t)] > 0.0
                    : mod_static_selected(first_position + t, max_positions_, k_causal))
          picked.push_back(static_cast<int32_t>(t));
    } else if (learned) {
      mod_select_top_k(scores.data() + b * T, T, k, picked);
    } else if (type_ == ModRoutingType::random && c.training) {
      const auto first = static_cast<uint64_t>(((c.micro * num_layers_ + layer_) * B + b) * T);
      mod_select_random(Rng(c.seed, RngPurpose::mod_routing, static_cast<uint64_t>(c.step)), first, T, k, picked);
    } else {
      mod_select_static(T, k, picked);
    }
    for (const int32_t t : picked) {
      sel.row.push_back(b * T + t);
      sel.position.push_back(static_cast<int32_t>(first_position + t));
      sel.gate.push_back(learned ? mod_sigmoid(scores[static_cast<size_t>(b * T + t)]) : 1.0);
    }
    sel.begin.push_back(static_cast<int64_t>(sel.row.size()));
  }
  const int64_t R = sel.rows();

  ModLayerStats& st = sel.stats;
  st = ModLayerStats{};
  st.layer = layer_;
  st.tokens = N;
  st.processed = R;
  st.capacity = static_cast<double>(R) / static_cast<double>(N);
  sel.dpredictor.clear();
  if (learned) {  // the predictor's loss, accuracy and gradient against this selection
    std::vector<uint8_t> selected(static_cast<size_t>(N), 0);
    for (const int64_t n : sel.row) selected[static_cast<size_t>(n)] = 1;
    sel.dpredictor.resize(static_cast<size_t>(N));
    double bce = 0.0;
    int64_t agree = 0;
    for (int64_t n = 0; n < N; ++n) {
      const double p = predicted[static_cast<size_t>(n)];
      const bool y = selected[static_cast<size_t>(n)] != 0;
      bce += mod_predictor_bce(p, y);
      agree += (p > 0.0) == y ? 1 : 0;
      sel.dpredictor[static_cast<size_t>(n)] = (mod_sigmoid(p) - (y ? 1.0 : 0.0)) / static_cast<double>(N);
    }
    st.predictor_loss = bce / static_cast<double>(N);
    st.predictor_accuracy = static_cast<double>(agree) / static_cast<double>(N);
  }
  if (R > 0) {
    s.host_positions.assign(sel.position.begin(), sel.position.end());
    be.copy(a.positions.prefix(Shape{R}), Tensor(s.host_positions.data(), DType::i32, Device::cpu, Shape{R}));
  }
}

void ModRouter::gather(Backend& be, Tensor xs, const Tensor& x, const Selection& sel) {
  for (int64_t i = 0; i < sel.rows(); ++i) be.copy(row(xs, i), row(x, sel.row[static_cast<size_t>(i)]));
}

void ModRouter::combine(Backend& be, Tensor out, Tensor ys, const Tensor& xs, const Selection& sel) {
  if (sel.rows() == 0) return;
  be.axpy(ys, xs, -1.0);  // delta = block(xs) - xs
  for (int64_t i = 0; i < sel.rows(); ++i)
    be.axpy(row(out, sel.row[static_cast<size_t>(i)]), row(ys, i), sel.gate[static_cast<size_t>(i)]);
}

void ModRouter::backward_gates(Backend& be, const Tensor& dout, const Activations& a, Scratch& s) {
  const Selection& sel = a.sel;
  const bool learned = !sel.dpredictor.empty();
  for (int64_t i = 0; i < sel.rows(); ++i) {
    const Tensor d = row(dout, sel.row[static_cast<size_t>(i)]);
    if (learned) be.gemm(row(s.dots, i).view(Shape{1, 1}), d, false, row(a.delta, i), true);  // dgate = dout . delta
    be.copy(row(s.dys, i), d);
    be.scale(row(s.dys, i), sel.gate[static_cast<size_t>(i)]);
  }
}

void ModRouter::backward_finish(const ModelContext& c, const Tensor& x, Tensor dresid, const Tensor& dxs,
                                const Activations& a, Scratch& s) const {
  Backend& be = c.be();
  const Selection& sel = a.sel;
  const int64_t R = sel.rows(), N = x.dim(0);
  for (int64_t i = 0; i < R; ++i) {  // dx_row = (1 - g) dout_row + dxs_i
    Tensor d = row(dresid, sel.row[static_cast<size_t>(i)]);
    be.scale(d, 1.0 - sel.gate[static_cast<size_t>(i)]);
    be.axpy(d, row(dxs, i));
  }
  if (type_ != ModRoutingType::learned) return;
  // Router: d r_n = dgate * g (1 - g) on routed rows, 0 elsewhere.
  std::vector<double>& dlogits = s.host_d;
  dlogits.assign(static_cast<size_t>(N), 0.0);
  if (R > 0) {
    download_doubles(be, s.dots.prefix(Shape{R}), s.staging, s.host);
    for (int64_t i = 0; i < R; ++i) {
      const double g = sel.gate[static_cast<size_t>(i)];
      dlogits[static_cast<size_t>(sel.row[static_cast<size_t>(i)])] = s.host[static_cast<size_t>(i)] * g * (1.0 - g);
    }
  }
  const Tensor dscores = s.dscores.prefix(Shape{N, 1});
  upload_doubles(be, dscores, dlogits, s.staging);
  linear_backward(c, dresid, dscores, x, router, 1.0);
  // Predictor: its weighted mean BCE is an auxiliary loss on stop-gradient inputs (weight gradient only).
  const double scale = c.dloss_aux * kModPredictorLossWeight;
  for (int64_t n = 0; n < N; ++n) dlogits[static_cast<size_t>(n)] = scale * sel.dpredictor[static_cast<size_t>(n)];
  upload_doubles(be, dscores, dlogits, s.staging);
  be.gemm(c.grad(predictor), dscores, true, x, false, 1.0, 1.0);
}

}  // namespace lumina
