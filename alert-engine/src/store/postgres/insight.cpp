// What happened, counted (issue 17 §1, §2), on PostgreSQL: the queries of insight_sql.hpp,
// as SQLite's store/insight.cpp runs them.
#include "../sql/insight_sql.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;

InsightData PostgresStore::ReadInsight(std::int64_t from_ms, std::int64_t to_ms,
                                       bool detailed) const {
    InsightData out;
    out.from_ms = from_ms;
    out.to_ms = to_ms;
    std::lock_guard lock(impl_->reader->mutex());
    PGconn* c = impl_->reader->c();
    const auto each = [&](std::string_view what, std::string_view sql, bool weekly,
                          const auto& row) {
        pgstore::Params params{Int(from_ms), Int(to_ms)};
        if (weekly) {
            params.emplace_back(Int(kFirstMondayMs));
            params.emplace_back(Int(kWeekMs));
        }
        auto r = pg::Exec(c, what, insight_sql::InsightSql(sql, true), params);
        if (!r.ok()) return;
        for (int i = 0; i < r.value().size(); ++i) row(r.value(), i);
    };
    const auto text = [](const pg::Rows& r, int i, int col) { return std::string(r.text(i, col)); };
    each("count the reports", detailed ? insight_sql::kReports : insight_sql::kReportsWeekly, true,
         [&](const pg::Rows& r, int i) {
             out.reports.push_back({r.integer(i, 0), text(r, i, 1), text(r, i, 2), text(r, i, 3),
                                    text(r, i, 4), text(r, i, 5), r.integer(i, 6)});
         });
    each("count the alert versions", insight_sql::kVersions, true, [&](const pg::Rows& r, int i) {
        out.versions.push_back({r.integer(i, 0), text(r, i, 1), text(r, i, 2), text(r, i, 3),
                                text(r, i, 4), r.integer(i, 5)});
    });
    each("read the alerts' times", insight_sql::kTimings, false, [&](const pg::Rows& r, int i) {
        out.timings.push_back({text(r, i, 0), text(r, i, 1), text(r, i, 2), r.integer(i, 4),
                               r.integer(i, 3), r.integer(i, 5), r.integer(i, 6)});
    });
    each("count the partners' acknowledgements", insight_sql::kPartners, false,
         [&](const pg::Rows& r, int i) {
             out.partners.push_back(
                 {text(r, i, 0), r.integer(i, 1), r.integer(i, 2), r.integer(i, 3)});
         });
    each("count the exercises", insight_sql::kExercises, false,
         [&](const pg::Rows& r, int i) { out.exercises = r.integer(i, 0); });
    return out;
}

}  // namespace ldis::engine
