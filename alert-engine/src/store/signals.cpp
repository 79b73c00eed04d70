// A new report graded into its signal, in the writer's transaction.
#include "impl.hpp"

namespace ldis::engine {

// For a duplicate: the grade of the signal its first copy joined.
void ReportStore::Impl::GradeOf(const std::string& id, StoredReport& out) {
    sqlite3_stmt* stmt = writer_.Cached(
        "SELECT s.level, (SELECT a.reference FROM alerts a WHERE a.signal_id = s.id "
        "AND a.status IN ('draft','issued','updated') ORDER BY a.id DESC LIMIT 1) "
        "FROM reports r JOIN signal_reports sr ON sr.report_seq = r.seq JOIN signals s ON s.id "
        "= sr.signal_id "
        "WHERE r.id = ?1");
    StatementUse use(stmt);
    BindText(stmt, 1, id);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        out.level = ColumnText(stmt, 0);
        out.alert_reference = ColumnText(stmt, 1);
    }
}

// Correlates a new report into its signal, grades the signal again on all its
// reports, and creates or revises the signal's one live alert, by policy. Runs in
// the transaction that stores the report. Returns an SQLite code.
int ReportStore::Impl::GradeNew(const Report& r, std::int64_t seq, const std::string& reference,
                                std::int64_t now, const GradingSetup& g, StoredReport& out) {
    const SignalFacts own = FactsOf({r.document}, g.substances);
    const SignalKey key = KeyOf(r, own, g.substances, now);

    // Correlate: the signals of the key's family and district seen within the window
    // (the index signals_by_key finds them); the pipeline chooses which one it joins. Only
    // the one it would choose is read (the newest within the window either side): a
    // district where thousands of signals of one family overlap must not make every report
    // read them all into memory. Correlate stays the rule (and its unit tests).
    std::vector<SignalSpan> candidates;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT id, first_seen_ms, last_seen_ms FROM signals WHERE family = ?1 AND "
            "district = ?2 AND last_seen_ms >= ?3 AND first_seen_ms <= ?4 AND drill = ?5 "
            "ORDER BY id DESC LIMIT 1");
        StatementUse use(stmt);
        BindText(stmt, 1, key.family);
        BindText(stmt, 2, key.district);
        sqlite3_bind_int64(stmt, 3, key.seen_ms - g.window_ms);
        sqlite3_bind_int64(stmt, 4, key.seen_ms + g.window_ms);
        BindText(stmt, 5, ToString(key.drill));
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            candidates.push_back({sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1),
                                  sqlite3_column_int64(stmt, 2), key.drill});
        }
        if (rc != SQLITE_DONE) return rc;
    }
    const std::optional<std::int64_t> joins = Correlate(key, candidates, g.window_ms);
    std::int64_t signal_id = joins.value_or(0);
    if (!joins) {
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO signals (family, authority, district, opened_at_ms, first_seen_ms, "
            "last_seen_ms, drill) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)");
        StatementUse use(stmt);
        BindText(stmt, 1, key.family);
        BindText(stmt, 2, r.authority);
        BindText(stmt, 3, key.district);
        sqlite3_bind_int64(stmt, 4, now);
        sqlite3_bind_int64(stmt, 5, key.seen_ms);
        BindText(stmt, 6, ToString(key.drill));
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
        signal_id = sqlite3_last_insert_rowid(writer_.get());
    } else {
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE signals SET first_seen_ms = min(first_seen_ms, ?2), last_seen_ms = "
            "max(last_seen_ms, ?2) "
            "WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, signal_id);
        sqlite3_bind_int64(stmt, 2, key.seen_ms);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
    }
    {
        sqlite3_stmt* stmt =
            writer_.Cached("INSERT INTO signal_reports (signal_id, report_seq) VALUES (?1, ?2)");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, signal_id);
        sqlite3_bind_int64(stmt, 2, seq);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
    }
    bool new_source = false;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT OR IGNORE INTO signal_sources (signal_id, organisation) VALUES (?1, ?2)");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, signal_id);
        BindText(stmt, 2, r.organisation);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
        new_source = sqlite3_changes(writer_.get()) == 1;
    }
    // Regrade: the signal's facts so far and a coordinator's override, which holds until
    // lifted, read in one go; the pipeline grows the facts by the report's and grades.
    SignalOverride held;
    std::string stored;
    if (const int rc = ReadOverride(signal_id, held, &stored); rc != SQLITE_OK) return rc;
    Regrading regraded =
        Regrade(FactsFromJson(stored), own, new_source, held, g.rules, g.substances);
    const SignalFacts& facts = regraded.facts;
    const Grade& grade = regraded.rules;
    // The latest reports give the lists in the alert text (substances, symptoms).
    std::vector<std::string> documents;
    if (const int rc = LatestDocuments(signal_id, documents); rc != SQLITE_OK) return rc;
    const std::string level(ToString(grade.level));
    const std::string facts_text = FactsToJson(facts);  // the signal row and the version row
    const std::string signal_ref = "signal-" + std::to_string(signal_id);
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE signals SET level = ?2, confidence = ?3, facts = ?4 WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, signal_id);
        BindText(stmt, 2, level);
        BindText(stmt, 3, grade.confidence);
        BindText(stmt, 4, facts_text);
        if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
    }
    audit_.push_back(
        {now, "ldisd", "signal.graded", signal_ref,
         boost::json::serialize(boost::json::object{{"report", reference},
                                                    {"level", level},
                                                    {"confidence", grade.confidence},
                                                    {"reports", facts.numbers.at("reports")},
                                                    {"rules", FiredJson(grade)}})});
    // A coordinator's override holds until it is lifted: the alert shows it, and each
    // version records what the rules give as well.
    Grade shown = std::move(regraded.shown);
    const std::string shown_level(ToString(shown.level));
    const std::string rules_text = RulesJson(shown);
    out.level = shown_level;

    AlertRevision rv;
    rv.signal_id = signal_id;
    rv.signal_ref = signal_ref;
    rv.level = shown_level;
    rv.grade = std::move(shown);
    rv.facts = facts;
    rv.facts_text = facts_text;
    rv.rules_text = rules_text;
    rv.documents = std::move(documents);
    rv.authority = r.authority;
    rv.district = r.district;
    rv.trusted = TrustedSource(r.trust, r.source_type, g.policy);
    rv.report_reference = reference;
    return ReviseAlert(rv, g, now, out.alert_reference);
}

// The latest 20 reports of a signal, oldest first: what the alert text lists.
int ReportStore::Impl::LatestDocuments(std::int64_t signal_id, std::vector<std::string>& out) {
    sqlite3_stmt* stmt = writer_.Cached(
        "SELECT document FROM reports WHERE seq IN (SELECT report_seq FROM signal_reports "
        "WHERE signal_id = ?1 ORDER BY report_seq DESC LIMIT 20) ORDER BY seq");
    StatementUse use(stmt);
    sqlite3_bind_int64(stmt, 1, signal_id);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) out.push_back(ColumnText(stmt, 0));
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

}  // namespace ldis::engine
