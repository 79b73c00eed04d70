// A peer instance's versions at this one (issue 16 §1): stored once, decided by policy or
// by a coordinator, and, when forwarded, queued to this instance's partners in the same
// transaction.
#include <boost/json.hpp>

#include "impl.hpp"
#include "ldis/engine/federated.hpp"

namespace ldis::engine {

// The recipients of a peer alert's forwarded versions so far, each slot's latest (after any
// fallback, which keeps its kind and detail).
int ReportStore::Impl::ForwardedRecipients(const std::string& source, std::vector<Recipient>& out) {
    sqlite3_stmt* stmt = writer_.Cached(
        "SELECT partner, contact, slot FROM deliveries WHERE kind = 'federated' AND "
        "json_extract(detail, '$.source') = ?1 ORDER BY id");
    StatementUse use(stmt);
    BindText(stmt, 1, source);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        out.push_back({ColumnText(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2)});
    out = LatestPerSlot(std::move(out));
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int ReportStore::Impl::QueueForwarded(const std::string& detail, const VersionToRoute& route,
                                      int version, std::int64_t now, int& queued) {
    const auto g = CurrentGrading();
    if (!g) return SQLITE_OK;
    boost::json::error_code ec;
    const auto d = boost::json::parse(detail, ec);
    const std::string source = !ec && d.is_object() && d.as_object().contains("source")
                                   ? std::string(d.at("source").as_string())
                                   : std::string();
    std::vector<Recipient> earlier;
    if (const int rc = ForwardedRecipients(source, earlier); rc != SQLITE_OK) return rc;
    const auto planned = PlanForwarded(route, earlier, g->partners.get(), g->dispatch, now, detail);
    queued = static_cast<int>(planned.size());
    return InsertDeliveries(0, version, planned, now);
}

Result<FederatedOutcome> ReportStore::Impl::ReceiveFederated(const FederatedVersion& v,
                                                             FederatedPolicy for_level,
                                                             const std::string& peer_name,
                                                             std::int64_t now) {
    return OnWriter<FederatedOutcome>([&]() -> Result<FederatedOutcome> {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        FederatedOutcome out;
        int rc = SQLITE_OK;
        bool forwarded_before = false;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT 1 FROM federated WHERE peer = ?1 AND reference = ?2 AND decision IN "
                "('forwarded', 'adopted') LIMIT 1");
            StatementUse use(stmt);
            BindText(stmt, 1, v.peer);
            BindText(stmt, 2, v.reference);
            forwarded_before = sqlite3_step(stmt) == SQLITE_ROW;
        }
        out.decision = std::string(FederatedDecision(for_level, forwarded_before));
        const std::string detail = ForwardedDetail(v, peer_name);
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO federated (peer, identifier, reference, version, msg_type, "
                "cap_status, level, authority, district, headline, sequence, received_at_ms, "
                "decision, detail, cap) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                "?12, ?13, ?14, ?15) ON CONFLICT (peer, identifier) DO NOTHING");
            StatementUse use(stmt);
            BindText(stmt, 1, v.peer);
            BindText(stmt, 2, v.identifier);
            BindText(stmt, 3, v.reference);
            sqlite3_bind_int(stmt, 4, v.version);
            BindText(stmt, 5, v.msg_type);
            BindText(stmt, 6, v.cap_status);
            BindText(stmt, 7, ToString(v.level));
            BindText(stmt, 8, v.authority);
            BindText(stmt, 9, v.district);
            BindText(stmt, 10, v.headline);
            sqlite3_bind_int64(stmt, 11, static_cast<sqlite3_int64>(v.sequence));
            sqlite3_bind_int64(stmt, 12, now);
            BindText(stmt, 13, out.decision);
            BindText(stmt, 14, detail);
            BindText(stmt, 15, v.cap);
            rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(writer_.get());
            out.stored = rc == SQLITE_OK && sqlite3_changes(writer_.get()) == 1;
        }
        if (rc == SQLITE_OK && out.stored && WentToPartners(out.decision)) {
            rc = QueueForwarded(
                detail,
                ForwardedRoute(v.msg_type, v.version, ToString(v.level), v.authority, v.district),
                v.version, now, out.deliveries);
        }
        if (rc == SQLITE_OK) {
            // The peer's last accepted sequence: a replay of this or an earlier one is refused.
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value");
            // Bound without a copy: the strings outlive the step.
            const std::string key = "federation:last:" + v.peer;
            const std::string value = std::to_string(v.sequence);
            StatementUse use(stmt);
            BindText(stmt, 1, key);
            BindText(stmt, 2, value);
            rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(writer_.get());
        }
        if (out.stored)
            audit_.push_back({now, "federation:" + v.peer, "federation.received",
                              v.peer + "/" + v.identifier,
                              boost::json::serialize(
                                  boost::json::object{{"decision", out.decision},
                                                      {"sequence", std::to_string(v.sequence)},
                                                      {"deliveries", out.deliveries}})});
        if (auto failed = Finish(tx, rc)) return *failed;
        return out;
    });
}

std::vector<FederatedRow> ReportStore::Impl::Federated(std::size_t limit) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(reader_->get(),
                       "SELECT id, peer, identifier, reference, version, msg_type, cap_status, "
                       "level, authority, district, headline, received_at_ms, decision, "
                       "coalesce(decided_by, ''), coalesce(decided_at_ms, 0) FROM federated "
                       "ORDER BY id DESC LIMIT ?1",
                       -1, &stmt, nullptr);
    sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(limit));
    std::vector<FederatedRow> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        FederatedRow r;
        r.id = sqlite3_column_int64(stmt, 0);
        r.peer = ColumnText(stmt, 1);
        r.identifier = ColumnText(stmt, 2);
        r.reference = ColumnText(stmt, 3);
        r.version = sqlite3_column_int(stmt, 4);
        r.msg_type = ColumnText(stmt, 5);
        r.cap_status = ColumnText(stmt, 6);
        r.level = ColumnText(stmt, 7);
        r.authority = ColumnText(stmt, 8);
        r.district = ColumnText(stmt, 9);
        r.headline = ColumnText(stmt, 10);
        r.received_at_ms = sqlite3_column_int64(stmt, 11);
        r.decision = ColumnText(stmt, 12);
        r.decided_by = ColumnText(stmt, 13);
        r.decided_at_ms = sqlite3_column_int64(stmt, 14);
        out.push_back(std::move(r));
    }
    sqlite3_finalize(stmt);
    return out;
}

std::vector<ForwardedAcks> ReportStore::Impl::ForwardedAcknowledgements(std::int64_t now) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(
        reader_->get(),
        "SELECT json_extract(detail, '$.peer'), json_extract(detail, '$.reference'), "
        "count(DISTINCT partner), count(DISTINCT CASE WHEN acknowledged_at_ms IS "
        "NOT NULL THEN partner END) FROM deliveries WHERE kind = 'federated' AND "
        "created_at_ms >= ?1 GROUP BY 1, 2 ORDER BY 1, 2",
        -1, &stmt, nullptr);
    sqlite3_bind_int64(stmt, 1, now - 30LL * 24 * 3600 * 1000);
    std::vector<ForwardedAcks> out;
    while (sqlite3_step(stmt) == SQLITE_ROW)
        out.push_back({ColumnText(stmt, 0), ColumnText(stmt, 1), sqlite3_column_int(stmt, 2),
                       sqlite3_column_int(stmt, 3)});
    sqlite3_finalize(stmt);
    return out;
}

Result<FederatedRow> ReportStore::Impl::DecideFederated(std::int64_t id, bool adopt,
                                                        const std::string& actor,
                                                        std::int64_t now) {
    auto done = OnWriter<int>([&]() -> Result<int> {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        std::string msg_type, level, authority, district, detail, identifier;
        int version = 0;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE federated SET decision = ?2, decided_by = ?3, decided_at_ms = ?4 WHERE "
                "id = ?1 AND decision = 'review' RETURNING msg_type, version, level, authority, "
                "district, detail, peer || '/' || identifier");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, id);
            BindText(stmt, 2, adopt ? "adopted" : "declined");
            BindText(stmt, 3, actor);
            sqlite3_bind_int64(stmt, 4, now);
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE)
                return Error{"there is no version " + std::to_string(id) +
                             " from another LDIS waiting for a decision: it was adopted or "
                             "declined already, or it never needed one"};
            if (rc != SQLITE_ROW) return Error{options_.path + ": " + writer_.Describe(rc)};
            msg_type = ColumnText(stmt, 0);
            version = sqlite3_column_int(stmt, 1);
            level = ColumnText(stmt, 2);
            authority = ColumnText(stmt, 3);
            district = ColumnText(stmt, 4);
            detail = ColumnText(stmt, 5);
            identifier = ColumnText(stmt, 6);
        }
        int rc = SQLITE_OK, queued = 0;
        if (adopt)
            rc = QueueForwarded(detail,
                                ForwardedRoute(msg_type, version, level, authority, district),
                                version, now, queued);
        audit_.push_back({now, actor, adopt ? "federation.adopted" : "federation.declined",
                          identifier,
                          boost::json::serialize(boost::json::object{{"deliveries", queued}})});
        if (auto failed = Finish(tx, rc)) return *failed;
        return queued;
    });
    if (!done.ok()) return done.error();
    for (auto& r : Federated(100000)) {
        if (r.id == id) return r;
    }
    return Error{"version " + std::to_string(id) + " is not there any more"};
}

}  // namespace ldis::engine
