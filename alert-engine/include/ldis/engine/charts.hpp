#pragma once
// The pictures of what happened (issue 17 §1, §2), drawn on the server as SVG: no script,
// each mark a link to the history it counts, each chart with a table of its numbers beside
// it for screen readers and for copying. Pure: strings from counts.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/insight.hpp"
#include "ldis/engine/text.hpp"

namespace ldis::engine {

// A stacked bar per week, a colour per category, with a key. `link(category, week_ms)`
// is where a segment leads ("" for none). `id` names the chart (its title's id).
std::string WeeklyChartSvg(
    const Series& series, std::string_view id, std::string_view title,
    const std::function<std::string(const std::string&, std::int64_t)>& link);
// The same numbers as an HTML table: a row per week with any count, a column per category.
std::string WeeklyTableHtml(const Series& series, std::string_view caption);

// Kent and Medway's 13 districts as a tile map: each district a square where it lies, in
// the colour of its highest live alert level, with its number of live alerts; each a link
// to its alerts. `levels` and `counts` are by district name.
struct DistrictTile {
    std::string district;
    int column = 0, row = 0;
};
const std::vector<DistrictTile>& DistrictTiles();
std::string DistrictMapSvg(const std::map<std::string, std::string>& levels,
                           const std::map<std::string, int>& counts,
                           const std::function<std::string(const std::string&)>& link);

// The quarterly report as one HTML document (issue 17 §2): its tables and its charts, a
// print stylesheet for A4, nothing fetched from anywhere.
std::string QuarterlyHtml(const Quarter& quarter, const std::vector<ReportTable>& tables,
                          const InsightData& data, const std::string& issuer, std::int64_t made_ms);

}  // namespace ldis::engine
