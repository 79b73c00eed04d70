// Reports taken in on PostgreSQL, graded and alerted on in the transaction that stores
// them, by the same pipeline as on SQLite (pipeline.hpp): the store reads, the pipeline
// decides, the store writes down. See PostgresIntake in postgres.hpp for the locks.
#include <chrono>
#include <map>
#include <mutex>

#include "../audit_chain.hpp"
#include "../rows.hpp"
#include "impl.hpp"
#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/pipeline.hpp"

namespace ldis::engine {
namespace {

// The advisory locks' keys: "LDIS" and a number, or a signal key's hash.
constexpr std::int64_t kNumberingLock = (std::int64_t{0x4c444953} << 32) | 2;
constexpr std::int64_t kAuditLock = (std::int64_t{0x4c444953} << 32) | 3;

using Params = std::vector<std::optional<std::string>>;

// A statement that failed: the transaction is rolled back and the report not taken.
struct Failed {
    Error error;
};

std::string Int(std::int64_t v) {
    return std::to_string(v);
}
std::optional<std::string> TextOrNull(const std::string& s) {
    if (s.empty()) return std::nullopt;
    return s;
}

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct AuditEntry {
    std::string actor, action, subject, detail;
};

}  // namespace

struct PostgresIntake::Impl {
    Options options;
    std::unique_ptr<PostgresDatabase> database;
    std::mutex mutex;  // one transaction at a time on this instance's connection
    std::vector<AuditEntry> audit;

    PGconn* c() const { return database->impl_->connection.get(); }

    pg::Rows Run(std::string_view what, const std::string& sql, const Params& params = {}) {
        auto r = pg::Exec(c(), what, sql, params);
        if (!r.ok()) throw Failed{r.error()};
        return std::move(r).value();
    }

    StoredReport Take(const Report& r, std::string_view channel, std::int64_t now);
    void GradeInto(const Report& r, std::int64_t seq, const std::string& reference,
                   std::int64_t now, const GradingSetup& g, StoredReport& out);
    void ReviseAlert(std::int64_t signal_id, const std::string& signal_ref, const Regrading& rg,
                     const std::vector<std::string>& documents, const Report& r,
                     const std::string& report_reference, const GradingSetup& g, std::int64_t now,
                     StoredReport& out);
    void QueueDeliveries(std::int64_t alert_id, int version, const VersionToRoute& what,
                         const GradingSetup& g, std::int64_t now);
    void AppendAudit(std::int64_t now);
};

PostgresIntake::PostgresIntake(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresIntake::~PostgresIntake() = default;

Result<std::unique_ptr<PostgresIntake>> PostgresIntake::Open(Options options) {
    auto db = PostgresDatabase::Open(options.url);
    if (!db.ok()) return db.error();
    auto impl = std::make_unique<Impl>();
    impl->options = std::move(options);
    impl->database = std::move(db).value();
    return std::unique_ptr<PostgresIntake>(new PostgresIntake(std::move(impl)));
}

Result<StoredReport> PostgresIntake::Insert(const Report& report, std::string_view channel) {
    std::lock_guard lock(impl_->mutex);
    impl_->audit.clear();
    try {
        impl_->Run("begin the report's transaction", "BEGIN");
        StoredReport out = impl_->Take(report, channel, NowMs());
        impl_->Run("commit the report", "COMMIT");
        return out;
    } catch (const Failed& f) {
        PQclear(PQexec(impl_->c(), "ROLLBACK"));
        impl_->audit.clear();
        return Error{impl_->database->where() + ": " + f.error.message};
    }
}

StoredReport PostgresIntake::Impl::Take(const Report& r, std::string_view channel,
                                        std::int64_t now) {
    const auto g = options.grading;
    // Signal first (the lock order): the key's lock is taken before anything is written.
    if (g) {
        const SignalFacts own = FactsOf({r.document}, g->substances);
        const SignalKey key = KeyOf(r, own, g->substances, now);
        Run("take the signal's lock", "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            {"signal\x1f" + key.family + "\x1f" + key.district});
    }
    const std::int64_t seq =
        Run("number the report", "SELECT nextval(pg_get_serial_sequence('reports', 'seq'))")
            .integer(0, 0);
    const std::string reference = ReportReference(options.reference_prefix, seq);
    const auto inserted =
        Run("store the report",
            "INSERT INTO reports (seq, id, reference, received_at_ms, channel, submitted_at, "
            "observed_at, source_type, organisation, authority, district, ward, ward_current, "
            "establishment, evidence, document) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
            "$11, $12, $13, $14, $15, $16) ON CONFLICT (id) DO NOTHING RETURNING seq",
            {Int(seq), r.id, reference, Int(now), std::string(channel), r.submitted_at,
             TextOrNull(r.observed_at), r.source_type, r.organisation, r.authority, r.district,
             TextOrNull(r.ward), TextOrNull(r.ward_current), TextOrNull(r.establishment),
             r.evidence, r.document});
    StoredReport out{r.id, reference, false, {}, {}};
    if (inserted.size() == 0) {
        // Stored before (here or at another instance): its reference and its signal's grade.
        const auto first =
            Run("find the report stored before",
                "SELECT r.reference, coalesce(s.level, ''), coalesce((SELECT a.reference FROM "
                "alerts a WHERE a.signal_id = s.id AND a.status IN ('draft','issued','updated') "
                "ORDER BY a.id DESC LIMIT 1), '') FROM reports r LEFT JOIN signal_reports sr ON "
                "sr.report_seq = r.seq LEFT JOIN signals s ON s.id = sr.signal_id WHERE r.id = $1",
                {r.id});
        out.duplicate = true;
        if (first.size() > 0) {
            out.reference = std::string(first.text(0, 0));
            out.level = std::string(first.text(0, 1));
            out.alert_reference = std::string(first.text(0, 2));
        }
        return out;
    }
    audit.push_back({"ldisd", "report.accepted", reference,
                     "{\"id\":\"" + r.id + "\",\"channel\":\"" + std::string(channel) + "\"}"});
    if (g) GradeInto(r, seq, reference, now, *g, out);
    AppendAudit(now);
    return out;
}

void PostgresIntake::Impl::GradeInto(const Report& r, std::int64_t seq,
                                     const std::string& reference, std::int64_t now,
                                     const GradingSetup& g, StoredReport& out) {
    const SignalFacts own = FactsOf({r.document}, g.substances);
    const SignalKey key = KeyOf(r, own, g.substances, now);
    // Correlate: the newest signal of the key within the window, either side (the one
    // Correlate would choose), read under the key's lock.
    std::vector<SignalSpan> candidates;
    const auto found = Run(
        "find the report's signal",
        "SELECT id, first_seen_ms, last_seen_ms FROM signals WHERE family = $1 AND district = "
        "$2 AND last_seen_ms >= $3 AND first_seen_ms <= $4 ORDER BY id DESC LIMIT 1",
        {key.family, key.district, Int(key.seen_ms - g.window_ms), Int(key.seen_ms + g.window_ms)});
    for (int i = 0; i < found.size(); ++i)
        candidates.push_back({found.integer(i, 0), found.integer(i, 1), found.integer(i, 2)});
    const std::optional<std::int64_t> joins = Correlate(key, candidates, g.window_ms);
    std::int64_t signal_id = 0;
    if (joins) {
        signal_id = *joins;
        Run("extend the signal",
            "UPDATE signals SET first_seen_ms = LEAST(first_seen_ms, $2), last_seen_ms = "
            "GREATEST(last_seen_ms, $2) WHERE id = $1",
            {Int(signal_id), Int(key.seen_ms)});
    } else {
        signal_id = Run("open a signal",
                        "INSERT INTO signals (family, authority, district, opened_at_ms, "
                        "first_seen_ms, last_seen_ms) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                        {key.family, r.authority, key.district, Int(now), Int(key.seen_ms)})
                        .integer(0, 0);
    }
    Run("join the report to its signal",
        "INSERT INTO signal_reports (signal_id, report_seq) VALUES ($1, $2)",
        {Int(signal_id), Int(seq)});
    const bool new_source =
        Run("count the report's organisation",
            "INSERT INTO signal_sources (signal_id, organisation) VALUES ($1, $2) ON CONFLICT DO "
            "NOTHING RETURNING 1",
            {Int(signal_id), r.organisation})
            .size() == 1;
    // Regrade: the stored facts and a coordinator's override, grown by the report's.
    const auto row = Run("read the signal",
                         "SELECT coalesce(override_level, ''), coalesce(override_reason, ''), "
                         "coalesce(override_by, ''), coalesce(override_at_ms, 0), level, facts "
                         "FROM signals WHERE id = $1",
                         {Int(signal_id)});
    SignalOverride held;
    held.signal_id = signal_id;
    held.level = std::string(row.text(0, 0));
    held.reason = std::string(row.text(0, 1));
    held.by = std::string(row.text(0, 2));
    held.at_ms = row.integer(0, 3);
    held.rules_level = std::string(row.text(0, 4));
    const Regrading rg =
        Regrade(FactsFromJson(row.text(0, 5)), own, new_source, held, g.rules, g.substances);
    const std::string facts_text = FactsToJson(rg.facts);
    Run("grade the signal",
        "UPDATE signals SET level = $2, confidence = $3, facts = $4 WHERE id = $1",
        {Int(signal_id), std::string(ToString(rg.rules.level)), rg.rules.confidence, facts_text});
    const std::string signal_ref = "signal-" + Int(signal_id);
    audit.push_back({"ldisd", "signal.graded", signal_ref,
                     boost::json::serialize(
                         boost::json::object{{"report", reference},
                                             {"level", std::string(ToString(rg.rules.level))},
                                             {"confidence", rg.rules.confidence},
                                             {"reports", rg.facts.numbers.at("reports")},
                                             {"rules", FiredJson(rg.rules)}})});
    out.level = std::string(ToString(rg.shown.level));
    // The latest 20 reports, oldest first: what the alert text lists.
    std::vector<std::string> documents;
    const auto latest = Run("read the signal's latest reports",
                            "SELECT document FROM reports WHERE seq IN (SELECT report_seq FROM "
                            "signal_reports WHERE signal_id = $1 ORDER BY report_seq DESC LIMIT "
                            "20) ORDER BY seq",
                            {Int(signal_id)});
    for (int i = 0; i < latest.size(); ++i) documents.emplace_back(latest.text(i, 0));
    ReviseAlert(signal_id, signal_ref, rg, documents, r, reference, g, now, out);
}

void PostgresIntake::Impl::ReviseAlert(std::int64_t signal_id, const std::string& signal_ref,
                                       const Regrading& rg,
                                       const std::vector<std::string>& documents, const Report& r,
                                       const std::string& report_reference, const GradingSetup& g,
                                       std::int64_t now, StoredReport& out) {
    const auto current = Run("read the signal's live alert",
                             "SELECT id, reference, status, version, level, routed_at_ms FROM "
                             "alerts WHERE signal_id = $1 AND status IN "
                             "('draft','issued','updated') ORDER BY id DESC LIMIT 1",
                             {Int(signal_id)});
    std::optional<LiveAlert> live;
    std::int64_t alert_id = 0;
    std::string alert_reference;
    if (current.size() > 0) {
        alert_id = current.integer(0, 0);
        alert_reference = std::string(current.text(0, 1));
        live.emplace();
        ParseAlertStatus(current.text(0, 2), live->status);
        live->version = static_cast<int>(current.integer(0, 3));
        ParseLevel(current.text(0, 4), live->level);
        live->routed_at_ms = current.integer(0, 5);
    }
    const Grade& shown = rg.shown;
    const std::string level(ToString(shown.level));
    const bool trusted = TrustedSource(r.trust, r.source_type, g.policy);
    const VersionDecision next =
        NextVersion(live, shown.level, g.policy, trusted, now, g.dispatch.update_interval_ms);
    if (next.kind == VersionDecision::Kind::kNone) return;
    const std::string status(ToString(next.status));
    if (next.kind == VersionDecision::Kind::kCreate) {
        // Numbered under a lock held to the commit: counted and used in one transaction, so
        // no two instances take one number and a rollback leaves no gap.
        Run("take the numbering lock", "SELECT pg_advisory_xact_lock($1)", {Int(kNumberingLock)});
        const int year = YearOf(now);
        const std::string prefix = options.reference_prefix + "-" + Int(year) + "-";
        const std::int64_t n =
            Run("count this year's alerts",
                "SELECT count(*) FROM alerts WHERE starts_with(reference, $1)", {prefix})
                .integer(0, 0);
        alert_reference = AlertReference(options.reference_prefix, year, n);
        const bool issued = next.status == AlertStatus::kIssued;
        alert_id =
            Run("open the alert",
                "INSERT INTO alerts (reference, signal_id, status, level, confidence, "
                "audience, version, provisional, created_at_ms, updated_at_ms, "
                "issued_at_ms, valid_until_ms) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, "
                "$8, $8, $9, $10) RETURNING id",
                {alert_reference, Int(signal_id), status, level, shown.confidence, next.audience,
                 Int(next.provisional ? 1 : 0), Int(now),
                 issued ? std::optional<std::string>(Int(now)) : std::nullopt,
                 issued ? std::optional<std::string>(Int(now + g.valid_for_ms)) : std::nullopt})
                .integer(0, 0);
    } else {
        Run("revise the alert",
            "UPDATE alerts SET status = $2, level = $3, confidence = $4, version = $5, "
            "updated_at_ms = $6, provisional = CASE WHEN status = 'draft' THEN $7 ELSE "
            "provisional END, issued_at_ms = coalesce(issued_at_ms, CASE WHEN $2 <> 'draft' "
            "THEN $6::bigint END), valid_until_ms = coalesce(valid_until_ms, CASE WHEN $2 <> "
            "'draft' THEN $6::bigint + $8::bigint END) WHERE id = $1",
            {Int(alert_id), status, level, shown.confidence, Int(next.version), Int(now),
             Int(next.provisional ? 1 : 0), Int(g.valid_for_ms)});
    }
    AlertMeta meta;
    meta.reference = alert_reference;
    meta.version = next.version;
    meta.status = status;
    meta.provisional = next.provisional;
    meta.authority = r.authority;
    meta.district = r.district;
    meta.public_url = g.public_url;
    const auto history = Run("read the alert's history",
                             "SELECT version, status, level FROM alert_versions WHERE alert_id "
                             "= $1 ORDER BY version DESC LIMIT 9",
                             {Int(alert_id)});
    for (int i = 0; i < history.size(); ++i) {
        meta.history.insert(meta.history.begin(),
                            {static_cast<int>(history.integer(i, 0)),
                             std::string(history.text(i, 1)), std::string(history.text(i, 2))});
    }
    const RenderedAlert rendered =
        RenderAlert(g.templates, meta, documents, rg.facts, shown, g.substances);
    std::string body = rendered.ToJson();
    // What a coordinator wrote stays in every later version.
    const auto wording = Run("read the alert's wording", "SELECT wording FROM alerts WHERE id = $1",
                             {Int(alert_id)});
    if (wording.size() > 0 && wording.text(0, 0) != "{}")
        body = WithWording(body, wording.text(0, 0));
    Run("write the version",
        "INSERT INTO alert_versions (alert_id, version, status, level, confidence, rules, facts, "
        "created_at_ms, body, scrubbed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        {Int(alert_id), Int(next.version), status, level, shown.confidence, RulesJson(shown),
         FactsToJson(rg.facts), Int(now), body, Int(rendered.scrubbed ? 1 : 0)});
    if (next.route_now) {
        VersionToRoute what;
        what.status = next.status;
        what.level = shown.level;
        what.authority = r.authority;
        what.district = r.district;
        what.audience = next.audience;
        what.ask_coordinators = next.ask_coordinators;
        what.page = next.page;
        QueueDeliveries(alert_id, next.version, what, g, now);
        Run("mark the version routed",
            "UPDATE alerts SET routed_version = $2, routed_at_ms = $3 WHERE id = $1",
            {Int(alert_id), Int(next.version), Int(now)});
    }
    audit.push_back({"ldisd", next.audit_action, alert_reference,
                     boost::json::serialize(boost::json::object{{"version", next.version},
                                                                {"status", status},
                                                                {"level", level},
                                                                {"provisional", next.provisional},
                                                                {"signal", signal_ref},
                                                                {"report", report_reference}})});
    out.alert_reference = alert_reference;
}

void PostgresIntake::Impl::QueueDeliveries(std::int64_t alert_id, int version,
                                           const VersionToRoute& what, const GradingSetup& g,
                                           std::int64_t now) {
    std::vector<Recipient> earlier;
    if (what.status != AlertStatus::kDraft && what.status != AlertStatus::kExpired) {
        // Each slot's latest row: the contact that reached it last (after any fallback).
        const auto rows = Run("read the alert's earlier recipients",
                              "SELECT partner, contact, slot FROM deliveries WHERE alert_id = "
                              "$1 AND kind = 'alert' ORDER BY id",
                              {Int(alert_id)});
        std::map<std::string, std::size_t> at;
        for (int i = 0; i < rows.size(); ++i) {
            Recipient rc{std::string(rows.text(i, 0)), std::string(rows.text(i, 1)),
                         std::string(rows.text(i, 2))};
            if (auto it = at.find(rc.slot); it != at.end()) {
                earlier[it->second] = std::move(rc);
            } else {
                at[rc.slot] = earlier.size();
                earlier.push_back(std::move(rc));
            }
        }
    }
    for (const Delivery& d : PlanDeliveries(what, earlier, g.partners.get(), g.dispatch, now)) {
        Run("queue a delivery",
            "INSERT INTO deliveries (alert_id, version, kind, partner, contact, slot, channel, "
            "address, status, next_attempt_ms, created_at_ms, updated_at_ms, ack_due_ms, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $9, $9, $10, $11)",
            {Int(alert_id), Int(version), std::string(d.kind), d.partner, d.contact, d.slot,
             std::string(ToString(d.channel)), d.address, Int(now),
             d.ack_due_ms > 0 ? std::optional<std::string>(Int(d.ack_due_ms)) : std::nullopt,
             d.detail});
    }
}

// Last (the lock order): the chain's head is read and extended under its lock, held to the
// commit, so entries from every instance make one chain.
void PostgresIntake::Impl::AppendAudit(std::int64_t now) {
    if (audit.empty()) return;
    Run("take the audit lock", "SELECT pg_advisory_xact_lock($1)", {Int(kAuditLock)});
    const auto head =
        Run("read the audit chain's head", "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    std::int64_t seq = head.size() > 0 ? head.integer(0, 0) : 0;
    std::string prev = head.size() > 0 ? std::string(head.text(0, 1)) : std::string(64, '0');
    for (const auto& e : audit) {
        ++seq;
        const std::string hash = AuditHash(prev, seq, now, e.actor, e.action, e.subject, e.detail);
        Run("append to the audit log",
            "INSERT INTO audit (seq, at_ms, actor, action, subject, detail, prev_hash, hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            {Int(seq), Int(now), e.actor, e.action, e.subject, e.detail, prev, hash});
        prev = hash;
    }
    audit.clear();
}

}  // namespace ldis::engine
