// Alerts and their versions: the pipeline's decisions written down (ReviseAlert), versions
// added and rendered again, expiry. Coordinators' actions and overrides: coordinator.cpp.
#include "impl.hpp"

namespace ldis::engine {

Result<std::vector<std::string>> ReportStore::Impl::ExpireDue(std::int64_t now_ms) {
    return OnWriter<std::vector<std::string>>(
        [&]() -> Result<std::vector<std::string>> { return ExpireOnWriter(now_ms); });
}

// The latest version's rules and facts, copied into a new version row.
int ReportStore::Impl::AddVersion(std::int64_t alert_id, int version, std::string_view status,
                                  std::int64_t now) {
    sqlite3_stmt* stmt = writer_.Cached(
        "INSERT INTO alert_versions (alert_id, version, status, level, confidence, rules, "
        "facts, body, "
        "scrubbed, created_at_ms) "
        "SELECT alert_id, ?2, ?3, level, confidence, rules, facts, body, scrubbed, ?4 FROM "
        "alert_versions "
        "WHERE alert_id = ?1 ORDER BY version DESC LIMIT 1");
    StatementUse use(stmt);
    sqlite3_bind_int64(stmt, 1, alert_id);
    sqlite3_bind_int(stmt, 2, version);
    BindText(stmt, 3, status);
    sqlite3_bind_int64(stmt, 4, now);
    const int rc = sqlite3_step(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

std::vector<AlertVersionLine> ReportStore::Impl::HistoryBefore(std::int64_t alert_id, int version) {
    sqlite3_stmt* stmt = writer_.Cached(
        "SELECT version, status, level FROM alert_versions WHERE alert_id = ?1 AND version < ?2 "
        "ORDER BY version DESC LIMIT 9");
    StatementUse use(stmt);
    sqlite3_bind_int64(stmt, 1, alert_id);
    sqlite3_bind_int(stmt, 2, version);
    std::vector<AlertVersionLine> out;
    while (sqlite3_step(stmt) == SQLITE_ROW)
        out.insert(out.begin(),
                   {sqlite3_column_int(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2)});
    return out;
}

int ReportStore::Impl::RenderAgain(std::int64_t alert_id, int version, const GradingSetup& g) {
    std::int64_t signal_id = 0;
    std::string level, facts_text, wording;
    AlertMeta meta;
    meta.version = version;
    meta.public_url = g.public_url;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT a.signal_id, a.reference, a.provisional, a.wording, s.authority, "
            "s.district, v.status, v.level, v.facts FROM alerts a JOIN signals s ON s.id = "
            "a.signal_id JOIN alert_versions v ON v.alert_id = a.id AND v.version = ?2 WHERE "
            "a.id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        sqlite3_bind_int(stmt, 2, version);
        const int rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE) return SQLITE_OK;
        if (rc != SQLITE_ROW) return rc;
        signal_id = sqlite3_column_int64(stmt, 0);
        meta.reference = ColumnText(stmt, 1);
        meta.provisional = sqlite3_column_int(stmt, 2) != 0;
        wording = ColumnText(stmt, 3);
        meta.authority = ColumnText(stmt, 4);
        meta.district = ColumnText(stmt, 5);
        meta.status = ColumnText(stmt, 6);
        level = ColumnText(stmt, 7);
        facts_text = ColumnText(stmt, 8);
    }
    meta.history = HistoryBefore(alert_id, version);
    SignalOverride held;
    if (const int rc = ReadOverride(signal_id, held); rc != SQLITE_OK) return rc;
    std::vector<std::string> documents;
    if (const int rc = LatestDocuments(signal_id, documents); rc != SQLITE_OK) return rc;
    const RenderedAlert rendered = RenderVersionAgain(g.templates, g.rules, g.substances, meta,
                                                      documents, facts_text, level, held);
    std::string body = rendered.ToJson();
    if (!wording.empty() && wording != "{}") body = WithWording(body, wording);
    sqlite3_stmt* stmt = writer_.Cached(
        "UPDATE alert_versions SET body = ?3, scrubbed = ?4 WHERE alert_id = ?1 AND version = ?2");
    StatementUse use(stmt);
    sqlite3_bind_int64(stmt, 1, alert_id);
    sqlite3_bind_int(stmt, 2, version);
    BindText(stmt, 3, body);
    sqlite3_bind_int(stmt, 4, rendered.scrubbed);
    return sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(writer_.get());
}

Result<std::vector<std::string>> ReportStore::Impl::ExpireOnWriter(std::int64_t now) {
    Transaction tx(writer_);
    if (tx.begun() != SQLITE_OK) return Error{options_.path + ": " + writer_.Describe(tx.begun())};
    std::vector<std::pair<std::int64_t, std::pair<std::string, int>>> due;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT id, reference, version FROM alerts WHERE status IN ('issued','updated') "
            "AND valid_until_ms IS NOT NULL AND valid_until_ms < ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, now);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            due.push_back({sqlite3_column_int64(stmt, 0),
                           {ColumnText(stmt, 1), sqlite3_column_int(stmt, 2)}});
        }
    }
    std::vector<std::string> expired;
    int rc = SQLITE_OK;
    for (const auto& [id, ref_version] : due) {
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE alerts SET status = 'expired', version = ?2, updated_at_ms = ?3 WHERE id = "
            "?1");
        {
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, id);
            sqlite3_bind_int(stmt, 2, ref_version.second + 1);
            sqlite3_bind_int64(stmt, 3, now);
            rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        }
        if (rc == SQLITE_OK) rc = AddVersion(id, ref_version.second + 1, "expired", now);
        if (rc != SQLITE_OK) break;
        audit_.push_back({now, "ldisd", "alert.expired", ref_version.first,
                          "{\"version\":" + std::to_string(ref_version.second + 1) + "}"});
        expired.push_back(ref_version.first);
    }
    if (auto failed = Finish(tx, rc)) return *failed;
    return expired;
}

// The override a coordinator set on a signal, if any (level "" when none), and the
// signal's stored facts when `facts` is given: one read of the row for both.
int ReportStore::Impl::ReadOverride(std::int64_t signal_id, SignalOverride& out,
                                    std::string* facts) {
    sqlite3_stmt* stmt = writer_.Cached(
        "SELECT coalesce(override_level, ''), coalesce(override_reason, ''), "
        "coalesce(override_by, ''), coalesce(override_at_ms, 0), level, facts FROM signals "
        "WHERE id = ?1");
    StatementUse use(stmt);
    sqlite3_bind_int64(stmt, 1, signal_id);
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
    out.signal_id = signal_id;
    out.level = ColumnText(stmt, 0);
    out.reason = ColumnText(stmt, 1);
    out.by = ColumnText(stmt, 2);
    out.at_ms = sqlite3_column_int64(stmt, 3);
    out.rules_level = ColumnText(stmt, 4);
    if (facts) *facts = ColumnText(stmt, 5);
    return SQLITE_OK;
}

// Creates or revises the signal's one live alert for `rv`, by policy, and routes the
// new version. Runs in the caller's transaction. Returns an SQLite code.
int ReportStore::Impl::ReviseAlert(const AlertRevision& rv, const GradingSetup& g, std::int64_t now,
                                   std::string& alert_reference_out) {
    // The signal's live alert, if any.
    std::int64_t alert_id = 0;
    std::string alert_reference, status_text, previous_level;
    std::int64_t routed_at = 0;
    int version = 0;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT id, reference, status, version, level, routed_at_ms FROM alerts WHERE "
            "signal_id = ?1 AND status IN ('draft','issued','updated') ORDER BY id DESC LIMIT "
            "1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, rv.signal_id);
        const int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            alert_id = sqlite3_column_int64(stmt, 0);
            alert_reference = ColumnText(stmt, 1);
            status_text = ColumnText(stmt, 2);
            version = sqlite3_column_int(stmt, 3);
            previous_level = ColumnText(stmt, 4);
            routed_at = sqlite3_column_int64(stmt, 5);
        } else if (rc != SQLITE_DONE) {
            return rc;
        }
    }
    std::optional<LiveAlert> live;
    if (alert_id != 0) {
        live.emplace();
        ParseAlertStatus(status_text, live->status);
        live->version = version;
        ParseLevel(previous_level, live->level);
        live->routed_at_ms = routed_at;
    }
    // What the new grade makes of the alert is the pipeline's decision (pipeline.hpp);
    // here it is written down.
    const VersionDecision next =
        NextVersion(live, rv.grade.level, g.policy, rv.trusted, now, g.dispatch.update_interval_ms);
    if (next.kind == VersionDecision::Kind::kNone) return SQLITE_OK;  // logged, no alert
    const AlertStatus status = next.status;
    const bool provisional = next.provisional;
    version = next.version;
    if (next.kind == VersionDecision::Kind::kCreate) {
        const int year = YearOf(now);
        const std::string prefix = options_.reference_prefix + "-" + std::to_string(year) + "-";
        // This year's alerts, counted as a range of the reference's unique index ("KM-2026-"
        // up to "KM-2026."): with LIKE, which ignores case, SQLite read every alert ever made
        // for every new one.
        sqlite3_stmt* count =
            writer_.Cached("SELECT count(*) FROM alerts WHERE reference >= ?1 AND reference < ?2");
        std::string end = prefix;
        end.back() = static_cast<char>(end.back() + 1);
        std::int64_t n = 0;
        {
            StatementUse use(count);
            BindText(count, 1, prefix);
            BindText(count, 2, end);
            if (sqlite3_step(count) == SQLITE_ROW) n = sqlite3_column_int64(count, 0);
        }
        alert_reference = AlertReference(options_.reference_prefix, year, n);
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO alerts (reference, signal_id, status, level, confidence, audience, "
            "version, provisional, "
            "created_at_ms, updated_at_ms, issued_at_ms, valid_until_ms) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?8, ?9, ?10)");
        StatementUse use(stmt);
        BindText(stmt, 1, alert_reference);
        sqlite3_bind_int64(stmt, 2, rv.signal_id);
        BindText(stmt, 3, ToString(status));
        BindText(stmt, 4, rv.level);
        BindText(stmt, 5, rv.grade.confidence);
        BindText(stmt, 6, next.audience);
        sqlite3_bind_int(stmt, 7, provisional ? 1 : 0);
        sqlite3_bind_int64(stmt, 8, now);
        if (status == AlertStatus::kIssued) {
            sqlite3_bind_int64(stmt, 9, now);
            sqlite3_bind_int64(stmt, 10, now + g.valid_for_ms);
        } else {
            sqlite3_bind_null(stmt, 9);
            sqlite3_bind_null(stmt, 10);
        }
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
        alert_id = sqlite3_last_insert_rowid(writer_.get());
    } else {
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE alerts SET status = ?2, level = ?3, confidence = ?4, version = ?5, "
            "updated_at_ms = ?6, "
            "provisional = CASE WHEN status = 'draft' THEN ?7 ELSE provisional END, "
            "issued_at_ms = coalesce(issued_at_ms, CASE WHEN ?2 != 'draft' THEN ?6 END), "
            "valid_until_ms = coalesce(valid_until_ms, CASE WHEN ?2 != 'draft' THEN ?6 + ?8 "
            "END) "
            "WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        BindText(stmt, 2, ToString(status));
        BindText(stmt, 3, rv.level);
        BindText(stmt, 4, rv.grade.confidence);
        sqlite3_bind_int(stmt, 5, version);
        sqlite3_bind_int64(stmt, 6, now);
        sqlite3_bind_int(stmt, 7, provisional ? 1 : 0);
        sqlite3_bind_int64(stmt, 8, g.valid_for_ms);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
    }
    AlertMeta meta;
    meta.reference = alert_reference;
    meta.version = version;
    meta.status = std::string(ToString(status));
    meta.provisional = provisional;
    meta.authority = rv.authority;
    meta.district = rv.district;
    meta.public_url = g.public_url;
    meta.history = HistoryBefore(alert_id, version);
    const RenderedAlert rendered =
        RenderAlert(g.templates, meta, rv.documents, rv.facts, rv.grade, g.substances);
    std::string body = rendered.ToJson();
    {
        // What a coordinator wrote stays in every later version: a new report changes
        // the counts, not their words.
        sqlite3_stmt* stmt = writer_.Cached("SELECT wording FROM alerts WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            const std::string wording = ColumnText(stmt, 0);
            if (wording != "{}") body = WithWording(body, wording);
        }
    }
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO alert_versions (alert_id, version, status, level, confidence, rules, "
            "facts, "
            "created_at_ms, body, scrubbed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        sqlite3_bind_int(stmt, 2, version);
        BindText(stmt, 3, ToString(status));
        BindText(stmt, 4, rv.level);
        BindText(stmt, 5, rv.grade.confidence);
        BindText(stmt, 6, rv.rules_text);
        BindText(stmt, 7, rv.facts_text);
        sqlite3_bind_int64(stmt, 8, now);
        BindText(stmt, 9, body);
        sqlite3_bind_int(stmt, 10, rendered.scrubbed);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
    }
    {
        VersionRoute route;
        route.alert_id = alert_id;
        route.version = version;
        route.what.status = status;
        route.what.level = rv.grade.level;
        route.what.authority = rv.authority;
        route.what.district = rv.district;
        route.what.audience = next.audience;
        route.what.ask_coordinators = next.ask_coordinators;
        route.what.page = next.page;
        const bool routed_now = next.route_now;
        if (routed_now) {
            if (const int rc = QueueDeliveries(route, g, now); rc != SQLITE_OK) return rc;
            if (const int rc = MarkRouted(alert_id, version, now); rc != SQLITE_OK) return rc;
        }
    }
    audit_.push_back(
        {now, rv.actor, next.audit_action, alert_reference,
         boost::json::serialize(boost::json::object{{"version", version},
                                                    {"status", std::string(ToString(status))},
                                                    {"level", rv.level},
                                                    {"provisional", provisional},
                                                    {"signal", rv.signal_ref},
                                                    {"report", rv.report_reference}})});
    alert_reference_out = alert_reference;
    return SQLITE_OK;
}

}  // namespace ldis::engine
