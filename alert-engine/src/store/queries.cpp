// What the API and the pages read: alerts with their filters and pages, records, counts.
#include "impl.hpp"

namespace ldis::engine {

ReportStore::Counts ReportStore::Impl::CountAll() const {
    ReportStore::Counts out;
    std::lock_guard lock(reader_mutex_);
    const auto pairs = [&](const char* sql, std::map<std::string, std::int64_t>& into) {
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(), sql, -1, &stmt, nullptr);
        while (sqlite3_step(stmt) == SQLITE_ROW)
            into[ColumnText(stmt, 0) + "/" + ColumnText(stmt, 1)] = sqlite3_column_int64(stmt, 2);
        sqlite3_finalize(stmt);
    };
    // Live figures leave exercises and tests out (their signal's drill is not '').
    pairs(
        "SELECT a.level, a.status, count(*) FROM alerts a JOIN signals s ON s.id = a.signal_id "
        "WHERE s.drill = '' GROUP BY a.level, a.status",
        out.alerts);
    pairs("SELECT channel, status, count(*) FROM deliveries GROUP BY channel, status",
          out.deliveries);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(
        reader_->get(),
        "SELECT count(*), coalesce(max(received_at_ms), 0) FROM reports WHERE drill = ''", -1,
        &stmt, nullptr);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        out.reports = sqlite3_column_int64(stmt, 0);
        out.last_report_ms = sqlite3_column_int64(stmt, 1);
    }
    sqlite3_finalize(stmt);
    sqlite3_prepare_v2(
        reader_->get(),
        "SELECT count(DISTINCT d.alert_id) FROM deliveries d JOIN alerts a ON a.id = "
        "d.alert_id JOIN signals s ON s.id = a.signal_id WHERE s.drill = '' AND a.level = 'red' "
        "AND a.status IN ('issued','updated') AND d.kind = "
        "'alert' AND d.ack_due_ms IS NOT NULL AND d.ack_due_ms <= ?1 AND NOT EXISTS (SELECT "
        "1 FROM deliveries x WHERE x.alert_id = d.alert_id AND x.partner = d.partner AND "
        "x.acknowledged_at_ms IS NOT NULL)",
        -1, &stmt, nullptr);
    sqlite3_bind_int64(stmt, 1, NowMs());
    if (sqlite3_step(stmt) == SQLITE_ROW)
        out.red_unacknowledged_overdue = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    // The file system the database is on: a full disk stops ldisd taking reports.
    std::string folder = options_.path;
    const auto slash = folder.rfind('/');
    folder = slash == std::string::npos ? "." : slash == 0 ? "/" : folder.substr(0, slash);
    struct statvfs fs {};
    if (::statvfs(folder.c_str(), &fs) == 0) {
        out.disk_free_bytes =
            static_cast<std::int64_t>(fs.f_bavail) * static_cast<std::int64_t>(fs.f_frsize);
        out.disk_size_bytes =
            static_cast<std::int64_t>(fs.f_blocks) * static_cast<std::int64_t>(fs.f_frsize);
    }
    return out;
}

std::vector<Alert> ReportStore::Impl::Alerts(std::string_view reference) const {
    AlertFilter f;
    f.reference = std::string(reference);
    f.limit = reference.empty() ? 1000000 : 1;
    return FindAlerts(f).alerts;
}

AlertPage ReportStore::Impl::FindAlerts(const AlertFilter& f) const {
    std::string where = " WHERE 1=1";
    std::vector<std::string> texts;
    const auto text = [&](const std::string& value, const char* clause) {
        if (value.empty()) return;
        texts.push_back(value);
        where += std::string(" AND ") + clause + " ?" + std::to_string(texts.size());
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
        texts.emplace_back(ToString(*f.drill));
        where += " AND s.drill = ?" + std::to_string(texts.size());
    }
    if (!f.q.empty()) {
        texts.push_back("%" + f.q + "%");
        where += " AND (v.body LIKE ?" + std::to_string(texts.size()) + " OR a.reference LIKE ?" +
                 std::to_string(texts.size()) + ")";
    }
    if (f.since_ms > 0) where += " AND a.updated_at_ms >= " + std::to_string(f.since_ms);
    if (f.until_ms > 0) where += " AND a.updated_at_ms < " + std::to_string(f.until_ms);
    const std::string from =
        " FROM alerts a JOIN signals s ON s.id = a.signal_id "
        "JOIN alert_versions v ON v.alert_id = a.id AND v.version = a.version";
    std::lock_guard lock(reader_mutex_);
    AlertPage page;
    const auto bind = [&](sqlite3_stmt* stmt) {
        for (std::size_t i = 0; i < texts.size(); ++i)
            BindText(stmt, static_cast<int>(i + 1), texts[i]);
    };
    sqlite3_stmt* stmt = nullptr;
    const std::string count_sql = "SELECT count(*)" + from + where;
    sqlite3_prepare_v2(reader_->get(), count_sql.c_str(), -1, &stmt, nullptr);
    bind(stmt);
    if (sqlite3_step(stmt) == SQLITE_ROW) page.total = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    const std::string sql =
        "SELECT a.reference, a.signal_id, a.status, a.level, a.confidence, a.audience, "
        "a.version, a.provisional, s.family, s.district, v.rules, v.scrubbed, v.body, "
        "(SELECT count(*) FROM signal_reports sr WHERE sr.signal_id = a.signal_id), "
        "s.authority, a.created_at_ms, a.updated_at_ms, coalesce(a.issued_at_ms, 0), "
        "coalesce(a.valid_until_ms, 0), s.level, coalesce(s.override_level, ''), "
        "coalesce(s.override_reason, ''), coalesce(s.override_by, ''), "
        "coalesce(s.override_at_ms, 0), s.drill" +
        from + where + " ORDER BY a.id DESC LIMIT " + std::to_string(f.limit) + " OFFSET " +
        std::to_string(f.offset);
    sqlite3_prepare_v2(reader_->get(), sql.c_str(), -1, &stmt, nullptr);
    bind(stmt);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        Alert a;
        a.reference = ColumnText(stmt, 0);
        a.signal_id = sqlite3_column_int64(stmt, 1);
        a.status = StatusColumn(stmt, 2);
        a.level = LevelColumn(stmt, 3);
        a.confidence = ColumnText(stmt, 4);
        a.audience = ColumnText(stmt, 5);
        a.version = sqlite3_column_int(stmt, 6);
        a.provisional = sqlite3_column_int(stmt, 7) != 0;
        a.family = ColumnText(stmt, 8);
        a.district = ColumnText(stmt, 9);
        boost::json::error_code ec;
        const auto rules = boost::json::parse(ColumnText(stmt, 10), ec);
        if (!ec && rules.is_array()) {
            for (const auto& r : rules.as_array()) a.rules.emplace_back(r.at("id").as_string());
        }
        a.scrubbed = sqlite3_column_int(stmt, 11);
        a.body = ColumnText(stmt, 12);
        a.reports = sqlite3_column_int(stmt, 13);
        a.authority = ColumnText(stmt, 14);
        a.created_at_ms = sqlite3_column_int64(stmt, 15);
        a.updated_at_ms = sqlite3_column_int64(stmt, 16);
        a.issued_at_ms = sqlite3_column_int64(stmt, 17);
        a.valid_until_ms = sqlite3_column_int64(stmt, 18);
        a.override.signal_id = a.signal_id;
        a.override.rules_level = ColumnText(stmt, 19);
        a.override.level = ColumnText(stmt, 20);
        a.override.reason = ColumnText(stmt, 21);
        a.override.by = ColumnText(stmt, 22);
        a.override.at_ms = sqlite3_column_int64(stmt, 23);
        ParseDrill(ColumnText(stmt, 24), a.drill);
        page.alerts.push_back(std::move(a));
    }
    sqlite3_finalize(stmt);
    return page;
}

std::optional<AlertRecord> ReportStore::Impl::FindAlertRecord(std::string_view reference) const {
    auto alerts = Alerts(reference);
    if (alerts.empty()) return std::nullopt;
    AlertRecord record;
    record.alert = std::move(alerts.front());
    const std::string ref(reference);
    {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(),
                           "SELECT v.version, v.status, v.level, v.confidence, v.rules, v.body, "
                           "v.created_at_ms, coalesce(v.photos, '') FROM alert_versions v JOIN "
                           "alerts a ON a.id = "
                           "v.alert_id WHERE a.reference = ?1 ORDER BY v.version",
                           -1, &stmt, nullptr);
        BindText(stmt, 1, ref);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            record.versions.push_back({sqlite3_column_int(stmt, 0), StatusColumn(stmt, 1),
                                       LevelColumn(stmt, 2), ColumnText(stmt, 3),
                                       ColumnText(stmt, 4), ColumnText(stmt, 5),
                                       sqlite3_column_int64(stmt, 6), ColumnText(stmt, 7)});
        }
        sqlite3_finalize(stmt);
        sqlite3_prepare_v2(
            reader_->get(),
            "SELECT seq, at_ms, actor, action, subject, detail FROM audit WHERE subject = ?1 "
            "OR subject = ?2 OR subject IN (SELECT 'delivery-' || d.id FROM deliveries d JOIN "
            "alerts a ON a.id = d.alert_id WHERE a.reference = ?1) ORDER BY seq",
            -1, &stmt, nullptr);
        BindText(stmt, 1, ref);
        const std::string signal = "signal-" + std::to_string(record.alert.signal_id);
        BindText(stmt, 2, signal);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            record.audit.push_back({sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1),
                                    ColumnText(stmt, 2), ColumnText(stmt, 3), ColumnText(stmt, 4),
                                    ColumnText(stmt, 5)});
        }
        sqlite3_finalize(stmt);
    }
    record.reports = Query(
        "WHERE seq IN (SELECT report_seq FROM signal_reports WHERE signal_id = ?2) ORDER BY "
        "seq",
        {}, 100000, record.alert.signal_id);
    record.deliveries = DeliveryQuery("WHERE a.reference = ?1", ref);
    return record;
}

}  // namespace ldis::engine
