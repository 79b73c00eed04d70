// What happened, counted (issue 17 §1, §2), on SQLite: the queries of insight_sql.hpp on the
// reader connection.
#include "impl.hpp"
#include "sql/insight_sql.hpp"

namespace ldis::engine {

InsightData ReportStore::Impl::ReadInsight(std::int64_t from_ms, std::int64_t to_ms,
                                           bool detailed) const {
    InsightData out;
    out.from_ms = from_ms;
    out.to_ms = to_ms;
    std::lock_guard lock(reader_mutex_);
    // Runs one query with the period's four numbers, calling `row` for each result row.
    const auto each = [&](std::string_view sql, const auto& row) {
        sqlite3_stmt* stmt = nullptr;
        const std::string text = insight_sql::InsightSql(sql, false);
        if (sqlite3_prepare_v2(reader_->get(), text.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
            sqlite3_finalize(stmt);
            return;
        }
        sqlite3_bind_int64(stmt, 1, from_ms);
        sqlite3_bind_int64(stmt, 2, to_ms);
        if (sqlite3_bind_parameter_count(stmt) >= 4) {
            sqlite3_bind_int64(stmt, 3, kFirstMondayMs);
            sqlite3_bind_int64(stmt, 4, kWeekMs);
        }
        while (sqlite3_step(stmt) == SQLITE_ROW) row(stmt);
        sqlite3_finalize(stmt);
    };
    const auto i64 = [](sqlite3_stmt* s, int c) { return sqlite3_column_int64(s, c); };
    each(detailed ? insight_sql::kReports : insight_sql::kReportsWeekly, [&](sqlite3_stmt* s) {
        out.reports.push_back({i64(s, 0), ColumnText(s, 1), ColumnText(s, 2), ColumnText(s, 3),
                               ColumnText(s, 4), ColumnText(s, 5), i64(s, 6)});
    });
    each(insight_sql::kVersions, [&](sqlite3_stmt* s) {
        out.versions.push_back({i64(s, 0), ColumnText(s, 1), ColumnText(s, 2), ColumnText(s, 3),
                                ColumnText(s, 4), i64(s, 5)});
    });
    each(insight_sql::kTimings, [&](sqlite3_stmt* s) {
        out.timings.push_back({ColumnText(s, 0), ColumnText(s, 1), ColumnText(s, 2), i64(s, 4),
                               i64(s, 3), i64(s, 5), i64(s, 6)});
    });
    each(insight_sql::kPartners, [&](sqlite3_stmt* s) {
        out.partners.push_back({ColumnText(s, 0), i64(s, 1), i64(s, 2), i64(s, 3)});
    });
    each(insight_sql::kExercises, [&](sqlite3_stmt* s) { out.exercises = i64(s, 0); });
    return out;
}

}  // namespace ldis::engine
