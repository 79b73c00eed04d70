#include "ldis/engine/insight.hpp"

#include <algorithm>
#include <charconv>

#include "ldis/engine/drill.hpp"
#include "ldis/engine/scrubber.hpp"
#include "ldis/engine/text.hpp"
#include "named.hpp"

namespace ldis::engine {
namespace {

std::vector<std::int64_t> WeeksOf(const InsightData& data) {
    std::vector<std::int64_t> weeks;
    if (data.to_ms <= data.from_ms) return weeks;
    for (std::int64_t w = WeekOf(data.from_ms); w < data.to_ms; w += kWeekMs) weeks.push_back(w);
    return weeks;
}

// Counts per category per week into a Series: the largest `most` categories, the rest as
// "Other".
Series Build(const std::vector<std::int64_t>& weeks,
             const std::map<std::string, std::map<std::int64_t, std::int64_t>>& counts,
             std::size_t most) {
    Series s;
    s.weeks = weeks;
    s.totals.assign(weeks.size(), 0);
    std::vector<std::pair<std::string, std::int64_t>> order;
    for (const auto& [name, by_week] : counts) {
        std::int64_t total = 0;
        for (const auto& [w, n] : by_week) total += n;
        order.emplace_back(name, total);
    }
    std::stable_sort(order.begin(), order.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::vector<std::int64_t> other(weeks.size(), 0);
    bool any_other = false;
    for (std::size_t i = 0; i < order.size(); ++i) {
        std::vector<std::int64_t> row(weeks.size(), 0);
        for (const auto& [w, n] : counts.at(order[i].first)) {
            const auto at = std::lower_bound(weeks.begin(), weeks.end(), w);
            if (at == weeks.end() || *at != w) continue;
            row[static_cast<std::size_t>(at - weeks.begin())] += n;
        }
        for (std::size_t k = 0; k < row.size(); ++k) s.totals[k] += row[k];
        if (i < most) {
            s.categories.emplace_back(order[i].first, std::move(row));
        } else {
            any_other = true;
            for (std::size_t k = 0; k < row.size(); ++k) other[k] += row[k];
        }
    }
    if (any_other) s.categories.emplace_back("Other", std::move(other));
    return s;
}

std::int64_t Median(std::vector<std::int64_t> v) {
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string Csv(const std::string& field) {
    if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
    std::string out = "\"";
    for (char c : field) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

ReportTable CountTable(std::string id, std::string title, std::string label,
                       const std::map<std::string, std::int64_t>& counts) {
    ReportTable t{std::move(id), std::move(title), {std::move(label), "Reports"}, {}};
    std::vector<std::pair<std::string, std::int64_t>> order(counts.begin(), counts.end());
    std::stable_sort(order.begin(), order.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::int64_t total = 0;
    for (const auto& [name, n] : order) {
        t.rows.push_back({detail::Named(name), SmallCount(n)});
        total += n;
    }
    t.rows.push_back({"All", SmallCount(total)});
    return t;
}

std::string Duration(std::int64_t ms) {
    return ms < 0 ? std::string("none yet") : HumanDuration(ms);
}

}  // namespace

Series ReportSeries(const InsightData& data, ReportBy by, std::size_t most) {
    std::map<std::string, std::map<std::int64_t, std::int64_t>> counts;
    for (const auto& r : data.reports) {
        const std::string& key = by == ReportBy::kFamily     ? r.family
                                 : by == ReportBy::kDistrict ? r.district
                                                             : r.source_type;
        counts[key.empty() ? std::string("not known") : key][r.week_ms] += r.count;
    }
    return Build(WeeksOf(data), counts, most);
}

Series AlertSeries(const InsightData& data) {
    std::map<std::string, std::map<std::int64_t, std::int64_t>> counts;
    for (const char* level : {"red", "amber", "green"}) counts[level];
    for (const auto& v : data.versions)
        if (v.status == "issued" && counts.contains(v.level)) counts[v.level][v.week_ms] += v.count;
    Series s = Build(WeeksOf(data), counts, 3);
    // Always red, amber, green, in that order: the colours mean something.
    const auto rank = [](const std::string& l) { return l == "red" ? 0 : l == "amber" ? 1 : 2; };
    std::stable_sort(s.categories.begin(), s.categories.end(),
                     [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
    return s;
}

TimingSummary SummariseTimings(const std::vector<AlertTiming>& timings) {
    TimingSummary out;
    std::vector<std::int64_t> inbox, ack;
    for (const auto& t : timings) {
        ++out.alerts;
        if (t.first_report_ms <= 0) continue;
        if (t.first_delivered_ms > 0) {
            const std::int64_t d =
                std::max<std::int64_t>(0, t.first_delivered_ms - t.first_report_ms);
            inbox.push_back(d);
            if (d > out.to_inbox_slowest_ms) {
                out.to_inbox_slowest_ms = d;
                out.slowest_to_inbox = t.reference;
            }
        }
        if (t.first_ack_ms > 0) {
            const std::int64_t d = std::max<std::int64_t>(0, t.first_ack_ms - t.first_report_ms);
            ack.push_back(d);
            out.to_ack_slowest_ms = std::max(out.to_ack_slowest_ms, d);
        }
    }
    out.to_inbox_median_ms = Median(inbox);
    out.to_ack_median_ms = Median(ack);
    return out;
}

Result<Quarter> ParseQuarter(std::string_view text) {
    const Error wrong{"a quarter is written as the year, \"-Q\" and 1 to 4, like 2026-Q4"};
    if (text.size() != 7 || text[4] != '-' || (text[5] != 'Q' && text[5] != 'q') || text[6] < '1' ||
        text[6] > '4')
        return wrong;
    int year = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + 4, year);
    if (ec != std::errc() || end != text.data() + 4 || year < 2000 || year > 2999) return wrong;
    const int q = text[6] - '0';
    const auto month = static_cast<unsigned>((q - 1) * 3 + 1);
    Quarter out;
    out.name = std::to_string(year) + "-Q" + std::to_string(q);
    out.from_ms = DaysFromCivil(year, month, 1) * 86400000;
    out.to_ms =
        (q == 4 ? DaysFromCivil(year + 1, 1, 1) : DaysFromCivil(year, month + 3, 1)) * 86400000;
    return out;
}

Quarter QuarterOf(std::int64_t ms) {
    // The civil date of `ms` (Howard Hinnant's days_from_civil, inverted).
    const std::int64_t z = ms / 86400000 + 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
    const std::string name = std::to_string(y) + "-Q" + std::to_string((m - 1) / 3 + 1);
    return ParseQuarter(name).value();
}

std::vector<ReportTable> QuarterlyTables(const InsightData& data) {
    std::map<std::string, std::int64_t> by_source, by_family, by_district, by_setting;
    std::int64_t drug_checking = 0, confirmed = 0;
    for (const auto& r : data.reports) {
        by_source[r.source_type] += r.count;
        by_family[r.family] += r.count;
        by_district[r.district] += r.count;
        by_setting[r.setting] += r.count;
        if (r.source_type == "drug_checking") drug_checking += r.count;
        if (r.evidence == "confirmed") confirmed += r.count;
    }
    std::vector<ReportTable> out;
    out.push_back(CountTable("reports-by-source", "Reports by source", "Source", by_source));
    out.push_back(CountTable("reports-by-family", "Reports by substance family", "Substance family",
                             by_family));
    out.push_back(
        CountTable("reports-by-district", "Reports by district", "District", by_district));
    out.push_back(CountTable("reports-by-setting", "Reports by setting", "Setting", by_setting));
    {
        ReportTable t{"alerts-by-level",
                      "Alerts issued, updated and cancelled, by level",
                      {"Level", "Issued", "Updated", "Cancelled"},
                      {}};
        std::map<std::string, std::map<std::string, std::int64_t>> n;
        for (const auto& v : data.versions) n[v.level][v.status] += v.count;
        for (const char* level : {"red", "amber", "green"})
            t.rows.push_back({LevelLabel(level) + " (" + level + ")",
                              SmallCount(n[level]["issued"]), SmallCount(n[level]["updated"]),
                              SmallCount(n[level]["cancelled"])});
        out.push_back(std::move(t));
    }
    {
        const auto s = SummariseTimings(data.timings);
        out.push_back({"time-to-alert",
                       "Time to alert, from the first report",
                       {"Measure", "Value"},
                       {{"Alerts issued", SmallCount(s.alerts)},
                        {"Median to the first partner's inbox", Duration(s.to_inbox_median_ms)},
                        {"Slowest to the first partner's inbox", Duration(s.to_inbox_slowest_ms)},
                        {"Median to the first acknowledgement", Duration(s.to_ack_median_ms)},
                        {"Slowest to the first acknowledgement", Duration(s.to_ack_slowest_ms)}}});
    }
    {
        ReportTable t{"partners",
                      "Partners' acknowledgements",
                      {"Partner", "Alerts", "Acknowledged", "Rate", "Said what they did"},
                      {}};
        auto partners = data.partners;
        std::stable_sort(partners.begin(), partners.end(),
                         [](const auto& a, const auto& b) { return a.partner < b.partner; });
        for (const auto& p : partners) {
            // A rate of fewer than 3 alerts would show them: only its counts, blurred.
            const std::string rate =
                p.alerts < 3
                    ? std::string("-")
                    : std::to_string((p.acknowledged * 100 + p.alerts / 2) / p.alerts) + "%";
            t.rows.push_back({p.partner, SmallCount(p.alerts), SmallCount(p.acknowledged), rate,
                              SmallCount(p.confirmed)});
        }
        out.push_back(std::move(t));
    }
    out.push_back({"confirmations",
                   "Drug checking and laboratory confirmations",
                   {"Measure", "Reports"},
                   {{"Reports from drug checking services", SmallCount(drug_checking)},
                    {"Reports confirmed by a test or laboratory", SmallCount(confirmed)}}});
    out.push_back({"exercises",
                   "Exercises and tests",
                   {"Measure", "Count"},
                   {{"Exercise and test alerts issued", std::to_string(data.exercises)}}});
    return out;
}

std::string QuarterlyCsv(const Quarter& quarter, const std::vector<ReportTable>& tables) {
    std::string out = "table,quarter,label,values\r\n";
    for (const auto& t : tables) {
        out += Csv(t.id) + "," + quarter.name;
        for (const auto& c : t.columns) out += "," + Csv(c);
        out += "\r\n";
        for (const auto& row : t.rows) {
            out += Csv(t.id) + "," + quarter.name;
            for (const auto& cell : row) out += "," + Csv(cell);
            out += "\r\n";
        }
    }
    return out;
}

}  // namespace ldis::engine
