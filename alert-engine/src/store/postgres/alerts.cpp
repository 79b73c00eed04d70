// Coordinators' actions on alerts, overrides of a signal's level, expiry, the signals a
// replay reads, and the grading in force, on PostgreSQL. Each action is one transaction in
// intake's connection, under the same locks as a report (its signal's key first), so an
// action and a report of the same signal never interleave.
#include <boost/json.hpp>

#include <algorithm>

#include "../rows.hpp"
#include "../sql/photos_sql.hpp"
#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;

std::shared_ptr<const GradingSetup> PostgresStore::Impl::CurrentGrading() const {
    std::lock_guard lock(grading_mutex);
    return options.grading;
}

void PostgresStore::SetGrading(std::shared_ptr<const GradingSetup> grading) {
    std::lock_guard lock(impl_->grading_mutex);
    impl_->options.grading = std::move(grading);
}

std::shared_ptr<const GradingSetup> PostgresStore::Grading() const {
    return impl_->CurrentGrading();
}

// The latest version's rules and facts, copied into a new version row.
void PostgresStore::Impl::AddVersion(std::int64_t alert_id, int version, std::string_view status,
                                     std::int64_t now) {
    intake->Run("copy the latest version",
                "INSERT INTO alert_versions (alert_id, version, status, level, confidence, rules, "
                "facts, body, scrubbed, created_at_ms) SELECT alert_id, $2, $3, level, "
                "confidence, rules, facts, body, scrubbed, $4 FROM alert_versions WHERE alert_id "
                "= $1 ORDER BY version DESC LIMIT 1",
                {Int(alert_id), Int(version), std::string(status), Int(now)});
}

SignalOverride PostgresStore::Impl::ReadOverride(std::int64_t signal_id, std::string* facts) {
    const auto row =
        intake->Run("read the signal",
                    "SELECT coalesce(override_level, ''), coalesce(override_reason, ''), "
                    "coalesce(override_by, ''), coalesce(override_at_ms, 0), level, facts "
                    "FROM signals WHERE id = $1",
                    {Int(signal_id)});
    SignalOverride held;
    if (row.size() == 0) return held;
    held.signal_id = signal_id;
    held.level = std::string(row.text(0, 0));
    held.reason = std::string(row.text(0, 1));
    held.by = std::string(row.text(0, 2));
    held.at_ms = row.integer(0, 3);
    held.rules_level = std::string(row.text(0, 4));
    if (facts) *facts = std::string(row.text(0, 5));
    return held;
}

std::vector<AlertVersionLine> PostgresStore::Impl::HistoryBefore(std::int64_t alert_id,
                                                                 int version) {
    const auto rows = intake->Run("read the alert's history",
                                  "SELECT version, status, level FROM alert_versions WHERE "
                                  "alert_id = $1 AND version < $2 ORDER BY version DESC LIMIT 9",
                                  {Int(alert_id), Int(version)});
    std::vector<AlertVersionLine> out;
    for (int i = 0; i < rows.size(); ++i)
        out.insert(out.begin(), {static_cast<int>(rows.integer(i, 0)), std::string(rows.text(i, 1)),
                                 std::string(rows.text(i, 2))});
    return out;
}

void PostgresStore::Impl::RenderAgain(std::int64_t alert_id, int version, const GradingSetup& g) {
    const auto row = intake->Run(
        "read the version to render again",
        "SELECT a.signal_id, a.reference, a.provisional, a.wording, s.authority, s.district, "
        "v.status, v.level, v.facts FROM alerts a JOIN signals s ON s.id = a.signal_id JOIN "
        "alert_versions v ON v.alert_id = a.id AND v.version = $2 WHERE a.id = $1",
        {Int(alert_id), Int(version)});
    if (row.size() == 0) return;
    AlertMeta meta;
    meta.reference = std::string(row.text(0, 1));
    meta.version = version;
    meta.provisional = row.integer(0, 2) != 0;
    meta.authority = std::string(row.text(0, 4));
    meta.district = std::string(row.text(0, 5));
    meta.status = std::string(row.text(0, 6));
    meta.public_url = g.public_url;
    meta.history = HistoryBefore(alert_id, version);
    const SignalOverride held = ReadOverride(row.integer(0, 0));
    const RenderedAlert rendered =
        RenderVersionAgain(g.templates, g.rules, g.substances, meta,
                           LatestDocuments(held.signal_id), row.text(0, 8), row.text(0, 7), held);
    std::string body = rendered.ToJson();
    if (const std::string_view wording = row.text(0, 3); !wording.empty() && wording != "{}")
        body = WithWording(body, wording);
    intake->Run("write the version's text again",
                "UPDATE alert_versions SET body = $3, scrubbed = $4 WHERE alert_id = $1 AND "
                "version = $2",
                {Int(alert_id), Int(version), body, Int(rendered.scrubbed ? 1 : 0)});
}

std::vector<StoredSignal> PostgresStore::Signals() const {
    std::vector<StoredSignal> out;
    std::lock_guard lock(impl_->reader->mutex());
    PGconn* c = impl_->reader->c();
    auto signals = pg::Exec(c, "read the signals",
                            "SELECT s.id, s.family, s.authority, s.district, s.level, "
                            "coalesce(a.reference, ''), coalesce(a.status, ''), "
                            "coalesce(a.level, '') FROM signals s LEFT JOIN LATERAL (SELECT "
                            "reference, status, level FROM alerts WHERE signal_id = s.id AND "
                            "status IN ('draft','issued','updated') ORDER BY id DESC LIMIT 1) a "
                            "ON true ORDER BY s.id");
    if (!signals.ok()) throw StoreError(impl_->reader->where() + ": " + signals.error().message);
    const auto& rows = signals.value();
    for (int i = 0; i < rows.size(); ++i) {
        StoredSignal s;
        s.id = rows.integer(i, 0);
        s.family = std::string(rows.text(i, 1));
        s.authority = std::string(rows.text(i, 2));
        s.district = std::string(rows.text(i, 3));
        s.level = std::string(rows.text(i, 4));
        s.alert_reference = std::string(rows.text(i, 5));
        s.alert_status = std::string(rows.text(i, 6));
        s.alert_level = std::string(rows.text(i, 7));
        auto documents = pg::Exec(c, "read a signal's reports",
                                  "SELECT r.document FROM reports r JOIN signal_reports sr ON "
                                  "sr.report_seq = r.seq WHERE sr.signal_id = $1 ORDER BY r.seq",
                                  {Int(s.id)});
        if (!documents.ok())
            throw StoreError(impl_->reader->where() + ": " + documents.error().message);
        for (int j = 0; j < documents.value().size(); ++j)
            s.documents.emplace_back(documents.value().text(j, 0));
        out.push_back(std::move(s));
    }
    return out;
}

// Sets (level) or lifts (level "") a coordinator's override of a signal's level, and makes
// the signal's alert follow, as on SQLite (ReportStore::Impl::OverrideOnWriter).
SignalOverride PostgresStore::Impl::Override(std::int64_t signal_id, const std::string& level,
                                             const std::string& reason, const std::string& actor,
                                             std::int64_t now, std::optional<Error>& refused) {
    const auto g = CurrentGrading();
    SignalOverride held;
    auto& w = *intake;
    const auto row = w.Run(
        "read the signal",
        "SELECT family, district, authority, facts, coalesce(override_level, ''), level, "
        "(SELECT reference FROM alerts WHERE signal_id = $1 AND status IN "
        "('draft','issued','updated') ORDER BY id DESC LIMIT 1), (SELECT level FROM alerts "
        "WHERE signal_id = $1 AND status IN ('draft','issued','updated') ORDER BY id DESC LIMIT "
        "1) FROM signals WHERE id = $1",
        {Int(signal_id)});
    if (row.size() == 0) {
        refused = Error{"there is no signal " + Int(signal_id)};
        return held;
    }
    // The signal's key first (the lock order), as a report of it would.
    w.Run("take the signal's lock", "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
          {"signal\x1f" + std::string(row.text(0, 0)) + "\x1f" + std::string(row.text(0, 1))});
    const std::string before_level(row.text(0, 4)), before_rules(row.text(0, 5));
    const std::string live_reference = row.null(0, 6) ? "" : std::string(row.text(0, 6));
    const std::string live_level = row.null(0, 7) ? "" : std::string(row.text(0, 7));
    if (level.empty() && before_level.empty()) {
        refused =
            Error{"signal " + Int(signal_id) + " has no override to lift: the rules set its level"};
        return held;
    }
    if (level == "none" && !live_reference.empty()) {
        refused = Error{"signal " + Int(signal_id) + " has the live alert " + live_reference +
                        ": to take it down, cancel it (POST /api/v1/alerts/" + live_reference +
                        "/cancel); an override may lower it to green"};
        return held;
    }
    held.signal_id = signal_id;
    held.level = level;
    held.reason = level.empty() ? std::string() : reason;
    held.by = level.empty() ? std::string() : actor;
    held.at_ms = level.empty() ? 0 : now;
    Regrading graded = Regrade(FactsFromJson(row.text(0, 3)), held, g->rules);
    const std::string rules_level(ToString(graded.rules.level));
    held.rules_level = rules_level;
    w.Run("set the override",
          "UPDATE signals SET override_level = nullif($2, ''), override_reason = nullif($3, ''), "
          "override_by = nullif($4, ''), override_at_ms = CASE WHEN $2 = '' THEN NULL ELSE "
          "$5::bigint END, level = $6, confidence = $7 WHERE id = $1",
          {Int(signal_id), level, held.reason, held.by, Int(now), rules_level,
           graded.rules.confidence});
    const std::string signal_ref = "signal-" + Int(signal_id);
    w.Audit(actor, level.empty() ? "signal.override_lifted" : "signal.overridden", signal_ref,
            boost::json::serialize(
                boost::json::object{{"level", level.empty() ? rules_level : level},
                                    {"reason", reason},
                                    {"rules_level", rules_level},
                                    {"was", before_level.empty() ? before_rules : before_level}}));
    const std::string shown_level(ToString(graded.shown.level));
    held.alert_reference = live_reference;
    if (shown_level != (live_reference.empty() ? std::string("none") : live_level)) {
        Revision rv;
        rv.signal_id = signal_id;
        rv.signal_ref = signal_ref;
        rv.shown = std::move(graded.shown);
        rv.facts = std::move(graded.facts);
        rv.documents = LatestDocuments(signal_id);
        rv.authority = std::string(row.text(0, 2));
        rv.district = std::string(row.text(0, 1));
        rv.trusted = true;  // a coordinator
        rv.actor = actor;
        const std::string made = ReviseAlert(rv, *g, now);
        if (!made.empty()) held.alert_reference = made;
    }
    return held;
}

Result<SignalOverride> PostgresStore::Override(std::int64_t signal_id, std::string_view level,
                                               std::string_view reason, std::string_view actor) {
    if (!impl_->CurrentGrading()) return Error{"grading is not set up in this store"};
    std::optional<Error> refused;
    SignalOverride held;
    Result<int> queued = 0;
    {
        std::lock_guard lock(impl_->intake->mutex());
        const std::int64_t now = NowMs();
        queued = impl_->intake->Transaction(
            [&] {
                held = impl_->Override(signal_id, std::string(level), std::string(reason),
                                       std::string(actor), now, refused);
                if (refused) throw pgstore::Refused{*refused};
            },
            now);
    }
    if (!queued.ok()) return queued.error();
    impl_->AfterCommit(queued.value());
    return held;
}

std::string PostgresStore::Impl::Act(const std::string& reference, AlertAction action,
                                     const std::string& actor, const AlertWording& wording,
                                     std::int64_t now) {
    if (auto problem = WordingProblem(reference, action, wording)) throw pgstore::Refused{*problem};
    auto& w = *intake;
    const auto found = w.Run("find the alert",
                             "SELECT a.id, a.status, a.version, a.provisional, s.family, "
                             "s.district FROM alerts a JOIN signals s ON s.id = a.signal_id "
                             "WHERE a.reference = $1",
                             {reference});
    if (found.size() == 0) throw pgstore::Refused{Error{"no alert " + reference}};
    w.Run("take the signal's lock", "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
          {"signal\x1f" + std::string(found.text(0, 4)) + "\x1f" + std::string(found.text(0, 5))});
    // Read again under the lock: a report at another instance may have just revised it.
    const auto row =
        w.Run("read the alert",
              "SELECT id, status, version, provisional, audience FROM alerts WHERE id = $1",
              {Int(found.integer(0, 0))});
    const std::int64_t alert_id = row.integer(0, 0);
    const int version = static_cast<int>(row.integer(0, 2));
    const bool provisional = row.integer(0, 3) != 0;
    const std::string audience(row.text(0, 4));
    AlertStatus from = AlertStatus::kDraft;
    ParseAlertStatus(row.text(0, 1), from);
    std::string audit_action;
    AlertStatus to = from;
    if (action == AlertAction::kApprove && from != AlertStatus::kDraft && IsLive(from) &&
        provisional) {
        audit_action = "alert.confirmed";  // a provisional red alert confirmed by a coordinator
    } else {
        auto next = Transition(reference, from, action);
        if (!next.ok()) throw pgstore::Refused{next.error()};
        to = next.value();
        audit_action = "alert." + std::string(ToString(action) == "approve"  ? "approved"
                                              : ToString(action) == "cancel" ? "cancelled"
                                              : ToString(action) == "expire" ? "expired"
                                                                             : "updated");
    }
    const int new_version = version + 1;
    const auto g = CurrentGrading();
    w.Run("record the action",
          "UPDATE alerts SET status = $2, version = $3, updated_at_ms = $4, provisional = 0, "
          "issued_at_ms = coalesce(issued_at_ms, CASE WHEN $2 = 'issued' THEN $4::bigint END), "
          "valid_until_ms = coalesce(valid_until_ms, CASE WHEN $2 = 'issued' THEN $4::bigint + "
          "$5::bigint END) WHERE id = $1",
          {Int(alert_id), std::string(ToString(to)), Int(new_version), Int(now),
           Int(g ? g->valid_for_ms : 365LL * 24 * 3600 * 1000)});
    AddVersion(alert_id, new_version, ToString(to), now);
    if (wording.photos && !wording.photos->empty()) {
        // Only a coordinator's choice puts photos in a version (issue 17 §3).
        std::vector<PhotoRow> chosen;
        for (const auto& id : *wording.photos) {
            const auto p = w.Run("read a chosen photo",
                                 std::string("SELECT ") + photos_sql::kColumns +
                                     photos_sql::kOfAlerts + "WHERE a.id = $1 AND p.id = $2",
                                 {Int(alert_id), id});
            if (p.size() == 0) throw pgstore::Refused{photos_sql::NotOfTheAlert(id, reference)};
            chosen.push_back(pgstore::PhotoOf(p, 0));
        }
        w.Run("keep the version's photos",
              "UPDATE alert_versions SET photos = $3 WHERE alert_id = $1 AND version = $2",
              {Int(alert_id), Int(new_version), photos_sql::VersionPhotos(chosen)});
    }
    if (!wording.sections.empty()) {
        boost::json::object words;
        for (const auto& [name, text] : wording.sections) words[name] = text;
        // Merged into what earlier coordinators wrote, then into this version's body.
        std::string merged = boost::json::serialize(words);
        const auto old =
            w.Run("read the wording", "SELECT wording FROM alerts WHERE id = $1", {Int(alert_id)});
        boost::json::error_code ec;
        auto parsed = boost::json::parse(old.text(0, 0), ec);
        if (!ec && parsed.is_object()) {
            for (const auto& [k, v] : words) parsed.as_object()[k] = v;
            merged = boost::json::serialize(parsed);
        }
        w.Run("save the wording", "UPDATE alerts SET wording = $2 WHERE id = $1",
              {Int(alert_id), merged});
        const auto body = w.Run("read the version's text",
                                "SELECT body FROM alert_versions WHERE alert_id = $1 AND version "
                                "= $2",
                                {Int(alert_id), Int(new_version)});
        w.Run("word the version",
              "UPDATE alert_versions SET body = $3 WHERE alert_id = $1 AND version = $2",
              {Int(alert_id), Int(new_version), WithWording(body.text(0, 0), merged)});
    }
    if (g) RenderAgain(alert_id, new_version, *g);
    const bool new_audience = !wording.audience.empty() && wording.audience != audience;
    if (new_audience)
        w.Run("set the audience", "UPDATE alerts SET audience = $2 WHERE id = $1",
              {Int(alert_id), wording.audience});
    if (g && action != AlertAction::kExpire) {
        VersionToRoute what;
        what.status = to;
        const auto route = w.Run("read what routing needs",
                                 "SELECT a.level, a.audience, s.authority, s.district FROM alerts "
                                 "a JOIN signals s ON s.id = a.signal_id WHERE a.id = $1",
                                 {Int(alert_id)});
        ParseLevel(route.text(0, 0), what.level);
        what.audience = std::string(route.text(0, 1));
        what.authority = std::string(route.text(0, 2));
        what.district = std::string(route.text(0, 3));
        w.QueueDeliveries(alert_id, new_version, what, *g, now);
        w.Run("mark the version routed",
              "UPDATE alerts SET routed_version = $2, routed_at_ms = $3 WHERE id = $1",
              {Int(alert_id), Int(new_version), Int(now)});
    }
    w.Audit(actor, audit_action, reference,
            ActionAuditDetail(from, to, new_version, wording, audience));
    return std::string(ToString(to));
}

Result<Alert> PostgresStore::Act(std::string_view reference, AlertAction action,
                                 std::string_view actor, const AlertWording& wording) {
    const std::string ref(reference);
    Result<int> queued = 0;
    {
        std::lock_guard lock(impl_->intake->mutex());
        const std::int64_t now = NowMs();
        queued = impl_->intake->Transaction(
            [&] { impl_->Act(ref, action, std::string(actor), wording, now); }, now);
    }
    if (!queued.ok()) return queued.error();
    impl_->AfterCommit(queued.value());
    auto alert = FindAlert(ref);
    if (!alert) return Error{"no alert " + ref};
    return *alert;
}

Result<std::vector<std::string>> PostgresStore::ExpireDue(std::int64_t now_ms) {
    std::vector<std::string> expired;
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            auto& w = *impl_->intake;
            const auto due = w.Run("find alerts past their validity",
                                   "SELECT id, reference, version FROM alerts WHERE status IN "
                                   "('issued','updated') AND valid_until_ms IS NOT NULL AND "
                                   "valid_until_ms < $1 ORDER BY id FOR UPDATE",
                                   {Int(now_ms)});
            for (int i = 0; i < due.size(); ++i) {
                const int version = static_cast<int>(due.integer(i, 2)) + 1;
                w.Run("expire the alert",
                      "UPDATE alerts SET status = 'expired', version = $2, updated_at_ms = $3 "
                      "WHERE id = $1",
                      {Int(due.integer(i, 0)), Int(version), Int(now_ms)});
                impl_->AddVersion(due.integer(i, 0), version, "expired", now_ms);
                w.Audit("ldisd", "alert.expired", std::string(due.text(i, 1)),
                        "{\"version\":" + Int(version) + "}");
                expired.emplace_back(due.text(i, 1));
            }
        },
        now_ms);
    if (!done.ok()) return done.error();
    return expired;
}

}  // namespace ldis::engine
