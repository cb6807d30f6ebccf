#include "lumina/bench/moe_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "lumina/core/arena.h"
#include "lumina/core/rng.h"
#include "lumina/model/context.h"
#include "lumina/model/host_transfer.h"
#include "lumina/model/moe.h"
#include "lumina/model/param_store.h"

namespace lumina {

namespace {

constexpr const char* kPrefix = "model.layers.0.block_sparse_moe.";

// Weights and grads in the activation dtype (no optimizer here), so the medium
// shape's 11.3B parameters fit one 80 GB GPU in bf16; f16 has no ParamStore: f32.
DType store_dtype(DType act) { return act == DType::f16 ? DType::f32 : act; }

int64_t bytes_of(int64_t numel, DType t) { return numel * static_cast<int64_t>(dtype_size_bytes(t)); }

// The layer's tensors besides its parameters: activations from `acts`, scratch
// and the layer's input/output tensors from `buffers` (measuring or real arenas).
struct LayerTensors {
  MoeFfn::Activations a;
  MoeFfn::Scratch s;
  Tensor x, out, dout, dx;  // (N, C)
};

LayerTensors plan_layer(const MoeFfn& moe, Arena& acts, Arena& buffers, DType act, int64_t N, int64_t C) {
  LayerTensors t;
  t.a = moe.plan(acts, act, N);
  t.s = moe.plan_scratch(buffers, act, N);
  for (Tensor* io : {&t.x, &t.out, &t.dout, &t.dx}) *io = buffers.alloc(act, Shape{N, C});
  return t;
}

LatencyMs summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front()};
}

}  // namespace

const std::vector<MoeBenchShape>& moe_bench_shapes() {
  static const std::vector<MoeBenchShape> shapes = {
      {"tiny", 8, 64, 128, 2, 4, 32},
      {"small", 8, 1024, 4096, 2, 16, 256},
      {"medium", 64, 4096, 14336, 4, 32, 512},
      {"large", 256, 7168, 14336, 8, 32, 2048},
  };
  return shapes;
}

const std::vector<std::string>& moe_bench_variants() {
  static const std::vector<std::string> variants = {"loop", "grouped", "grouped_tile_rounding"};
  return variants;
}

ModelConfig moe_layer_config(const MoeBenchShape& shape, const std::string& variant, double capacity_factor) {
  const auto& variants = moe_bench_variants();
  LUMINA_CHECK(std::find(variants.begin(), variants.end(), variant) != variants.end(),
               "bench moe: unknown variant \"{}\": use loop, grouped or grouped_tile_rounding", variant);
  ModelConfig cfg;
  cfg.use_moe = true;
  cfg.num_layers = 1;
  cfg.hidden_size = shape.hidden;
  cfg.intermediate_size = shape.ffn;
  cfg.num_experts = shape.experts;
  cfg.moe_top_k = shape.top_k;
  cfg.capacity_factor = capacity_factor;
  cfg.moe_gemm = variant;
  return cfg;
}

MoeMemory plan_moe_memory(const MoeBenchShape& shape, const std::string& variant, double capacity_factor, DType act) {
  ParamStore ps;
  const MoeFfn moe(ps, moe_layer_config(shape, variant, capacity_factor), kPrefix, 0);
  Arena acts = Arena::measuring(Device::cpu), buffers = Arena::measuring(Device::cpu);
  plan_layer(moe, acts, buffers, act, shape.tokens(), shape.hidden);
  const DType store = store_dtype(act);
  MoeMemory m;
  m.weight_bytes = bytes_of(ps.numel(), store);
  m.compute_weight_bytes = act == store ? 0 : bytes_of(ps.numel(), act);
  m.grad_bytes = m.weight_bytes;
  m.activation_bytes = static_cast<int64_t>(acts.peak_bytes());
  m.buffer_bytes = static_cast<int64_t>(buffers.peak_bytes());
  return m;
}

MoeBenchResult run_moe_bench(Backend& be, DType act, const MoeBenchShape& shape, const std::string& variant,
                             const MoeBenchOptions& o) {
  LUMINA_CHECK(o.iters > 0, "bench moe: --iters = {} must be positive", o.iters);
  LUMINA_CHECK(o.warmup >= 0, "bench moe: --warmup = {} must be >= 0", o.warmup);
  const int64_t N = shape.tokens(), C = shape.hidden;
  const DType store = store_dtype(act);
  MoeBenchResult r;
  r.memory = plan_moe_memory(shape, variant, o.capacity_factor, act);

  ParamStore ps;
  const MoeFfn moe(ps, moe_layer_config(shape, variant, o.capacity_factor), kPrefix, 0);
  ps.allocate(be, store);
  ps.init_weights(o.seed);
  ModelContext c;
  c.backend = &be;
  c.params = &ps;
  c.act_dtype = act;
  c.stat_dtype = stat_dtype_for(act);
  Buffer compute_weights;  // the weights in the activation dtype, cast once (they never change here)
  if (act == store) {
    c.weights_flat = ps.params_flat();
  } else {
    compute_weights = be.allocate(static_cast<size_t>(r.memory.compute_weight_bytes));
    c.weights_flat = compute_weights.as_tensor(act, Shape{ps.numel()});
    be.cast(c.weights_flat, ps.params_flat());
  }
  Arena acts(be.allocate(static_cast<size_t>(r.memory.activation_bytes)));
  Arena buffers(be.allocate(static_cast<size_t>(r.memory.buffer_bytes)));
  LayerTensors t = plan_layer(moe, acts, buffers, act, N, C);

  // x, dout (N, C) ~ N(0, 1).
  std::vector<double> host(static_cast<size_t>(N * C));
  std::vector<std::byte> staging;
  Rng(o.seed, RngPurpose::data_shuffle, 1).fill_normal(host.data(), N * C, 0.0, 1.0);
  upload_doubles(be, t.x, host, staging);
  Rng(o.seed, RngPurpose::data_shuffle, 2).fill_normal(host.data(), N * C, 0.0, 1.0);
  upload_doubles(be, t.dout, host, staging);

  // One pass, synchronised on both ends: out = moe(x) (the layer adds into its residual,
  // so out is cleared first, untimed); with backward, dx and the parameter gradients
  // (+=) from dout, the aux loss weighing 1.
  auto pass_ms = [&](bool backward) {
    be.fill(t.out, 0.0);
    be.synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    moe.forward(c, t.x, t.out, t.a, t.s);
    if (backward) moe.backward(c, t.x, t.dout, t.dx, 1.0, t.a, t.s);
    be.synchronize();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int64_t i = 0; i < o.warmup; ++i) pass_ms(true);
  std::vector<double> fwd, fwd_bwd;
  for (int64_t i = 0; i < o.iters; ++i) fwd.push_back(pass_ms(false));
  for (int64_t i = 0; i < o.iters; ++i) fwd_bwd.push_back(pass_ms(true));
  r.fwd = summarize(fwd);
  r.fwd_bwd = summarize(fwd_bwd);

  // The last pass's routing, output and input gradient.
  const MoeRoutingSnapshot routing = moe.snapshot(be, t.a);
  r.capacity = t.a.layout.capacity;
  r.expert_load.assign(routing.assigned.begin(), routing.assigned.end());
  r.slot_row = routing.slot_row;
  r.kept = std::count_if(r.slot_row.begin(), r.slot_row.end(), [](int32_t row) { return row >= 0; });
  download_doubles(be, t.out, staging, r.output);
  download_doubles(be, t.dx, staging, r.dx);
  r.measured_bytes = be.device_memory_bytes();
  return r;
}

double moe_forward_flops(const MoeBenchShape& shape, int64_t kept) {
  const auto C = static_cast<double>(shape.hidden), F = static_cast<double>(shape.ffn);
  return 2.0 * static_cast<double>(kept) * 3.0 * C * F +
         2.0 * static_cast<double>(shape.tokens()) * C * static_cast<double>(shape.experts);
}

MoeOutputCheck compare_moe_outputs(const MoeBenchResult& reference, const MoeBenchResult& other, int64_t top_k) {
  LUMINA_CHECK(reference.slot_row.size() == other.slot_row.size() && reference.output.size() == other.output.size() &&
                   reference.dx.size() == other.dx.size() && !reference.slot_row.empty() && top_k > 0,
               "compare_moe_outputs: the two runs are not of one shape");
  const auto N = static_cast<int64_t>(reference.slot_row.size()) / top_k;
  const auto C = static_cast<int64_t>(reference.output.size()) / N;
  MoeOutputCheck check;
  for (int64_t n = 0; n < N; ++n) {
    bool alike = true;
    for (int64_t j = 0; j < top_k; ++j) {
      const auto slot = static_cast<size_t>(n * top_k + j);
      alike = alike && (reference.slot_row[slot] >= 0) == (other.slot_row[slot] >= 0);
    }
    if (!alike) continue;
    ++check.tokens_compared;
    for (int64_t i = n * C; i < (n + 1) * C; ++i) {
      const auto u = static_cast<size_t>(i);
      check.output_max_abs_diff = std::max(check.output_max_abs_diff, std::abs(reference.output[u] - other.output[u]));
      check.dx_max_abs_diff = std::max(check.dx_max_abs_diff, std::abs(reference.dx[u] - other.dx[u]));
      check.output_max_abs = std::max(check.output_max_abs, std::abs(reference.output[u]));
    }
  }
  return check;
}

MoeLoadBalance moe_load_balance(const std::vector<int64_t>& load, int64_t kept) {
  MoeLoadBalance b;
  double sum = 0.0;
  for (int64_t l : load) sum += static_cast<double>(l);
  if (load.empty() || sum == 0.0) return b;
  const double mean = sum / static_cast<double>(load.size());
  double squares = 0.0;
  for (int64_t l : load) squares += (static_cast<double>(l) - mean) * (static_cast<double>(l) - mean);
  const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
  b.max_over_mean = static_cast<double>(*hi) / mean;
  b.min_over_mean = static_cast<double>(*lo) / mean;
  b.coefficient_of_variation = std::sqrt(squares / static_cast<double>(load.size())) / mean;
  b.dropped_fraction = 1.0 - static_cast<double>(kept) / sum;
  return b;
}

}  // namespace lumina
