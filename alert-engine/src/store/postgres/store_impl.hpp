#pragma once
// The PostgreSQL store's parts (private to src/store/postgres/): a connection's writer with
// the statements both intake and the outbox write with, and what PostgresStore holds.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "impl.hpp"
#include "ldis/engine/pipeline.hpp"
#include "ldis/engine/text.hpp"

namespace ldis::engine::pgstore {

using Params = std::vector<std::optional<std::string>>;

// A statement that failed: the transaction is rolled back and nothing of it kept.
struct Failed {
    Error error;
};
// An action refused for a reason the person who asked can act on ("cannot approve
// KM-2026-0007: it is cancelled"): rolled back, and the reason returned as it is.
struct Refused {
    Error error;
};

// A PhotoRow from photos_sql::kColumns at `row` (photos.cpp).
PhotoRow PhotoOf(const pg::Rows& rows, int row);

inline std::string Int(std::int64_t v) {
    return std::to_string(v);
}
inline std::optional<std::string> TextOrNull(const std::string& s) {
    if (s.empty()) return std::nullopt;
    return s;
}

// The advisory locks' keys: "LDIS" and a number (a signal key's lock is its hash).
inline constexpr std::int64_t kNumberingLock = (std::int64_t{0x4c444953} << 32) | 2;
inline constexpr std::int64_t kAuditLock = (std::int64_t{0x4c444953} << 32) | 3;
inline constexpr std::int64_t kLeaderLock = (std::int64_t{0x4c444953} << 32) | 4;
// What a commit that queued deliveries tells every instance.
inline constexpr const char* kOutboxChannel = "ldis_outbox";

// One connection's transactions: statements that throw Failed, the audit entries and
// deliveries a transaction adds, written at its end.
class Writer {
public:
    explicit Writer(std::unique_ptr<PostgresDatabase> db) : db_(std::move(db)) {}
    PGconn* c() const;
    const std::string& where() const { return db_->where(); }
    std::mutex& mutex() { return mutex_; }

    pg::Rows Run(std::string_view what, const std::string& sql, const Params& params = {});
    // Runs `body` in a transaction: the audit entries it adds are appended last (under the
    // audit lock), a NOTIFY goes with deliveries it queued, and it commits; or it rolls
    // back and the error says where and why. Returns how many deliveries it queued.
    Result<int> Transaction(const std::function<void()>& body, std::int64_t now);

    void Audit(std::string actor, std::string action, std::string subject, std::string detail) {
        audit_.push_back(
            {std::move(actor), std::move(action), std::move(subject), std::move(detail)});
    }
    void InsertDelivery(std::int64_t alert_id, int version, const Delivery& d, std::int64_t now,
                        std::int64_t fallback_of = 0);
    // Routes a version just written: the pipeline plans the deliveries from the alert's
    // earlier recipients; they are queued here.
    void QueueDeliveries(std::int64_t alert_id, int version, const VersionToRoute& what,
                         const GradingSetup& g, std::int64_t now);

private:
    struct AuditEntry {
        std::string actor, action, subject, detail;
    };
    void AppendAudit(std::int64_t now);
    std::unique_ptr<PostgresDatabase> db_;
    std::mutex mutex_;  // one transaction at a time on this connection
    std::vector<AuditEntry> audit_;
    int queued_ = 0;
};

}  // namespace ldis::engine::pgstore

namespace ldis::engine {

struct PostgresStore::Impl {
    Options options;
    std::unique_ptr<pgstore::Writer> intake;
    std::unique_ptr<pgstore::Writer> outbox;
    std::unique_ptr<pgstore::Writer> reader;   // the reads of pages, the API and ldisctl
    std::unique_ptr<PostgresDatabase> listen;  // LISTEN ldis_outbox
    std::string ack_key;
    std::mt19937_64 rng{std::random_device{}()};
    std::atomic<bool> leader{false};
    int leader_backend = 0;  // the server process of the connection that holds the lock

    std::mutex hooks_mutex;
    std::function<void()> listener;
    CommitClaim claim_hooks;  // claimed just after the commit, never held

    // The outbox's jobs, one at a time on their own thread.
    std::mutex jobs_mutex;
    std::condition_variable jobs_cv;
    std::deque<std::function<void()>> jobs;
    bool stopping = false;
    std::thread worker;
    std::thread listener_thread;

    void Post(std::function<void()> job);
    void RunJobs();
    void Listen();
    void AfterCommit(int queued);

    // intake.cpp
    StoredReport Take(const Report& r, std::string_view channel, std::int64_t now);
    void GradeInto(const Report& r, std::int64_t seq, const std::string& reference,
                   std::int64_t now, const GradingSetup& g, StoredReport& out);
    // What a new version of a signal's alert is made of (as SQLite's AlertRevision).
    struct Revision {
        std::int64_t signal_id = 0;
        std::string signal_ref;  // "signal-12", for the audit log
        Grade shown;             // the level the alert shows, and the rules behind it
        SignalFacts facts;
        std::vector<std::string> documents;  // the latest reports, for the alert text
        std::string authority, district;
        bool trusted = false;          // a trusted source, or a coordinator
        std::string actor = "ldisd";   // who made the version
        std::string report_reference;  // the report that made it; "" for an override
    };
    // Creates or revises the signal's one live alert, by policy, and routes the new
    // version, in intake's transaction. Returns the alert's reference ("" when none).
    std::string ReviseAlert(const Revision& rv, const GradingSetup& g, std::int64_t now);
    std::vector<std::string> LatestDocuments(std::int64_t signal_id);
    // alerts.cpp
    std::shared_ptr<const GradingSetup> CurrentGrading() const;
    void AddVersion(std::int64_t alert_id, int version, std::string_view status, std::int64_t now);
    // A coordinator's version's text rendered again, with its own number, status and
    // history (SQLite's ReportStore::Impl::RenderAgain, which says why).
    void RenderAgain(std::int64_t alert_id, int version, const GradingSetup& g);
    // The last nine versions before `version`, oldest first: the alert text's history.
    std::vector<AlertVersionLine> HistoryBefore(std::int64_t alert_id, int version);
    // The override a coordinator set on a signal (level "" when none), and the signal's
    // stored facts when `facts` is given: one read of the row for both (SQLite's ReadOverride).
    SignalOverride ReadOverride(std::int64_t signal_id, std::string* facts = nullptr);
    std::string Act(const std::string& reference, AlertAction action, const std::string& actor,
                    const AlertWording& wording, std::int64_t now);
    SignalOverride Override(std::int64_t signal_id, const std::string& level,
                            const std::string& reason, const std::string& actor, std::int64_t now,
                            std::optional<Error>& refused);
    mutable std::mutex grading_mutex;
    // outbox.cpp
    Result<std::vector<OutboxItem>> Claim(std::int64_t now, std::size_t limit);
    Result<int> CompleteNow(const std::vector<DeliveryOutcome>& outcomes, std::int64_t now);
    Result<int> EscalateNow(std::int64_t now);
    void FlushUpdates(const GradingSetup& g, std::int64_t now);
    // queries.cpp
    std::vector<StoredReportRow> ReportQuery(const std::string& tail,
                                             const pgstore::Params& params) const;
    std::int64_t Count(const std::string& sql) const;
    // deliveries.cpp
    std::vector<DeliveryRow> DeliveryQuery(const std::string& where, const pgstore::Params& params);
};

}  // namespace ldis::engine
