#pragma once
// ReportStore::Impl (private to src/store/): one writer thread with group commit, a reader
// connection, and the jobs that run between batches. Its methods live in one file per
// table or concern: writer.cpp (the thread, batches, migrations), signals.cpp (a new
// report graded into its signal), alerts.cpp (versions, coordinators' actions, expiry,
// overrides), routing.cpp (deliveries queued for a version, the update throttle),
// outbox.cpp (claims, outcomes, escalation, acknowledgements), audit.cpp (the hash chain),
// tokens.cpp (API tokens and web sessions), reports.cpp (reports, settings, retention),
// queries.cpp (what the API and pages read); store.cpp is the public face.

#include <atomic>
#include <chrono>
#include <optional>
#include <span>

#include "ldis/engine/federated.hpp"
#include "sqlite.hpp"

namespace ldis::engine {

using namespace sql;  // NOLINT(google-build-using-namespace): private to the store

// Checkpoints the WAL into the database on its own thread and connection. SQLite's
// automatic checkpoint runs inside the commit that finds the WAL over 1,000 pages, on the
// writer: with a red alert's hundred deliveries and their outcomes that was every few
// alerts, and the report whose commit it was waited for two fsyncs of the database file
// (commit p99 2.3 ms against a p50 of 0.5). The writer's WAL hook says when it is due.
class Checkpointer {
public:
    static constexpr int kPages = 1000;        // SQLite's own default threshold
    static constexpr int kWriterPages = 4000;  // the writer checkpoints itself (OnWal)
    Checkpointer(const std::string& path, Synchronous synchronous, int busy_timeout_ms);
    ~Checkpointer();
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // sqlite3_wal_hook's callback: after each commit, with the WAL's size in pages.
    static int OnWal(void* self, sqlite3* db, const char* name, int pages);

private:
    void Due();
    void Run();

    Connection db_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool due_ = false;
    bool closing_ = false;
    std::thread thread_;
};

class ReportStore::Impl {
public:
    explicit Impl(StoreOptions options);

    ~Impl();

    // Runs `job` on the writer thread, between batches, and returns its result.
    template <typename T>
    Result<T> OnWriter(std::function<Result<T>()> job) {
        std::promise<Result<T>> done;
        auto future = done.get_future();
        {
            std::lock_guard lock(mutex_);
            if (closing_) return Error{"the store is closing"};
            jobs_.push_back([&] { done.set_value(job()); });
        }
        wake_.notify_one();
        return future.get();
    }

    Result<Alert> Act(std::string_view reference, AlertAction action, std::string_view actor,
                      const AlertWording& wording);

    Result<SignalOverride> Override(std::int64_t signal_id, const std::string& level,
                                    const std::string& reason, const std::string& actor);

    Result<std::vector<std::string>> ExpireDue(std::int64_t now_ms);

    Result<std::string> CreateToken(const std::string& name, const std::string& role);

    std::optional<ApiToken> FindToken(std::string_view secret) const;

    std::vector<TokenRow> Tokens() const;
    Result<PhotoRow> SavePhoto(const std::string& jpeg, int width, int height,
                               const std::string& uploaded_by);
    std::optional<std::pair<PhotoRow, std::string>> FindPhoto(std::string_view id,
                                                              bool with_jpeg) const;
    std::vector<PhotoRow> AlertPhotos(std::string_view reference) const;
    int LinkPhotos(const Report& report);  // on the writer, in the report's transaction
    Result<std::string> ChosenPhotos(std::int64_t alert_id, const std::string& reference,
                                     const std::vector<std::string>& ids);

    Result<int> RevokeToken(std::int64_t id, const std::string& actor);

    Result<int> CreateSession(const WebSession& session, std::size_t max_per_token,
                              std::size_t max_total);

    std::optional<WebSession> FindSession(std::string_view id_hash, std::int64_t now) const;

    Result<int> EndSession(const std::string& id_hash, std::int64_t now);

    void SetOutboxListener(std::function<void()> listener);
    void SetClaimAtCommit(CommitClaim hooks);

    // Queues `job` for the writer thread and returns at once; false when closing.
    bool Post(std::function<void()> job);

    // A claim only marks rows `sending`, and rows left `sending` are sent again at start
    // (RecoverInFlight), so a claim lost with the power changes nothing: it is committed
    // without waiting for the disk (synchronous=NORMAL in WAL still survives a crash of
    // ldisd), which takes one fsync off the path from a red report to its first email.
    // The next full commit's fsync covers it, as the WAL is written in order.
    void ClaimDue(std::int64_t now, std::size_t limit,
                  std::function<void(Result<std::vector<OutboxItem>>)> done);

    void Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now,
                  std::function<void(Result<int>)> done);

    void EscalateDue(std::int64_t now, std::function<void(Result<int>)> done);

    std::string Setting(const std::string& key);

    Result<StoredReportRow> Reveal(const std::string& id, const std::string& actor,
                                   const std::string& reason);

    Result<int> PurgeFreeText(std::int64_t before_ms, std::int64_t now, const std::string& actor);

    Result<int> SetSetting(const std::string& key, const std::string& value);
    Result<int> QueueNotice(const Store::Notice& notice, std::int64_t now);
    Result<FederatedOutcome> ReceiveFederated(const FederatedVersion& v, FederatedPolicy for_level,
                                              const std::string& peer_name, std::int64_t now);
    std::vector<FederatedRow> Federated(std::size_t limit) const;
    std::vector<ForwardedAcks> ForwardedAcknowledgements(std::int64_t now) const;
    Result<FederatedRow> DecideFederated(std::int64_t id, bool adopt, const std::string& actor,
                                         std::int64_t now);

    Result<int> RecoverInFlight(std::int64_t now);

    Result<DeliveryRow> RequestUnsubscribe(std::int64_t delivery_id, std::int64_t now);

    Result<DeliveryRow> Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                    std::int64_t now, const PartnerAnswer& answer);

    std::vector<DeliveryRow> DeliveryQuery(const std::string& where, const std::string& key) const;
    // Before a read of the outbox: any fan-out's deferred rows written out first, so that no
    // reader sees one half written (a hop to the writer thread, only when there are some).
    void SettleDeferred();

    std::optional<std::int64_t> NextDueMs() const;

    std::map<std::string, std::int64_t> DeliveryCounts() const;

    const std::string& AckKey() const { return ack_key_; }

    ReportStore::Counts CountAll() const;
    InsightData ReadInsight(std::int64_t from_ms, std::int64_t to_ms, bool detailed) const;

    void SetGrading(std::shared_ptr<const GradingSetup> grading);
    std::shared_ptr<const GradingSetup> GradingInUse() const { return CurrentGrading(); }
    const std::string& FilePath() const { return options_.path; }

    Result<StoredReport> Insert(const Report& report, std::string_view channel);

    std::optional<StoredReportRow> Find(std::string_view id) const;

    std::vector<StoredReportRow> Recent(std::size_t limit) const;

    std::vector<StoredReportRow> Query(const std::string& tail, std::string_view key,
                                       std::size_t limit, std::int64_t number = -1) const;

    std::vector<Alert> Alerts(std::string_view reference) const;

    AlertPage FindAlerts(const AlertFilter& f) const;

    std::optional<AlertRecord> FindAlertRecord(std::string_view reference) const;

    std::int64_t CountSignals() const { return CountOf("SELECT count(*) FROM signals"); }

    Result<std::int64_t> VerifyAudit() const;

    std::int64_t Count() const { return CountOf("SELECT count(*) FROM reports"); }

    // One number from the reader connection, or -1.
    std::int64_t CountOf(const char* sql) const;

    std::vector<std::string> ListIds() const;

private:
    struct Pending {
        const Report* report;
        std::string_view channel;
        std::promise<Result<StoredReport>> promise;
        std::chrono::steady_clock::time_point queued_at = std::chrono::steady_clock::now();
    };

    void Migrate();

    void LoadNextSeq();

    std::string ReferenceFor(std::int64_t seq) const;

    // Reports and jobs take turns: a batch of reports, then one job. Reports wait for
    // their acknowledgement, so a busy outbox must never hold them back.
    void Run();

    // Writes a batch in one transaction; every caller learns the outcome only after COMMIT.
    void Commit(const std::vector<Pending*>& batch);

    // The latest version's rules and facts, copied into a new version row.
    int AddVersion(std::int64_t alert_id, int version, std::string_view status, std::int64_t now);

    // A version made by a coordinator's action is the last one's with a new number, status
    // and history: its text is rendered again from the signal's reports (as ReviseAlert
    // renders one), with every coordinator's wording, so that its summary, "Sharing" and
    // history name this version. Runs in the caller's transaction. Returns an SQLite code;
    // an alert with no signal (none in this store today) keeps the text it was given.
    int RenderAgain(std::int64_t alert_id, int version, const GradingSetup& g);
    // The last nine versions before `version`, oldest first: the alert text's history.
    std::vector<AlertVersionLine> HistoryBefore(std::int64_t alert_id, int version);

    // Sets (level) or lifts (level "") a coordinator's override of a signal's level, and
    // makes the signal's alert follow: a new version at the level now shown, by policy (a
    // red goes out at once; an amber is a draft to approve), or a new alert. The override
    // holds when new reports grade the signal again, until it is lifted. Audited with the
    // reason and what the rules give.
    Result<SignalOverride> OverrideOnWriter(std::int64_t signal_id, const std::string& level,
                                            const std::string& reason, const std::string& actor);

    Result<std::string> ActOnWriter(const std::string& reference, AlertAction action,
                                    const std::string& actor, const AlertWording& wording = {});

    Result<std::vector<std::string>> ExpireOnWriter(std::int64_t now);

    void LoadLastAuditHash();

    // Appends the transaction's audit entries to the hash chain. The chain's end is read
    // inside the transaction, so another process (ldisctl) may append too.
    int FlushAudit();

    // For a duplicate: the grade of the signal its first copy joined.
    void GradeOf(const std::string& id, StoredReport& out);

    // Correlates a new report into its signal, grades the signal again on all its
    // reports, and creates or revises the signal's one live alert, by policy. Runs in
    // the transaction that stores the report. Returns an SQLite code.
    int GradeNew(const Report& r, std::int64_t seq, const std::string& reference, std::int64_t now,
                 const GradingSetup& g, StoredReport& out);

    // The latest 20 reports of a signal, oldest first: what the alert text lists.
    int LatestDocuments(std::int64_t signal_id, std::vector<std::string>& out);

    // The override a coordinator set on a signal, if any (level "" when none), and the
    // signal's stored facts when `facts` is given: one read of the row for both.
    int ReadOverride(std::int64_t signal_id, SignalOverride& out, std::string* facts = nullptr);

    // What a new version of a signal's alert is made of: the level it shows (the rules', or
    // a coordinator's override) and the grade, facts and reports behind it.
    struct AlertRevision {
        std::int64_t signal_id = 0;
        std::string signal_ref;  // "signal-12", for the audit log
        std::string level;       // the level the alert shows
        Grade grade;             // its level is `level`; its rules include an override
        SignalFacts facts;
        std::string facts_text, rules_text;
        std::vector<std::string> documents;  // the latest reports, for the alert text
        std::string authority, district;
        bool trusted = false;          // a trusted source, or a coordinator
        std::string actor = "ldisd";   // who made the version
        std::string report_reference;  // the report that made it; "" for an override
    };

    // Creates or revises the signal's one live alert for `rv`, by policy, and routes the
    // new version. Runs in the caller's transaction. Returns an SQLite code.
    int ReviseAlert(const AlertRevision& rv, const GradingSetup& g, std::int64_t now,
                    std::string& alert_reference_out);

    // What routing needs to know of the version just written.
    struct VersionRoute {
        std::int64_t alert_id = 0;
        int version = 0;
        VersionToRoute what;
    };

    std::shared_ptr<const GradingSetup> CurrentGrading() const;

    int InsertDelivery(std::int64_t alert_id, int version, const Delivery& d, std::int64_t now,
                       std::int64_t fallback_of = 0);
    int InsertDeliveries(std::int64_t alert_id, int version, const std::vector<Delivery>& planned,
                         std::int64_t now);

    // Routes a version just written to the outbox, in the caller's transaction: its first
    // options_.first_deliveries rows, and the rest deferred (one row).
    int QueueDeliveries(const VersionRoute& v, const GradingSetup& g, std::int64_t now);
    int DeferDeliveries(std::int64_t alert_id, int version, std::span<const Delivery> rest,
                        std::int64_t now);
    // The deferred rows of one alert (of all when 0) written out, in the caller's transaction.
    int WriteOutDeferred(std::int64_t alert_id);
    // Every deferred row written out in a transaction of its own (writer thread).
    void WriteOutDeferredNow();
    // After a transaction: the rows it deferred are written out a moment later; a commit that
    // deferred none writes out any that earlier ones did (the first outcomes, usually).
    void AfterCommitDeferred(bool committed);

    // Ends a writer transaction that may have appended audit entries and queued
    // deliveries: commits them, or rolls back and forgets them. An Error when it failed.
    std::optional<Error> Finish(Transaction& tx, int rc);
    // Federation (federated.cpp): a peer alert's recipients so far, and its forwarded
    // version's deliveries queued.
    int ForwardedRecipients(const std::string& source, std::vector<Recipient>& out);
    int QueueForwarded(const std::string& detail, const VersionToRoute& route, int version,
                       std::int64_t now, int& queued);

    int MarkRouted(std::int64_t alert_id, int version, std::int64_t now);

    // Sends the latest version of every live alert whose newer versions were held back
    // by dispatch.update_interval, once the interval has passed. In the caller's transaction.
    int FlushUpdates(const GradingSetup& g, std::int64_t now);

    // Tells the writer's listener, outside any lock, that the outbox has new rows.
    void NotifyOutbox();

    // ClaimOnWriter committed without waiting for the disk (see ClaimDue).
    Result<std::vector<OutboxItem>> ClaimRelaxed(std::int64_t now, std::size_t limit);

    Result<std::vector<OutboxItem>> ClaimOnWriter(std::int64_t now, std::size_t limit);
    Result<std::vector<OutboxItem>> ClaimRows(std::int64_t now, std::size_t limit);
    // Before a commit that queued deliveries: the first of them claimed in its transaction
    // and handed over, held; SettleClaim(committed) after it lets them go or drops them.
    void ClaimBeforeCommit();
    void SettleClaim(bool committed);

    Result<int> CompleteOnWriter(const std::vector<DeliveryOutcome>& outcomes, std::int64_t now);

    Result<int> EscalateOnWriter(std::int64_t now);

    void LoadAckKey();

    StoreOptions options_;
    Connection writer_;
    sqlite3_stmt* insert_ = nullptr;
    sqlite3_stmt* find_reference_ = nullptr;
    std::int64_t next_seq_ = 1;
    std::unique_ptr<Connection> reader_;
    mutable std::mutex reader_mutex_;
    std::unique_ptr<Checkpointer> checkpointer_;

    std::shared_ptr<const GradingSetup> grading_;        // guarded by mutex_
    std::shared_ptr<const GradingSetup> batch_grading_;  // the writer thread's copy for one batch
    struct AuditEntry {
        std::int64_t at_ms;
        std::string actor, action, subject, detail;
    };
    std::vector<AuditEntry> audit_;  // entries of the transaction in hand, written by FlushAudit
    std::string last_audit_hash_;
    std::int64_t last_audit_seq_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending*> queue_;
    std::deque<std::function<void()>> jobs_;
    bool closing_ = false;
    std::function<void()> outbox_listener_;  // guarded by mutex_
    CommitClaim claim_hooks_;                // guarded by mutex_
    int outbox_added_ = 0;                   // rows queued by the transaction in hand
    // deferred_deliveries may have rows (at start: look); read by readers (SettleDeferred).
    std::atomic<bool> deferred_waiting_{true};
    bool deferred_in_hand_ = false;  // the transaction in hand deferred a fan-out's rows
    // When the rows deferred by a committed transaction are written out at the latest.
    std::optional<std::chrono::steady_clock::time_point> deferred_due_;
    std::function<void(bool)> held_claim_;  // settles the claim held by the transaction in hand
    std::string ack_key_;
    std::mt19937_64 rng_{std::random_device{}()};
    std::thread thread_;
};

}  // namespace ldis::engine
