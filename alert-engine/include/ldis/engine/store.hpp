#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/alert.hpp"
#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/delivery.hpp"
#include "ldis/engine/federated.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/insight.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/panel.hpp"
#include "ldis/engine/pipeline.hpp"
#include "ldis/engine/report.hpp"
#include "ldis/engine/result.hpp"

namespace ldis::engine {

// The store's data types and its interface (issue 14): what every backend persists, and
// what the intake, the dispatcher, the web server and the daemon may ask of it. The SQLite
// backend is ReportStore (report_store.hpp); a second backend implements Store the same way.
// Every decision about what to write (which signal, what grade, what version, who is sent
// it) is made by the pure pipeline (pipeline.hpp); a backend reads what it needs, calls it
// inside its transaction, and writes down what it decided.

// SQLite's `synchronous` setting for the write connection.
enum class Synchronous { kOff, kNormal, kFull, kExtra };
std::optional<Synchronous> ParseSynchronous(std::string_view text);

// What grading needs, shared by the store and replaced whole on reload.
struct GradingSetup {
    Substances substances;
    Rules rules;
    std::int64_t window_ms = 7LL * 24 * 3600 * 1000;  // a report joins a signal this close in time
    std::int64_t valid_for_ms = 365LL * 24 * 3600 * 1000;  // an alert's valid_until, from issue
    AlertTemplates templates;                              // empty: versions carry no text
    std::string public_url;                                // the base of links in alert text
    Policy policy;                                         // ldisd.toml [policy]
    std::shared_ptr<const Partners> partners;              // null: issued versions reach no partner
    DispatchPolicy dispatch;  // channels, retries, acknowledgement times
};

struct StoreOptions {
    std::string path;
    Synchronous synchronous = Synchronous::kFull;
    int busy_timeout_ms = 5000;
    std::size_t max_batch = 512;          // reports committed together at most
    std::string reference_prefix = "KM";  // references look like KM-R000042 and KM-2026-0007
    // How many of a fan-out's deliveries are written as rows in the transaction that decides
    // them (the dispatcher claims them at its commit); the rest are kept as one row and
    // written out a moment after it commits. 0: every row in that transaction. Two, not the
    // eight the dispatcher could claim: fewer rows, claims and renders before the first email
    // (bench/run --only latency, first email p50 3.2-4.1 ms with 2 against 4.1-4.5 with 8).
    std::size_t first_deliveries = 2;
    // When set, every new report is correlated, graded and alerted on in the
    // transaction that stores it. Without it reports are only stored.
    std::shared_ptr<const GradingSetup> grading;
};

// The outcome of storing one report.
struct StoredReport {
    std::string id;
    std::string reference;
    bool duplicate = false;       // the id was already stored; nothing changed
    std::string level;            // the grade of the report's signal: none, green, amber, red
    std::string alert_reference;  // the signal's live alert, when it has one
};

// Which alerts to list (GET /api/v1/alerts). Empty fields match anything.
struct AlertFilter {
    std::string reference;
    std::string level;
    std::string status;
    std::string authority;
    std::string district;
    std::string family;         // substance family id, e.g. "nitazene"
    std::string q;              // words in the latest version's text
    std::int64_t since_ms = 0;  // updated at or after
    std::int64_t until_ms = 0;  // updated before (0: no bound)
    // Real alerts only (Drill::kNone), an exercise's or a test's; none: all of them.
    std::optional<Drill> drill;
    std::string audience;    // professionals, services, public ("" any)
    bool published = false;  // only alerts that were issued (never a draft or its cancellation)
    std::size_t limit = 50;
    std::size_t offset = 0;
};

struct AlertPage {
    std::vector<Alert> alerts;  // newest first
    std::int64_t total = 0;     // matching, before limit and offset
};

// One entry of the audit log.
struct AuditRow {
    std::int64_t seq = 0;
    std::int64_t at_ms = 0;
    std::string actor;
    std::string action;
    std::string subject;
    std::string detail;  // JSON
};

// A stored report as read back.
struct StoredReportRow {
    std::string id;
    std::string reference;
    std::int64_t received_at_ms = 0;
    std::string source_type;
    std::string authority;
    std::string district;
    std::string channel;
    std::string document;
};

// An API bearer token as stored: only its SHA-256 is kept.
struct ApiToken {
    std::int64_t id = 0;
    std::string name;
    std::string role;  // submitter, coordinator, admin
};

// A photo of a batch as kept (issue 17 §3): a JPEG CleanUpload wrote anew; never the upload.
struct PhotoRow {
    std::string id;           // "ph-" and 32 hex digits, random
    std::string report_id;    // the report that named it; "" until one does
    std::string uploaded_by;  // the token's name
    std::string sha256;       // of the JPEG, hex
    std::string sha1;         // of the JPEG, hex: CAP's <digest>
    int width = 0;
    int height = 0;
    std::int64_t bytes = 0;
    std::int64_t created_at_ms = 0;
};

// An access key as `ldisctl tokens list` shows it: never its secret.
struct TokenRow {
    std::int64_t id = 0;
    std::string name;
    std::string role;
    std::int64_t created_at_ms = 0;
    std::int64_t revoked_at_ms = 0;  // 0 while live
    int sessions = 0;                // web sessions signed in with it now
};

// A signed-in person's web session, as kept in the database: the id only as its hash.
struct WebSession {
    std::string id_hash;
    ApiToken who;
    std::string csrf;
    std::int64_t created_at_ms = 0;
    std::int64_t expires_at_ms = 0;
};

// Everything about one alert (GET /api/v1/alerts/{id}).
struct AlertRecord {
    Alert alert;
    std::vector<AlertVersion> versions;    // oldest first
    std::vector<StoredReportRow> reports;  // the signal's reports, whole documents
    std::vector<DeliveryRow> deliveries;
    std::vector<AuditRow> audit;  // the alert's, its signal's and its deliveries' entries
};

// Thrown at start-up when the database cannot be opened, migrated or is corrupt.
class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A store, seen from each of its callers: the intake writes reports (ReportIntake), the
// dispatcher works the outbox (Outbox), and everything else (the web server, the daemon,
// ldisctl) uses the whole Store. Every backend implements all three; each caller depends
// only on what it uses. Every method is thread-safe.

// Reports in.
class ReportIntake {
public:
    virtual ~ReportIntake() = default;

    // Thread-safe. Blocks until the report's row is committed, or found already stored
    // (duplicate). Returns an Error, and stores nothing, when the commit fails (disk full,
    // I/O error, closing); the caller must then not acknowledge the report.
    virtual Result<StoredReport> Insert(const Report& report, std::string_view channel) = 0;
};

// How the dispatcher takes the deliveries a commit queued (Outbox::SetClaimAtCommit).
struct CommitClaim {
    // How many it has room for now; called on the store's thread, must not block.
    std::function<std::size_t()> room;
    // The rows claimed for it, on the store's thread (must not block). `held`: claimed
    // inside the commit's own transaction before it is durable, so that the dispatcher
    // prepares them (renders, opens an email's SMTP transaction up to DATA) while the disk
    // writes; nothing of a message may leave until `settled`.
    std::function<void(Result<std::vector<OutboxItem>>, std::size_t asked, bool held)> claimed;
    // After a held claim: true once the commit is durable, false when it was rolled back
    // (the claim with it: whatever the transaction queued is gone or queued again).
    std::function<void(bool committed)> settled;
};

// The outbox (DESIGN §7): deliveries are written in the transaction that issues, updates or
// cancels an alert version (PlanDeliveries decides them); the dispatcher claims, sends and
// records them.
class Outbox {
public:
    virtual ~Outbox() = default;

    // Called on the writer thread after a commit that queued deliveries. Must not block.
    virtual void SetOutboxListener(std::function<void()> listener) = 0;
    // Claims at the commit: a commit that queued deliveries claims up to room() of the due
    // ones itself, as ClaimDue would, and hands them to `claimed`, so that a red alert's
    // first email does not wait for a second trip to the store. A backend may claim inside
    // the commit's transaction (held, then settled) or just after it. The listener is
    // called instead when room() is 0 or no hooks are set. Unset with an empty CommitClaim.
    virtual void SetClaimAtCommit(CommitClaim hooks) = 0;
    // Jobs on the writer thread that return at once; `done` runs on the writer thread
    // with the outcome, and must not block.
    // Claims up to `limit` deliveries due by `now_ms`: each becomes "sending", attempts+1.
    virtual void ClaimDue(std::int64_t now_ms, std::size_t limit,
                          std::function<void(Result<std::vector<OutboxItem>>)> done) = 0;
    // Records attempts' outcomes: delivered; retrying with backoff (or failed after the
    // last attempt); failed, which queues the partner's fallback contact and tells the
    // coordinators. `done` gets the number of rows changed.
    virtual void Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now_ms,
                          std::function<void(Result<int>)> done) = 0;
    // Queues an escalation for every red or amber alert delivery whose acknowledgement is
    // overdue at `now_ms`, once per alert and partner, and sends the latest version of
    // alerts whose updates were held back (dispatch.update_interval). `done` gets the
    // number of escalations queued.
    virtual void EscalateDue(std::int64_t now_ms, std::function<void(Result<int>)> done) = 0;
    // After a crash: deliveries left "sending" are due again at once. Blocks; thread-safe.
    virtual Result<int> RecoverInFlight(std::int64_t now_ms) = 0;
    // The key that signs acknowledgement tokens: made at the first start, kept in the file.
    virtual const std::string& AckKey() const = 0;
    // The earliest next attempt of a queued or retrying delivery, if any. Thread-safe.
    virtual std::optional<std::int64_t> NextDueMs() const = 0;
};

// A store of reports, signals, alerts and their versions, the outbox, the audit log,
// tokens, sessions and settings.
class Store : public ReportIntake, public Outbox {
public:
    ~Store() override = default;

    // Thread-safe reads on a separate connection.
    virtual std::optional<StoredReportRow> Find(std::string_view id) const = 0;
    virtual std::int64_t CountReports() const = 0;
    virtual std::vector<std::string> ListIds() const = 0;
    // The most recently received reports, newest first.
    virtual std::vector<StoredReportRow> Recent(std::size_t limit) const = 0;

    // Replaces the grading setup (configuration reload). Thread-safe.
    virtual void SetGrading(std::shared_ptr<const GradingSetup> grading) = 0;
    // The grading in use (null when none is set). Thread-safe.
    virtual std::shared_ptr<const GradingSetup> Grading() const = 0;
    // Every signal with its reports and live alert (what a replay of new rules needs).
    virtual std::vector<StoredSignal> Signals() const = 0;

    // A coordinator sets a signal's level by hand (none, green, amber, red), or lifts the
    // override with level "": the alert follows, the override holds over new reports until
    // lifted, and the audit log keeps the reason. Blocks; thread-safe.
    virtual Result<SignalOverride> Override(std::int64_t signal_id, std::string_view level,
                                            std::string_view reason, std::string_view actor) = 0;
    // A coordinator's action on an alert: approve (a draft is issued; an issued
    // provisional alert is confirmed), update (a new version), cancel. With `wording`,
    // the sections a coordinator wrote replace the rendered ones in this and every later
    // version, sent as written. Thread-safe; returns once committed with its audit entry
    // naming `actor` (and which sections were written), or an Error saying why the action
    // makes no sense ("cannot approve KM-2026-0007: it is cancelled").
    virtual Result<Alert> Act(std::string_view reference, AlertAction action,
                              std::string_view actor, const AlertWording& wording = {}) = 0;

    // Expires every issued alert whose valid_until has passed by `now_ms`. Returns the
    // references expired. Thread-safe.
    virtual Result<std::vector<std::string>> ExpireDue(std::int64_t now_ms) = 0;

    // Alerts, newest first, and one by reference.
    virtual std::vector<Alert> Alerts() const = 0;
    virtual std::optional<Alert> FindAlert(std::string_view reference) const = 0;
    virtual std::int64_t CountSignals() const = 0;
    // Alerts matching `filter`, newest first, one page. Thread-safe.
    virtual AlertPage FindAlerts(const AlertFilter& filter) const = 0;
    // The whole record of one alert. Thread-safe.
    virtual std::optional<AlertRecord> FindAlertRecord(std::string_view reference) const = 0;

    // Checks the audit log's hash chain. Returns the number of entries, or an Error
    // naming the first entry that does not match.
    virtual Result<std::int64_t> VerifyAudit() const = 0;
    // Records a partner's acknowledgement of a delivery (idempotent: the first time is
    // kept), and what it said it did (issue 17 §4; KeptAnswer decides which answer stays),
    // with an audit entry for the acknowledgement and one for each answer that changes.
    // Blocks until committed; thread-safe.
    virtual Result<DeliveryRow> Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                            std::int64_t now_ms,
                                            const PartnerAnswer& answer = {}) = 0;
    // A recipient's request to stop these messages (the List-Unsubscribe link): recorded
    // in the audit log and sent to the coordinators, who own partners.toml, once per
    // delivery; a request made again only sets unsubscribe_already_requested. Nothing is
    // unsubscribed by itself: an alert service must not lose an A&E to a stray click.
    // Blocks until committed; thread-safe.
    virtual Result<DeliveryRow> RequestUnsubscribe(std::int64_t delivery_id,
                                                   std::int64_t now_ms) = 0;
    // A value ldisd keeps between starts in the settings table ("" if never set), and
    // setting it. Both run on the writer; block until done; thread-safe.
    virtual std::string Setting(const std::string& key) = 0;
    virtual Result<int> SetSetting(const std::string& key, const std::string& value) = 0;
    // A notice to the coordinators about no alert (issue 16 §3: an expected feed fell silent,
    // or came back): sent to every contact of the coordinators' partner on an enabled
    // channel, with its audit entry and a setting (the feed's state), in one transaction, so
    // that a restart neither repeats nor loses it. Returns the deliveries queued. Blocks until
    // committed; thread-safe.
    struct Notice {
        std::string_view kind;     // kKindFeedSilent, kKindFeedBack
        std::string detail;        // JSON: what the message renders
        std::string audit_action;  // "feed.silent", "feed.back"
        std::string subject;       // the audit entry's: "feed:custody/Medway custody"
        std::string setting_key;   // written with it ("" for none)
        std::string setting_value;
    };
    virtual Result<int> QueueNotice(const Notice& notice, std::int64_t now_ms) = 0;
    // Federation (issue 16 §1). A version a peer signed, verified: stored once (the same
    // version again is nothing new), decided by `for_level` (FederatedDecision), forwarded to
    // this instance's partners when so decided, with the peer's last accepted sequence
    // ("federation:last:{peer}") and an audit entry, in one transaction. Blocks; thread-safe.
    virtual Result<FederatedOutcome> ReceiveFederated(const FederatedVersion& version,
                                                      FederatedPolicy for_level,
                                                      const std::string& peer_name,
                                                      std::int64_t now_ms) = 0;
    // For each peer alert forwarded here in the last 30 days, how many of this instance's
    // partners were sent it and how many acknowledged (counts only). Thread-safe.
    virtual std::vector<ForwardedAcks> ForwardedAcknowledgements(std::int64_t now_ms) const = 0;
    // The peers' versions, newest first. Thread-safe.
    virtual std::vector<FederatedRow> Federated(std::size_t limit) const = 0;
    // A coordinator adopts (forwards to this instance's partners) or declines a version put
    // before them ("review"); an Error when it is not waiting. Blocks; thread-safe.
    virtual Result<FederatedRow> DecideFederated(std::int64_t id, bool adopt,
                                                 const std::string& actor, std::int64_t now_ms) = 0;
    // Deliveries of one alert ("" for all), oldest first. Thread-safe.
    virtual std::vector<DeliveryRow> Deliveries(std::string_view reference) const = 0;
    // The `limit` newest deliveries that failed for good, oldest first: the dashboard's list,
    // without reading every delivery ever made. Thread-safe.
    virtual std::vector<DeliveryRow> FailedDeliveries(std::size_t limit) const = 0;
    // One delivery by id. Thread-safe.
    virtual std::optional<DeliveryRow> FindDelivery(std::int64_t id) const = 0;
    // Deliveries by status. Thread-safe.
    virtual std::map<std::string, std::int64_t> DeliveryCounts() const = 0;
    // Counts for /metrics: alerts by "level/status", deliveries by "channel/status",
    // reports stored. Thread-safe.
    struct Counts {
        std::map<std::string, std::int64_t> alerts;
        std::map<std::string, std::int64_t> deliveries;
        std::int64_t reports = 0;
        std::int64_t last_report_ms = 0;  // when the newest report was received; 0 if none
        // Live red alerts with a partner whose acknowledgement time has passed unacknowledged.
        std::int64_t red_unacknowledged_overdue = 0;
        std::int64_t disk_free_bytes = -1;  // on the database's file system; -1 if unknown
        std::int64_t disk_size_bytes = -1;
    };
    virtual Counts CountAll() const = 0;
    // What happened between `from_ms` and `to_ms`, counted for the dashboard's trends and
    // the quarterly report (insight.hpp; issue 17 §1, §2). Real reports and alerts only;
    // the reports' evidence and setting only `detailed` (the quarterly report's). Thread-safe.
    virtual InsightData ReadInsight(std::int64_t from_ms, std::int64_t to_ms,
                                    bool detailed = true) const = 0;

    // Creates a bearer token for `name` with `role`; returns the secret, which is shown
    // once and stored only as its hash. Blocks until committed; thread-safe.
    virtual Result<std::string> CreateToken(std::string_view name, std::string_view role) = 0;
    // The live token whose secret this is, if any. Thread-safe.
    virtual std::optional<ApiToken> FindToken(std::string_view secret) const = 0;
    // One report as it was sent, for a coordinator who states why: the reveal is an audit
    // entry naming `actor` and `reason` before the row is returned. Blocks; thread-safe.
    virtual Result<StoredReportRow> Reveal(std::string_view id, std::string_view actor,
                                           std::string_view reason) = 0;
    // Retention (store.retention_days): every report received before `before_ms` whose
    // free text is still held loses it (WithoutFreeText), once, with one audit entry
    // naming `actor` and the count; the audit chain still verifies. Partners' notes of what
    // they did, answered before `before_ms`, go too (their answers stay), and the photos of
    // those reports, with every photo no report named within a day of its upload (so a
    // `before_ms` of 0 purges only those). Returns the number of reports changed. Blocks;
    // thread-safe.
    virtual Result<int> PurgeFreeText(std::int64_t before_ms, std::int64_t now_ms,
                                      std::string_view actor) = 0;
    // Keeps a photo cleaned by CleanUpload (photo.hpp), uploaded by `uploaded_by`, under a
    // new random id, with an audit entry; no report names it yet (a report's `photos` does,
    // when it is stored). Blocks until committed; thread-safe.
    virtual Result<PhotoRow> SavePhoto(const std::string& jpeg, int width, int height,
                                       std::string_view uploaded_by) = 0;
    // One photo: its row, and its JPEG when `with_jpeg`. Thread-safe.
    virtual std::optional<std::pair<PhotoRow, std::string>> FindPhoto(std::string_view id,
                                                                      bool with_jpeg) const = 0;
    // The photos of the reports of an alert's signal, oldest first. Thread-safe.
    virtual std::vector<PhotoRow> AlertPhotos(std::string_view reference) const = 0;
    // Every token, oldest first, with the number of live sessions of each. Thread-safe.
    virtual std::vector<TokenRow> Tokens() const = 0;
    // Revokes a token and ends every web session signed in with it, at once, with an audit
    // entry naming `actor`. An Error when there is no such live token. Blocks; thread-safe.
    virtual Result<int> RevokeToken(std::int64_t id, std::string_view actor) = 0;

    // Stores a new web session. At most `max_per_token` live sessions per token and
    // `max_total` in all: the oldest beyond either are ended. Blocks; thread-safe.
    virtual Result<int> CreateSession(const WebSession& session, std::size_t max_per_token,
                                      std::size_t max_total) = 0;
    // The live session with this id hash whose token is not revoked, if any. Thread-safe.
    virtual std::optional<WebSession> FindSession(std::string_view id_hash,
                                                  std::int64_t now_ms) const = 0;
    // Ends one session, and every expired one. Blocks; thread-safe.
    virtual Result<int> EndSession(std::string_view id_hash, std::int64_t now_ms) = 0;
};

}  // namespace ldis::engine
