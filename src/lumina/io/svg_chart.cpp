// SVG line charts (see svg_chart.h). Layout, top to bottom: title row (and a
// note on the right), legend rows, plot area with gridlines, x tick labels,
// x axis label. Coordinates are written with one decimal to keep files small.
#include "lumina/io/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace lumina {

namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);
constexpr size_t kMaxLegendEntries = 12;
constexpr size_t kMaxMarkedPoints = 60;  // series this short get a marker (with a tooltip) per point
constexpr double kCharWidthPx = 6.6;     // average glyph width of the 11 px labels, for layout

// The 1, 2 or 5 times a power of ten closest above raw_spacing.
double round_spacing(double raw_spacing) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw_spacing)));
  const double normalized = raw_spacing / magnitude;
  const double factor = normalized < 1.5 ? 1.0 : normalized < 3.0 ? 2.0 : normalized < 7.0 ? 5.0 : 10.0;
  return factor * magnitude;
}

// 1, 2, 5 x 10^k from the largest such value <= lo to the smallest >= hi (0 < lo <= hi).
std::vector<double> ticks_125(double lo, double hi) {
  std::vector<double> candidates;
  const int first_decade = static_cast<int>(std::floor(std::log10(lo)));
  const int last_decade = static_cast<int>(std::ceil(std::log10(hi)));
  for (int e = first_decade; e <= last_decade; ++e)
    for (double f : {1.0, 2.0, 5.0}) candidates.push_back(f * std::pow(10.0, e));
  size_t begin = 0, end = candidates.size();
  while (begin + 1 < candidates.size() && candidates[begin + 1] <= lo * (1 + 1e-12)) ++begin;
  while (end - 1 > begin + 1 && candidates[end - 2] >= hi * (1 - 1e-12)) --end;
  return {candidates.begin() + static_cast<std::ptrdiff_t>(begin), candidates.begin() + static_cast<std::ptrdiff_t>(end)};
}

std::string strip_exponent_zeros(std::string text) {
  // "5e-05" -> "5e-5", "1e+06" -> "1e6"
  const size_t e = text.find('e');
  if (e == std::string::npos) return text;
  std::string mantissa = text.substr(0, e);
  std::string exponent = text.substr(e + 1);
  const bool negative = !exponent.empty() && exponent[0] == '-';
  if (!exponent.empty() && (exponent[0] == '-' || exponent[0] == '+')) exponent.erase(0, 1);
  exponent.erase(0, std::min(exponent.find_first_not_of('0'), exponent.size() - 1));
  return mantissa + "e" + (negative ? "-" : "") + exponent;
}

struct Point {
  double x, y;
};

struct PreparedSeries {
  std::string name;
  std::vector<Point> points;
};

// Maps data coordinates to pixels.
struct Frame {
  double left, top, width, height;
  double x0, x1;  // data range on the x axis
  double y0, y1;  // range on the y axis, in log10 units when log_y
  bool log_y;

  double px(double x) const { return left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * width; }
  double py(double y) const {
    const double t = log_y ? std::log10(y) : y;
    return top + height - (y1 > y0 ? (t - y0) / (y1 - y0) : 0.5) * height;
  }
};

// The last legend entry of a crowded chart stands for the series it cannot show.
bool is_overflow_entry(const std::vector<PreparedSeries>& series, size_t i) {
  return i + 1 == kMaxLegendEntries && series.size() > kMaxLegendEntries;
}

std::string legend_label(const std::vector<PreparedSeries>& series, size_t i) {
  return is_overflow_entry(series, i) ? fmt::format("+ {} more", series.size() - i) : series[i].name;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target_count) {
  if (hi - lo <= std::abs(lo) * 1e-12) {  // one value: a range around it
    const double pad = lo == 0.0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double spacing = round_spacing((hi - lo) / std::max(1, target_count));
  const double first = std::floor(lo / spacing);
  const double last = std::ceil(hi / spacing);
  std::vector<double> ticks;
  for (double k = first; k <= last; k += 1.0) {
    const double t = k * spacing;
    ticks.push_back(std::abs(t) < spacing * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  const double decades = std::log10(hi) - std::log10(lo);
  if (decades >= 2.5) {
    const int first = static_cast<int>(std::floor(std::log10(lo)));
    const int last = static_cast<int>(std::ceil(std::log10(hi)));
    const int stride = std::max(1, (last - first + 7) / 8);  // at most about 8 labels
    std::vector<double> ticks;
    for (int e = first; e < last + stride; e += stride) ticks.push_back(std::pow(10.0, e));
    return ticks;
  }
  if (decades < 1.0) {
    std::vector<double> ticks = nice_ticks(lo, hi, 8);  // finer than usual: the axis starts nearer lo
    if (ticks.front() > 0.0) return ticks;
  }
  return ticks_125(lo, hi);
}

std::string format_tick(double value, double spacing) {
  if (spacing > 0.0) {
    value = std::round(value / spacing) * spacing;
    if (std::abs(value) < spacing * 1e-9) value = 0.0;
  }
  const double magnitude = std::abs(value);
  if (magnitude >= 1e4) {
    static constexpr std::pair<double, const char*> kUnits[] = {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
    for (const auto& [unit, suffix] : kUnits)
      if (magnitude >= unit) return strip_exponent_zeros(fmt::format("{:.4g}", value / unit)) + suffix;
  }
  return strip_exponent_zeros(fmt::format("{:.6g}", value));
}

std::vector<size_t> downsample_indices(const std::vector<double>& y, size_t max_points) {
  const size_t n = y.size();
  std::vector<size_t> kept;
  if (n <= std::max<size_t>(max_points, 4)) {
    for (size_t i = 0; i < n; ++i) kept.push_back(i);
    return kept;
  }
  // Interior points [1, n-1) in `buckets` runs; each run contributes its min and max.
  const size_t buckets = (std::max<size_t>(max_points, 4) - 2) / 2;
  const size_t interior = n - 2;
  kept.push_back(0);
  for (size_t b = 0; b < buckets; ++b) {
    const size_t begin = 1 + b * interior / buckets;
    const size_t end = 1 + (b + 1) * interior / buckets;
    if (begin == end) continue;
    size_t lowest = begin, highest = begin;
    for (size_t i = begin; i < end; ++i) {
      if (y[i] < y[lowest]) lowest = i;
      if (y[i] > y[highest]) highest = i;
    }
    kept.push_back(std::min(lowest, highest));
    if (lowest != highest) kept.push_back(std::max(lowest, highest));
  }
  kept.push_back(n - 1);
  return kept;
}

std::string escape_xml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* chart_color(size_t index) { return kPalette[index % kPaletteSize]; }

std::string render_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& options) {
  // Finite points only, downsampled; note what was left out.
  size_t non_finite = 0;
  bool non_positive = false;
  std::vector<PreparedSeries> prepared;
  for (const ChartSeries& s : series) {
    PreparedSeries p{s.name, {}};
    std::vector<double> ys;
    std::vector<double> xs;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        ++non_finite;
        continue;
      }
      non_positive = non_positive || s.y[i] <= 0.0;
      xs.push_back(s.x[i]);
      ys.push_back(s.y[i]);
    }
    for (size_t i : downsample_indices(ys, options.max_points_per_series)) p.points.push_back({xs[i], ys[i]});
    prepared.push_back(std::move(p));
  }
  const bool log_y = options.log_y && !non_positive;
  std::vector<std::string> notes;
  if (options.log_y && non_positive) notes.push_back("linear scale: values <= 0");
  else if (log_y) notes.push_back("log scale");
  if (non_finite > 0) notes.push_back(fmt::format("{} non-finite point{} left out", non_finite, non_finite == 1 ? "" : "s"));

  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const PreparedSeries& p : prepared)
    for (const Point& q : p.points) {
      xmin = std::min(xmin, q.x), xmax = std::max(xmax, q.x);
      ymin = std::min(ymin, q.y), ymax = std::max(ymax, q.y);
    }
  const bool empty = !(xmin <= xmax);

  // Ticks. The y axis spans whole ticks; the x axis spans the data (ticks inside it).
  std::vector<double> yticks, xticks;
  double x_spacing = 0.0, y_spacing = 0.0;
  if (!empty) {
    yticks = log_y ? log_ticks(ymin, ymax) : nice_ticks(ymin, ymax);
    y_spacing = log_y ? 0.0 : yticks[1] - yticks[0];
    xticks = nice_ticks(xmin, xmax, 6);
    x_spacing = xticks[1] - xticks[0];
    bool integer_x = true;  // steps: no ticks between two of them
    for (const PreparedSeries& p : prepared)
      for (const Point& q : p.points) integer_x = integer_x && q.x == std::floor(q.x);
    if (integer_x && x_spacing < 1.0) {
      x_spacing = 1.0;
      xticks.clear();
      for (double t = std::floor(xmin) - 1.0; t <= xmax + 1.0; t += 1.0) xticks.push_back(t);
    }
    if (xmax > xmin) {
      std::erase_if(xticks, [&](double t) { return t < xmin - x_spacing * 1e-9 || t > xmax + x_spacing * 1e-9; });
    } else {
      xmin = xticks.front(), xmax = xticks.back();
    }
  }
  std::vector<std::string> ylabels;
  size_t ylabel_chars = 1;
  for (double t : yticks) {
    ylabels.push_back(format_tick(t, log_y ? t : y_spacing));
    ylabel_chars = std::max(ylabel_chars, ylabels.back().size());
  }

  // Layout.
  const double width = options.width_px;
  const double left = 14 + kCharWidthPx * static_cast<double>(ylabel_chars), right = 16;
  const size_t legend_entries = prepared.size() > 1 ? std::min(prepared.size(), kMaxLegendEntries) : 0;
  std::vector<std::pair<double, double>> legend_at;  // (x, y) of each entry
  double legend_x = left, legend_y = 40;
  for (size_t i = 0; i < legend_entries; ++i) {
    const double entry_px = 26 + kCharWidthPx * static_cast<double>(legend_label(prepared, i).size());
    if (legend_x > left && legend_x + entry_px > width - right) legend_x = left, legend_y += 16;
    legend_at.push_back({legend_x, legend_y});
    legend_x += entry_px;
  }
  const double top = legend_entries > 0 ? legend_y + 12 : 34;
  const double height = options.height_px + (top - 34);
  const Frame f{left, top, width - left - right, height - top - 42, xmin, xmax,
                empty ? 0.0 : (log_y ? std::log10(yticks.front()) : yticks.front()),
                empty ? 1.0 : (log_y ? std::log10(yticks.back()) : yticks.back()), log_y};

  std::string svg = fmt::format(
      "<svg viewBox=\"0 0 {} {:.0f}\" width=\"100%\" role=\"img\" aria-label=\"{}\" "
      "style=\"font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:11px\">\n",
      options.width_px, height, escape_xml(options.title));
  svg += fmt::format("<title>{}</title>\n", escape_xml(options.title));
  svg += fmt::format("<text x=\"{:.1f}\" y=\"20\" font-size=\"14\" font-weight=\"600\" fill=\"#1d2330\">{}</text>\n",
                     left, escape_xml(options.title));
  if (!notes.empty()) {
    std::string note = notes[0];
    for (size_t i = 1; i < notes.size(); ++i) note += "; " + notes[i];
    svg += fmt::format("<text x=\"{:.1f}\" y=\"20\" text-anchor=\"end\" fill=\"#7a8292\">{}</text>\n", width - right,
                       escape_xml(note));
  }
  for (size_t i = 0; i < legend_at.size(); ++i) {
    const auto [lx, ly] = legend_at[i];
    const bool more = is_overflow_entry(prepared, i);
    if (!more)
      svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2.5\"/>",
                         lx, ly - 4, lx + 18, ly - 4, kPalette[i % kPaletteSize]);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#1d2330\">{}</text>\n", more ? lx : lx + 22, ly,
                       escape_xml(legend_label(prepared, i)));
  }
  svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#ffffff\" stroke=\"#c9ced8\"/>\n",
                     f.left, f.top, f.width, f.height);
  if (empty) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#7a8292\">no data</text>\n</svg>\n",
                       f.left + f.width / 2, f.top + f.height / 2);
    return svg;
  }

  // Gridlines and tick labels.
  for (size_t i = 0; i < yticks.size(); ++i) {
    const double y = f.py(yticks[i]);
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e6e9ef\"/>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#4a5263\">{}</text>\n",
                       f.left, y, f.left + f.width, y, f.left - 6, y + 4, escape_xml(ylabels[i]));
  }
  for (double t : xticks) {
    const double x = f.px(t);
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e6e9ef\"/>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#4a5263\">{}</text>\n",
                       x, f.top, x, f.top + f.height, x, f.top + f.height + 15, escape_xml(format_tick(t, x_spacing)));
  }
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#4a5263\">{}</text>\n",
                     f.left + f.width / 2, f.top + f.height + 32, escape_xml(options.x_label));

  // Series: a polyline each, and markers with tooltips when short.
  for (size_t i = 0; i < prepared.size(); ++i) {
    const PreparedSeries& p = prepared[i];
    const char* color = kPalette[i % kPaletteSize];
    if (p.points.size() > 1) {
      svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" stroke-linejoin=\"round\" points=\"", color);
      for (size_t j = 0; j < p.points.size(); ++j)
        svg += fmt::format("{}{:.1f},{:.1f}", j ? " " : "", f.px(p.points[j].x), f.py(p.points[j].y));
      svg += "\"/>\n";
    }
    if (p.points.size() <= kMaxMarkedPoints) {
      for (const Point& q : p.points)
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.6\" fill=\"{}\"><title>{} at {} {}: {:.6g}</title></circle>\n",
                           f.px(q.x), f.py(q.y), color, escape_xml(p.name), escape_xml(options.x_label), q.x, q.y);
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace lumina
