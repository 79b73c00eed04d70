#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ldis/engine/store.hpp"

namespace ldis::engine {

// The durable store of reports: one SQLite file in WAL mode, migrated through
// PRAGMA user_version. Writes go through one writer thread that owns the write
// connection and commits whatever is queued in one transaction (group commit), so that
// many concurrent Insert() calls share one fsync. Reads use their own connection.
class ReportStore final : public Store {
public:
    static constexpr int kSchemaVersion = 13;

    // Opens or creates the file, checks its integrity header and migrates it.
    // Throws StoreError naming the file and the problem.
    explicit ReportStore(StoreOptions options);
    // Finishes every queued write, then closes.
    ~ReportStore() override;
    ReportStore(const ReportStore&) = delete;
    ReportStore& operator=(const ReportStore&) = delete;

    // The Store interface (store.hpp says what each does).
    Result<StoredReport> Insert(const Report& report, std::string_view channel) override;
    std::optional<StoredReportRow> Find(std::string_view id) const override;
    std::int64_t CountReports() const override;
    std::vector<std::string> ListIds() const override;
    std::vector<StoredReportRow> Recent(std::size_t limit) const override;
    void SetGrading(std::shared_ptr<const GradingSetup> grading) override;
    std::shared_ptr<const GradingSetup> Grading() const override;
    std::vector<StoredSignal> Signals() const override;
    Result<SignalOverride> Override(std::int64_t signal_id, std::string_view level,
                                    std::string_view reason, std::string_view actor) override;
    Result<Alert> Act(std::string_view reference, AlertAction action, std::string_view actor,
                      const AlertWording& wording = {}) override;
    Result<std::vector<std::string>> ExpireDue(std::int64_t now_ms) override;
    std::vector<Alert> Alerts() const override;
    std::optional<Alert> FindAlert(std::string_view reference) const override;
    std::int64_t CountSignals() const override;
    AlertPage FindAlerts(const AlertFilter& filter) const override;
    std::optional<AlertRecord> FindAlertRecord(std::string_view reference) const override;
    Result<std::int64_t> VerifyAudit() const override;
    void SetOutboxListener(std::function<void()> listener) override;
    void SetClaimAtCommit(CommitClaim hooks) override;
    void ClaimDue(std::int64_t now_ms, std::size_t limit,
                  std::function<void(Result<std::vector<OutboxItem>>)> done) override;
    void Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now_ms,
                  std::function<void(Result<int>)> done) override;
    void EscalateDue(std::int64_t now_ms, std::function<void(Result<int>)> done) override;
    Result<int> RecoverInFlight(std::int64_t now_ms) override;
    Result<DeliveryRow> Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                    std::int64_t now_ms, const PartnerAnswer& answer = {}) override;
    Result<DeliveryRow> RequestUnsubscribe(std::int64_t delivery_id, std::int64_t now_ms) override;
    const std::string& AckKey() const override;
    std::string Setting(const std::string& key) override;
    Result<int> SetSetting(const std::string& key, const std::string& value) override;
    Result<int> QueueNotice(const Notice& notice, std::int64_t now_ms) override;
    Result<FederatedOutcome> ReceiveFederated(const FederatedVersion& version,
                                              FederatedPolicy for_level,
                                              const std::string& peer_name,
                                              std::int64_t now_ms) override;
    std::vector<FederatedRow> Federated(std::size_t limit) const override;
    std::vector<ForwardedAcks> ForwardedAcknowledgements(std::int64_t now_ms) const override;
    Result<FederatedRow> DecideFederated(std::int64_t id, bool adopt, const std::string& actor,
                                         std::int64_t now_ms) override;
    std::vector<DeliveryRow> Deliveries(std::string_view reference) const override;
    std::vector<DeliveryRow> FailedDeliveries(std::size_t limit) const override;
    std::optional<DeliveryRow> FindDelivery(std::int64_t id) const override;
    std::optional<std::int64_t> NextDueMs() const override;
    std::map<std::string, std::int64_t> DeliveryCounts() const override;
    Counts CountAll() const override;
    InsightData ReadInsight(std::int64_t from_ms, std::int64_t to_ms,
                            bool detailed = true) const override;
    Result<std::string> CreateToken(std::string_view name, std::string_view role) override;
    std::optional<ApiToken> FindToken(std::string_view secret) const override;
    Result<StoredReportRow> Reveal(std::string_view id, std::string_view actor,
                                   std::string_view reason) override;
    Result<int> PurgeFreeText(std::int64_t before_ms, std::int64_t now_ms,
                              std::string_view actor) override;
    std::vector<TokenRow> Tokens() const override;
    Result<PhotoRow> SavePhoto(const std::string& jpeg, int width, int height,
                               std::string_view uploaded_by) override;
    std::optional<std::pair<PhotoRow, std::string>> FindPhoto(std::string_view id,
                                                              bool with_jpeg) const override;
    std::vector<PhotoRow> AlertPhotos(std::string_view reference) const override;
    Result<int> RevokeToken(std::int64_t id, std::string_view actor) override;
    Result<int> CreateSession(const WebSession& session, std::size_t max_per_token,
                              std::size_t max_total) override;
    std::optional<WebSession> FindSession(std::string_view id_hash,
                                          std::int64_t now_ms) const override;
    Result<int> EndSession(std::string_view id_hash, std::int64_t now_ms) override;

    // The user_version of a database file, without migrating it. Throws StoreError.
    static int FileSchemaVersion(const std::string& path);

    // A consistent copy of a database file while ldisd writes to it: SQLite's online
    // backup API in one read transaction, written to TO.partial (0600) and renamed to TO.
    // Returns the number of reports in the copy. Throws StoreError.
    static std::int64_t Backup(const std::string& db_path, const std::string& to);

    // What a restore found and did.
    struct Restored {
        std::int64_t reports = 0;
        std::int64_t audit_entries = 0;
        int schema_from = 0;        // the copy's schema version (migrated to kSchemaVersion)
        std::string kept_previous;  // where the replaced file went, or "" if there was none
    };
    // Puts a backup in place of `db_path`, having checked it first: SQLite's integrity
    // check, a schema this ldisd knows, and an audit chain that verifies. Nothing is
    // replaced unless every check passes; refused while any process (ldisd) has `db_path`
    // open. The replaced file is kept beside it. Throws StoreError saying what failed.
    static Restored Restore(const std::string& from, const std::string& db_path);

    // Every signal of a database file with its reports and live alert, read through a
    // read-only connection (nothing is written, and ldisd may be running): what a replay
    // of new grading rules needs. Throws StoreError.
    static std::vector<StoredSignal> ReadSignals(const std::string& path);

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ldis::engine
