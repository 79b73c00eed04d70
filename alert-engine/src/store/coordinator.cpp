// Coordinators' word on an alert: approve, update or cancel it (with their own wording), and
// set or lift the level of its signal by hand (an override, held over new reports until
// lifted). Each one a transaction on the writer, audited.
#include "impl.hpp"

namespace ldis::engine {

Result<Alert> ReportStore::Impl::Act(std::string_view reference, AlertAction action,
                                     std::string_view actor, const AlertWording& wording) {
    const std::string ref(reference);
    const std::string who(actor);
    auto outcome = OnWriter<std::string>(
        [&]() -> Result<std::string> { return ActOnWriter(ref, action, who, wording); });
    if (!outcome.ok()) return outcome.error();
    auto alert = Alerts(ref);
    if (alert.empty()) return Error{"no alert " + ref};
    return alert.front();
}

Result<SignalOverride> ReportStore::Impl::Override(std::int64_t signal_id, const std::string& level,
                                                   const std::string& reason,
                                                   const std::string& actor) {
    return OnWriter<SignalOverride>([&]() -> Result<SignalOverride> {
        return OverrideOnWriter(signal_id, level, reason, actor);
    });
}

// Sets (level) or lifts (level "") a coordinator's override of a signal's level, and
// makes the signal's alert follow: a new version at the level now shown, by policy (a
// red goes out at once; an amber is a draft to approve), or a new alert. The override
// holds when new reports grade the signal again, until it is lifted. Audited with the
// reason and what the rules give.
Result<SignalOverride> ReportStore::Impl::OverrideOnWriter(std::int64_t signal_id,
                                                           const std::string& level,
                                                           const std::string& reason,
                                                           const std::string& actor) {
    const auto g = CurrentGrading();
    if (!g) return Error{"grading is not set up in this store"};
    const std::int64_t now = NowMs();
    Transaction tx(writer_);
    if (tx.begun() != SQLITE_OK) return Error{options_.path + ": " + writer_.Describe(tx.begun())};
    const auto failed = [&](int rc) { return Error{options_.path + ": " + writer_.Describe(rc)}; };
    SignalOverride before;
    if (const int rc = ReadOverride(signal_id, before); rc == SQLITE_NOTFOUND)
        return Error{"there is no signal " + std::to_string(signal_id)};
    else if (rc != SQLITE_OK)
        return failed(rc);
    if (level.empty() && before.level.empty())
        return Error{"signal " + std::to_string(signal_id) +
                     " has no override to lift: the rules set its level"};
    std::string authority, district, facts_text, live_reference, live_level;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT authority, district, facts, (SELECT reference FROM alerts WHERE "
            "signal_id = ?1 AND status IN ('draft','issued','updated') ORDER BY id DESC "
            "LIMIT 1), (SELECT level FROM alerts WHERE signal_id = ?1 AND status IN "
            "('draft','issued','updated') ORDER BY id DESC LIMIT 1) FROM signals WHERE id = "
            "?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, signal_id);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_ROW) return failed(rc);
        authority = ColumnText(stmt, 0);
        district = ColumnText(stmt, 1);
        facts_text = ColumnText(stmt, 2);
        live_reference = ColumnText(stmt, 3);
        live_level = ColumnText(stmt, 4);
    }
    if (level == "none" && !live_reference.empty())
        return Error{"signal " + std::to_string(signal_id) + " has the live alert " +
                     live_reference + ": to take it down, cancel it (POST /api/v1/alerts/" +
                     live_reference + "/cancel); an override may lower it to green"};
    // The override as it will hold, and the grade that makes (Regrade on the stored facts).
    SignalOverride held;
    held.signal_id = signal_id;
    held.level = level;
    held.reason = level.empty() ? std::string() : reason;
    held.by = level.empty() ? std::string() : actor;
    held.at_ms = level.empty() ? 0 : now;
    Regrading graded = Regrade(FactsFromJson(facts_text), held, g->rules);
    const Grade& grade = graded.rules;
    const std::string rules_level(ToString(grade.level));
    held.rules_level = rules_level;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE signals SET override_level = nullif(?2, ''), override_reason = "
            "nullif(?3, ''), override_by = nullif(?4, ''), override_at_ms = CASE WHEN ?2 = '' "
            "THEN NULL ELSE ?5 END, level = ?6, confidence = ?7 WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, signal_id);
        // BindText does not copy: each value must outlive the step.
        const std::string kept_reason = level.empty() ? std::string() : reason;
        const std::string kept_by = level.empty() ? std::string() : actor;
        BindText(stmt, 2, level);
        BindText(stmt, 3, kept_reason);
        BindText(stmt, 4, kept_by);
        sqlite3_bind_int64(stmt, 5, now);
        BindText(stmt, 6, rules_level);
        BindText(stmt, 7, grade.confidence);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return failed(rc);
    }
    const std::string signal_ref = "signal-" + std::to_string(signal_id);
    audit_.push_back({now, actor, level.empty() ? "signal.override_lifted" : "signal.overridden",
                      signal_ref,
                      boost::json::serialize(boost::json::object{
                          {"level", level.empty() ? rules_level : level},
                          {"reason", reason},
                          {"rules_level", rules_level},
                          {"was", before.level.empty() ? before.rules_level : before.level}})});
    Grade shown = std::move(graded.shown);
    const std::string shown_level(ToString(shown.level));
    held.alert_reference = live_reference;
    if (shown_level != (live_reference.empty() ? std::string("none") : live_level)) {
        AlertRevision rv;
        rv.signal_id = signal_id;
        rv.signal_ref = signal_ref;
        rv.level = shown_level;
        rv.rules_text = RulesJson(shown);
        rv.grade = std::move(shown);
        rv.facts = std::move(graded.facts);
        rv.facts_text = facts_text;
        if (const int rc = LatestDocuments(signal_id, rv.documents); rc != SQLITE_OK)
            return failed(rc);
        rv.authority = authority;
        rv.district = district;
        rv.trusted = true;  // a coordinator
        rv.actor = actor;
        if (const int rc = ReviseAlert(rv, *g, now, held.alert_reference); rc != SQLITE_OK)
            return failed(rc);
    }
    if (auto error = Finish(tx, SQLITE_OK)) return *error;
    return held;
}

Result<std::string> ReportStore::Impl::ActOnWriter(const std::string& reference, AlertAction action,
                                                   const std::string& actor,
                                                   const AlertWording& wording) {
    if (auto problem = WordingProblem(reference, action, wording)) return *problem;
    const std::int64_t now = NowMs();
    Transaction tx(writer_);
    if (tx.begun() != SQLITE_OK) return Error{options_.path + ": " + writer_.Describe(tx.begun())};
    std::int64_t alert_id = 0;
    std::string status_text, audience;
    int version = 0;
    bool provisional = false;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT id, status, version, provisional, audience FROM alerts WHERE reference = ?1");
        StatementUse use(stmt);
        BindText(stmt, 1, reference);
        if (sqlite3_step(stmt) != SQLITE_ROW) return Error{"no alert " + reference};
        alert_id = sqlite3_column_int64(stmt, 0);
        status_text = ColumnText(stmt, 1);
        version = sqlite3_column_int(stmt, 2);
        provisional = sqlite3_column_int(stmt, 3) != 0;
        audience = ColumnText(stmt, 4);
    }
    AlertStatus from = AlertStatus::kDraft;
    ParseAlertStatus(status_text, from);
    std::string audit_action;
    AlertStatus to = from;
    if (action == AlertAction::kApprove && from != AlertStatus::kDraft && IsLive(from) &&
        provisional) {
        audit_action = "alert.confirmed";  // a provisional red alert confirmed by a coordinator
    } else {
        auto next = Transition(reference, from, action);
        if (!next.ok()) return next.error();
        to = next.value();
        audit_action = "alert." + std::string(ToString(action) == "approve"  ? "approved"
                                              : ToString(action) == "cancel" ? "cancelled"
                                              : ToString(action) == "expire" ? "expired"
                                                                             : "updated");
    }
    const int new_version = version + 1;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE alerts SET status = ?2, version = ?3, updated_at_ms = ?4, provisional = 0, "
            "issued_at_ms = coalesce(issued_at_ms, CASE WHEN ?2 = 'issued' THEN ?4 END), "
            "valid_until_ms = coalesce(valid_until_ms, CASE WHEN ?2 = 'issued' THEN ?4 + ?5 "
            "END) "
            "WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        BindText(stmt, 2, ToString(to));
        sqlite3_bind_int(stmt, 3, new_version);
        sqlite3_bind_int64(stmt, 4, now);
        std::shared_ptr<const GradingSetup> g;
        {
            std::lock_guard lock(mutex_);
            g = grading_;
        }
        sqlite3_bind_int64(stmt, 5, g ? g->valid_for_ms : 365LL * 24 * 3600 * 1000);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
            return Error{options_.path + ": " + writer_.Describe(rc)};
        }
    }
    if (const int rc = AddVersion(alert_id, new_version, ToString(to), now); rc != SQLITE_OK) {
        return Error{options_.path + ": " + writer_.Describe(rc)};
    }
    if (wording.photos && !wording.photos->empty()) {
        // Only a coordinator's choice puts photos in a version (issue 17 §3).
        auto chosen = ChosenPhotos(alert_id, reference, *wording.photos);
        if (!chosen.ok()) return chosen.error();
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE alert_versions SET photos = ?3 WHERE alert_id = ?1 AND version = ?2");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        sqlite3_bind_int(stmt, 2, new_version);
        BindText(stmt, 3, chosen.value());
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
            return Error{options_.path + ": " + writer_.Describe(rc)};
    }
    if (!wording.sections.empty()) {
        boost::json::object words;
        for (const auto& [name, text] : wording.sections) words[name] = text;
        // Merged into what earlier coordinators wrote, then into this version's body.
        sqlite3_stmt* read = writer_.Cached("SELECT wording FROM alerts WHERE id = ?1");
        std::string merged = boost::json::serialize(words);
        {
            StatementUse use(read);
            sqlite3_bind_int64(read, 1, alert_id);
            if (sqlite3_step(read) == SQLITE_ROW) {
                boost::json::error_code ec;
                auto old = boost::json::parse(ColumnText(read, 0), ec);
                if (!ec && old.is_object()) {
                    for (const auto& [k, v] : words) old.as_object()[k] = v;
                    merged = boost::json::serialize(old);
                }
            }
        }
        sqlite3_stmt* save = writer_.Cached("UPDATE alerts SET wording = ?2 WHERE id = ?1");
        {
            StatementUse use(save);
            sqlite3_bind_int64(save, 1, alert_id);
            BindText(save, 2, merged);
            if (const int rc = sqlite3_step(save); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        sqlite3_stmt* body = writer_.Cached(
            "UPDATE alert_versions SET body = ?3 WHERE alert_id = ?1 AND version = ?2");
        std::string current;
        {
            sqlite3_stmt* get = writer_.Cached(
                "SELECT body FROM alert_versions WHERE alert_id = ?1 AND version = ?2");
            StatementUse use(get);
            sqlite3_bind_int64(get, 1, alert_id);
            sqlite3_bind_int(get, 2, new_version);
            if (sqlite3_step(get) == SQLITE_ROW) current = ColumnText(get, 0);
        }
        {
            StatementUse use(body);
            sqlite3_bind_int64(body, 1, alert_id);
            sqlite3_bind_int(body, 2, new_version);
            const std::string worded_body = WithWording(current, merged);
            BindText(body, 3, worded_body);
            if (const int rc = sqlite3_step(body); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
        }
    }
    if (const auto g = CurrentGrading()) {
        if (const int rc = RenderAgain(alert_id, new_version, *g); rc != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(rc)};
    }
    const bool new_audience = !wording.audience.empty() && wording.audience != audience;
    if (new_audience) {
        sqlite3_stmt* stmt = writer_.Cached("UPDATE alerts SET audience = ?2 WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        BindText(stmt, 2, wording.audience);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
            return Error{options_.path + ": " + writer_.Describe(rc)};
    }
    outbox_added_ = 0;
    if (const auto g = CurrentGrading(); g && action != AlertAction::kExpire) {
        VersionRoute route;
        route.alert_id = alert_id;
        route.version = new_version;
        route.what.status = to;
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT a.level, a.audience, s.authority, s.district FROM alerts a JOIN signals s "
            "ON s.id = a.signal_id WHERE a.id = ?1");
        {
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, alert_id);
            if (sqlite3_step(stmt) == SQLITE_ROW) {
                route.what.level = LevelColumn(stmt, 0);
                route.what.audience = ColumnText(stmt, 1);
                route.what.authority = ColumnText(stmt, 2);
                route.what.district = ColumnText(stmt, 3);
            }
        }
        int rc = QueueDeliveries(route, *g, now);
        if (rc == SQLITE_OK) rc = MarkRouted(alert_id, new_version, now);
        if (rc != SQLITE_OK) {
            outbox_added_ = 0;
            return Error{options_.path + ": " + writer_.Describe(rc)};
        }
    }
    audit_.push_back({now, actor, audit_action, reference,
                      ActionAuditDetail(from, to, new_version, wording, audience)});
    if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
    return std::string(ToString(to));
}

}  // namespace ldis::engine
