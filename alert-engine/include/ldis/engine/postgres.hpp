#pragma once
// The PostgreSQL store's database (issue 15): the connection from `store.url` and the
// schema (src/store/postgres/schema.sql), made once however many ldisd start at once.
//
// This is the first room of the PostgreSQL backend. The Store interface (store.hpp) is
// not yet implemented on it; see docs/postgresql.md for what is built and what is not.
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ldis/engine/panel.hpp"
#include "ldis/engine/result.hpp"
#include "ldis/engine/store.hpp"

namespace ldis::engine {

// Checks a `store.url` before anything connects with it: the scheme is postgresql:// (or
// postgres://), and no password is written in it; a password belongs in a passfile
// (`?passfile=/etc/ldis/pgpass` or PGPASSFILE), readable by ldisd alone, so that the
// configuration can be shown, copied and logged. Returns the URL as messages may show it.
Result<std::string> CheckPostgresUrl(std::string_view url);

struct PostgresAccess;

class PostgresDatabase {
public:
    // Connects and brings the database to this build's schema: an empty database is made
    // from schema.sql in one transaction, under an advisory lock that every instance takes
    // first, so that instances starting together make it once. A database written by a
    // newer LDIS is refused, as SQLite's is. The error says where and why, never the
    // password.
    static Result<std::unique_ptr<PostgresDatabase>> Open(const std::string& url);
    ~PostgresDatabase();
    PostgresDatabase(const PostgresDatabase&) = delete;
    PostgresDatabase& operator=(const PostgresDatabase&) = delete;

    int schema_version() const;
    // The URL as messages show it.
    const std::string& where() const;
    // True if this call made the schema (the others found it made).
    bool made_schema() const;

    // Walks the audit log's hash chain as `ldisctl audit verify` does on SQLite: the number
    // of entries, or the first broken one.
    Result<std::int64_t> VerifyAudit() const;

    // `ldisctl migrate`: copies a whole SQLite history (store.path, at this build's schema
    // version) into this database, which must hold none yet: every table, row for row with
    // its numbers, in one transaction with the tables locked, the sequences moved past the
    // numbers copied. The source's audit chain is verified first and the copy's before the
    // commit, so a broken or half-copied history is never left behind. Returns each
    // table's row count.
    Result<std::vector<std::pair<std::string, std::int64_t>>> CopyFromSqlite(
        const std::string& sqlite_path);

private:
    friend struct PostgresAccess;
    struct Impl;
    explicit PostgresDatabase(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The store on PostgreSQL for a database several ldisd share: reports taken in
// (ReportIntake) and the outbox (Outbox), so far; the rest of Store is docs/postgresql.md's
// list. Each instance holds three connections: one for intake, one for the outbox's jobs
// (on a thread of its own, "ldis-pg-outbox", as the Outbox interface asks), and one that
// LISTENs for other instances' new deliveries.
//
// Intake: each Insert is one transaction, correct whichever instance takes which report:
// - the report's signal is found or made under an advisory transaction lock on its key
//   (family and district), so two reports of one signal at two instances at once make one
//   signal and one alert, never two;
// - an alert's number (KM-2026-0007) is counted under a lock held to the commit, so a
//   rolled-back transaction leaves no gap a coordinator would see as a missing alert;
//   report references (KM-R000042) come from the sequence, where a rollback or a
//   duplicate may leave a gap, as receipts alone carry them;
// - audit entries are appended under a lock on the chain's head, so the chain stays one;
// - the same report id at two instances is stored once (the second finds it).
// The locks are always taken in that order (signal, numbering, audit), so no two
// transactions wait on each other in a cycle. A commit that queued deliveries NOTIFYs
// every instance.
//
// Outbox: a claim takes due rows FOR UPDATE SKIP LOCKED, so two instances never claim one
// row, and marks them `sending` with a lease (next_attempt_ms = now + lease_ms): a row
// whose lease ran out (its instance died mid-send) is due again for anyone. The lease must
// be longer than a transfer can take (dispatch timeout), or a slow send is made twice.
// Escalation and the update flush run on one instance at a time: the one holding the
// leader's advisory lock (a session lock, let go when its connection ends).
class PostgresStore : public Store {
public:
    struct Options {
        std::string url;
        std::string reference_prefix = "KM";
        // When set, every report is correlated, graded and alerted on in the transaction
        // that stores it, as on SQLite; without it reports are only stored.
        std::shared_ptr<const GradingSetup> grading;
        std::int64_t lease_ms = 5 * 60 * 1000;
    };
    static Result<std::unique_ptr<PostgresStore>> Open(Options options);
    ~PostgresStore() override;
    PostgresStore(const PostgresStore&) = delete;
    PostgresStore& operator=(const PostgresStore&) = delete;

    Result<StoredReport> Insert(const Report& report, std::string_view channel) override;

    void SetOutboxListener(std::function<void()> listener) override;
    void SetClaimAtCommit(CommitClaim hooks) override;
    void ClaimDue(std::int64_t now_ms, std::size_t limit,
                  std::function<void(Result<std::vector<OutboxItem>>)> done) override;
    void Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now_ms,
                  std::function<void(Result<int>)> done) override;
    void EscalateDue(std::int64_t now_ms, std::function<void(Result<int>)> done) override;
    // Takes no row another live instance is sending: rows left `sending` by a crash are
    // due again when their lease runs out. Returns how many leases have run out now.
    Result<int> RecoverInFlight(std::int64_t now_ms) override;
    const std::string& AckKey() const override;
    std::optional<std::int64_t> NextDueMs() const override;

    // True while this instance holds the leader's lock (runs the periodic work).
    bool leader() const;

    // Tokens, web sessions and settings, as Store declares them (tokens.cpp): in the
    // database every instance shares, so any instance serves any signed-in coordinator,
    // a token revoked at one ends its sessions at all, and a restart signs no one out.
    Result<std::string> CreateToken(std::string_view name, std::string_view role);
    std::optional<ApiToken> FindToken(std::string_view secret) const;
    std::vector<TokenRow> Tokens() const;
    // Photos of a batch (photos.cpp).
    Result<PhotoRow> SavePhoto(const std::string& jpeg, int width, int height,
                               std::string_view uploaded_by) override;
    std::optional<std::pair<PhotoRow, std::string>> FindPhoto(std::string_view id,
                                                              bool with_jpeg) const override;
    std::vector<PhotoRow> AlertPhotos(std::string_view reference) const override;
    Result<int> RevokeToken(std::int64_t id, std::string_view actor);
    Result<int> CreateSession(const WebSession& session, std::size_t max_per_token,
                              std::size_t max_total);
    std::optional<WebSession> FindSession(std::string_view id_hash, std::int64_t now_ms) const;
    Result<int> EndSession(std::string_view id_hash, std::int64_t now_ms);
    std::string Setting(const std::string& key);
    Result<int> SetSetting(const std::string& key, const std::string& value);
    Result<int> QueueNotice(const Notice& notice, std::int64_t now_ms);
    Result<FederatedOutcome> ReceiveFederated(const FederatedVersion& version,
                                              FederatedPolicy for_level,
                                              const std::string& peer_name, std::int64_t now_ms);
    std::vector<FederatedRow> Federated(std::size_t limit) const;
    std::vector<ForwardedAcks> ForwardedAcknowledgements(std::int64_t now_ms) const;
    Result<FederatedRow> DecideFederated(std::int64_t id, bool adopt, const std::string& actor,
                                         std::int64_t now_ms);

    // Deliveries as coordinators and partners see them (deliveries.cpp): an
    // acknowledgement or an unsubscribe request is recorded at whichever instance the
    // partner's link reaches, once.
    std::vector<DeliveryRow> Deliveries(std::string_view reference) const;
    std::vector<DeliveryRow> FailedDeliveries(std::size_t limit) const;
    std::optional<DeliveryRow> FindDelivery(std::int64_t id) const;
    std::map<std::string, std::int64_t> DeliveryCounts() const;
    Result<DeliveryRow> Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                    std::int64_t now_ms, const PartnerAnswer& answer = {});
    Result<DeliveryRow> RequestUnsubscribe(std::int64_t delivery_id, std::int64_t now_ms);

    // What the API, the pages and ldisctl read, and the coordinators' reveal and the
    // retention purge, as Store declares them (queries.cpp).
    std::optional<StoredReportRow> Find(std::string_view id) const;
    std::int64_t CountReports() const;
    std::vector<std::string> ListIds() const;
    std::vector<StoredReportRow> Recent(std::size_t limit) const;
    std::vector<Alert> Alerts() const;
    std::optional<Alert> FindAlert(std::string_view reference) const;
    std::int64_t CountSignals() const;
    AlertPage FindAlerts(const AlertFilter& filter) const;
    std::optional<AlertRecord> FindAlertRecord(std::string_view reference) const;
    Result<std::int64_t> VerifyAudit() const;
    Store::Counts CountAll() const;
    InsightData ReadInsight(std::int64_t from_ms, std::int64_t to_ms, bool detailed = true) const;
    Result<StoredReportRow> Reveal(std::string_view id, std::string_view actor,
                                   std::string_view reason);
    Result<int> PurgeFreeText(std::int64_t before_ms, std::int64_t now_ms, std::string_view actor);

    // The grading and the coordinators' actions, as Store declares them (alerts.cpp).
    void SetGrading(std::shared_ptr<const GradingSetup> grading);
    std::shared_ptr<const GradingSetup> Grading() const;
    std::vector<StoredSignal> Signals() const;
    Result<SignalOverride> Override(std::int64_t signal_id, std::string_view level,
                                    std::string_view reason, std::string_view actor);
    Result<Alert> Act(std::string_view reference, AlertAction action, std::string_view actor,
                      const AlertWording& wording = {});
    Result<std::vector<std::string>> ExpireDue(std::int64_t now_ms);

    struct Impl;

private:
    explicit PostgresStore(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace ldis::engine
