// A PostgreSQL connection's transactions: what intake and the outbox both write with.
#include <boost/json.hpp>

#include <chrono>
#include <map>

#include "../audit_chain.hpp"
#include "store_impl.hpp"

namespace ldis::engine::pgstore {

PGconn* Writer::c() const {
    return PostgresAccess::Connection(*db_);
}

pg::Rows Writer::Run(std::string_view what, const std::string& sql, const Params& params) {
    auto r = pg::Exec(c(), what, sql, params);
    if (!r.ok()) throw Failed{r.error()};
    return std::move(r).value();
}

Result<int> Writer::Transaction(const std::function<void()>& body, std::int64_t now) {
    audit_.clear();
    queued_ = 0;
    try {
        Run("begin a transaction", "BEGIN");
        body();
        AppendAudit(now);
        if (queued_ > 0) Run("tell every instance", std::string("NOTIFY ") + kOutboxChannel);
        Run("commit", "COMMIT");
        return queued_;
    } catch (const Failed& f) {
        PQclear(PQexec(c(), "ROLLBACK"));
        audit_.clear();
        return Error{where() + ": " + f.error.message};
    } catch (const Refused& r) {
        PQclear(PQexec(c(), "ROLLBACK"));
        audit_.clear();
        return r.error;
    }
}

void Writer::InsertDelivery(std::int64_t alert_id, int version, const Delivery& d, std::int64_t now,
                            std::int64_t fallback_of) {
    Run("queue a delivery",
        "INSERT INTO deliveries (alert_id, version, kind, partner, contact, slot, channel, "
        "address, status, next_attempt_ms, created_at_ms, updated_at_ms, ack_due_ms, "
        "fallback_of, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $9, $9, "
        "$10, $11, $12)",
        {alert_id > 0 ? std::optional<std::string>(Int(alert_id)) : std::nullopt,  // a feed's
         Int(version), std::string(d.kind), d.partner, d.contact, d.slot,
         std::string(ToString(d.channel)), d.address, Int(now),
         d.ack_due_ms > 0 ? std::optional<std::string>(Int(d.ack_due_ms)) : std::nullopt,
         fallback_of > 0 ? std::optional<std::string>(Int(fallback_of)) : std::nullopt, d.detail});
    ++queued_;
}

void Writer::QueueDeliveries(std::int64_t alert_id, int version, const VersionToRoute& what,
                             const GradingSetup& g, std::int64_t now) {
    std::vector<Recipient> earlier;
    if (what.status != AlertStatus::kDraft && what.status != AlertStatus::kExpired) {
        // Each slot's latest row: the contact that reached it last (after any fallback).
        const auto rows = Run("read the alert's earlier recipients",
                              "SELECT partner, contact, slot FROM deliveries WHERE alert_id = "
                              "$1 AND kind = 'alert' ORDER BY id",
                              {Int(alert_id)});
        for (int i = 0; i < rows.size(); ++i)
            earlier.push_back({std::string(rows.text(i, 0)), std::string(rows.text(i, 1)),
                               std::string(rows.text(i, 2))});
        earlier = LatestPerSlot(std::move(earlier));
    }
    for (const Delivery& d : PlanDeliveries(what, earlier, g.partners.get(), g.dispatch, now))
        InsertDelivery(alert_id, version, d, now);
}

// Last (the lock order): the chain's head is read and extended under its lock, held to the
// commit, so entries from every instance make one chain.
void Writer::AppendAudit(std::int64_t now) {
    if (audit_.empty()) return;
    Run("take the audit lock", "SELECT pg_advisory_xact_lock($1)", {Int(kAuditLock)});
    const auto head =
        Run("read the audit chain's head", "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    std::int64_t seq = head.size() > 0 ? head.integer(0, 0) : 0;
    std::string prev = head.size() > 0 ? std::string(head.text(0, 1)) : std::string(64, '0');
    for (const auto& e : audit_) {
        ++seq;
        const std::string hash = AuditHash(prev, seq, now, e.actor, e.action, e.subject, e.detail);
        Run("append to the audit log",
            "INSERT INTO audit (seq, at_ms, actor, action, subject, detail, prev_hash, hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            {Int(seq), Int(now), e.actor, e.action, e.subject, e.detail, prev, hash});
        prev = hash;
    }
    audit_.clear();
}

}  // namespace ldis::engine::pgstore
