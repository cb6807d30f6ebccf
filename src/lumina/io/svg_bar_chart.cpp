// SVG bar charts (see svg_bar_chart.h). Layout, top to bottom: title, legend
// rows, panel titles, the panels' plot areas side by side (bars from 0 up,
// annotations above them), bar labels (stacked), with the y label rotated on
// the left. Coordinates are written with one decimal to keep files small.
#include "lumina/io/svg_bar_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "lumina/io/svg_chart.h"

namespace lumina {

namespace {

constexpr double kCharWidthPx = 6.6;   // average glyph width of the 11 px labels, for layout
constexpr double kOuterPx = 8;         // margin at the left and right edges
constexpr double kYLabelPx = 18;       // column of the rotated y label
constexpr double kPanelGapPx = 16;     // between one panel's plot and the next panel's tick labels
constexpr double kBarFill = 0.7;       // bar width / slot width
constexpr double kLabelAngleDeg = 35;  // stacked bar labels, rotated

// A bar is drawn when it has segments and all are finite and >= 0.
bool drawable(const std::vector<double>& bar) {
  return !bar.empty() && std::all_of(bar.begin(), bar.end(), [](double v) { return std::isfinite(v) && v >= 0.0; });
}

double bar_total(const std::vector<double>& bar) {
  double total = 0.0;
  for (double v : bar) total += v;
  return total;
}

bool panel_draws_bars(const BarPanel& p) { return std::any_of(p.bars.begin(), p.bars.end(), drawable); }

std::string at(const std::vector<std::string>& texts, size_t i) { return i < texts.size() ? texts[i] : std::string(); }

// Everything render_bar_chart places, computed once.
struct Geometry {
  BarChartLayout layout;
  std::vector<std::vector<double>> ticks;  // per panel, from 0 to its top value
  std::vector<std::pair<double, double>> legend_at;
  double height = 0;
};

Geometry compute_geometry(const std::vector<BarPanel>& panels, const BarChartOptions& o) {
  Geometry g;
  const double width = o.width_px;
  const double left = kOuterPx + kYLabelPx;
  // Legend entries: a swatch and the name, wrapping onto rows.
  double legend_x = left, legend_y = 40;
  for (const std::string& name : o.legend) {
    const double entry_px = 22 + kCharWidthPx * static_cast<double>(name.size());
    if (legend_x > left && legend_x + entry_px > width - kOuterPx) legend_x = left, legend_y += 16;
    g.legend_at.push_back({legend_x, legend_y});
    legend_x += entry_px;
  }
  // Below the legend: a row of panel titles, then room for the annotations above the tallest bars.
  BarChartLayout& l = g.layout;
  l.plot_top = (o.legend.empty() ? 34 : legend_y + 12) + 18 + 16;
  l.plot_bottom = l.plot_top + o.plot_height_px;
  size_t label_chars = 0;
  if (o.kind == BarKind::stacked)
    for (const BarPanel& p : panels)
      for (const std::string& s : p.bar_labels) label_chars = std::max(label_chars, s.size());
  const double label_room =
      label_chars * kCharWidthPx * std::sin(kLabelAngleDeg * std::numbers::pi / 180.0) + 20;
  g.height = l.plot_bottom + label_room + 8;

  const double slot_px = panels.empty() ? 0.0 : (width - left - kOuterPx) / static_cast<double>(panels.size());
  for (size_t p = 0; p < panels.size(); ++p) {
    double top = 0.0;
    for (const auto& bar : panels[p].bars)
      if (drawable(bar)) top = std::max(top, bar_total(bar));
    std::vector<double> ticks = nice_ticks(0.0, top > 0.0 ? top : 1.0);
    size_t tick_chars = 1;
    for (double t : ticks) tick_chars = std::max(tick_chars, format_tick(t, ticks[1] - ticks[0]).size());
    const double slot_left = left + slot_px * static_cast<double>(p);
    l.panel_left.push_back(slot_left + 8 + kCharWidthPx * static_cast<double>(tick_chars));
    l.panel_right.push_back(slot_left + slot_px - kPanelGapPx / 2);
    l.panel_top_value.push_back(ticks.back());
    g.ticks.push_back(std::move(ticks));

    const auto& bars = panels[p].bars;
    const double bar_slot = (l.panel_right[p] - l.panel_left[p]) / static_cast<double>(std::max<size_t>(bars.size(), 1));
    const double px_per_value = (l.plot_bottom - l.plot_top) / l.panel_top_value[p];
    for (size_t b = 0; b < bars.size(); ++b) {
      if (!drawable(bars[b])) continue;
      const double x = l.panel_left[p] + bar_slot * (static_cast<double>(b) + (1 - kBarFill) / 2);
      double base = l.plot_bottom;
      for (size_t s = 0; s < bars[b].size(); ++s) {
        const double h = bars[b][s] * px_per_value;
        l.rects.push_back({p, b, s, x, base - h, bar_slot * kBarFill, h});
        base -= h;
      }
    }
  }
  return g;
}

// Words of `text` on lines of at most `chars` characters (a longer word gets its own line).
std::vector<std::string> wrap(const std::string& text, size_t chars) {
  std::vector<std::string> lines;
  std::string line;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find(' ', begin);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(begin, end - begin);
    if (!line.empty() && line.size() + 1 + word.size() > chars) lines.push_back(std::move(line)), line.clear();
    line += (line.empty() ? "" : " ") + word;
    begin = end + 1;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

}  // namespace

BarChartLayout layout_bar_chart(const std::vector<BarPanel>& panels, const BarChartOptions& options) {
  return compute_geometry(panels, options).layout;
}

std::string render_bar_chart(const std::vector<BarPanel>& panels, const BarChartOptions& o) {
  const Geometry g = compute_geometry(panels, o);
  const BarChartLayout& l = g.layout;
  const double width = o.width_px, left = kOuterPx + kYLabelPx;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1:.0f}\" width=\"{0}\" height=\"{1:.0f}\" "
      "role=\"img\" aria-label=\"{2}\" "
      "style=\"font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:11px\">\n",
      o.width_px, g.height, escape_xml(o.title));
  svg += fmt::format("<title>{}</title>\n", escape_xml(o.title));
  svg += fmt::format("<text x=\"{:.1f}\" y=\"20\" font-size=\"14\" font-weight=\"600\" fill=\"#1d2330\">{}</text>\n",
                     left, escape_xml(o.title));
  for (size_t i = 0; i < g.legend_at.size(); ++i) {
    const auto [lx, ly] = g.legend_at[i];
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"10\" fill=\"{}\"/>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#1d2330\">{}</text>\n",
                       lx, ly - 9, chart_color(i), lx + 16, ly, escape_xml(o.legend[i]));
  }
  if (panels.empty()) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#7a8292\">no data</text>\n</svg>\n",
                       width / 2, (l.plot_top + l.plot_bottom) / 2);
    return svg;
  }
  const double y_mid = (l.plot_top + l.plot_bottom) / 2;
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" transform=\"rotate(-90 {:.1f} {:.1f})\" text-anchor=\"middle\" "
                     "fill=\"#4a5263\">{}</text>\n",
                     kOuterPx + 10, y_mid, kOuterPx + 10, y_mid, escape_xml(o.y_label));

  for (size_t p = 0; p < panels.size(); ++p) {
    const BarPanel& panel = panels[p];
    const double x0 = l.panel_left[p], x1 = l.panel_right[p];
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-weight=\"600\" fill=\"#1d2330\">{}</text>\n",
                       (x0 + x1) / 2, l.plot_top - 22, escape_xml(panel.title));
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#ffffff\" stroke=\"#c9ced8\"/>\n",
                       x0, l.plot_top, x1 - x0, l.plot_bottom - l.plot_top);
    const std::vector<double>& ticks = g.ticks[p];
    for (double t : ticks) {
      const double y = l.plot_bottom - t / l.panel_top_value[p] * (l.plot_bottom - l.plot_top);
      svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e6e9ef\"/>"
                         "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#4a5263\">{}</text>\n",
                         x0, y, x1, y, x0 - 5, y + 4, escape_xml(format_tick(t, ticks[1] - ticks[0])));
    }
    if (!panel_draws_bars(panel) && !panel.note.empty()) {
      const auto chars = static_cast<size_t>(std::max(8.0, (x1 - x0 - 8) / kCharWidthPx));
      const std::vector<std::string> lines = wrap(panel.note, chars);
      for (size_t i = 0; i < lines.size(); ++i)
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#7a8292\">{}</text>\n",
                           (x0 + x1) / 2, y_mid + 14.0 * (static_cast<double>(i) - 0.5 * static_cast<double>(lines.size() - 1)),
                           escape_xml(lines[i]));
    }
    // Places of the bars that are not drawn, and the stacked labels.
    const double bar_slot = (x1 - x0) / static_cast<double>(std::max<size_t>(panel.bars.size(), 1));
    for (size_t b = 0; b < panel.bars.size(); ++b) {
      const double cx = x0 + bar_slot * (static_cast<double>(b) + 0.5);
      if (!drawable(panel.bars[b]) && panel_draws_bars(panel))
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#7a8292\">n/a</text>\n", cx,
                           l.plot_bottom - 4);
      if (o.kind == BarKind::stacked && b < panel.bar_labels.size())
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" transform=\"rotate(-{} {:.1f} {:.1f})\" text-anchor=\"end\" "
                           "fill=\"#4a5263\">{}</text>\n",
                           cx + 3, l.plot_bottom + 12, kLabelAngleDeg, cx + 3, l.plot_bottom + 12,
                           escape_xml(panel.bar_labels[b]));
    }
  }
  // Bars, with a tooltip per rectangle, and the annotation above each bar.
  for (const BarRect& r : l.rects) {
    const BarPanel& panel = panels[r.panel];
    const size_t series = o.kind == BarKind::grouped ? r.bar : r.segment;  // colour and legend entry
    std::string tip = at(o.legend, series);
    if (!at(panel.bar_labels, r.bar).empty()) tip = panel.bar_labels[r.bar] + ", " + tip;
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\">"
                       "<title>{}: {} {:.4g}</title></rect>\n",
                       r.x, r.y, r.width, r.height, chart_color(series), escape_xml(panel.title), escape_xml(tip),
                       panel.bars[r.bar][r.segment]);
    const bool top_segment = r.segment + 1 == panel.bars[r.bar].size();
    if (top_segment && !at(panel.annotations, r.bar).empty())
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#1d2330\">{}</text>\n",
                         r.x + r.width / 2, r.y - 4, escape_xml(panel.annotations[r.bar]));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace lumina
