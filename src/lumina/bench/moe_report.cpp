#include "lumina/bench/moe_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "lumina/io/atomic_file.h"
#include "lumina/io/svg_bar_chart.h"
#include "lumina/io/svg_heatmap.h"

namespace lumina {

namespace {

constexpr double kMiB = 1024.0 * 1024.0, kGiB = 1024.0 * kMiB;

bool ran(const MoeBenchRow& r) { return r.status == "ok"; }
int64_t assignments(const MoeBenchRow& r) { return r.shape.tokens() * r.shape.top_k; }

std::string bytes_text(int64_t bytes) {
  if (bytes < 0) return "n/a";
  const auto b = static_cast<double>(bytes);
  if (b >= kGiB) return fmt::format("{:.2f} GiB", b / kGiB);
  if (b >= kMiB) return fmt::format("{:.1f} MiB", b / kMiB);
  return fmt::format("{:.1f} KiB", b / 1024.0);
}

// 196608 -> "197K", 11274289152 -> "11.3B".
std::string count_text(int64_t n) {
  const auto v = static_cast<double>(n);
  if (v >= 1e9) return fmt::format("{:.3g}B", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.3g}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.3g}K", v / 1e3);
  return std::to_string(n);
}

std::string panel_title(const MoeBenchShape& s) {
  return fmt::format("{} \u00b7 E{} k{} N{}", s.name, s.experts, s.top_k, s.tokens());
}

// Values of `key` over the rows, each once, in the order they first appear.
template <class F>
std::vector<std::string> in_order(const std::vector<MoeBenchRow>& rows, F key) {
  std::vector<std::string> out;
  for (const MoeBenchRow& r : rows)
    if (std::find(out.begin(), out.end(), key(r)) == out.end()) out.push_back(key(r));
  return out;
}

const MoeBenchRow* find_row(const MoeBenchRun& run, const std::string& shape, const std::string& variant) {
  for (const MoeBenchRow& r : run.rows)
    if (r.shape.name == shape && r.variant == variant) return &r;
  return nullptr;
}

const MoeBenchShape& shape_named(const MoeBenchRun& run, const std::string& name) {
  for (const MoeBenchRow& r : run.rows)
    if (r.shape.name == name) return r.shape;
  fail("bench moe report: no row of shape {}", name);
}

nlohmann::json row_json(const MoeBenchRun& run, const MoeBenchRow& r) {
  const MoeBenchShape& s = r.shape;
  nlohmann::json j = {{"shape", s.name},        {"experts", s.experts}, {"hidden", s.hidden},
                      {"ffn", s.ffn},           {"top_k", s.top_k},     {"batch", s.batch},
                      {"seq", s.seq},           {"tokens", s.tokens()}, {"variant", r.variant},
                      {"status", r.status}};
  if (!r.reason.empty()) j["reason"] = r.reason;
  const MoeMemory& m = r.memory;
  j["memory"] = {{"weight_bytes", m.weight_bytes},         {"compute_weight_bytes", m.compute_weight_bytes},
                 {"grad_bytes", m.grad_bytes},             {"activation_bytes", m.activation_bytes},
                 {"buffer_bytes", m.buffer_bytes},         {"planned_bytes", m.total_bytes()},
                 {"measured_bytes", r.measured_bytes >= 0 ? nlohmann::json(r.measured_bytes) : nlohmann::json()}};
  if (r.memory_limit_bytes >= 0) j["memory"]["limit_bytes"] = r.memory_limit_bytes;
  if (!ran(r)) return j;
  const MoeThroughput t = moe_throughput(r);
  const double flops = moe_forward_flops(s, r.kept);
  j["capacity"] = r.capacity;
  j["assignments"] = assignments(r);
  j["kept"] = r.kept;
  j["dropped"] = assignments(r) - r.kept;
  j["fwd_ms"] = {{"median", r.fwd.median}, {"min", r.fwd.min}};
  j["fwd_bwd_ms"] = {{"median", r.fwd_bwd.median}, {"min", r.fwd_bwd.min}};
  j["tokens_per_second"] = t.tokens_per_second;
  j["flops_fwd"] = flops;
  j["tflops_fwd"] = t.tflops_fwd;
  j["tflops_fwd_bwd"] = t.tflops_fwd_bwd;
  j["peak_fraction_fwd"] = t.tflops_fwd * 1e12 / run.peak_flops;
  j["peak_fraction_fwd_bwd"] = t.tflops_fwd_bwd * 1e12 / run.peak_flops;
  const std::optional<double> speedup = speedup_vs_torch(run, r);
  j["speedup_vs_torch_loop"] = speedup ? nlohmann::json(*speedup) : nlohmann::json();
  j["expert_load"] = r.expert_load;
  const MoeLoadBalance b = moe_load_balance(r.expert_load, r.kept);
  j["load_balance"] = {{"max_over_mean", b.max_over_mean},
                       {"min_over_mean", b.min_over_mean},
                       {"coefficient_of_variation", b.coefficient_of_variation},
                       {"dropped_fraction", b.dropped_fraction}};
  if (!r.check_reference.empty())
    j["output_check"] = {{"reference", r.check_reference},
                         {"tokens_compared", r.check.tokens_compared},
                         {"output_max_abs_diff", r.check.output_max_abs_diff},
                         {"dx_max_abs_diff", r.check.dx_max_abs_diff},
                         {"output_max_abs", r.check.output_max_abs}};
  return j;
}

std::string latency_svg(const MoeBenchRun& run, const std::vector<std::string>& shapes,
                        const std::vector<std::string>& variants) {
  BarChartOptions o;
  o.title = "MoE layer: forward + backward latency (median; label: speedup over torch_loop)";
  o.y_label = "ms";
  o.kind = BarKind::grouped;
  o.legend = variants;
  std::vector<BarPanel> panels;
  for (const std::string& shape : shapes) {
    BarPanel p;
    p.title = panel_title(shape_named(run, shape));
    for (const std::string& v : variants) {
      const MoeBenchRow* r = find_row(run, shape, v);
      const bool ok = r && ran(*r);
      p.bars.push_back(ok ? std::vector<double>{r->fwd_bwd.median} : std::vector<double>{});
      const std::optional<double> speedup = ok ? speedup_vs_torch(run, *r) : std::nullopt;
      p.annotations.push_back(speedup && v != kTorchLoopVariant ? fmt::format("{:.2f}x", *speedup) : "");
      if (r && !ok && p.note.empty()) p.note = r->status + ": " + r->reason;
    }
    panels.push_back(std::move(p));
  }
  return render_bar_chart(panels, o);
}

std::string memory_svg(const MoeBenchRun& run, const std::vector<std::string>& shapes,
                       const std::vector<std::string>& variants) {
  // A lumina row has its plan even when skipped; torch_loop has figures only when it ran.
  auto has_figures = [](const MoeBenchRow* r) {
    return r && (r->variant == kTorchLoopVariant ? ran(*r) : r->status != "failed");
  };
  int64_t largest = 0;
  for (const MoeBenchRow& r : run.rows)
    if (has_figures(&r)) largest = std::max(largest, r.memory.total_bytes());
  const double unit = largest >= kGiB ? kGiB : kMiB;
  BarChartOptions o;
  o.title = "MoE layer: memory per variant (planned; torch_loop: measured peak)";
  o.y_label = unit == kGiB ? "GiB" : "MiB";
  o.kind = BarKind::stacked;
  o.legend = {"weights", "grads", "activations", "buffers"};
  std::vector<BarPanel> panels;
  for (const std::string& shape : shapes) {
    BarPanel p;
    p.title = panel_title(shape_named(run, shape));
    for (const std::string& v : variants) {
      const MoeBenchRow* r = find_row(run, shape, v);
      if (!r) continue;
      p.bar_labels.push_back(v);
      p.annotations.push_back(r->status == "skipped" && has_figures(r) ? "skipped" : "");
      if (!has_figures(r)) {
        p.bars.push_back({});
        continue;
      }
      const MoeMemory& m = r->memory;
      p.bars.push_back({static_cast<double>(m.weight_bytes + m.compute_weight_bytes) / unit,
                        static_cast<double>(m.grad_bytes) / unit, static_cast<double>(m.activation_bytes) / unit,
                        static_cast<double>(m.buffer_bytes) / unit});
    }
    panels.push_back(std::move(p));
  }
  return render_bar_chart(panels, o);
}

std::string expert_load_svg(const MoeBenchRun& run, const std::vector<std::string>& shapes,
                            const std::vector<std::string>& variants) {
  HeatmapOptions o;
  o.title = "Expert load of the last iteration (assignments before capacity / mean)";
  o.column_label = "expert";
  o.value_label = "load / mean load";
  std::vector<HeatmapBlock> blocks;
  for (const std::string& shape : shapes) {
    HeatmapBlock block;
    block.title = panel_title(shape_named(run, shape));
    for (const std::string& v : variants) {
      const MoeBenchRow* r = find_row(run, shape, v);
      if (!r || !ran(*r) || r->expert_load.empty()) continue;
      double sum = 0.0;
      for (int64_t l : r->expert_load) sum += static_cast<double>(l);
      const double mean = sum / static_cast<double>(r->expert_load.size());
      HeatmapRow row{v, {}};
      for (int64_t l : r->expert_load) row.values.push_back(mean > 0 ? static_cast<double>(l) / mean : 0.0);
      block.rows.push_back(std::move(row));
    }
    if (!block.rows.empty()) blocks.push_back(std::move(block));
  }
  return render_heatmap(blocks, o);
}

std::string report_md(const MoeBenchRun& run, const std::vector<std::string>& shapes,
                      const std::vector<std::string>& variants) {
  std::ostringstream md;
  md << "# MoE layer benchmark\n\n";
  md << fmt::format("- date (UTC): {}\n- device: {}\n- backend: {}\n- activations: {}\n", run.date_utc, run.device,
                    run.backend, run.dtype);
  md << fmt::format("- options: `{}`\n", run.options.dump());
  md << fmt::format("- PyTorch per-expert loop (torch_loop): {}\n\n", run.torch_status);

  md << "## Shapes\n\n| shape | experts | d | ffn | top-k | batch x seq | tokens N | expert + router params |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const std::string& name : shapes) {
    const MoeBenchShape& s = shape_named(run, name);
    const int64_t params = s.experts * (3 * s.hidden * s.ffn + s.hidden);
    md << fmt::format("| {} | {} | {} | {} | {} | {} x {} | {} | {} |\n", s.name, s.experts, s.hidden, s.ffn, s.top_k,
                      s.batch, s.seq, s.tokens(), count_text(params));
  }

  auto each_row = [&](auto&& print) {
    for (const std::string& shape : shapes)
      for (const std::string& v : variants)
        if (const MoeBenchRow* r = find_row(run, shape, v)) print(*r);
  };
  md << "\n## Latency and throughput\n\n| shape | variant | fwd ms (median / min) | fwd+bwd ms (median / min) | "
        "tokens/s (fwd+bwd) | TFLOP/s fwd | TFLOP/s fwd+bwd | % of peak (fwd+bwd) | speedup vs torch_loop |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
  each_row([&](const MoeBenchRow& r) {
    if (!ran(r)) return;
    const MoeThroughput t = moe_throughput(r);
    const std::optional<double> speedup = speedup_vs_torch(run, r);
    md << fmt::format("| {} | {} | {:.3f} / {:.3f} | {:.3f} / {:.3f} | {:.0f} | {:.2f} | {:.2f} | {:.1f}% | {} |\n",
                      r.shape.name, r.variant, r.fwd.median, r.fwd.min, r.fwd_bwd.median, r.fwd_bwd.min,
                      t.tokens_per_second, t.tflops_fwd, t.tflops_fwd_bwd, 100.0 * t.tflops_fwd_bwd * 1e12 / run.peak_flops,
                      speedup ? fmt::format("{:.2f}x", *speedup) : "–");
  });

  md << "\n## Memory\n\n| shape | variant | weights | compute copy | grads | activations | buffers | planned | "
        "measured |\n|---|---|---|---|---|---|---|---|---|\n";
  each_row([&](const MoeBenchRow& r) {
    if (r.status == "failed" || (r.variant == kTorchLoopVariant && !ran(r))) return;
    const MoeMemory& m = r.memory;
    const bool torch = r.variant == kTorchLoopVariant;
    md << fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.shape.name, r.variant,
                      bytes_text(m.weight_bytes), m.compute_weight_bytes > 0 ? bytes_text(m.compute_weight_bytes) : "–",
                      bytes_text(m.grad_bytes), torch && r.measured_bytes < 0 ? "n/a" : bytes_text(m.activation_bytes),
                      torch ? "–" : bytes_text(m.buffer_bytes),
                      torch ? "–" : bytes_text(m.total_bytes()) + (ran(r) ? "" : " (skipped)"),
                      bytes_text(r.measured_bytes));
  });

  md << "\n## Expert load (last iteration)\n\n| shape | variant | capacity | kept / assignments | max / mean | "
        "min / mean | CV | dropped |\n|---|---|---|---|---|---|---|---|\n";
  each_row([&](const MoeBenchRow& r) {
    if (!ran(r)) return;
    const MoeLoadBalance b = moe_load_balance(r.expert_load, r.kept);
    md << fmt::format("| {} | {} | {} | {} / {} | {:.3f} | {:.3f} | {:.3f} | {:.2f}% |\n", r.shape.name, r.variant,
                      r.capacity > 0 ? std::to_string(r.capacity) : "none", r.kept, assignments(r), b.max_over_mean,
                      b.min_over_mean, b.coefficient_of_variation, 100.0 * b.dropped_fraction);
  });

  md << "\n## Same layer output across variants\n\nEach variant's output and input gradient against the shape's "
        "first variant, over the tokens whose assignments both kept (a variant with a larger capacity keeps more).\n\n"
        "| shape | variant | against | tokens compared | max abs diff output | max abs diff dx | max abs output |\n"
        "|---|---|---|---|---|---|---|\n";
  each_row([&](const MoeBenchRow& r) {
    if (!ran(r) || r.check_reference.empty()) return;
    md << fmt::format("| {} | {} | {} | {} / {} | {:.3g} | {:.3g} | {:.3g} |\n", r.shape.name, r.variant,
                      r.check_reference, r.check.tokens_compared, r.shape.tokens(), r.check.output_max_abs_diff,
                      r.check.dx_max_abs_diff, r.check.output_max_abs);
  });

  md << "\n## Skipped or failed\n\n";
  bool any = false;
  each_row([&](const MoeBenchRow& r) {
    if (ran(r)) return;
    if (!any) md << "| shape | variant | status | reason |\n|---|---|---|---|\n";
    any = true;
    md << fmt::format("| {} | {} | {} | {} |\n", r.shape.name, r.variant, r.status, r.reason);
  });
  if (!any) md << "None.\n";

  md << "\n## Conventions\n\n"
        "- Latency: one MoE feed-forward layer alone; each pass is synchronised before and after and timed with a "
        "steady clock; median and minimum over the timed passes, after the warm-up passes (forward + backward).\n"
        "- tokens/s = N / (forward + backward latency), N = batch x seq.\n"
        "- FLOPs are counted on routed tokens: forward = 2 x kept assignments x 3 x d x ffn (three expert GEMMs) "
        "+ 2 x N x d x E (router); forward + backward = 3 x forward. Capacity drops are not counted; padding rows "
        "of the grouped variants are not counted either. % of peak is against "
     << fmt::format("{:.4g}", run.peak_flops / 1e12)
     << " TFLOP/s.\n"
        "- All lumina variants route alike with one capacity (ceil(N k / E x capacity factor)); "
        "grouped_tile_rounding raises it to its 128-row tile, so it may keep more assignments.\n"
        "- Memory (lumina): planned from the layer's own Activations/Scratch plan before anything is allocated. "
        "weights and grads are the expert + router parameters in the parameter store's dtype (f32; the store "
        "accepts f32/f64 only), compute copy = the weights in the activation dtype; buffers = MoeFfn::Scratch plus "
        "the layer's x, output, output gradient and dx. measured = device memory the backend holds during the run "
        "(with its fixed workspaces; n/a on the CPU). A shape whose plan exceeds the free device memory (or "
        "--memory-limit-gb) is skipped, not run.\n"
        "- torch_loop: a Mixtral-style layer (router, softmax, top-k, renormalise, one SwiGLU expert per loop "
        "step over its tokens, index_add_), dropless (no capacity), bf16 weights and grads on CUDA; timed passes "
        "start with its gradients set to None (PyTorch's zero_grad default); its memory comes from one more pass "
        "with the gradients kept allocated, as lumina's are: weights and grads of its parameters, activations = "
        "measured peak (torch.cuda.max_memory_allocated) minus both. Its weights are its own, so its routing "
        "differs from lumina's.\n"
        "- Expert load: assignments per expert of the last pass, before capacity; CV = std / mean; "
        "dropped = assignments over capacity / all assignments.\n\n";
  md << "## Charts\n\n![fwd+bwd latency](latency.svg)\n\n![memory](memory.svg)\n\n![expert load](expert_load.svg)\n";
  return md.str();
}

}  // namespace

MoeThroughput moe_throughput(const MoeBenchRow& r) {
  const double flops = moe_forward_flops(r.shape, r.kept);
  return {static_cast<double>(r.shape.tokens()) / (r.fwd_bwd.median * 1e-3), flops / (r.fwd.median * 1e-3) / 1e12,
          3.0 * flops / (r.fwd_bwd.median * 1e-3) / 1e12};
}

MoeBenchRow moe_row_from_result(const MoeBenchShape& shape, const std::string& variant, const MoeBenchResult& r) {
  MoeBenchRow row;
  row.shape = shape;
  row.variant = variant;
  row.fwd = r.fwd;
  row.fwd_bwd = r.fwd_bwd;
  row.capacity = r.capacity;
  row.kept = r.kept;
  row.expert_load = r.expert_load;
  row.memory = r.memory;
  row.measured_bytes = r.measured_bytes;
  return row;
}

std::vector<MoeBenchRow> parse_torch_rows(const std::string& jsonl) {
  std::vector<MoeBenchRow> rows;
  std::istringstream in(jsonl);
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      MoeBenchRow r;
      r.variant = kTorchLoopVariant;
      r.shape = {j.at("shape").get<std::string>(), j.at("experts").get<int64_t>(), j.at("hidden").get<int64_t>(),
                 j.at("ffn").get<int64_t>(),       j.at("top_k").get<int64_t>(),   j.at("batch").get<int64_t>(),
                 j.at("seq").get<int64_t>()};
      r.status = j.at("status").get<std::string>();
      r.reason = j.value("reason", "");
      if (r.status == "ok") {
        r.fwd = {j.at("fwd_ms").at("median").get<double>(), j.at("fwd_ms").at("min").get<double>()};
        r.fwd_bwd = {j.at("fwd_bwd_ms").at("median").get<double>(), j.at("fwd_bwd_ms").at("min").get<double>()};
        r.kept = j.at("kept").get<int64_t>();
        r.expert_load = j.at("expert_load").get<std::vector<int64_t>>();
        r.memory.weight_bytes = j.at("weight_bytes").get<int64_t>();
        r.memory.grad_bytes = j.at("grad_bytes").get<int64_t>();
        r.measured_bytes = j.at("peak_bytes").get<int64_t>();  // -1: not measured (the CPU)
        if (r.measured_bytes >= 0)
          r.memory.activation_bytes = std::max<int64_t>(0, r.measured_bytes - r.memory.weight_bytes - r.memory.grad_bytes);
      }
      rows.push_back(std::move(r));
    } catch (const nlohmann::json::exception& e) {
      fail("torch_moe_loop.py output, line {}: {} (expected one JSON object per shape with shape, experts, hidden, "
           "ffn, top_k, batch, seq, status and, when ok, fwd_ms, fwd_bwd_ms, kept, expert_load, weight_bytes, "
           "grad_bytes, peak_bytes)",
           line_no, e.what());
    }
  }
  return rows;
}

std::optional<double> speedup_vs_torch(const MoeBenchRun& run, const MoeBenchRow& row) {
  const MoeBenchRow* torch = find_row(run, row.shape.name, kTorchLoopVariant);
  if (!torch || !ran(*torch) || !ran(row)) return std::nullopt;
  return torch->fwd_bwd.median / row.fwd_bwd.median;
}

nlohmann::json moe_run_json(const MoeBenchRun& run) {
  nlohmann::json rows = nlohmann::json::array();
  for (const MoeBenchRow& r : run.rows) rows.push_back(row_json(run, r));
  return {{"date_utc", run.date_utc},
          {"device", run.device},
          {"backend", run.backend},
          {"dtype", run.dtype},
          {"peak_flops", run.peak_flops},
          {"options", run.options},
          {"torch", run.torch_status},
          {"flops_convention",
           "forward = 2 * kept assignments * 3 * hidden * ffn + 2 * tokens * hidden * experts; fwd+bwd = 3 * forward"},
          {"rows", rows}};
}

void write_moe_report(const MoeBenchRun& run, const std::string& dir) {
  std::filesystem::create_directories(dir);
  const auto shapes = in_order(run.rows, [](const MoeBenchRow& r) { return r.shape.name; });
  const auto variants = in_order(run.rows, [](const MoeBenchRow& r) { return r.variant; });
  const std::filesystem::path d(dir);
  write_file_atomic((d / "results.json").string(), moe_run_json(run).dump(2) + "\n");
  write_file_atomic((d / "latency.svg").string(), latency_svg(run, shapes, variants));
  write_file_atomic((d / "memory.svg").string(), memory_svg(run, shapes, variants));
  write_file_atomic((d / "expert_load.svg").string(), expert_load_svg(run, shapes, variants));
  write_file_atomic((d / "report.md").string(), report_md(run, shapes, variants));
}

}  // namespace lumina
