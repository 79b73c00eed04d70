#pragma once
// What happened, counted (issue 17 §1 and §2): the dashboard's trends and map, time to
// alert, and the quarterly report. The store counts (Store::ReadInsight, a few GROUP BY
// queries, real reports and alerts only); everything here is pure arithmetic over those
// counts, unit-tested without a database.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/result.hpp"

namespace ldis::engine {

inline constexpr std::int64_t kWeekMs = 7LL * 24 * 3600 * 1000;
// Monday 1970-01-05 00:00 UTC: weeks start on Mondays, in UTC.
inline constexpr std::int64_t kFirstMondayMs = 4LL * 24 * 3600 * 1000;
// The Monday 00:00 UTC on or before `ms`.
inline std::int64_t WeekOf(std::int64_t ms) {
    return ms - ((ms - kFirstMondayMs) % kWeekMs + kWeekMs) % kWeekMs;
}

// Reports received in a week, by what the store knows of them: the signal's substance
// family ("" when it joined none), district, source type, evidence and setting.
struct ReportTally {
    std::int64_t week_ms = 0;
    std::string family, district, source_type, evidence, setting;
    std::int64_t count = 0;
};
// Alert versions made in a week: status (issued, updated, cancelled, expired, draft), level,
// family, district.
struct VersionTally {
    std::int64_t week_ms = 0;
    std::string status, level, family, district;
    std::int64_t count = 0;
};
// An issued alert's times: its signal's first report, the first partner's delivery and the
// first acknowledgement (0 when none yet).
struct AlertTiming {
    std::string reference, level, district;
    std::int64_t first_report_ms = 0, issued_ms = 0, first_delivered_ms = 0, first_ack_ms = 0;
};
// A partner's alerts in the period: sent (one per alert, whatever the versions) and
// acknowledged; and how many it confirmed it acted on (issue 17 §4).
struct PartnerTally {
    std::string partner;
    std::int64_t alerts = 0, acknowledged = 0, confirmed = 0;
};
// Everything counted between `from_ms` and `to_ms` (real ones; exercises and tests only
// as their number).
struct InsightData {
    std::int64_t from_ms = 0, to_ms = 0;
    std::vector<ReportTally> reports;
    std::vector<VersionTally> versions;
    std::vector<AlertTiming> timings;
    std::vector<PartnerTally> partners;
    std::int64_t exercises = 0;  // drill alerts issued in the period
};

// One chart's numbers: a count per week (oldest first) for each category, largest total
// first; categories past `most` are added up as "Other".
struct Series {
    std::vector<std::int64_t> weeks;  // each week's Monday, every week in the range
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> categories;
    std::vector<std::int64_t> totals;  // per week
};
enum class ReportBy { kFamily, kDistrict, kSourceType };
Series ReportSeries(const InsightData& data, ReportBy by, std::size_t most = 6);
// Alerts issued per week, by level (red, amber, green).
Series AlertSeries(const InsightData& data);

// Medians and slowest of time to alert: from the first report to the first partner's
// inbox, and to the first acknowledgement; -1 where no alert has one.
struct TimingSummary {
    std::int64_t alerts = 0;
    std::int64_t to_inbox_median_ms = -1, to_inbox_slowest_ms = -1;
    std::int64_t to_ack_median_ms = -1, to_ack_slowest_ms = -1;
    std::string slowest_to_inbox;  // the alert's reference
};
TimingSummary SummariseTimings(const std::vector<AlertTiming>& timings);

// "2026-Q4" as [from, to) in ms (UTC), or an Error that says what a quarter looks like.
struct Quarter {
    std::string name;  // "2026-Q4"
    std::int64_t from_ms = 0, to_ms = 0;
};
Result<Quarter> ParseQuarter(std::string_view text);
// The quarter `ms` falls in.
Quarter QuarterOf(std::int64_t ms);

// The quarterly report's tables: each a title and rows of (label, count) or (label,
// columns...). Small numbers (1 or 2) read "fewer than 3", as everywhere LDIS publishes
// counts.
struct ReportTable {
    std::string id;                    // "reports-by-source"
    std::string title;                 // "Reports by source"
    std::vector<std::string> columns;  // the first names the rows' labels
    std::vector<std::vector<std::string>> rows;
};
std::vector<ReportTable> QuarterlyTables(const InsightData& data);
// The tables as CSV (RFC 4180): one block per table, its id in the first column.
std::string QuarterlyCsv(const Quarter& quarter, const std::vector<ReportTable>& tables);

}  // namespace ldis::engine
