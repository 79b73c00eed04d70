// ReportStore: the public face (report_store.hpp) of ReportStore::Impl, and the work on a
// database file that needs no running store (ReadSignals, backup and restore).
#include "impl.hpp"

namespace ldis::engine {

std::optional<Synchronous> ParseSynchronous(std::string_view text) {
    if (text == "off") return Synchronous::kOff;
    if (text == "normal") return Synchronous::kNormal;
    if (text == "full") return Synchronous::kFull;
    if (text == "extra") return Synchronous::kExtra;
    return std::nullopt;
}

std::vector<StoredSignal> ReportStore::ReadSignals(const std::string& path) {
    Connection db(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 5000);
    if (const int rc = db.Exec("SELECT count(*) FROM signals"); rc != SQLITE_OK)
        throw StoreError(path + ": " + db.Describe(rc));
    std::vector<StoredSignal> out;
    sqlite3_stmt* signals =
        db.Prepare("SELECT id, family, authority, district, level FROM signals ORDER BY id");
    int rc;
    while ((rc = sqlite3_step(signals)) == SQLITE_ROW) {
        StoredSignal s;
        s.id = sqlite3_column_int64(signals, 0);
        s.family = ColumnText(signals, 1);
        s.authority = ColumnText(signals, 2);
        s.district = ColumnText(signals, 3);
        s.level = ColumnText(signals, 4);
        out.push_back(std::move(s));
    }
    if (rc != SQLITE_DONE) throw StoreError(path + ": " + db.Describe(rc));
    sqlite3_stmt* documents = db.Prepare(
        "SELECT r.document FROM reports r JOIN signal_reports sr ON sr.report_seq = r.seq "
        "WHERE sr.signal_id = ?1 ORDER BY r.seq");
    sqlite3_stmt* alert = db.Prepare(
        "SELECT reference, status, level FROM alerts WHERE signal_id = ?1 AND status IN "
        "('draft','issued','updated') ORDER BY id DESC LIMIT 1");
    for (auto& s : out) {
        {
            StatementUse use(documents);
            sqlite3_bind_int64(documents, 1, s.id);
            while ((rc = sqlite3_step(documents)) == SQLITE_ROW)
                s.documents.push_back(ColumnText(documents, 0));
            if (rc != SQLITE_DONE) throw StoreError(path + ": " + db.Describe(rc));
        }
        StatementUse use(alert);
        sqlite3_bind_int64(alert, 1, s.id);
        rc = sqlite3_step(alert);
        if (rc == SQLITE_ROW) {
            s.alert_reference = ColumnText(alert, 0);
            s.alert_status = ColumnText(alert, 1);
            s.alert_level = ColumnText(alert, 2);
        } else if (rc != SQLITE_DONE) {
            throw StoreError(path + ": " + db.Describe(rc));
        }
    }
    return out;
}

ReportStore::ReportStore(StoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
ReportStore::~ReportStore() = default;

Result<StoredReport> ReportStore::Insert(const Report& report, std::string_view channel) {
    return impl_->Insert(report, channel);
}
std::optional<StoredReportRow> ReportStore::Find(std::string_view id) const {
    return impl_->Find(id);
}
std::int64_t ReportStore::CountReports() const {
    return impl_->Count();
}
std::vector<std::string> ReportStore::ListIds() const {
    return impl_->ListIds();
}
std::vector<StoredReportRow> ReportStore::Recent(std::size_t limit) const {
    return impl_->Recent(limit);
}

std::shared_ptr<const GradingSetup> ReportStore::Grading() const {
    return impl_->GradingInUse();
}
std::vector<StoredSignal> ReportStore::Signals() const {
    return ReadSignals(impl_->FilePath());
}
void ReportStore::SetGrading(std::shared_ptr<const GradingSetup> grading) {
    impl_->SetGrading(std::move(grading));
}
std::vector<Alert> ReportStore::Alerts() const {
    return impl_->Alerts({});
}
std::optional<Alert> ReportStore::FindAlert(std::string_view reference) const {
    if (reference.empty()) return std::nullopt;
    auto all = impl_->Alerts(reference);
    if (all.empty()) return std::nullopt;
    return std::move(all.front());
}
Result<SignalOverride> ReportStore::Override(std::int64_t signal_id, std::string_view level,
                                             std::string_view reason, std::string_view actor) {
    return impl_->Override(signal_id, std::string(level), std::string(reason), std::string(actor));
}
Result<Alert> ReportStore::Act(std::string_view reference, AlertAction action,
                               std::string_view actor, const AlertWording& wording) {
    return impl_->Act(reference, action, actor, wording);
}
Result<std::vector<std::string>> ReportStore::ExpireDue(std::int64_t now_ms) {
    return impl_->ExpireDue(now_ms);
}
AlertPage ReportStore::FindAlerts(const AlertFilter& filter) const {
    return impl_->FindAlerts(filter);
}
std::optional<AlertRecord> ReportStore::FindAlertRecord(std::string_view reference) const {
    impl_->SettleDeferred();
    return impl_->FindAlertRecord(reference);
}
std::int64_t ReportStore::CountSignals() const {
    return impl_->CountSignals();
}
Result<std::int64_t> ReportStore::VerifyAudit() const {
    return impl_->VerifyAudit();
}

void ReportStore::SetOutboxListener(std::function<void()> listener) {
    impl_->SetOutboxListener(std::move(listener));
}
void ReportStore::SetClaimAtCommit(CommitClaim hooks) {
    impl_->SetClaimAtCommit(std::move(hooks));
}
void ReportStore::ClaimDue(std::int64_t now_ms, std::size_t limit,
                           std::function<void(Result<std::vector<OutboxItem>>)> done) {
    impl_->ClaimDue(now_ms, limit, std::move(done));
}
void ReportStore::Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now_ms,
                           std::function<void(Result<int>)> done) {
    impl_->Complete(std::move(outcomes), now_ms, std::move(done));
}
void ReportStore::EscalateDue(std::int64_t now_ms, std::function<void(Result<int>)> done) {
    impl_->EscalateDue(now_ms, std::move(done));
}
Result<int> ReportStore::RecoverInFlight(std::int64_t now_ms) {
    return impl_->RecoverInFlight(now_ms);
}
Result<DeliveryRow> ReportStore::Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                             std::int64_t now_ms, const PartnerAnswer& answer) {
    return impl_->Acknowledge(delivery_id, actor, now_ms, answer);
}
Result<DeliveryRow> ReportStore::RequestUnsubscribe(std::int64_t delivery_id, std::int64_t now_ms) {
    return impl_->RequestUnsubscribe(delivery_id, now_ms);
}
const std::string& ReportStore::AckKey() const {
    return impl_->AckKey();
}
std::string ReportStore::Setting(const std::string& key) {
    return impl_->Setting(key);
}
Result<int> ReportStore::SetSetting(const std::string& key, const std::string& value) {
    return impl_->SetSetting(key, value);
}
Result<int> ReportStore::QueueNotice(const Notice& notice, std::int64_t now_ms) {
    return impl_->QueueNotice(notice, now_ms);
}
Result<FederatedOutcome> ReportStore::ReceiveFederated(const FederatedVersion& version,
                                                       FederatedPolicy for_level,
                                                       const std::string& peer_name,
                                                       std::int64_t now_ms) {
    return impl_->ReceiveFederated(version, for_level, peer_name, now_ms);
}
std::vector<FederatedRow> ReportStore::Federated(std::size_t limit) const {
    return impl_->Federated(limit);
}
std::vector<ForwardedAcks> ReportStore::ForwardedAcknowledgements(std::int64_t now_ms) const {
    return impl_->ForwardedAcknowledgements(now_ms);
}
Result<FederatedRow> ReportStore::DecideFederated(std::int64_t id, bool adopt,
                                                  const std::string& actor, std::int64_t now_ms) {
    return impl_->DecideFederated(id, adopt, actor, now_ms);
}
std::vector<DeliveryRow> ReportStore::Deliveries(std::string_view reference) const {
    impl_->SettleDeferred();
    return reference.empty()
               ? impl_->DeliveryQuery("", "")
               : impl_->DeliveryQuery("WHERE a.reference = ?1", std::string(reference));
}
std::vector<DeliveryRow> ReportStore::FailedDeliveries(std::size_t limit) const {
    return impl_->DeliveryQuery(
        "WHERE d.id IN (SELECT id FROM deliveries WHERE status = 'failed' "
        "ORDER BY id DESC LIMIT " +
            std::to_string(limit) + ")",
        "");
}
std::optional<DeliveryRow> ReportStore::FindDelivery(std::int64_t id) const {
    auto rows = impl_->DeliveryQuery("WHERE d.id = ?1", std::to_string(id));
    if (rows.empty()) return std::nullopt;
    return std::move(rows.front());
}
InsightData ReportStore::ReadInsight(std::int64_t from_ms, std::int64_t to_ms,
                                     bool detailed) const {
    impl_->SettleDeferred();
    return impl_->ReadInsight(from_ms, to_ms, detailed);
}
ReportStore::Counts ReportStore::CountAll() const {
    impl_->SettleDeferred();
    return impl_->CountAll();
}
std::optional<std::int64_t> ReportStore::NextDueMs() const {
    return impl_->NextDueMs();
}
std::map<std::string, std::int64_t> ReportStore::DeliveryCounts() const {
    impl_->SettleDeferred();
    return impl_->DeliveryCounts();
}

Result<std::string> ReportStore::CreateToken(std::string_view name, std::string_view role) {
    return impl_->CreateToken(std::string(name), std::string(role));
}
std::optional<ApiToken> ReportStore::FindToken(std::string_view secret) const {
    return impl_->FindToken(secret);
}

Result<StoredReportRow> ReportStore::Reveal(std::string_view id, std::string_view actor,
                                            std::string_view reason) {
    return impl_->Reveal(std::string(id), std::string(actor), std::string(reason));
}
Result<int> ReportStore::PurgeFreeText(std::int64_t before_ms, std::int64_t now_ms,
                                       std::string_view actor) {
    return impl_->PurgeFreeText(before_ms, now_ms, std::string(actor));
}
Result<PhotoRow> ReportStore::SavePhoto(const std::string& jpeg, int width, int height,
                                        std::string_view uploaded_by) {
    return impl_->SavePhoto(jpeg, width, height, std::string(uploaded_by));
}
std::optional<std::pair<PhotoRow, std::string>> ReportStore::FindPhoto(std::string_view id,
                                                                       bool with_jpeg) const {
    return impl_->FindPhoto(id, with_jpeg);
}
std::vector<PhotoRow> ReportStore::AlertPhotos(std::string_view reference) const {
    return impl_->AlertPhotos(reference);
}
std::vector<TokenRow> ReportStore::Tokens() const {
    return impl_->Tokens();
}
Result<int> ReportStore::RevokeToken(std::int64_t id, std::string_view actor) {
    return impl_->RevokeToken(id, std::string(actor));
}
Result<int> ReportStore::CreateSession(const WebSession& session, std::size_t max_per_token,
                                       std::size_t max_total) {
    return impl_->CreateSession(session, max_per_token, max_total);
}
std::optional<WebSession> ReportStore::FindSession(std::string_view id_hash,
                                                   std::int64_t now_ms) const {
    return impl_->FindSession(id_hash, now_ms);
}
Result<int> ReportStore::EndSession(std::string_view id_hash, std::int64_t now_ms) {
    return impl_->EndSession(std::string(id_hash), now_ms);
}

int ReportStore::FileSchemaVersion(const std::string& path) {
    Connection c(path, SQLITE_OPEN_READONLY, 1000);
    return ReadUserVersion(c);
}

namespace {

// Copies the whole of `from`'s main database into `to` with the online backup API. One
// step of -1 pages holds one read transaction over the source, so the copy is one
// consistent moment even while ldisd writes (WAL lets it go on writing meanwhile).
void CopyDatabase(Connection& from, Connection& to) {
    sqlite3_backup* backup = sqlite3_backup_init(to.get(), "main", from.get(), "main");
    if (backup == nullptr) throw StoreError(to.path() + ": " + sqlite3_errmsg(to.get()));
    int rc;
    while ((rc = sqlite3_backup_step(backup, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
        sqlite3_sleep(50);
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE) throw StoreError(to.path() + ": the copy failed: " + to.Describe(rc));
}

std::int64_t CountRows(Connection& c, const char* sql) {
    sqlite3_stmt* stmt = c.Prepare(sql);
    if (const int rc = sqlite3_step(stmt); rc != SQLITE_ROW)
        throw StoreError(c.path() + ": " + c.Describe(rc));
    return sqlite3_column_int64(stmt, 0);
}

void RemoveFile(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw StoreError(path + ": cannot remove: " + std::strerror(errno));
}

}  // namespace

std::int64_t ReportStore::Backup(const std::string& db_path, const std::string& to) {
    const std::string partial = to + ".partial";
    RemoveFile(partial);
    std::int64_t reports = 0;
    {
        Connection source(db_path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 5000);
        if (const int rc = source.Exec("SELECT count(*) FROM sqlite_schema"); rc != SQLITE_OK)
            throw StoreError(db_path + ": " + source.Describe(rc));
        CreatePrivately(partial);  // 0600: a backup holds what the database holds
        Connection copy(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        5000);
        CopyDatabase(source, copy);
        reports = CountRows(copy, "SELECT count(*) FROM reports");
    }
    if (::rename(partial.c_str(), to.c_str()) != 0)
        throw StoreError(to + ": cannot write the backup: " + std::strerror(errno));
    return reports;
}

ReportStore::Restored ReportStore::Restore(const std::string& from, const std::string& db_path) {
    Restored out;
    try {
        Connection copy(from, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 1000);
        sqlite3_stmt* check = copy.Prepare("PRAGMA integrity_check");
        std::string verdict;
        int rc;
        while ((rc = sqlite3_step(check)) == SQLITE_ROW) {
            if (!verdict.empty()) verdict += "; ";
            verdict += ColumnText(check, 0);
        }
        if (rc != SQLITE_DONE) throw StoreError(from + ": " + copy.Describe(rc));
        if (verdict != "ok")
            throw StoreError(from + ": the backup is damaged (integrity check: " + verdict +
                             "); nothing was replaced");
        out.schema_from = ReadUserVersion(copy);
        if (out.schema_from > kSchemaVersion || out.schema_from < 1)
            throw StoreError(from + ": schema version " + std::to_string(out.schema_from) +
                             " is not one this ldisctl knows (1 to " +
                             std::to_string(kSchemaVersion) + "); nothing was replaced");
    } catch (const StoreError& e) {
        const std::string what = e.what();
        if (what.ends_with("nothing was replaced")) throw;
        throw StoreError("the backup cannot be used: " + what + "; nothing was replaced");
    }
    // The copy to put in place, migrated and with its audit chain verified first.
    const std::string restoring = db_path + ".restoring";
    for (const char* suffix : {"", "-wal", "-shm"}) RemoveFile(restoring + suffix);
    {
        Connection source(from, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 1000);
        CreatePrivately(restoring);
        Connection copy(restoring, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        1000);
        CopyDatabase(source, copy);
    }
    try {
        StoreOptions options;
        options.path = restoring;
        ReportStore store(options);
        const auto verified = store.VerifyAudit();
        if (!verified.ok())
            throw StoreError(from + ": the audit chain does not verify (" +
                             verified.error().message + "); nothing was replaced");
        out.audit_entries = verified.value();
        out.reports = store.CountReports();
    } catch (...) {
        for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((restoring + suffix).c_str());
        throw;
    }
    // Refused while anything has the database open: an exclusive lock in WAL mode is
    // granted only to the one connection there is.
    if (::access(db_path.c_str(), F_OK) == 0) {
        {
            Connection live(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, 0);
            const int rc = live.Exec(
                "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; SELECT count(*) FROM "
                "sqlite_schema; COMMIT;");
            if (rc != SQLITE_OK) {
                for (const char* suffix : {"", "-wal", "-shm"})
                    ::unlink((restoring + suffix).c_str());
                throw StoreError(db_path + " is in use (" + live.Describe(rc) +
                                 "): stop ldisd before restoring; nothing was replaced");
            }
        }
        out.kept_previous = db_path + ".before-restore-" + std::to_string(NowMs());
        for (const char* suffix : {"", "-wal", "-shm"}) {
            const std::string old = db_path + suffix;
            if (::access(old.c_str(), F_OK) == 0 &&
                ::rename(old.c_str(), (out.kept_previous + suffix).c_str()) != 0)
                throw StoreError(old + ": cannot move aside: " + std::strerror(errno));
        }
    }
    {
        // Everything into the one file, so that a plain rename moves all of it.
        Connection settle(restoring, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, 1000);
        settle.ExecOrThrow("PRAGMA journal_mode=DELETE");
    }
    if (::rename(restoring.c_str(), db_path.c_str()) != 0)
        throw StoreError(db_path + ": cannot put the backup in place: " + std::strerror(errno));
    return out;
}

}  // namespace ldis::engine
