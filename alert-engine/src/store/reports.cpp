// Reports: lookups, free text revealed with a reason, retention, settings.
#include "impl.hpp"
#include "sql/photos_sql.hpp"

namespace ldis::engine {

std::string ReportStore::Impl::Setting(const std::string& key) {
    auto value = OnWriter<std::string>([&]() -> Result<std::string> {
        sqlite3_stmt* stmt = writer_.Cached("SELECT value FROM settings WHERE key = ?1");
        StatementUse use(stmt);
        BindText(stmt, 1, key);
        return sqlite3_step(stmt) == SQLITE_ROW ? ColumnText(stmt, 0) : std::string();
    });
    return value.ok() ? value.value() : std::string();
}

Result<StoredReportRow> ReportStore::Impl::Reveal(const std::string& id, const std::string& actor,
                                                  const std::string& reason) {
    auto row = Find(id);
    if (!row) return Error{"no report " + id};
    const auto written = OnWriter<int>([&]() -> Result<int> {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        audit_.push_back({NowMs(), actor, "report.revealed", row->reference,
                          boost::json::serialize(boost::json::object{{"reason", reason}})});
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return 1;
    });
    if (!written.ok()) return written.error();
    return *row;
}

Result<int> ReportStore::Impl::PurgeFreeText(std::int64_t before_ms, std::int64_t now,
                                             const std::string& actor) {
    return OnWriter<int>([&]() -> Result<int> {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        std::vector<std::pair<std::int64_t, std::string>> due;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT seq, document FROM reports WHERE received_at_ms < ?1 AND "
                "purged_at_ms IS NULL");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, before_ms);
            int rc;
            while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
                due.emplace_back(sqlite3_column_int64(stmt, 0), ColumnText(stmt, 1));
            if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        const std::string marker = "[removed after the retention period]";
        for (const auto& [seq, document] : due) {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE reports SET document = ?2, purged_at_ms = ?3 WHERE seq = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, seq);
            const std::string kept = WithoutFreeText(document, marker);
            BindText(stmt, 2, kept);
            sqlite3_bind_int64(stmt, 3, now);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        // Partners' notes of what they did (issue 17 §4) are free text too: past the same
        // period only the answer's word is kept.
        int notes = 0;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE deliveries SET answer_note = NULL WHERE answer_note IS NOT NULL AND "
                "answered_at_ms < ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, before_ms);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
            notes = sqlite3_changes(writer_.get());
        }
        // Photos (issue 17 §3) leave with their report's free text; an upload no report
        // named within a day leaves then.
        int photos = 0;
        {
            sqlite3_stmt* stmt = writer_.Cached(photos_sql::kPurge);
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, before_ms);
            sqlite3_bind_int64(stmt, 2, now - photos_sql::kUnnamedForMs);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
            photos = sqlite3_changes(writer_.get());
        }
        if (due.empty() && notes == 0 && photos == 0) return 0;
        // The audit log names what was done, never the text: its chain still verifies.
        boost::json::object detail{{"count", due.size()},
                                   {"received_before", IsoTimeMs(before_ms)}};
        if (notes > 0) detail["answer_notes"] = notes;
        if (photos > 0) detail["photos"] = photos;
        audit_.push_back({now, actor, "reports.purged", "reports", boost::json::serialize(detail)});
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return static_cast<int>(due.size());
    });
}

Result<int> ReportStore::Impl::SetSetting(const std::string& key, const std::string& value) {
    return OnWriter<int>([&]() -> Result<int> {
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
        StatementUse use(stmt);
        BindText(stmt, 1, key);
        BindText(stmt, 2, value);
        const int rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
        return 1;
    });
}

Result<int> ReportStore::Impl::QueueNotice(const Store::Notice& notice, std::int64_t now) {
    return OnWriter<int>([&]() -> Result<int> {
        const auto g = CurrentGrading();
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        const std::vector<Delivery> notices =
            g ? CoordinatorNotices(g->partners.get(), g->dispatch.enabled, notice.kind,
                                   notice.detail)
              : std::vector<Delivery>{};
        int rc = InsertDeliveries(0, 0, notices, now);  // no alert
        if (rc == SQLITE_OK && !notice.setting_key.empty()) {
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
            StatementUse use(stmt);
            BindText(stmt, 1, notice.setting_key);
            BindText(stmt, 2, notice.setting_value);
            rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(writer_.get());
        }
        audit_.push_back({now, "ldisd", notice.audit_action, notice.subject, notice.detail});
        if (auto failed = Finish(tx, rc)) return *failed;
        return static_cast<int>(notices.size());
    });
}

std::optional<StoredReportRow> ReportStore::Impl::Find(std::string_view id) const {
    auto rows = Query("WHERE id = ?1 OR reference = ?1", id, 1);
    if (rows.empty()) return std::nullopt;
    return std::move(rows.front());
}

std::vector<StoredReportRow> ReportStore::Impl::Recent(std::size_t limit) const {
    return Query("ORDER BY seq DESC LIMIT ?2", {}, limit);
}

std::vector<StoredReportRow> ReportStore::Impl::Query(const std::string& tail, std::string_view key,
                                                      std::size_t limit,
                                                      std::int64_t number) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    const std::string sql =
        "SELECT id, reference, received_at_ms, source_type, authority, district, channel, "
        "document "
        "FROM reports " +
        tail;
    sqlite3_prepare_v2(reader_->get(), sql.c_str(), -1, &stmt, nullptr);
    if (!key.empty()) BindText(stmt, 1, key);
    if (sql.find("?2") != std::string::npos)
        sqlite3_bind_int64(stmt, 2, number >= 0 ? number : static_cast<sqlite3_int64>(limit));
    std::vector<StoredReportRow> rows;
    while (rows.size() < limit && sqlite3_step(stmt) == SQLITE_ROW) {
        rows.push_back(StoredReportRow{ColumnText(stmt, 0), ColumnText(stmt, 1),
                                       sqlite3_column_int64(stmt, 2), ColumnText(stmt, 3),
                                       ColumnText(stmt, 4), ColumnText(stmt, 5),
                                       ColumnText(stmt, 6), ColumnText(stmt, 7)});
    }
    sqlite3_finalize(stmt);
    return rows;
}

// One number from the reader connection, or -1.
std::int64_t ReportStore::Impl::CountOf(const char* sql) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(reader_->get(), sql, -1, &stmt, nullptr);
    const std::int64_t n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return n;
}

std::vector<std::string> ReportStore::Impl::ListIds() const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(reader_->get(), "SELECT id FROM reports ORDER BY seq", -1, &stmt, nullptr);
    std::vector<std::string> ids;
    while (sqlite3_step(stmt) == SQLITE_ROW) ids.push_back(ColumnText(stmt, 0));
    sqlite3_finalize(stmt);
    return ids;
}

}  // namespace ldis::engine
