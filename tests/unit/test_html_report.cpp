// The SVG chart writer (ticks, labels, escaping, downsampling, log scale) and
// the HTML report built from a run directory made here.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "lumina/io/atomic_file.h"
#include "lumina/io/html_report.h"
#include "lumina/io/svg_chart.h"
#include "support/test_files.h"

namespace lumina::test {
namespace {

namespace fs = std::filesystem;

void expect_ticks(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12 * std::max(1.0, std::abs(want[i]))) << i;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// (x, y) pixel pairs of each <polyline> in an SVG.
std::vector<std::vector<std::pair<double, double>>> polylines(const std::string& svg) {
  std::vector<std::vector<std::pair<double, double>>> lines;
  const std::regex polyline("points=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), polyline); it != std::sregex_iterator(); ++it) {
    std::vector<std::pair<double, double>> points;
    std::istringstream in((*it)[1].str());
    for (std::string pair; in >> pair;) {
      const size_t comma = pair.find(',');
      points.push_back({std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1))});
    }
    lines.push_back(points);
  }
  return lines;
}

TEST(SvgChart, NiceTicksAreRoundAndCoverTheRange) {
  expect_ticks(nice_ticks(0, 1), {0, 0.2, 0.4, 0.6, 0.8, 1.0});
  expect_ticks(nice_ticks(0, 100), {0, 20, 40, 60, 80, 100});
  expect_ticks(nice_ticks(2.1, 4.7), {2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0});
  expect_ticks(nice_ticks(10, 1190), {0, 200, 400, 600, 800, 1000, 1200});
  expect_ticks(nice_ticks(-3, 7), {-4, -2, 0, 2, 4, 6, 8});
  expect_ticks(nice_ticks(0.00031, 0.00298), {0.0, 0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003});
  // One value: a range around it.
  const std::vector<double> single = nice_ticks(5, 5);
  EXPECT_LT(single.front(), 5.0);
  EXPECT_GT(single.back(), 5.0);
  EXPECT_GE(single.size(), 3u);
}

TEST(SvgChart, LogTicksFollowTheDecades) {
  expect_ticks(log_ticks(1e-4, 10), {1e-4, 1e-3, 1e-2, 1e-1, 1, 10});
  expect_ticks(log_ticks(0.3, 2.9), {0.2, 0.5, 1, 2, 5});
  expect_ticks(log_ticks(1.5, 45), {1, 2, 5, 10, 20, 50});
  expect_ticks(log_ticks(2.1, 4.7), {2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0});  // under a decade: round linear values
  expect_ticks(log_ticks(1e-9, 1e9), {1e-9, 1e-6, 1e-3, 1, 1e3, 1e6, 1e9});  // 18 decades: every third
}

TEST(SvgChart, TickLabelsAreShort) {
  EXPECT_EQ(format_tick(0.1 + 0.2, 0.1), "0.3");
  EXPECT_EQ(format_tick(-2.7e-17, 0.2), "0");
  EXPECT_EQ(format_tick(0.0005, 0.0005), "0.0005");
  EXPECT_EQ(format_tick(5e-5, 1e-5), "5e-5");
  EXPECT_EQ(format_tick(1200, 200), "1200");
  EXPECT_EQ(format_tick(120000, 20000), "120k");
  EXPECT_EQ(format_tick(1.25e6, 2.5e5), "1.25M");
  EXPECT_EQ(format_tick(3e9, 1e9), "3G");
  EXPECT_EQ(format_tick(-40000, 20000), "-40k");
}

TEST(SvgChart, IntegerStepsGetIntegerTicks) {
  const std::string svg = render_line_chart({{"loss", {1, 2, 3, 4}, {40, 30, 20, 10}}}, ChartOptions{});  // y ticks: 10 ... 40
  for (const char* label : {">1</text>", ">2</text>", ">3</text>", ">4</text>"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  EXPECT_EQ(svg.find(">1.5</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">2.5</text>"), std::string::npos);
}

TEST(SvgChart, EscapesText) {
  EXPECT_EQ(escape_xml("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  ChartOptions options;
  options.title = "loss & <friends>";
  const std::string svg = render_line_chart({{"<b>\"q\"", {1, 2}, {3, 4}}, {"plain", {1, 2}, {2, 3}}}, options);
  EXPECT_NE(svg.find("loss &amp; &lt;friends&gt;"), std::string::npos);
  EXPECT_NE(svg.find("&lt;b&gt;&quot;q&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  EXPECT_EQ(svg.find("<friends>"), std::string::npos);
}

TEST(SvgChart, DownsamplingKeepsEndsAndSpikes) {
  const size_t n = 100000;
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = std::sin(static_cast<double>(i) * 1e-3);
  y[54321] = 50.0;   // a loss spike
  y[77777] = -50.0;  // and a dip
  const std::vector<size_t> kept = downsample_indices(y, 2000);
  EXPECT_LE(kept.size(), 2000u);
  EXPECT_GE(kept.size(), 1900u);
  EXPECT_EQ(kept.front(), 0u);
  EXPECT_EQ(kept.back(), n - 1);
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
  EXPECT_EQ(std::adjacent_find(kept.begin(), kept.end()), kept.end()) << "an index kept twice";
  EXPECT_NE(std::find(kept.begin(), kept.end(), 54321u), kept.end());
  EXPECT_NE(std::find(kept.begin(), kept.end(), 77777u), kept.end());
  // Short series are drawn whole.
  EXPECT_EQ(downsample_indices(std::vector<double>(7, 1.0), 2000), (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(SvgChart, HugeSeriesAreDrawnWithAtMostTheLimit) {
  ChartSeries s{"loss", {}, {}};
  for (int i = 0; i < 50000; ++i) s.x.push_back(i), s.y.push_back(1.0 + 1.0 / (1 + i));
  ChartOptions options;
  options.title = "big";
  const std::string svg = render_line_chart({s}, options);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_LE(lines[0].size(), options.max_points_per_series);
  EXPECT_LT(svg.size(), 40000u);
  EXPECT_EQ(svg.find("<circle"), std::string::npos) << "no per-point markers on a long series";
}

TEST(SvgChart, LogScalePlacesDecadesEvenly) {
  ChartOptions options;
  options.log_y = true;
  const std::string svg = render_line_chart({{"loss", {0, 1, 2}, {1, 10, 100}}}, options);
  EXPECT_NE(svg.find("log scale"), std::string::npos);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_EQ(lines[0].size(), 3u);
  const double y0 = lines[0][0].second, y1 = lines[0][1].second, y2 = lines[0][2].second;
  EXPECT_GT(y0, y1);  // larger values are higher up (smaller pixel y)
  EXPECT_NEAR(y0 - y1, y1 - y2, 0.2);
}

TEST(SvgChart, LogScaleFallsBackToLinearOnNonPositiveValues) {
  ChartOptions options;
  options.log_y = true;
  const std::string svg = render_line_chart({{"loss", {0, 1, 2, 3}, {2, 0, -1, 1}}}, options);
  EXPECT_NE(svg.find("linear scale: values &lt;= 0"), std::string::npos);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_EQ(lines[0].size(), 4u) << "every point is still drawn";
  // Linear: the step from 2 to 0 is twice the step from 0 to -1.
  EXPECT_NEAR(lines[0][1].second - lines[0][0].second, 2 * (lines[0][2].second - lines[0][1].second), 0.2);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

TEST(SvgChart, NonFinitePointsAreLeftOutAndCounted) {
  const double nan = std::nan("");
  const std::string svg = render_line_chart({{"loss", {0, 1, 2, 3}, {3, nan, 2, INFINITY}}}, ChartOptions{});
  EXPECT_NE(svg.find("2 non-finite points left out"), std::string::npos);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].size(), 2u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST(SvgChart, EmptyChartSaysNoData) {
  const std::string svg = render_line_chart({{"loss", {}, {}}}, ChartOptions{});
  EXPECT_NE(svg.find("no data"), std::string::npos);
  EXPECT_EQ(svg.find("<polyline"), std::string::npos);
}

// ---- the report ----

// A run directory like the trainer's, with a torn last metrics line and keys it does not write.
std::string make_run_dir(const std::string& root) {
  const std::string run = root + "/tiny";
  fs::create_directories(run + "/metrics");
  fs::create_directories(run + "/logs");
  fs::create_directories(run + "/checkpoints");
  write_bytes(run + "/config.toml",
              "# Resolved config. A <tag> & \"quotes\" to escape.\n"
              "[model]\nvocab_size = 256\nhidden_size = 64\nnum_layers = 2\nnum_heads = 4\nnum_kv_heads = 2\n"
              "use_moe = false\nnum_experts = 8\n"
              "[train]\nexperiment_name = \"tiny<&>run\"\nbatch_size = 4\nseq_len = 32\n"
              "[optim]\nlearning_rate = 0.003\n");
  write_bytes(run + "/metrics/metrics.jsonl",
              R"({"step":1,"loss":3.5,"lr":0.001,"grad_norm":2.0,"tokens_per_second":1000,"tokens":128,"elapsed_s":1.5,"moe_aux_loss":0.02,"note":"warmup","flag":true})" "\n"
              R"({"step":2,"loss":3.0,"lr":0.002,"grad_norm":1.5,"tokens_per_second":2000,"tokens":256,"elapsed_s":3.0,"moe_aux_loss":0.015,"expert_utilization":[0.5,0.25,0.25]})" "\n"
              R"({"step":2,"val_loss":3.1,"val_ppl":22.2,"val_bpb":4.2,"val_accuracy":0.25,"val_tokens":512})" "\n"
              "\n"
              R"({"step":3,"loss":2.5,"lr":0.003,"grad_norm":1.0,"tokens_per_second":3000,"tokens":384,"elapsed_s":4.5,"moe_aux_loss":0.01,"expert_utilization":[0.4,0.3,0.3]})" "\n"
              R"({"step":4,"loss":2.75,"lr":0.003,"grad_norm":1.2,"tokens_per_second":2000,"tokens":512,"elapsed_s":3725,"router_probs":[1,2,3,4,5,6,7,8,9,10,11,12]})" "\n"
              R"({"step":4,"val_loss":2.9,"val_ppl":18.2,"val_bpb":4.1,"val_accuracy":0.3,"val_tokens":512})" "\n"
              R"({"kind":"summary","final_loss":2.75})" "\n"
              R"({"step":5,"loss":2.)");
  std::string log;
  for (int i = 0; i < 60; ++i) log += "log line " + std::string(i < 10 ? "00" : "0") + std::to_string(i) + "\n";
  write_bytes(run + "/logs/training.log", log);
  return run;
}

TEST(HtmlReport, PlotsEveryNumericKeyAndSummarizes) {
  const std::string run = make_run_dir(fresh_test_dir());
  const std::string html = render_html_report(run);

  // One chart per numeric key; validation loss shares the loss chart; non-numeric keys have none.
  for (const char* key : {"loss", "lr", "grad_norm", "tokens_per_second", "tokens", "elapsed_s", "moe_aux_loss",
                          "expert_utilization", "router_probs", "val_ppl", "val_bpb", "val_accuracy", "val_tokens"})
    EXPECT_NE(html.find(std::string("id=\"chart-") + key + "\""), std::string::npos) << key;
  for (const char* key : {"val_loss", "note", "flag", "step", "final_loss", "kind"})
    EXPECT_EQ(html.find(std::string("id=\"chart-") + key + "\""), std::string::npos) << key;
  EXPECT_EQ(count_of(html, "<svg"), 13u);
  EXPECT_NE(html.find(">val_loss</text>"), std::string::npos) << "validation loss in the loss chart's legend";
  EXPECT_NE(html.find(">expert_utilization[2]</text>"), std::string::npos);
  EXPECT_NE(html.find(">router_probs mean</text>"), std::string::npos) << "long arrays as min/mean/max";
  EXPECT_NE(html.find("<h2>Mixture of Experts</h2>"), std::string::npos);

  // Summary numbers.
  EXPECT_NE(html.find("<th>Steps</th><td>4</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Tokens</th><td>512</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Last loss</th><td>2.7500</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Best loss</th><td>2.5000 (step 3)</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Best validation loss</th><td>2.9000 (step 4)</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Validation bits per token (last)</th><td>4.1000</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Mean throughput</th><td>2,000 tokens/s</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Wall time</th><td>01:02:05</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>hidden_size</th><td>64</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>num_heads</th><td>4</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>vocab_size</th><td>256</td>"), std::string::npos);
  EXPECT_EQ(html.find("<th>num_experts</th>"), std::string::npos) << "MoE fields only for MoE models";

  // Escaped name and config, the torn line counted, the summary row listed, the log's last 50 lines.
  EXPECT_NE(html.find("<h1>tiny&lt;&amp;&gt;run</h1>"), std::string::npos);
  EXPECT_NE(html.find("A &lt;tag&gt; &amp; &quot;quotes&quot; to escape."), std::string::npos);
  EXPECT_EQ(html.find("<tag>"), std::string::npos);
  EXPECT_NE(html.find("(line 9) is incomplete"), std::string::npos);
  EXPECT_NE(html.find("final_loss"), std::string::npos);
  EXPECT_NE(html.find("log line 059"), std::string::npos);
  EXPECT_NE(html.find("<pre>log line 010\n"), std::string::npos);
  EXPECT_EQ(html.find("log line 009"), std::string::npos);

  // Self-contained.
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
}

TEST(HtmlReport, LaterRowWinsForARepeatedStep) {
  const std::string run = fresh_test_dir();
  fs::create_directories(run + "/metrics");
  write_bytes(run + "/metrics/metrics.jsonl",
              "{\"step\":1,\"loss\":5.0}\n{\"step\":2,\"loss\":1.0}\n{\"step\":2,\"loss\":4.0}\n");
  const std::string html = render_html_report(run);
  EXPECT_NE(html.find("<th>Best loss</th><td>4.0000 (step 2)</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>Steps</th><td>2</td>"), std::string::npos);
  EXPECT_NE(html.find("config.toml not found"), std::string::npos);
  EXPECT_NE(html.find("(no logs/training.log)"), std::string::npos);
}

TEST(HtmlReport, CountsUnreadableLinesInTheMiddle) {
  const std::string run = fresh_test_dir();
  fs::create_directories(run + "/metrics");
  write_bytes(run + "/metrics/metrics.jsonl", "{\"step\":1,\"loss\":5.0}\nnot json\n[1,2]\n{\"step\":2,\"loss\":4.5}\n");
  const std::string html = render_html_report(run);
  EXPECT_NE(html.find("not JSON objects: 2, 3 (2 in all)"), std::string::npos);
  EXPECT_NE(html.find("<th>Last loss</th><td>4.5000</td>"), std::string::npos);
}

TEST(HtmlReport, WritesTheFileAtomically) {
  const std::string root = fresh_test_dir();
  const std::string run = make_run_dir(root);
  write_html_report(run, root + "/out.html");
  EXPECT_EQ(read_file(root + "/out.html"), render_html_report(run));
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(root)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1u) << "no temporary file left behind";
}

TEST(HtmlReport, ErrorsNameThePathAndWhatToDo) {
  const std::string root = fresh_test_dir();
  const std::string missing = error_of([&] { render_html_report(root + "/nope"); });
  EXPECT_NE(missing.find(root + "/nope does not exist"), std::string::npos) << missing;
  EXPECT_NE(missing.find("--run"), std::string::npos) << missing;

  const std::string no_metrics = error_of([&] { render_html_report(root); });
  EXPECT_NE(no_metrics.find(root + "/metrics/metrics.jsonl"), std::string::npos) << no_metrics;
  EXPECT_NE(no_metrics.find("log_interval"), std::string::npos) << no_metrics;

  fs::create_directories(root + "/metrics");
  write_bytes(root + "/metrics/metrics.jsonl", "{\"kind\":\"summary\"}\n{\"step\":1,\"loss\":2.");
  const std::string no_rows = error_of([&] { render_html_report(root); });
  EXPECT_NE(no_rows.find("no metric row"), std::string::npos) << no_rows;
}

}  // namespace
}  // namespace lumina::test
