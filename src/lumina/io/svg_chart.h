#pragma once
// A small SVG line-chart writer for the HTML report: axes with round tick
// values, gridlines, several series with a legend, an optional logarithmic
// y axis, and downsampling so a run of millions of steps stays a few
// hundred kilobytes.
//
// The output is one <svg> element with inline styles only (no scripts, no
// fonts, no external references); it scales to its container's width.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lumina {

struct ChartSeries {
  std::string name;
  std::vector<double> x;  // ascending (step)
  std::vector<double> y;  // same length as x; non-finite values are left out and counted
};

struct ChartOptions {
  std::string title;
  std::string x_label = "step";
  bool log_y = false;  // falls back to a linear axis (with a note) when a value is <= 0
  int width_px = 640;
  int height_px = 300;
  size_t max_points_per_series = 2000;
};

// About `target_count` round tick values (1, 2 or 5 times a power of ten apart)
// from the largest multiple of the spacing <= lo to the smallest >= hi.
// lo == hi gets a range around the value. Requires finite lo <= hi.
std::vector<double> nice_ticks(double lo, double hi, int target_count = 5);

// Tick values for a logarithmic axis over [lo, hi], 0 < lo <= hi: powers of ten
// when the range spans several decades, 1-2-5 steps when it spans one or two,
// round linear values when it spans less than a decade.
std::vector<double> log_ticks(double lo, double hi);

// A tick label: `value` rounded to the tick `spacing`, shortest form, with
// k/M/G/T for large magnitudes ("120k", "0.0005", "2.5").
std::string format_tick(double value, double spacing);

// Indices of the points to draw, at most `max_points` (>= 4) of them: the first
// and the last point always, and per bucket of consecutive points its minimum
// and its maximum (so spikes survive), in ascending order.
std::vector<size_t> downsample_indices(const std::vector<double>& y, size_t max_points);

// Text escaped for XML/HTML content and attribute values (& < > " ').
std::string escape_xml(std::string_view text);

// Colour `index` of the charts' palette ("#1f77b4", ...; repeats after 10).
const char* chart_color(size_t index);

// The chart as one <svg> element. Series may be empty (the chart says "no data").
std::string render_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& options);

}  // namespace lumina
