#pragma once
// An SVG heatmap for benchmark reports: blocks of rows stacked vertically,
// each block with its own column count spread over the full width (e.g. one
// block per layer shape, rows = variants, columns = expert ids: 8 wide cells
// or 256 thin ones), a diverging colour scale (blue below `mid`, white at it,
// red above, clamped at `low` and `high`) with its key, and a tooltip per cell.
// One <svg> element with its namespace and pixel size (a file of its own or
// inline in HTML), inline styles only, no scripts; helpers from svg_chart.h.
#include <string>
#include <vector>

namespace lumina {

struct HeatmapRow {
  std::string label;
  std::vector<double> values;  // one per column; a non-finite value is a grey cell
};

struct HeatmapBlock {
  std::string title;
  std::vector<HeatmapRow> rows;  // the block has as many columns as its longest row
};

struct HeatmapOptions {
  std::string title;
  std::string column_label = "column";  // names the columns in the tooltips and under each block
  std::string value_label = "value";    // caption of the colour key
  double low = 0.0, mid = 1.0, high = 2.0;
  int width_px = 720;
  int row_height_px = 16;
};

// "#rrggbb" of `value`: #2166ac at low, #f7f7f7 at mid, #b2182b at high, linear
// in RGB between them and clamped outside [low, high] (low < mid < high).
std::string heatmap_color(double value, double low, double mid, double high);

// The heatmap as one <svg> element; no rows gives a chart that says "no data".
std::string render_heatmap(const std::vector<HeatmapBlock>& blocks, const HeatmapOptions& options);

}  // namespace lumina
