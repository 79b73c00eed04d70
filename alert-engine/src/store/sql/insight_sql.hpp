#pragma once
// The queries behind Store::ReadInsight (issue 17 §1, §2), written once for both stores:
// `?N` is the Nth parameter (every one a whole number: from, to, the first Monday, a week in
// ms) and SETTING the report's setting from its document. InsightSql gives each store its
// dialect. Real reports and alerts only (the signal's drill is ''), exercises as a count.

#include <string>
#include <string_view>

namespace ldis::engine::insight_sql {

// By week (Monday 00:00 UTC), the signal's family, district, source, evidence and setting.
inline constexpr std::string_view kReports =
    "SELECT r.received_at_ms - ((r.received_at_ms - ?3) % ?4), coalesce(s.family, ''), "
    "r.district, r.source_type, r.evidence, coalesce(SETTING, ''), count(*) FROM reports r "
    "LEFT JOIN signal_reports sr ON sr.report_seq = r.seq LEFT JOIN signals s ON s.id = "
    "sr.signal_id WHERE r.received_at_ms >= ?1 AND r.received_at_ms < ?2 AND r.drill = '' "
    "GROUP BY 1, 2, 3, 4, 5, 6";
// The same without evidence and setting ('' in both): what the dashboard's charts need.
inline constexpr std::string_view kReportsWeekly =
    "SELECT r.received_at_ms - ((r.received_at_ms - ?3) % ?4), coalesce(s.family, ''), "
    "r.district, r.source_type, '', '', count(*) FROM reports r LEFT JOIN signal_reports sr ON "
    "sr.report_seq = r.seq LEFT JOIN signals s ON s.id = sr.signal_id WHERE r.received_at_ms >= "
    "?1 AND r.received_at_ms < ?2 AND r.drill = '' GROUP BY 1, 2, 3, 4";
// Alert versions by week, status and level, with the signal's family and district.
inline constexpr std::string_view kVersions =
    "SELECT v.created_at_ms - ((v.created_at_ms - ?3) % ?4), v.status, v.level, s.family, "
    "s.district, count(*) FROM alert_versions v JOIN alerts a ON a.id = v.alert_id JOIN signals "
    "s ON s.id = a.signal_id WHERE v.created_at_ms >= ?1 AND v.created_at_ms < ?2 AND s.drill = "
    "'' GROUP BY 1, 2, 3, 4, 5";
// Each alert issued in the period: its signal's first report, first delivery to a partner,
// first acknowledgement.
inline constexpr std::string_view kTimings =
    "SELECT a.reference, a.level, s.district, a.issued_at_ms, coalesce((SELECT "
    "min(r.received_at_ms) FROM signal_reports sr JOIN reports r ON r.seq = sr.report_seq WHERE "
    "sr.signal_id = a.signal_id), 0), coalesce((SELECT min(d.delivered_at_ms) FROM deliveries d "
    "WHERE d.alert_id = a.id AND d.kind = 'alert'), 0), coalesce((SELECT "
    "min(d.acknowledged_at_ms) FROM deliveries d WHERE d.alert_id = a.id AND d.kind = 'alert'), "
    "0) FROM alerts a JOIN signals s ON s.id = a.signal_id WHERE a.issued_at_ms >= ?1 AND "
    "a.issued_at_ms < ?2 AND s.drill = '' ORDER BY a.issued_at_ms";
// Per partner: the alerts it was sent in the period, acknowledged, and confirmed acting on.
inline constexpr std::string_view kPartners =
    "SELECT d.partner, count(DISTINCT d.alert_id), count(DISTINCT CASE WHEN "
    "d.acknowledged_at_ms IS NOT NULL THEN d.alert_id END), count(DISTINCT CASE WHEN d.answer "
    "IN ('shared', 'actions', 'not_relevant', 'seen_too') THEN d.alert_id END) FROM deliveries "
    "d JOIN alerts a ON a.id = d.alert_id JOIN signals s ON s.id = a.signal_id WHERE d.kind = "
    "'alert' AND d.created_at_ms >= ?1 AND d.created_at_ms < ?2 AND s.drill = '' GROUP BY "
    "d.partner ORDER BY d.partner";
inline constexpr std::string_view kExercises =
    "SELECT count(*) FROM alerts a JOIN signals s ON s.id = a.signal_id WHERE a.issued_at_ms >= "
    "?1 AND a.issued_at_ms < ?2 AND s.drill <> ''";

// `sql` in a store's dialect: SQLite keeps ?N and reads the setting with json_extract;
// PostgreSQL numbers $N as bigint and reads it with ->>.
inline std::string InsightSql(std::string_view sql, bool postgres) {
    std::string out;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        if (sql.substr(i, 7) == "SETTING") {
            out += postgres ? "(r.document::json ->> 'setting')"
                            : "json_extract(r.document, '$.setting')";
            i += 6;
        } else if (postgres && sql[i] == '?' && i + 1 < sql.size()) {
            out += "$";
            out += sql[++i];
            out += "::bigint";
        } else {
            out += sql[i];
        }
    }
    return out;
}

}  // namespace ldis::engine::insight_sql
