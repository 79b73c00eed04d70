// Reports taken in on PostgreSQL, graded and alerted on in the transaction that stores
// them, by the same pipeline as on SQLite (pipeline.hpp): the store reads, the pipeline
// decides, the store writes down. See PostgresStore in postgres.hpp for the locks.
#include <boost/json.hpp>

#include "../rows.hpp"
#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;
using pgstore::kNumberingLock;
using pgstore::TextOrNull;

StoredReport PostgresStore::Impl::Take(const Report& r, std::string_view channel,
                                       std::int64_t now) {
    const auto g = CurrentGrading();
    // Signal first (the lock order): the key's lock is taken before anything is written.
    if (g) {
        const SignalFacts own = FactsOf({r.document}, g->substances);
        const SignalKey key = KeyOf(r, own, g->substances, now);
        intake->Run("take the signal's lock",
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    {"signal\x1f" + key.family + "\x1f" + key.district});
    }
    // Stored before (here or at another instance): its reference and its signal's grade.
    const auto stored_before = [&]() {
        const auto first = intake->Run(
            "find the report stored before",
            "SELECT r.reference, coalesce(s.level, ''), coalesce((SELECT a.reference FROM "
            "alerts a WHERE a.signal_id = s.id AND a.status IN ('draft','issued','updated') "
            "ORDER BY a.id DESC LIMIT 1), '') FROM reports r LEFT JOIN signal_reports sr ON "
            "sr.report_seq = r.seq LEFT JOIN signals s ON s.id = sr.signal_id WHERE r.id = $1",
            {r.id});
        StoredReport out{r.id, "", true, {}, {}};
        if (first.size() > 0) {
            out.reference = std::string(first.text(0, 0));
            out.level = std::string(first.text(0, 1));
            out.alert_reference = std::string(first.text(0, 2));
        }
        return out;
    };
    // A redelivered report is found before it takes a number, so receipts' numbers have no
    // gap for it; only the same report at two instances at the same moment spends one.
    if (intake->Run("look for the report", "SELECT 1 FROM reports WHERE id = $1", {r.id}).size() >
        0)
        return stored_before();
    const std::int64_t seq =
        intake->Run("number the report", "SELECT nextval(pg_get_serial_sequence('reports', 'seq'))")
            .integer(0, 0);
    const std::string reference = ReportReference(options.reference_prefix, seq);
    const auto inserted = intake->Run(
        "store the report",
        "INSERT INTO reports (seq, id, reference, received_at_ms, channel, submitted_at, "
        "observed_at, source_type, organisation, authority, district, ward, ward_current, "
        "establishment, evidence, document, drill) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (id) DO NOTHING RETURNING seq",
        {Int(seq), r.id, reference, Int(now), std::string(channel), r.submitted_at,
         TextOrNull(r.observed_at), r.source_type, r.organisation, r.authority, r.district,
         TextOrNull(r.ward), TextOrNull(r.ward_current), TextOrNull(r.establishment), r.evidence,
         r.document, std::string(ToString(r.drill))});
    if (inserted.size() == 0) return stored_before();
    StoredReport out{r.id, reference, false, {}, {}};
    intake->Audit("ldisd", "report.accepted", reference,
                  "{\"id\":\"" + r.id + "\",\"channel\":\"" + std::string(channel) + "\"}");
    // The photos it names become its own, if no other report took them first.
    for (const auto& id : r.photos)
        intake->Run("name the report's photos",
                    "UPDATE photos SET report_id = $2 WHERE id = $1 AND report_id IS NULL",
                    {id, r.id});
    if (g) GradeInto(r, seq, reference, now, *g, out);
    return out;
}

void PostgresStore::Impl::GradeInto(const Report& r, std::int64_t seq, const std::string& reference,
                                    std::int64_t now, const GradingSetup& g, StoredReport& out) {
    const SignalFacts own = FactsOf({r.document}, g.substances);
    const SignalKey key = KeyOf(r, own, g.substances, now);
    // Correlate: the newest signal of the key within the window, either side (the one
    // Correlate would choose), read under the key's lock.
    std::vector<SignalSpan> candidates;
    const auto found = intake->Run(
        "find the report's signal",
        "SELECT id, first_seen_ms, last_seen_ms FROM signals WHERE family = $1 AND district = "
        "$2 AND last_seen_ms >= $3 AND first_seen_ms <= $4 AND drill = $5 ORDER BY id DESC "
        "LIMIT 1",
        {key.family, key.district, Int(key.seen_ms - g.window_ms), Int(key.seen_ms + g.window_ms),
         std::string(ToString(key.drill))});
    for (int i = 0; i < found.size(); ++i)
        candidates.push_back(
            {found.integer(i, 0), found.integer(i, 1), found.integer(i, 2), key.drill});
    const std::optional<std::int64_t> joins = Correlate(key, candidates, g.window_ms);
    std::int64_t signal_id = 0;
    if (joins) {
        signal_id = *joins;
        intake->Run("extend the signal",
                    "UPDATE signals SET first_seen_ms = LEAST(first_seen_ms, $2), last_seen_ms = "
                    "GREATEST(last_seen_ms, $2) WHERE id = $1",
                    {Int(signal_id), Int(key.seen_ms)});
    } else {
        signal_id =
            intake
                ->Run("open a signal",
                      "INSERT INTO signals (family, authority, district, opened_at_ms, "
                      "first_seen_ms, last_seen_ms, drill) VALUES ($1, $2, $3, $4, $5, $5, $6) "
                      "RETURNING id",
                      {key.family, r.authority, key.district, Int(now), Int(key.seen_ms),
                       std::string(ToString(key.drill))})
                .integer(0, 0);
    }
    intake->Run("join the report to its signal",
                "INSERT INTO signal_reports (signal_id, report_seq) VALUES ($1, $2)",
                {Int(signal_id), Int(seq)});
    const bool new_source = intake
                                ->Run("count the report's organisation",
                                      "INSERT INTO signal_sources (signal_id, organisation) VALUES "
                                      "($1, $2) ON CONFLICT DO "
                                      "NOTHING RETURNING 1",
                                      {Int(signal_id), r.organisation})
                                .size() == 1;
    // Regrade: the stored facts and a coordinator's override, grown by the report's.
    std::string stored_facts;
    const SignalOverride held = ReadOverride(signal_id, &stored_facts);
    const Regrading rg =
        Regrade(FactsFromJson(stored_facts), own, new_source, held, g.rules, g.substances);
    const std::string facts_text = FactsToJson(rg.facts);
    intake->Run(
        "grade the signal",
        "UPDATE signals SET level = $2, confidence = $3, facts = $4 WHERE id = $1",
        {Int(signal_id), std::string(ToString(rg.rules.level)), rg.rules.confidence, facts_text});
    const std::string signal_ref = "signal-" + Int(signal_id);
    intake->Audit(
        "ldisd", "signal.graded", signal_ref,
        boost::json::serialize(boost::json::object{{"report", reference},
                                                   {"level", std::string(ToString(rg.rules.level))},
                                                   {"confidence", rg.rules.confidence},
                                                   {"reports", rg.facts.numbers.at("reports")},
                                                   {"rules", FiredJson(rg.rules)}}));
    out.level = std::string(ToString(rg.shown.level));
    Revision rv;
    rv.signal_id = signal_id;
    rv.signal_ref = signal_ref;
    rv.shown = rg.shown;
    rv.facts = rg.facts;
    rv.documents = LatestDocuments(signal_id);
    rv.authority = r.authority;
    rv.district = r.district;
    rv.trusted = TrustedSource(r.trust, r.source_type, g.policy);
    rv.report_reference = reference;
    out.alert_reference = ReviseAlert(rv, g, now);
}

// The latest 20 reports of a signal, oldest first: what the alert text lists.
std::vector<std::string> PostgresStore::Impl::LatestDocuments(std::int64_t signal_id) {
    std::vector<std::string> documents;
    const auto latest = intake->Run("read the signal's latest reports",
                                    "SELECT document FROM reports WHERE seq IN (SELECT report_seq "
                                    "FROM signal_reports WHERE signal_id = $1 ORDER BY report_seq "
                                    "DESC LIMIT 20) ORDER BY seq",
                                    {Int(signal_id)});
    for (int i = 0; i < latest.size(); ++i) documents.emplace_back(latest.text(i, 0));
    return documents;
}

std::string PostgresStore::Impl::ReviseAlert(const Revision& rv, const GradingSetup& g,
                                             std::int64_t now) {
    const std::int64_t signal_id = rv.signal_id;
    const auto current =
        intake->Run("read the signal's live alert",
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
    const Grade& shown = rv.shown;
    const std::string level(ToString(shown.level));
    const VersionDecision next =
        NextVersion(live, shown.level, g.policy, rv.trusted, now, g.dispatch.update_interval_ms);
    if (next.kind == VersionDecision::Kind::kNone) return {};
    const std::string status(ToString(next.status));
    if (next.kind == VersionDecision::Kind::kCreate) {
        // Numbered under a lock held to the commit: counted and used in one transaction, so
        // no two instances take one number and a rollback leaves no gap.
        intake->Run("take the numbering lock", "SELECT pg_advisory_xact_lock($1)",
                    {Int(kNumberingLock)});
        const int year = YearOf(now);
        const std::string prefix = options.reference_prefix + "-" + Int(year) + "-";
        const std::int64_t n =
            intake
                ->Run("count this year's alerts",
                      "SELECT count(*) FROM alerts WHERE starts_with(reference, $1)", {prefix})
                .integer(0, 0);
        alert_reference = AlertReference(options.reference_prefix, year, n);
        const bool issued = next.status == AlertStatus::kIssued;
        alert_id = intake
                       ->Run("open the alert",
                             "INSERT INTO alerts (reference, signal_id, status, level, confidence, "
                             "audience, version, provisional, created_at_ms, updated_at_ms, "
                             "issued_at_ms, valid_until_ms) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, "
                             "$8, $8, $9, $10) RETURNING id",
                             {alert_reference, Int(signal_id), status, level, shown.confidence,
                              next.audience, Int(next.provisional ? 1 : 0), Int(now),
                              issued ? std::optional<std::string>(Int(now)) : std::nullopt,
                              issued ? std::optional<std::string>(Int(now + g.valid_for_ms))
                                     : std::nullopt})
                       .integer(0, 0);
    } else {
        intake->Run(
            "revise the alert",
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
    meta.authority = rv.authority;
    meta.district = rv.district;
    meta.public_url = g.public_url;
    meta.history = HistoryBefore(alert_id, next.version);
    const RenderedAlert rendered =
        RenderAlert(g.templates, meta, rv.documents, rv.facts, shown, g.substances);
    std::string body = rendered.ToJson();
    // What a coordinator wrote stays in every later version.
    const auto wording = intake->Run("read the alert's wording",
                                     "SELECT wording FROM alerts WHERE id = $1", {Int(alert_id)});
    if (wording.size() > 0 && wording.text(0, 0) != "{}")
        body = WithWording(body, wording.text(0, 0));
    intake->Run(
        "write the version",
        "INSERT INTO alert_versions (alert_id, version, status, level, confidence, rules, facts, "
        "created_at_ms, body, scrubbed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        {Int(alert_id), Int(next.version), status, level, shown.confidence, RulesJson(shown),
         FactsToJson(rv.facts), Int(now), body, Int(rendered.scrubbed ? 1 : 0)});
    if (next.route_now) {
        VersionToRoute what;
        what.status = next.status;
        what.level = shown.level;
        what.authority = rv.authority;
        what.district = rv.district;
        what.audience = next.audience;
        what.ask_coordinators = next.ask_coordinators;
        what.page = next.page;
        intake->QueueDeliveries(alert_id, next.version, what, g, now);
        intake->Run("mark the version routed",
                    "UPDATE alerts SET routed_version = $2, routed_at_ms = $3 WHERE id = $1",
                    {Int(alert_id), Int(next.version), Int(now)});
    }
    intake->Audit(rv.actor, next.audit_action, alert_reference,
                  boost::json::serialize(boost::json::object{{"version", next.version},
                                                             {"status", status},
                                                             {"level", level},
                                                             {"provisional", next.provisional},
                                                             {"signal", rv.signal_ref},
                                                             {"report", rv.report_reference}}));
    return alert_reference;
}

}  // namespace ldis::engine
