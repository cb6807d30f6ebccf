#pragma once
// SVG bar charts for benchmark reports: one panel per group (e.g. per layer
// shape) side by side, each with its own y axis from 0, so groups of very
// different magnitudes all stay readable, and one legend. Two kinds:
//   grouped  each bar is one value; bar b of every panel is series b,
//            coloured by series; the legend names the series.
//   stacked  each bar is a stack of segments (bottom up), coloured by segment;
//            the legend names the segments and each bar has a label under it.
// One <svg> element with its namespace and pixel size (a file of its own or
// inline in HTML), inline styles only, no scripts; helpers from svg_chart.h.
#include <cstddef>
#include <string>
#include <vector>

namespace lumina {

enum class BarKind { grouped, stacked };

struct BarPanel {
  std::string title;
  // bars[b][s]: bar b, segment s (grouped: one value per bar). A bar without a
  // finite value >= 0 is not drawn ("n/a" at its place).
  std::vector<std::vector<double>> bars;
  std::vector<std::string> bar_labels;   // stacked: under each bar; both kinds: in the tooltips
  std::vector<std::string> annotations;  // text above each bar ("1.9x"), "" for none
  std::string note;                      // shown in a panel that draws no bar ("skipped: ...")
};

struct BarChartOptions {
  std::string title;
  std::string y_label;
  BarKind kind = BarKind::grouped;
  std::vector<std::string> legend;  // series (grouped) or segment (stacked) names
  int width_px = 720;
  int plot_height_px = 220;
};

// One drawn rectangle, in SVG pixels (y grows downwards).
struct BarRect {
  size_t panel = 0, bar = 0, segment = 0;
  double x = 0, y = 0, width = 0, height = 0;
};

// Where render_bar_chart draws every bar. A value v of panel p spans
// v / panel_top_value[p] * (plot_bottom - plot_top) pixels; the y axis of panel
// p runs from 0 at plot_bottom to panel_top_value[p] (its last round tick) at plot_top.
struct BarChartLayout {
  std::vector<BarRect> rects;
  std::vector<double> panel_top_value;
  std::vector<double> panel_left, panel_right;  // each panel's plot area, x
  double plot_top = 0, plot_bottom = 0;
};

BarChartLayout layout_bar_chart(const std::vector<BarPanel>& panels, const BarChartOptions& options);

// The chart as one <svg> element; no panels gives a chart that says "no data".
std::string render_bar_chart(const std::vector<BarPanel>& panels, const BarChartOptions& options);

}  // namespace lumina
