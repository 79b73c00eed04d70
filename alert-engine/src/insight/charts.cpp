#include "ldis/engine/charts.hpp"

#include <algorithm>
#include <cstdlib>

#include "ldis/engine/text.hpp"
#include "named.hpp"

namespace ldis::engine {
namespace {

// GOV.UK's colours, distinct from each other and readable with white text.
const std::vector<std::string> kPalette = {"#1d70b8", "#d4351c", "#00703c", "#4c2c92",
                                           "#f47738", "#912b88", "#505a5f", "#28a197"};

std::string LevelColour(const std::string& level) {
    if (level == "red") return "#d4351c";
    if (level == "amber") return "#f47738";
    if (level == "green") return "#00703c";
    return "#f3f2f1";
}

// A coordinate to a tenth: enough for a 720-wide drawing, and a fraction of the bytes.
std::string Num(double v) {
    const auto tenths = static_cast<long long>(v * 10 + (v >= 0 ? 0.5 : -0.5));
    const long long tenth = std::llabs(tenths % 10);
    return std::to_string(tenths / 10) + (tenth != 0 ? "." + std::to_string(tenth) : "");
}

std::string Day(std::int64_t ms) {
    return HumanDateMs(ms);
}

}  // namespace

std::string WeeklyChartSvg(
    const Series& s, std::string_view id, std::string_view title,
    const std::function<std::string(const std::string&, std::int64_t)>& link) {
    const int width = 720, height = 200, left = 36, bottom = 24, top = 8;
    const int key_height = 20 * static_cast<int>((s.categories.size() + 2) / 3);
    std::int64_t most = 1;
    for (auto t : s.totals) most = std::max(most, t);
    const double plot = height - bottom - top;
    const double step = s.weeks.empty() ? 0 : (width - left) / static_cast<double>(s.weeks.size());
    const double bar = std::max(1.0, step * 0.8);
    std::string x =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ldis-chart\" viewBox=\"0 0 " +
        std::to_string(width) + " " + std::to_string(height + key_height) +
        "\" role=\"group\" aria-labelledby=\"" + EscapeHtml(id) + "-title\">";
    x += "<title id=\"" + EscapeHtml(id) + "-title\">" + EscapeHtml(title) + "</title>";
    // The scale: 0 and the largest week.
    x += "<line x1=\"" + std::to_string(left) + "\" y1=\"" + std::to_string(height - bottom) +
         "\" x2=\"" + std::to_string(width) + "\" y2=\"" + std::to_string(height - bottom) +
         "\" stroke=\"#0b0c0c\"/>";
    x += "<text x=\"" + std::to_string(left - 4) + "\" y=\"" + std::to_string(top + 10) +
         "\" text-anchor=\"end\" font-size=\"12\">" + std::to_string(most) + "</text>";
    x += "<text x=\"" + std::to_string(left - 4) + "\" y=\"" + std::to_string(height - bottom) +
         "\" text-anchor=\"end\" font-size=\"12\">0</text>";
    for (std::size_t w = 0; w < s.weeks.size(); ++w) {
        double y = height - bottom;
        const double bx = left + static_cast<double>(w) * step + (step - bar) / 2;
        for (std::size_t c = 0; c < s.categories.size(); ++c) {
            const std::int64_t n = s.categories[c].second[w];
            if (n == 0) continue;
            const double h = plot * static_cast<double>(n) / static_cast<double>(most);
            y -= h;
            const std::string label = detail::Named(s.categories[c].first) + ", week of " +
                                      Day(s.weeks[w]) + ": " + std::to_string(n);
            const std::string href = link ? link(s.categories[c].first, s.weeks[w]) : "";
            // A linked bar is named by its link (aria-label); an unlinked one by its title.
            std::string rect = "<rect x=\"" + Num(bx) + "\" y=\"" + Num(y) + "\" width=\"" +
                               Num(bar) + "\" height=\"" + Num(h) + "\" fill=\"" +
                               kPalette[c % kPalette.size()] + "\" data-category=\"" +
                               EscapeHtml(s.categories[c].first) + "\" data-count=\"" +
                               std::to_string(n) + "\"";
            x += href.empty() ? rect + "><title>" + EscapeHtml(label) + "</title></rect>"
                              : "<a href=\"" + EscapeHtml(href) + "\" aria-label=\"" +
                                    EscapeHtml(label) + "\">" + rect + "/></a>";
        }
    }
    // The first and last week under the axis.
    if (!s.weeks.empty()) {
        x += "<text x=\"" + std::to_string(left) + "\" y=\"" + std::to_string(height - 6) +
             "\" font-size=\"12\">" + EscapeHtml(Day(s.weeks.front())) + "</text>";
        x += "<text x=\"" + std::to_string(width) + "\" y=\"" + std::to_string(height - 6) +
             "\" text-anchor=\"end\" font-size=\"12\">" + EscapeHtml(Day(s.weeks.back())) +
             "</text>";
    }
    // The key.
    for (std::size_t c = 0; c < s.categories.size(); ++c) {
        const int kx = left + static_cast<int>(c % 3) * 220;
        const int ky = height + 4 + static_cast<int>(c / 3) * 20;
        x += "<rect x=\"" + std::to_string(kx) + "\" y=\"" + std::to_string(ky) +
             "\" width=\"12\" height=\"12\" fill=\"" + kPalette[c % kPalette.size()] + "\"/>";
        x += "<text x=\"" + std::to_string(kx + 18) + "\" y=\"" + std::to_string(ky + 11) +
             "\" font-size=\"13\">" + EscapeHtml(detail::Named(s.categories[c].first)) + "</text>";
    }
    x += "</svg>";
    return x;
}

std::string WeeklyTableHtml(const Series& s, std::string_view caption) {
    std::string x =
        "<table class=\"govuk-table ldis-numbers\"><caption class=\"govuk-table__caption "
        "govuk-table__caption--s\">" +
        EscapeHtml(caption) +
        "</caption><thead class=\"govuk-table__head\"><tr class=\"govuk-table__row\">"
        "<th scope=\"col\" class=\"govuk-table__header\">Week of</th>";
    for (const auto& [name, counts] : s.categories)
        x += "<th scope=\"col\" class=\"govuk-table__header govuk-table__header--numeric\">" +
             EscapeHtml(detail::Named(name)) + "</th>";
    x += "<th scope=\"col\" class=\"govuk-table__header govuk-table__header--numeric\">All</th>"
         "</tr></thead><tbody class=\"govuk-table__body\">";
    bool any = false;
    for (std::size_t w = 0; w < s.weeks.size(); ++w) {
        if (s.totals[w] == 0) continue;
        any = true;
        x += "<tr class=\"govuk-table__row\"><th scope=\"row\" class=\"govuk-table__header\">" +
             EscapeHtml(Day(s.weeks[w])) + "</th>";
        for (const auto& [name, counts] : s.categories)
            x += "<td class=\"govuk-table__cell govuk-table__cell--numeric\">" +
                 std::to_string(counts[w]) + "</td>";
        x += "<td class=\"govuk-table__cell govuk-table__cell--numeric\">" +
             std::to_string(s.totals[w]) + "</td></tr>";
    }
    if (!any)
        x += "<tr class=\"govuk-table__row\"><td class=\"govuk-table__cell\" colspan=\"" +
             std::to_string(s.categories.size() + 2) + "\">None in this period</td></tr>";
    x += "</tbody></table>";
    return x;
}

const std::vector<DistrictTile>& DistrictTiles() {
    // Roughly where each lies, west to east and north to south.
    static const std::vector<DistrictTile> kTiles = {{"Dartford", 0, 0},
                                                     {"Gravesham", 1, 0},
                                                     {"Medway", 2, 0},
                                                     {"Swale", 3, 0},
                                                     {"Canterbury", 4, 0},
                                                     {"Thanet", 5, 0},
                                                     {"Sevenoaks", 0, 1},
                                                     {"Tonbridge & Malling", 1, 1},
                                                     {"Maidstone", 2, 1},
                                                     {"Ashford", 3, 1},
                                                     {"Dover", 4, 1},
                                                     {"Tunbridge Wells", 1, 2},
                                                     {"Folkestone & Hythe", 3, 2}};
    return kTiles;
}

std::string DistrictMapSvg(const std::map<std::string, std::string>& levels,
                           const std::map<std::string, int>& counts,
                           const std::function<std::string(const std::string&)>& link) {
    const int size = 110, gap = 6;
    std::string x = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ldis-map\" viewBox=\"0 0 " +
                    std::to_string(6 * (size + gap)) + " " + std::to_string(3 * (size + gap)) +
                    "\" role=\"group\" aria-labelledby=\"map-title\"><title id=\"map-title\">Kent "
                    "and Medway's districts by their highest live alert level</title>";
    for (const auto& t : DistrictTiles()) {
        const auto level = levels.find(t.district);
        const std::string lv = level == levels.end() ? std::string() : level->second;
        const auto count = counts.find(t.district);
        const int n = count == counts.end() ? 0 : count->second;
        const int px = t.column * (size + gap), py = t.row * (size + gap);
        const std::string ink = lv.empty() || lv == "amber" ? "#0b0c0c" : "#ffffff";
        const std::string said = t.district + ": " +
                                 (lv.empty() ? std::string("no live alert")
                                             : std::to_string(n) + " live alert" +
                                                   (n == 1 ? "" : "s") + ", highest " + lv);
        std::string tile = "<g data-district=\"" + EscapeHtml(t.district) + "\" data-level=\"" +
                           EscapeHtml(lv.empty() ? "none" : lv) + "\"><title>" + EscapeHtml(said) +
                           "</title><rect x=\"" + std::to_string(px) + "\" y=\"" +
                           std::to_string(py) + "\" width=\"" + std::to_string(size) +
                           "\" height=\"" + std::to_string(size) + "\" fill=\"" + LevelColour(lv) +
                           "\" stroke=\"#0b0c0c\"/>";
        // The name on up to two lines, the count below.
        std::string first = t.district, second;
        if (const auto sp = t.district.find(' ');
            sp != std::string::npos && t.district.size() > 11) {
            first = t.district.substr(0, sp);
            second = t.district.substr(sp + 1);
        }
        tile += "<text x=\"" + std::to_string(px + 6) + "\" y=\"" + std::to_string(py + 20) +
                "\" font-size=\"14\" fill=\"" + ink + "\">" + EscapeHtml(first) + "</text>";
        if (!second.empty())
            tile += "<text x=\"" + std::to_string(px + 6) + "\" y=\"" + std::to_string(py + 38) +
                    "\" font-size=\"14\" fill=\"" + ink + "\">" + EscapeHtml(second) + "</text>";
        tile += "<text x=\"" + std::to_string(px + 6) + "\" y=\"" + std::to_string(py + size - 12) +
                "\" font-size=\"26\" font-weight=\"bold\" fill=\"" + ink + "\">" +
                std::to_string(n) + "</text></g>";
        const std::string href = link ? link(t.district) : "";
        x += href.empty() ? tile
                          : "<a href=\"" + EscapeHtml(href) + "\" aria-label=\"" +
                                EscapeHtml(said) + "\">" + tile + "</a>";
    }
    x += "</svg>";
    return x;
}

std::string QuarterlyHtml(const Quarter& quarter, const std::vector<ReportTable>& tables,
                          const InsightData& data, const std::string& issuer,
                          std::int64_t made_ms) {
    std::string x =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
        "content=\"width=device-width, initial-scale=1\"><title>LDIS quarterly report " +
        EscapeHtml(quarter.name) +
        "</title><style>"
        "body{font-family:Arial,sans-serif;color:#0b0c0c;max-width:60em;margin:1.5em auto;"
        "padding:0 1em;line-height:1.35}"
        "h1{font-size:1.8em;margin:0 0 .2em}h2{font-size:1.3em;margin:1.4em 0 .4em;"
        "break-after:avoid}table{border-collapse:collapse;width:100%;margin-bottom:1em;"
        "break-inside:avoid}th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid "
        "#b1b4b6}td.n,th.n{text-align:right}caption{text-align:left;font-weight:bold;"
        "padding:.3em 0}svg{width:100%;height:auto;break-inside:avoid}"
        ".note{color:#505a5f;font-size:.9em}"
        "@page{size:A4;margin:15mm}"
        "@media print{body{margin:0;max-width:none;font-size:10.5pt}a{color:inherit;"
        "text-decoration:none}section{break-inside:avoid}}"
        "</style></head><body><main>\n";
    x += "<h1>LDIS Kent and Medway: quarterly report " + EscapeHtml(quarter.name) + "</h1>\n";
    x += "<p class=\"note\">" + EscapeHtml(HumanDateMs(quarter.from_ms)) + " to " +
         EscapeHtml(HumanDateMs(quarter.to_ms - 1)) + ". Issued by " + EscapeHtml(issuer) +
         ", made " + EscapeHtml(HumanTimeMs(made_ms)) +
         ". Real reports and alerts only; counts of 1 or 2 read \"fewer than 3\".</p>\n";
    const auto chart = [&](const Series& s, const std::string& id, const std::string& title) {
        x += "<section><h2>" + EscapeHtml(title) + "</h2>" + WeeklyChartSvg(s, id, title, nullptr) +
             "</section>\n";
    };
    chart(ReportSeries(data, ReportBy::kFamily), "chart-family",
          "Reports per week by substance family");
    chart(AlertSeries(data), "chart-alerts", "Alerts issued per week by level");
    for (const auto& t : tables) {
        x += "<section id=\"" + EscapeHtml(t.id) + "\"><h2>" + EscapeHtml(t.title) +
             "</h2><table><thead><tr>";
        for (std::size_t i = 0; i < t.columns.size(); ++i)
            x += std::string(i == 0 ? "<th scope=\"col\">" : "<th scope=\"col\" class=\"n\">") +
                 EscapeHtml(t.columns[i]) + "</th>";
        x += "</tr></thead><tbody>";
        for (const auto& row : t.rows) {
            x += "<tr>";
            for (std::size_t i = 0; i < row.size(); ++i)
                x += std::string(i == 0 ? "<th scope=\"row\">" : "<td class=\"n\">") +
                     EscapeHtml(row[i]) + (i == 0 ? "</th>" : "</td>");
            x += "</tr>";
        }
        x += "</tbody></table></section>\n";
    }
    x += "</main></body></html>\n";
    return x;
}

}  // namespace ldis::engine
