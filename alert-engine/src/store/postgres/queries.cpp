// What the API, the pages and ldisctl read on PostgreSQL (the reader connection), and the
// two writes that go with reading reports: a coordinator's reveal and the retention purge.
#include <boost/json.hpp>

#include "../sql/insight_sql.hpp"
#include "../sql/photos_sql.hpp"
#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/text.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;

std::vector<StoredReportRow> PostgresStore::Impl::ReportQuery(const std::string& tail,
                                                              const pgstore::Params& params) const {
    std::lock_guard lock(reader->mutex());
    auto r = pg::Exec(reader->c(), "read reports",
                      "SELECT id, reference, received_at_ms, source_type, authority, district, "
                      "channel, document FROM reports " +
                          tail,
                      params);
    std::vector<StoredReportRow> out;
    if (!r.ok()) return out;
    const auto& rows = r.value();
    for (int i = 0; i < rows.size(); ++i) {
        out.push_back({std::string(rows.text(i, 0)), std::string(rows.text(i, 1)),
                       rows.integer(i, 2), std::string(rows.text(i, 3)),
                       std::string(rows.text(i, 4)), std::string(rows.text(i, 5)),
                       std::string(rows.text(i, 6)), std::string(rows.text(i, 7))});
    }
    return out;
}

std::int64_t PostgresStore::Impl::Count(const std::string& sql) const {
    std::lock_guard lock(reader->mutex());
    auto r = pg::Exec(reader->c(), "count", sql);
    return r.ok() && r.value().size() > 0 ? r.value().integer(0, 0) : -1;
}

std::optional<StoredReportRow> PostgresStore::Find(std::string_view id) const {
    auto rows = impl_->ReportQuery("WHERE id = $1 OR reference = $1 LIMIT 1", {std::string(id)});
    if (rows.empty()) return std::nullopt;
    return std::move(rows.front());
}

std::int64_t PostgresStore::CountReports() const {
    return impl_->Count("SELECT count(*) FROM reports");
}

std::vector<std::string> PostgresStore::ListIds() const {
    std::vector<std::string> ids;
    for (auto& row : impl_->ReportQuery("ORDER BY seq", {})) ids.push_back(std::move(row.id));
    return ids;
}

std::vector<StoredReportRow> PostgresStore::Recent(std::size_t limit) const {
    return impl_->ReportQuery("ORDER BY seq DESC LIMIT $1",
                              {Int(static_cast<std::int64_t>(limit))});
}

std::int64_t PostgresStore::CountSignals() const {
    return impl_->Count("SELECT count(*) FROM signals");
}

std::vector<Alert> PostgresStore::Alerts() const {
    AlertFilter f;
    f.limit = 1000000;
    return FindAlerts(f).alerts;
}

std::optional<Alert> PostgresStore::FindAlert(std::string_view reference) const {
    if (reference.empty()) return std::nullopt;
    AlertFilter f;
    f.reference = std::string(reference);
    f.limit = 1;
    auto page = FindAlerts(f);
    if (page.alerts.empty()) return std::nullopt;
    return std::move(page.alerts.front());
}

AlertPage PostgresStore::FindAlerts(const AlertFilter& f) const {
    std::string where = " WHERE true";
    pgstore::Params params;
    const auto text = [&](const std::string& value, const char* clause) {
        if (value.empty()) return;
        params.emplace_back(value);
        where +=
            std::string(" AND ") + clause + " $" + Int(static_cast<std::int64_t>(params.size()));
    };
    text(f.reference, "a.reference =");
    text(f.level, "a.level =");
    text(f.status, "a.status =");
    text(f.authority, "s.authority =");
    text(f.district, "s.district =");
    text(f.family, "s.family =");
    text(f.audience, "a.audience =");
    if (f.published) where += " AND a.issued_at_ms IS NOT NULL";
    if (f.drill) {
        params.emplace_back(std::string(ToString(*f.drill)));
        where += " AND s.drill = $" + Int(static_cast<std::int64_t>(params.size()));
    }
    if (!f.q.empty()) {
        // SQLite's LIKE ignores the case of ASCII letters; ILIKE does the same here.
        params.emplace_back("%" + f.q + "%");
        const std::string n = "$" + Int(static_cast<std::int64_t>(params.size()));
        where += " AND (v.body ILIKE " + n + " OR a.reference ILIKE " + n + ")";
    }
    if (f.since_ms > 0) where += " AND a.updated_at_ms >= " + Int(f.since_ms);
    if (f.until_ms > 0) where += " AND a.updated_at_ms < " + Int(f.until_ms);
    const std::string from =
        " FROM alerts a JOIN signals s ON s.id = a.signal_id JOIN alert_versions v ON "
        "v.alert_id = a.id AND v.version = a.version";
    AlertPage page;
    std::lock_guard lock(impl_->reader->mutex());
    PGconn* c = impl_->reader->c();
    if (auto total = pg::Exec(c, "count alerts", "SELECT count(*)" + from + where, params);
        total.ok())
        page.total = total.value().integer(0, 0);
    auto r = pg::Exec(
        c, "read alerts",
        "SELECT a.reference, a.signal_id, a.status, a.level, a.confidence, a.audience, "
        "a.version, a.provisional, s.family, s.district, v.rules, v.scrubbed, v.body, (SELECT "
        "count(*) FROM signal_reports sr WHERE sr.signal_id = a.signal_id), s.authority, "
        "a.created_at_ms, a.updated_at_ms, coalesce(a.issued_at_ms, 0), "
        "coalesce(a.valid_until_ms, 0), s.level, coalesce(s.override_level, ''), "
        "coalesce(s.override_reason, ''), coalesce(s.override_by, ''), "
        "coalesce(s.override_at_ms, 0), s.drill" +
            from + where + " ORDER BY a.id DESC LIMIT " + Int(static_cast<std::int64_t>(f.limit)) +
            " OFFSET " + Int(static_cast<std::int64_t>(f.offset)),
        params);
    if (!r.ok()) return page;
    const auto& rows = r.value();
    for (int i = 0; i < rows.size(); ++i) {
        Alert a;
        a.reference = std::string(rows.text(i, 0));
        a.signal_id = rows.integer(i, 1);
        ParseAlertStatus(rows.text(i, 2), a.status);
        ParseLevel(rows.text(i, 3), a.level);
        a.confidence = std::string(rows.text(i, 4));
        a.audience = std::string(rows.text(i, 5));
        a.version = static_cast<int>(rows.integer(i, 6));
        a.provisional = rows.integer(i, 7) != 0;
        a.family = std::string(rows.text(i, 8));
        a.district = std::string(rows.text(i, 9));
        boost::json::error_code ec;
        const auto rules = boost::json::parse(rows.text(i, 10), ec);
        if (!ec && rules.is_array()) {
            for (const auto& rule : rules.as_array())
                a.rules.emplace_back(rule.at("id").as_string());
        }
        a.scrubbed = static_cast<int>(rows.integer(i, 11));
        a.body = std::string(rows.text(i, 12));
        a.reports = static_cast<int>(rows.integer(i, 13));
        a.authority = std::string(rows.text(i, 14));
        a.created_at_ms = rows.integer(i, 15);
        a.updated_at_ms = rows.integer(i, 16);
        a.issued_at_ms = rows.integer(i, 17);
        a.valid_until_ms = rows.integer(i, 18);
        a.override.signal_id = a.signal_id;
        a.override.rules_level = std::string(rows.text(i, 19));
        a.override.level = std::string(rows.text(i, 20));
        a.override.reason = std::string(rows.text(i, 21));
        a.override.by = std::string(rows.text(i, 22));
        a.override.at_ms = rows.integer(i, 23);
        ParseDrill(rows.text(i, 24), a.drill);
        page.alerts.push_back(std::move(a));
    }
    return page;
}

std::optional<AlertRecord> PostgresStore::FindAlertRecord(std::string_view reference) const {
    auto alert = FindAlert(reference);
    if (!alert) return std::nullopt;
    AlertRecord record;
    record.alert = std::move(*alert);
    const std::string ref(reference);
    {
        std::lock_guard lock(impl_->reader->mutex());
        PGconn* c = impl_->reader->c();
        auto versions = pg::Exec(c, "read the alert's versions",
                                 "SELECT v.version, v.status, v.level, v.confidence, v.rules, "
                                 "v.body, v.created_at_ms, coalesce(v.photos, '') FROM "
                                 "alert_versions v JOIN alerts a ON "
                                 "a.id = v.alert_id WHERE a.reference = $1 ORDER BY v.version",
                                 {ref});
        if (versions.ok()) {
            const auto& rows = versions.value();
            for (int i = 0; i < rows.size(); ++i) {
                AlertVersion v;
                v.version = static_cast<int>(rows.integer(i, 0));
                ParseAlertStatus(rows.text(i, 1), v.status);
                ParseLevel(rows.text(i, 2), v.level);
                v.confidence = std::string(rows.text(i, 3));
                v.rules = std::string(rows.text(i, 4));
                v.body = std::string(rows.text(i, 5));
                v.created_at_ms = rows.integer(i, 6);
                v.photos = std::string(rows.text(i, 7));
                record.versions.push_back(std::move(v));
            }
        }
        auto audit = pg::Exec(
            c, "read the alert's audit entries",
            "SELECT seq, at_ms, actor, action, subject, detail FROM audit WHERE subject = $1 OR "
            "subject = $2 OR subject IN (SELECT 'delivery-' || d.id FROM deliveries d JOIN "
            "alerts a ON a.id = d.alert_id WHERE a.reference = $1) ORDER BY seq",
            {ref, "signal-" + Int(record.alert.signal_id)});
        if (audit.ok()) {
            const auto& rows = audit.value();
            for (int i = 0; i < rows.size(); ++i) {
                record.audit.push_back({rows.integer(i, 0), rows.integer(i, 1),
                                        std::string(rows.text(i, 2)), std::string(rows.text(i, 3)),
                                        std::string(rows.text(i, 4)),
                                        std::string(rows.text(i, 5))});
            }
        }
    }
    record.reports = impl_->ReportQuery(
        "WHERE seq IN (SELECT report_seq FROM signal_reports WHERE signal_id = $1) ORDER BY seq",
        {Int(record.alert.signal_id)});
    record.deliveries = Deliveries(ref);
    return record;
}

Result<std::int64_t> PostgresStore::VerifyAudit() const {
    std::lock_guard lock(impl_->reader->mutex());
    return VerifyAuditOn(impl_->reader->c());
}

Store::Counts PostgresStore::CountAll() const {
    Store::Counts out;
    std::lock_guard lock(impl_->reader->mutex());
    PGconn* c = impl_->reader->c();
    const auto pairs = [&](const char* sql, std::map<std::string, std::int64_t>& into) {
        auto r = pg::Exec(c, "count", sql);
        if (!r.ok()) return;
        for (int i = 0; i < r.value().size(); ++i) {
            into[std::string(r.value().text(i, 0)) + "/" + std::string(r.value().text(i, 1))] =
                r.value().integer(i, 2);
        }
    };
    // Live figures leave exercises and tests out (their signal's drill is not '').
    pairs(
        "SELECT a.level, a.status, count(*) FROM alerts a JOIN signals s ON s.id = a.signal_id "
        "WHERE s.drill = '' GROUP BY a.level, a.status",
        out.alerts);
    pairs("SELECT channel, status, count(*) FROM deliveries GROUP BY channel, status",
          out.deliveries);
    if (auto r = pg::Exec(
            c, "count reports",
            "SELECT count(*), coalesce(max(received_at_ms), 0) FROM reports WHERE drill = ''");
        r.ok()) {
        out.reports = r.value().integer(0, 0);
        out.last_report_ms = r.value().integer(0, 1);
    }
    if (auto r = pg::Exec(
            c, "count overdue red alerts",
            "SELECT count(DISTINCT d.alert_id) FROM deliveries d JOIN alerts a ON a.id = "
            "d.alert_id JOIN signals s ON s.id = a.signal_id WHERE s.drill = '' AND a.level = "
            "'red' "
            "AND a.status IN ('issued','updated') AND d.kind = "
            "'alert' AND d.ack_due_ms IS NOT NULL AND d.ack_due_ms <= $1 AND NOT EXISTS (SELECT "
            "1 FROM deliveries x WHERE x.alert_id = d.alert_id AND x.partner = d.partner AND "
            "x.acknowledged_at_ms IS NOT NULL)",
            {Int(NowMs())});
        r.ok())
        out.red_unacknowledged_overdue = r.value().integer(0, 0);
    // The disk is the database server's: its own monitoring watches it (-1 here).
    return out;
}

Result<StoredReportRow> PostgresStore::Reveal(std::string_view id, std::string_view actor,
                                              std::string_view reason) {
    auto row = Find(id);
    if (!row) return Error{"no report " + std::string(id)};
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            impl_->intake->Audit(
                std::string(actor), "report.revealed", row->reference,
                boost::json::serialize(boost::json::object{{"reason", std::string(reason)}}));
        },
        NowMs());
    if (!done.ok()) return done.error();
    return *row;
}

Result<int> PostgresStore::PurgeFreeText(std::int64_t before_ms, std::int64_t now_ms,
                                         std::string_view actor) {
    int purged = 0;
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            auto& w = *impl_->intake;
            const auto due = w.Run("find reports past retention",
                                   "SELECT seq, document FROM reports WHERE received_at_ms < $1 "
                                   "AND purged_at_ms IS NULL FOR UPDATE",
                                   {Int(before_ms)});
            const std::string marker = "[removed after the retention period]";
            for (int i = 0; i < due.size(); ++i) {
                w.Run(
                    "remove a report's free text",
                    "UPDATE reports SET document = $2, purged_at_ms = $3 WHERE seq = $1",
                    {Int(due.integer(i, 0)), WithoutFreeText(due.text(i, 1), marker), Int(now_ms)});
            }
            purged = due.size();
            // Partners' notes of what they did (issue 17 §4) are free text too: past the same
            // period only the answer's word is kept.
            const auto notes = w.Run("remove partners' notes past retention",
                                     "UPDATE deliveries SET answer_note = NULL WHERE answer_note "
                                     "IS NOT NULL AND answered_at_ms < $1 RETURNING 1",
                                     {Int(before_ms)});
            // Photos (issue 17 §3) leave with their report's free text; an upload no report
            // named within a day leaves then.
            const auto photos =
                w.Run("remove photos past retention",
                      insight_sql::InsightSql(photos_sql::kPurge, true) + " RETURNING 1",
                      {Int(before_ms), Int(now_ms - photos_sql::kUnnamedForMs)});
            if (purged == 0 && notes.size() == 0 && photos.size() == 0) return;
            // The audit log names what was done, never the text: its chain still verifies.
            boost::json::object detail{{"count", purged},
                                       {"received_before", IsoTimeMs(before_ms)}};
            if (notes.size() > 0) detail["answer_notes"] = notes.size();
            if (photos.size() > 0) detail["photos"] = photos.size();
            w.Audit(std::string(actor), "reports.purged", "reports",
                    boost::json::serialize(detail));
        },
        now_ms);
    if (!done.ok()) return done.error();
    return purged;
}

}  // namespace ldis::engine
