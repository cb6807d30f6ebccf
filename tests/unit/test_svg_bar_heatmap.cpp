// Bar charts and heatmaps (io/svg_bar_chart.h, io/svg_heatmap.h): bar geometry
// from known values, stacking, per-panel scales, missing bars, escaping, empty
// input; heatmap colours and cells.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "lumina/io/svg_bar_chart.h"
#include "lumina/io/svg_heatmap.h"

namespace lumina {
namespace {

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

BarChartOptions options(BarKind kind, std::vector<std::string> legend) {
  BarChartOptions o;
  o.title = "t";
  o.kind = kind;
  o.legend = std::move(legend);
  o.plot_height_px = 200;
  return o;
}

TEST(SvgBarChart, GroupedBarHeightsAreProportionalToTheValues) {
  // Values 1, 2, 4: the axis runs to the round tick 4, so the bars are 1/4, 2/4 and 4/4 of 200 px.
  const BarChartLayout l = layout_bar_chart({{"p", {{1.0}, {2.0}, {4.0}}, {}, {}, ""}},
                                            options(BarKind::grouped, {"a", "b", "c"}));
  ASSERT_EQ(l.rects.size(), 3u);
  ASSERT_EQ(l.panel_top_value.size(), 1u);
  EXPECT_DOUBLE_EQ(l.panel_top_value[0], 4.0);
  EXPECT_DOUBLE_EQ(l.plot_bottom - l.plot_top, 200.0);
  const double expected[] = {50.0, 100.0, 200.0};
  for (size_t b = 0; b < 3; ++b) {
    const BarRect& r = l.rects[b];
    EXPECT_EQ(r.bar, b);
    EXPECT_NEAR(r.height, expected[b], 1e-9);
    EXPECT_NEAR(r.y + r.height, l.plot_bottom, 1e-9);  // every bar stands on the axis
    EXPECT_NEAR(r.width, l.rects[0].width, 1e-9);
    EXPECT_GE(r.x, l.panel_left[0]);
    EXPECT_LE(r.x + r.width, l.panel_right[0]);
  }
  // Evenly spaced, left to right.
  EXPECT_NEAR(l.rects[1].x - l.rects[0].x, l.rects[2].x - l.rects[1].x, 1e-9);
  EXPECT_GT(l.rects[1].x, l.rects[0].x + l.rects[0].width);
}

TEST(SvgBarChart, StackedSegmentsSitOnEachOther) {
  // Totals 6 and 3: the axis runs to 6; segments bottom up.
  const BarChartLayout l = layout_bar_chart({{"p", {{1.0, 2.0, 3.0}, {2.0, 0.0, 1.0}}, {"x", "y"}, {}, ""}},
                                            options(BarKind::stacked, {"s0", "s1", "s2"}));
  ASSERT_EQ(l.rects.size(), 6u);
  EXPECT_DOUBLE_EQ(l.panel_top_value[0], 6.0);
  const double px = 200.0 / 6.0;
  for (size_t i = 0; i < 6; ++i) {
    const BarRect& r = l.rects[i];
    const double value = i < 3 ? 1.0 + static_cast<double>(i) : (i == 3 ? 2.0 : i == 4 ? 0.0 : 1.0);
    EXPECT_EQ(r.bar, i / 3);
    EXPECT_EQ(r.segment, i % 3);
    EXPECT_NEAR(r.height, value * px, 1e-9);
    if (r.segment == 0) EXPECT_NEAR(r.y + r.height, l.plot_bottom, 1e-9);
    else EXPECT_NEAR(r.y + r.height, l.rects[i - 1].y, 1e-9);
  }
  EXPECT_NEAR(l.rects[2].y, l.plot_top, 1e-9);  // the tallest stack reaches the top tick
}

TEST(SvgBarChart, EachPanelHasItsOwnScale) {
  const BarChartLayout l = layout_bar_chart({{"small", {{1.0}}, {}, {}, ""}, {"large", {{1000.0}}, {}, {}, ""}},
                                            options(BarKind::grouped, {"a"}));
  ASSERT_EQ(l.rects.size(), 2u);
  EXPECT_DOUBLE_EQ(l.panel_top_value[0], 1.0);
  EXPECT_DOUBLE_EQ(l.panel_top_value[1], 1000.0);
  EXPECT_NEAR(l.rects[0].height, 200.0, 1e-9);
  EXPECT_NEAR(l.rects[1].height, 200.0, 1e-9);
  EXPECT_EQ(l.rects[1].panel, 1u);
  EXPECT_GT(l.panel_left[1], l.panel_right[0]);
  EXPECT_GT(l.rects[1].x, l.rects[0].x + l.rects[0].width);
}

TEST(SvgBarChart, BarsWithoutValueAreNotDrawnAndSaySo) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<BarPanel> panels = {{"p", {{nan}, {2.0}, {}, {-1.0}}, {}, {"", "1.5x"}, ""}};
  const BarChartOptions o = options(BarKind::grouped, {"a", "b", "c", "d"});
  const BarChartLayout l = layout_bar_chart(panels, o);
  ASSERT_EQ(l.rects.size(), 1u);
  EXPECT_EQ(l.rects[0].bar, 1u);
  const std::string svg = render_bar_chart(panels, o);
  EXPECT_EQ(count_of(svg, ">n/a<"), 3u);
  EXPECT_EQ(count_of(svg, ">1.5x<"), 1u);
}

TEST(SvgBarChart, EscapesTextAndShowsNotesAndEmptyCharts) {
  BarChartOptions o = options(BarKind::stacked, {"w<s>"});
  o.title = "a<b & \"c\"";
  const std::string svg = render_bar_chart({{"p&q", {{1.0}}, {"v'1"}, {}, ""}, {"r", {}, {}, {}, "skipped: x > y"}}, o);
  EXPECT_NE(svg.find("a&lt;b &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_NE(svg.find("w&lt;s&gt;"), std::string::npos);
  EXPECT_NE(svg.find("p&amp;q"), std::string::npos);
  EXPECT_NE(svg.find("v&#39;1"), std::string::npos);
  EXPECT_NE(svg.find("skipped: x &gt; y"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(count_of(svg, "<svg"), 1u);
  EXPECT_EQ(count_of(svg, "</svg>"), 1u);

  const std::string empty = render_bar_chart({}, o);
  EXPECT_NE(empty.find(">no data<"), std::string::npos);
  EXPECT_TRUE(layout_bar_chart({}, o).rects.empty());
}

TEST(SvgHeatmap, ColoursRunFromBlueThroughWhiteToRed) {
  EXPECT_EQ(heatmap_color(0.0, 0.0, 1.0, 2.0), "#2166ac");
  EXPECT_EQ(heatmap_color(1.0, 0.0, 1.0, 2.0), "#f7f7f7");
  EXPECT_EQ(heatmap_color(2.0, 0.0, 1.0, 2.0), "#b2182b");
  EXPECT_EQ(heatmap_color(7.0, 0.0, 1.0, 2.0), "#b2182b");   // clamped
  EXPECT_EQ(heatmap_color(-3.0, 0.0, 1.0, 2.0), "#2166ac");  // clamped
  // Halfway from white (247, 247, 247) to red (178, 24, 43): 212.5 -> 213, 135.5 -> 136, 145.
  EXPECT_EQ(heatmap_color(1.5, 0.0, 1.0, 2.0), "#d58891");
  // Halfway from blue (33, 102, 172) to white: 140, 174.5 -> 175, 209.5 -> 210.
  EXPECT_EQ(heatmap_color(0.5, 0.0, 1.0, 2.0), "#8cafd2");
}

TEST(SvgHeatmap, DrawsOneCellPerValueWithItsColour) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  HeatmapOptions o;
  o.title = "load <E>";
  o.column_label = "expert";
  const std::vector<HeatmapBlock> blocks = {
      {"A<", {{"r1", {0.5, 1.0, 2.0}}, {"r&2", {1.0, nan, 1.0}}}},
      {"B", {{"r3", std::vector<double>(256, 1.0)}}},
  };
  const std::string svg = render_heatmap(blocks, o);
  EXPECT_EQ(count_of(svg, "</title></rect>"), 3u + 3u + 256u);
  EXPECT_EQ(count_of(svg, "fill=\"#d9d9d9\""), 1u);  // the cell without a value
  EXPECT_NE(svg.find("fill=\"#b2182b\"><title>r1, expert 2: 2</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>r&amp;2, expert 1: no value</title>"), std::string::npos);
  EXPECT_NE(svg.find(">A&lt;<"), std::string::npos);
  EXPECT_NE(svg.find("load &lt;E&gt;"), std::string::npos);
  EXPECT_NE(svg.find("<title>r3, expert 255: 1</title>"), std::string::npos);
  // Block B spreads its 256 columns over the width block A gives 3.
  const size_t wide = svg.find("<title>r1, expert 0");
  const size_t thin = svg.find("<title>r3, expert 0");
  ASSERT_NE(wide, std::string::npos);
  ASSERT_NE(thin, std::string::npos);
  auto width_before = [&](size_t at) {
    const size_t w = svg.rfind("width=\"", at) + 7;
    return std::stod(svg.substr(w, svg.find('"', w) - w));
  };
  EXPECT_NEAR(width_before(wide) / width_before(thin), 256.0 / 3.0, 0.5);  // widths have 2 decimals

  EXPECT_NE(render_heatmap({}, o).find(">no data<"), std::string::npos);
}

}  // namespace
}  // namespace lumina
