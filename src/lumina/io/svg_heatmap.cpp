// SVG heatmaps (see svg_heatmap.h). Layout, top to bottom: title, colour key,
// then per block: its title, its rows (label on the left, one cell per column),
// and a row of column numbers. Coordinates are written with one decimal.
#include "lumina/io/svg_heatmap.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "lumina/io/svg_chart.h"

namespace lumina {

namespace {

constexpr double kCharWidthPx = 6.6;  // average glyph width of the 11 px labels, for layout
constexpr std::array<double, 3> kLowRgb = {0x21, 0x66, 0xac}, kMidRgb = {0xf7, 0xf7, 0xf7},
                                kHighRgb = {0xb2, 0x18, 0x2b};
constexpr int kKeySwatches = 11;
constexpr const char* kNoValueColor = "#d9d9d9";

size_t columns_of(const HeatmapBlock& block) {
  size_t columns = 0;
  for (const HeatmapRow& r : block.rows) columns = std::max(columns, r.values.size());
  return columns;
}

// Column numbers to label under a block of `columns` cells: all of them when few, else round ones.
std::vector<size_t> labelled_columns(size_t columns) {
  std::vector<size_t> out;
  if (columns <= 16) {
    for (size_t c = 0; c < columns; ++c) out.push_back(c);
    return out;
  }
  for (double t : nice_ticks(0.0, static_cast<double>(columns - 1), 8))
    if (t >= 0.0 && t <= static_cast<double>(columns - 1)) out.push_back(static_cast<size_t>(t));
  return out;
}

}  // namespace

std::string heatmap_color(double value, double low, double mid, double high) {
  const double v = std::clamp(std::isfinite(value) ? value : mid, low, high);
  const bool below = v <= mid;
  const double t = below ? (v - low) / (mid - low) : (v - mid) / (high - mid);
  const std::array<double, 3>& from = below ? kLowRgb : kMidRgb;
  const std::array<double, 3>& to = below ? kMidRgb : kHighRgb;
  std::array<long, 3> rgb{};
  for (size_t i = 0; i < 3; ++i) rgb[i] = std::lround(from[i] + t * (to[i] - from[i]));
  return fmt::format("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
}

std::string render_heatmap(const std::vector<HeatmapBlock>& blocks, const HeatmapOptions& o) {
  size_t label_chars = 1, rows = 0;
  for (const HeatmapBlock& b : blocks) {
    rows += b.rows.size();
    for (const HeatmapRow& r : b.rows) label_chars = std::max(label_chars, r.label.size());
  }
  const double width = o.width_px, right = 12;
  const double left = 14 + kCharWidthPx * static_cast<double>(label_chars);
  const double row_px = o.row_height_px;

  std::string body;
  // Colour key: swatches from low to high, labelled at low, mid and high.
  const double key_x = left, key_y = 30, swatch_px = 16;
  for (int i = 0; i < kKeySwatches; ++i) {
    const double v = o.low + (o.high - o.low) * i / (kKeySwatches - 1);
    body += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"10\" fill=\"{}\"/>", key_x + swatch_px * i,
                        key_y, swatch_px, heatmap_color(v, o.low, o.mid, o.high));
  }
  for (const auto& [v, prefix] : {std::pair{o.low, ""}, {o.mid, ""}, {o.high, "\u2265"}}) {
    const double x = key_x + swatch_px * (kKeySwatches - 1) * (v - o.low) / (o.high - o.low) + swatch_px / 2;
    body += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#4a5263\">{}{}</text>", x,
                        key_y + 22, prefix, escape_xml(format_tick(v, 0.0)));
  }
  body += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#4a5263\">{}</text>\n",
                      key_x + swatch_px * kKeySwatches + 8, key_y + 9, escape_xml(o.value_label));

  double y = key_y + 36;
  if (rows == 0) {
    body += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#7a8292\">no data</text>\n",
                        width / 2, y + 20);
    y += 30;
  }
  for (const HeatmapBlock& block : blocks) {
    const size_t columns = columns_of(block);
    if (columns == 0) continue;
    const double cell_px = (width - left - right) / static_cast<double>(columns);
    body += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-weight=\"600\" fill=\"#1d2330\">{}</text>\n", left, y + 12,
                        escape_xml(block.title));
    y += 18;
    for (const HeatmapRow& row : block.rows) {
      body += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#1d2330\">{}</text>\n", left - 6,
                          y + row_px / 2 + 4, escape_xml(row.label));
      for (size_t c = 0; c < row.values.size(); ++c) {
        const double v = row.values[c];
        body += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"{}\">"
                            "<title>{}, {} {}: {}</title></rect>\n",
                            left + cell_px * static_cast<double>(c), y, cell_px, row_px,
                            std::isfinite(v) ? heatmap_color(v, o.low, o.mid, o.high) : kNoValueColor,
                            escape_xml(row.label), escape_xml(o.column_label), c,
                            std::isfinite(v) ? fmt::format("{:.3g}", v) : "no value");
      }
      y += row_px;
    }
    for (size_t c : labelled_columns(columns))
      body += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#4a5263\">{}</text>",
                          left + cell_px * (static_cast<double>(c) + 0.5), y + 12, c);
    body += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#7a8292\">{}</text>\n", width - right,
                        y + 26, escape_xml(o.column_label));
    y += 36;
  }

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {0} {1:.0f}\" width=\"{0}\" height=\"{1:.0f}\" "
      "role=\"img\" aria-label=\"{2}\" "
      "style=\"font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:11px\">\n",
      o.width_px, y + 8, escape_xml(o.title));
  svg += fmt::format("<title>{}</title>\n", escape_xml(o.title));
  svg += fmt::format("<text x=\"{:.1f}\" y=\"20\" font-size=\"14\" font-weight=\"600\" fill=\"#1d2330\">{}</text>\n",
                     left, escape_xml(o.title));
  return svg + body + "</svg>\n";
}

}  // namespace lumina
