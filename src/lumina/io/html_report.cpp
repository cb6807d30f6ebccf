// The HTML training report (see html_report.h): read the run directory
// (metrics, config, log tail), then render the page section by section.
#include "lumina/io/html_report.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lumina/core/error.h"
#include "lumina/io/atomic_file.h"
#include "lumina/io/svg_chart.h"

namespace lumina {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // keeps the writer's key order: charts appear in that order

constexpr size_t kLogTailLines = 50;
constexpr size_t kLogTailMaxBytes = 1 << 20;  // the tail is searched for in the last MiB of the log
constexpr size_t kArrayElementsAsSeries = 8;  // longer numeric arrays are plotted as min / mean / max
constexpr size_t kMaxRecordsShown = 20;

// ---- metrics.jsonl ----

struct Series {
  std::string name;   // key path: "loss", "moe.aux_loss", "expert_utilization[3]"
  std::string chart;  // the chart it is drawn on
  std::vector<std::pair<double, double>> points;  // (step, value)
};

struct Metrics {
  std::vector<Series> series;                     // in order of first appearance
  std::unordered_map<std::string, size_t> index;  // name -> position in `series`
  std::vector<Json> records;                      // rows listed instead of plotted
  std::vector<size_t> unreadable_lines;           // 1-based line numbers
  size_t line_count = 0;                          // non-blank lines
  size_t last_line_number = 0;                    // of the last non-blank line
  size_t plotted_rows = 0;
  double last_step = 0.0;

  void add(const std::string& chart, const std::string& name, double step, double value) {
    auto [it, inserted] = index.try_emplace(name, series.size());
    if (inserted) series.push_back({name, chart, {}});
    series[it->second].points.push_back({step, value});
  }
  const Series* find(const std::string& name) const {
    const auto it = index.find(name);
    return it == index.end() ? nullptr : &series[it->second];
  }
};

// Validation loss shares the training loss chart; every other key has its own.
std::string chart_of(const std::string& key) { return key == "val_loss" ? "loss" : key; }

void append_numbers(const Json& value, std::vector<double>& numbers) {
  if (value.is_number()) numbers.push_back(value.get<double>());
  if (value.is_array())
    for (const Json& element : value) append_numbers(element, numbers);
}

// Adds every number under `value` (at key path `path`) to the metrics.
void collect(Metrics& m, const std::string& path, const Json& value, double step) {
  if (value.is_number()) {
    m.add(chart_of(path), path, step, value.get<double>());
  } else if (value.is_object()) {
    for (const auto& [key, child] : value.items()) collect(m, path + "." + key, child, step);
  } else if (value.is_array()) {
    std::vector<double> numbers;
    append_numbers(value, numbers);
    if (numbers.empty()) return;
    if (numbers.size() <= kArrayElementsAsSeries) {
      for (size_t i = 0; i < numbers.size(); ++i) m.add(path, fmt::format("{}[{}]", path, i), step, numbers[i]);
      return;
    }
    double sum = 0.0;
    for (double v : numbers) sum += v;
    m.add(path, path + " min", step, *std::min_element(numbers.begin(), numbers.end()));
    m.add(path, path + " mean", step, sum / static_cast<double>(numbers.size()));
    m.add(path, path + " max", step, *std::max_element(numbers.begin(), numbers.end()));
  }
}

// Sorts each series by step; of two points at one step the later row wins.
void order_points(Series& s) {
  std::stable_sort(s.points.begin(), s.points.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<double, double>> unique;
  for (const auto& p : s.points) {
    if (!unique.empty() && unique.back().first == p.first) unique.back() = p;
    else unique.push_back(p);
  }
  s.points = std::move(unique);
}

Metrics read_metrics(const std::string& path) {
  std::ifstream in(path);
  LUMINA_CHECK(in, "cannot open {}: the run has no metrics yet; a report needs at least one logged step "
                   "(train for train.log_interval steps)", path);
  Metrics m;
  std::string line;
  for (size_t line_number = 1; std::getline(in, line); ++line_number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++m.line_count;
    m.last_line_number = line_number;
    const Json row = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded() || !row.is_object()) {
      m.unreadable_lines.push_back(line_number);
      continue;
    }
    const auto step = row.find("step");
    const auto kind = row.find("kind");
    const bool summary = kind != row.end() && kind->is_string() && kind->get<std::string>() == "summary";
    if (step == row.end() || !step->is_number() || summary) {
      m.records.push_back(row);
      continue;
    }
    const double step_value = step->get<double>();
    m.last_step = m.plotted_rows == 0 ? step_value : std::max(m.last_step, step_value);
    ++m.plotted_rows;
    for (const auto& [key, value] : row.items())
      if (key != "step") collect(m, key, value, step_value);
  }
  LUMINA_CHECK(m.plotted_rows > 0, "{} holds no metric row with a \"step\" ({} lines read): nothing to plot; "
               "train for at least train.log_interval steps before making a report", path, m.line_count);
  for (Series& s : m.series) order_points(s);
  return m;
}

std::optional<double> last_value(const Metrics& m, const std::string& name) {
  const Series* s = m.find(name);
  if (!s) return std::nullopt;
  for (auto it = s->points.rbegin(); it != s->points.rend(); ++it)
    if (std::isfinite(it->second)) return it->second;
  return std::nullopt;
}

// (step, value) of the smallest finite value.
std::optional<std::pair<double, double>> min_point(const Metrics& m, const std::string& name) {
  const Series* s = m.find(name);
  std::optional<std::pair<double, double>> best;
  if (s)
    for (const auto& p : s->points)
      if (std::isfinite(p.second) && (!best || p.second < best->second)) best = p;
  return best;
}

std::optional<double> mean_value(const Metrics& m, const std::string& name) {
  const Series* s = m.find(name);
  double sum = 0.0;
  size_t count = 0;
  if (s)
    for (const auto& p : s->points)
      if (std::isfinite(p.second)) sum += p.second, ++count;
  if (count == 0) return std::nullopt;
  return sum / static_cast<double>(count);
}

// ---- config.toml and the log ----

struct ConfigFile {
  std::string text;                  // empty when missing
  std::optional<toml::table> table;  // when it parses
  std::string problem;               // why there is no table
};

ConfigFile read_config(const fs::path& path) {
  ConfigFile c;
  if (!fs::exists(path)) {
    c.problem = fmt::format("{} not found", path.string());
    return c;
  }
  c.text = read_file(path.string());
  try {
    c.table = toml::parse(c.text, path.string());
  } catch (const toml::parse_error& e) {
    c.problem = fmt::format("{} does not parse (line {}): {}", path.string(), e.source().begin.line, e.description());
  }
  return c;
}

// The value at "section.key" as text, when present.
std::optional<std::string> config_value(const ConfigFile& c, std::string_view section, std::string_view key) {
  if (!c.table) return std::nullopt;
  const toml::node* node = (*c.table)[section][key].node();
  if (!node) return std::nullopt;
  if (const auto* s = node->as_string()) return s->get();
  if (const auto* f = node->as_floating_point()) return fmt::format("{}", f->get());  // shortest round trip
  std::ostringstream out;
  node->visit([&out](const auto& n) { out << n; });
  return out.str();
}

// The last `count` lines of a text file (from its last MiB); empty when missing.
std::vector<std::string> tail_lines(const fs::path& path, size_t count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<size_t>(in.tellg());
  const size_t start = size > kLogTailMaxBytes ? size - kLogTailMaxBytes : 0;
  std::string text(size - start, '\0');
  in.seekg(static_cast<std::streamoff>(start));
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  if (start > 0 && !lines.empty()) lines.erase(lines.begin());  // the first line read is cut
  if (lines.size() > count) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(count));
  return lines;
}

// ---- formatting ----

std::string with_commas(double value) {
  const std::string digits = fmt::format("{:.0f}", std::abs(value));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (value < 0 ? "-" : "") + out;
}

std::string duration_text(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(seconds));
  return fmt::format("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

std::string step_text(double step) { return fmt::format("step {}", with_commas(step)); }

// ---- page sections ----

using Rows = std::vector<std::pair<std::string, std::string>>;

std::string html_table(const std::string& caption, const Rows& rows) {
  std::string html = fmt::format("<table><caption>{}</caption>\n", escape_xml(caption));
  for (const auto& [name, value] : rows)
    html += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", escape_xml(name), escape_xml(value));
  return html + "</table>\n";
}

Rows run_rows(const Metrics& m) {
  Rows rows{{"Steps", with_commas(m.last_step)}};
  if (auto v = last_value(m, "tokens")) rows.push_back({"Tokens", with_commas(*v)});
  if (auto v = last_value(m, "loss")) rows.push_back({"Last loss", fmt::format("{:.4f}", *v)});
  if (auto p = min_point(m, "loss")) rows.push_back({"Best loss", fmt::format("{:.4f} ({})", p->second, step_text(p->first))});
  if (auto p = min_point(m, "val_loss"))
    rows.push_back({"Best validation loss", fmt::format("{:.4f} ({})", p->second, step_text(p->first))});
  if (auto v = last_value(m, "val_bpb")) rows.push_back({"Validation bits per token (last)", fmt::format("{:.4f}", *v)});
  if (auto v = last_value(m, "val_ppl")) rows.push_back({"Validation perplexity (last)", fmt::format("{:.3f}", *v)});
  if (auto v = last_value(m, "val_accuracy"))
    rows.push_back({"Validation accuracy (last)", fmt::format("{:.2f}%", 100.0 * *v)});
  if (auto v = mean_value(m, "tokens_per_second")) rows.push_back({"Mean throughput", with_commas(*v) + " tokens/s"});
  if (auto v = last_value(m, "elapsed_s")) rows.push_back({"Wall time", duration_text(*v)});
  return rows;
}

Rows config_rows(const ConfigFile& c, std::string_view section, const std::vector<std::string_view>& keys) {
  Rows rows;
  for (std::string_view key : keys)
    if (auto v = config_value(c, section, key)) rows.push_back({std::string(key), *v});
  return rows;
}

Rows model_rows(const ConfigFile& c) {
  Rows rows = config_rows(c, "model", {"vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                                       "intermediate_size", "max_position_embeddings", "tie_word_embeddings"});
  if (config_value(c, "model", "use_moe") == "true") {
    const Rows moe = config_rows(c, "model", {"num_experts", "moe_top_k", "capacity_factor", "moe_pattern"});
    rows.insert(rows.end(), moe.begin(), moe.end());
  }
  if (config_value(c, "model", "use_mod") == "true") {
    const Rows mod = config_rows(c, "model", {"mod_capacity_factor", "mod_routing_type"});
    rows.insert(rows.end(), mod.begin(), mod.end());
  }
  return rows;
}

Rows setup_rows(const ConfigFile& c) {
  Rows rows = config_rows(c, "train", {"batch_size", "seq_len", "gradient_accumulation_steps", "max_steps",
                                       "precision", "training_mode"});
  const Rows optim = config_rows(c, "optim", {"optimizer", "learning_rate", "lr_schedule", "warmup_steps"});
  rows.insert(rows.end(), optim.begin(), optim.end());
  return rows;
}

struct ChartGroup {
  std::string_view heading;
  bool (*contains)(const std::string& chart);
};

bool starts_with_any(const std::string& s, std::initializer_list<std::string_view> prefixes) {
  for (std::string_view p : prefixes)
    if (s.starts_with(p)) return true;
  return false;
}

// Sections of charts, in page order; a chart goes to the first group that takes it.
const ChartGroup kChartGroups[] = {
    {"Loss", [](const std::string& c) { return c == "loss"; }},
    {"Optimization", [](const std::string& c) { return c == "lr" || c == "grad_norm"; }},
    {"Throughput", [](const std::string& c) { return c.find("per_second") != std::string::npos || c == "mfu"; }},
    {"Validation", [](const std::string& c) { return c.starts_with("val_"); }},
    {"Mixture of Experts", [](const std::string& c) { return starts_with_any(c, {"moe_", "moe.", "expert", "router"}); }},
    {"Mixture of Depths", [](const std::string& c) { return starts_with_any(c, {"mod_", "mod."}); }},
    {"Other metrics", [](const std::string&) { return true; }},
};

std::string chart_title(const std::string& chart) {
  static const std::pair<std::string_view, std::string_view> kTitles[] = {
      {"loss", "Loss"},
      {"lr", "Learning rate (lr)"},
      {"grad_norm", "Gradient norm (grad_norm)"},
      {"tokens_per_second", "Throughput (tokens_per_second)"},
      {"val_ppl", "Validation perplexity (val_ppl)"},
      {"val_bpb", "Validation bits per token (val_bpb)"},
      {"val_accuracy", "Validation accuracy (val_accuracy)"},
      {"val_tokens", "Validation tokens (val_tokens)"},
      {"tokens", "Tokens seen (tokens)"},
      {"elapsed_s", "Elapsed seconds (elapsed_s)"},
  };
  for (const auto& [key, title] : kTitles)
    if (chart == key) return std::string(title);
  return chart;
}

std::string chart_sections(const Metrics& m) {
  std::vector<std::string> charts;  // in order of first appearance
  for (const Series& s : m.series)
    if (std::find(charts.begin(), charts.end(), s.chart) == charts.end()) charts.push_back(s.chart);
  std::vector<bool> placed(charts.size(), false);
  std::string html;
  for (const ChartGroup& group : kChartGroups) {
    std::string figures;
    for (size_t c = 0; c < charts.size(); ++c) {
      if (placed[c] || !group.contains(charts[c])) continue;
      placed[c] = true;
      std::vector<ChartSeries> lines;
      for (const Series& s : m.series) {
        if (s.chart != charts[c]) continue;
        ChartSeries line{s.name, {}, {}};
        for (const auto& [step, value] : s.points) line.x.push_back(step), line.y.push_back(value);
        lines.push_back(std::move(line));
      }
      ChartOptions options;
      options.title = chart_title(charts[c]);
      options.log_y = charts[c] == "loss";
      // The loss chart spans a whole row; the others share rows.
      const bool wide = charts[c] == "loss";
      if (wide) options.width_px *= 2, options.height_px = 380;
      figures += fmt::format("<figure class=\"chart{}\" id=\"chart-{}\">\n{}</figure>\n", wide ? " wide" : "",
                             escape_xml(charts[c]), render_line_chart(lines, options));
    }
    if (!figures.empty())
      html += fmt::format("<section>\n<h2>{}</h2>\n<div class=\"charts\">\n{}</div>\n</section>\n", group.heading, figures);
  }
  return html;
}

std::string unreadable_note(const Metrics& m) {
  if (m.unreadable_lines.empty()) return "";
  const bool torn_tail = m.unreadable_lines.size() == 1 && m.unreadable_lines[0] == m.last_line_number;
  if (torn_tail)
    return fmt::format("The last line of metrics.jsonl (line {}) is incomplete (a run still writing, or killed "
                       "mid-write) and was skipped.", m.unreadable_lines[0]);
  std::string list;
  for (size_t i = 0; i < std::min<size_t>(m.unreadable_lines.size(), 10); ++i)
    list += (i ? ", " : "") + std::to_string(m.unreadable_lines[i]);
  if (m.unreadable_lines.size() > 10) list += ", ...";
  return fmt::format("Skipped the lines of metrics.jsonl that are not JSON objects: {} ({} in all).", list,
                     m.unreadable_lines.size());
}

std::string records_section(const Metrics& m) {
  if (m.records.empty()) return "";
  const size_t first = m.records.size() > kMaxRecordsShown ? m.records.size() - kMaxRecordsShown : 0;
  std::string text;
  for (size_t i = first; i < m.records.size(); ++i) text += m.records[i].dump() + "\n";
  return fmt::format("<section>\n<h2>Records</h2>\n<p class=\"sub\">Rows of metrics.jsonl without a step, or of kind "
                     "\"summary\" ({} in all{}).</p>\n<pre>{}</pre>\n</section>\n",
                     m.records.size(), first > 0 ? fmt::format(", the last {} shown", kMaxRecordsShown) : "",
                     escape_xml(text));
}

constexpr std::string_view kStyle = R"(
body{margin:0;background:#f5f6f8;color:#1d2330;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1360px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:24px;margin:0 0 2px}
h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #dde1e8}
.sub{color:#5b6475;font-size:13px;margin:2px 0}
.note{color:#8a5300;background:#fff6e5;border:1px solid #f0d9a8;border-radius:4px;padding:6px 10px;font-size:13px}
.tables{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e8;font-size:13px;min-width:260px}
caption{text-align:left;font-weight:600;padding:0 0 4px}
th,td{padding:4px 12px;border-bottom:1px solid #eef0f4;text-align:left}
th{font-weight:500;color:#4a5263}
td{font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
figure.wide{grid-column:1/-1}
figure.chart{margin:0;background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:4px}
pre{background:#fff;border:1px solid #dde1e8;border-radius:4px;padding:10px 12px;font-size:12px;overflow:auto;max-height:560px}
)";

}  // namespace

std::string render_html_report(const std::string& run_dir) {
  const fs::path dir(run_dir);
  LUMINA_CHECK(fs::is_directory(dir), "run directory {} {}: pass --run the directory of a training run "
               "(<train.output_dir>/<train.experiment_name>, e.g. experiments/run)", run_dir,
               fs::exists(dir) ? "is not a directory" : "does not exist");
  const Metrics metrics = read_metrics((dir / "metrics" / "metrics.jsonl").string());
  const ConfigFile config = read_config(dir / "config.toml");
  const std::vector<std::string> log = tail_lines(dir / "logs" / "training.log", kLogTailLines);

  fs::path name_path = fs::absolute(dir).lexically_normal();
  if (name_path.filename().empty()) name_path = name_path.parent_path();  // "experiments/run/"
  const std::string name = config_value(config, "train", "experiment_name").value_or(name_path.filename().string());

  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>{0} · lumina training report</title>\n<style>{1}</style>\n</head>\n<body>\n<main>\n"
      "<h1>{0}</h1>\n<p class=\"sub\">lumina training report · {2} · {3} metric rows</p>\n",
      escape_xml(name), kStyle, escape_xml(name_path.string()), metrics.plotted_rows);
  for (const std::string& note : {unreadable_note(metrics), config.problem})
    if (!note.empty()) html += fmt::format("<p class=\"note\">{}</p>\n", escape_xml(note));

  html += "<section>\n<h2>Summary</h2>\n<div class=\"tables\">\n" + html_table("Run", run_rows(metrics));
  if (const Rows model = model_rows(config); !model.empty()) html += html_table("Model", model);
  if (const Rows setup = setup_rows(config); !setup.empty()) html += html_table("Training setup", setup);
  html += "</div>\n</section>\n";

  html += chart_sections(metrics);
  html += records_section(metrics);

  if (!config.text.empty())
    html += fmt::format("<section>\n<h2>Resolved config (config.toml)</h2>\n<pre>{}</pre>\n</section>\n",
                        escape_xml(config.text));
  std::string log_text;
  for (const std::string& line : log) log_text += line + "\n";
  html += fmt::format("<section>\n<h2>Training log (last {} lines of logs/training.log)</h2>\n<pre>{}</pre>\n</section>\n",
                      kLogTailLines, log.empty() ? "(no logs/training.log)" : escape_xml(log_text));
  html += "</main>\n</body>\n</html>\n";
  return html;
}

void write_html_report(const std::string& run_dir, const std::string& output_path) {
  write_file_atomic(output_path, render_html_report(run_dir));
}

}  // namespace lumina
