// The outbox on PostgreSQL: claims that two instances never share (FOR UPDATE SKIP LOCKED)
// with a lease, outcomes recorded with the partner's fallback and a word to the
// coordinators, and the periodic work (escalation, the update flush) on the leader alone.
#include <boost/json.hpp>

#include <spdlog/spdlog.h>

#include <set>

#include "ldis/engine/federated.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;
using pgstore::TextOrNull;

Result<std::vector<OutboxItem>> PostgresStore::Impl::Claim(std::int64_t now, std::size_t limit) {
    std::vector<OutboxItem> items;
    const auto g = CurrentGrading();
    std::lock_guard lock(outbox->mutex());
    auto done = outbox->Transaction(
        [&] {
            // A `sending` row is due again when its lease has run out: its instance died.
            const auto rows = outbox->Run(
                "claim due deliveries",
                "WITH due AS (SELECT id FROM deliveries WHERE status IN "
                "('queued','retrying','sending') AND next_attempt_ms <= $1 "
                "ORDER BY next_attempt_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED) "
                "UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, "
                "updated_at_ms = $1, next_attempt_ms = $1 + $3::bigint FROM due WHERE d.id = "
                "due.id RETURNING d.id, d.kind, d.partner, d.contact, d.channel, d.address, "
                "d.attempts, d.detail, d.version, d.alert_id",
                {Int(now), Int(static_cast<std::int64_t>(limit)), Int(options.lease_ms)});
            for (int i = 0; i < rows.size(); ++i) {
                OutboxItem it;
                it.id = rows.integer(i, 0);
                it.kind = std::string(rows.text(i, 1));
                it.partner = std::string(rows.text(i, 2));
                it.contact = std::string(rows.text(i, 3));
                ParseChannel(rows.text(i, 4), it.channel);
                it.address = std::string(rows.text(i, 5));
                it.attempts = static_cast<int>(rows.integer(i, 6));
                it.detail = std::string(rows.text(i, 7));
                it.version = static_cast<int>(rows.integer(i, 8));
                if (rows.integer(i, 9) == 0) {
                    // A notice about no alert (a feed's), or a peer's version: it renders
                    // from its detail.
                    ExpandForwarded(it);
                    items.push_back(std::move(it));
                    continue;
                }
                const auto v = outbox->Run(
                    "read the claimed delivery's version",
                    "SELECT a.reference, v.status, v.level, v.confidence, a.audience, "
                    "a.provisional, s.authority, s.district, s.family, coalesce(a.issued_at_ms, "
                    "0), v.created_at_ms, coalesce(a.valid_until_ms, 0), v.body, s.drill, "
                    "coalesce(v.photos, '') FROM "
                    "alerts a "
                    "JOIN alert_versions v ON v.alert_id = a.id AND v.version = $2 JOIN signals "
                    "s ON s.id = a.signal_id WHERE a.id = $1",
                    {Int(rows.integer(i, 9)), Int(it.version)});
                if (v.size() == 0) continue;
                it.reference = std::string(v.text(0, 0));
                it.status = std::string(v.text(0, 1));
                it.level = std::string(v.text(0, 2));
                it.confidence = std::string(v.text(0, 3));
                it.audience = std::string(v.text(0, 4));
                it.provisional = v.integer(0, 5) != 0;
                it.authority = std::string(v.text(0, 6));
                it.district = std::string(v.text(0, 7));
                it.family = std::string(v.text(0, 8));
                it.issued_at_ms = v.integer(0, 9);
                it.created_at_ms = v.integer(0, 10);
                it.valid_until_ms = v.integer(0, 11);
                it.body = std::string(v.text(0, 12));
                it.drill = std::string(v.text(0, 13));
                it.photos = std::string(v.text(0, 14));
                if (g) {
                    if (const Family* f = g->substances.Find(it.family)) it.family_label = f->label;
                }
                if (it.family_label.empty() && it.family.starts_with("other:"))
                    it.family_label = it.family.substr(6);
                items.push_back(std::move(it));
            }
        },
        now);
    if (!done.ok()) return done.error();
    // The claim's order is the outbox's (next attempt, then id): the RETURNING rows are not.
    std::sort(items.begin(), items.end(),
              [](const OutboxItem& a, const OutboxItem& b) { return a.id < b.id; });
    return items;
}

Result<int> PostgresStore::Impl::CompleteNow(const std::vector<DeliveryOutcome>& outcomes,
                                             std::int64_t now) {
    const auto g = CurrentGrading();
    const DispatchPolicy policy = g ? g->dispatch : DispatchPolicy{};
    int changed = 0;
    std::lock_guard lock(outbox->mutex());
    auto done = outbox->Transaction(
        [&] {
            changed = 0;
            for (const auto& o : outcomes) {
                const auto row = outbox->Run(
                    "read the delivery",
                    "SELECT kind, partner, contact, slot, channel, status, alert_id, version, "
                    "attempts, coalesce(ack_due_ms, 0), detail FROM deliveries WHERE id = $1 "
                    "FOR UPDATE",
                    {Int(o.id)});
                if (row.size() == 0 || row.text(0, 5) != "sending") continue;  // settled
                const std::string kind(row.text(0, 0)), partner(row.text(0, 1)),
                    contact(row.text(0, 2)), slot(row.text(0, 3)), channel(row.text(0, 4)),
                    detail(row.text(0, 10));
                const std::int64_t alert_id = row.integer(0, 6), ack_due = row.integer(0, 9);
                const int version = static_cast<int>(row.integer(0, 7));
                const int attempts = static_cast<int>(row.integer(0, 8));
                ++changed;
                const bool delivered = o.kind == DeliveryOutcome::Kind::kDelivered;
                const bool failed = !delivered && (o.kind == DeliveryOutcome::Kind::kFailed ||
                                                   attempts >= policy.max_attempts);
                std::string error = o.error;
                if (!delivered && o.kind == DeliveryOutcome::Kind::kRetry && failed)
                    error = "gave up after " + std::to_string(attempts) + " attempts: " + error;
                const std::string status = delivered ? "delivered" : failed ? "failed" : "retrying";
                outbox->Run(
                    "record the delivery's outcome",
                    "UPDATE deliveries SET status = $2, updated_at_ms = $3, next_attempt_ms = "
                    "$4, last_error = $5, delivered_at_ms = CASE WHEN $2 = 'delivered' THEN "
                    "$3::bigint END WHERE id = $1",
                    {Int(o.id), status, Int(now),
                     Int(delivered || failed
                             ? now
                             : now + RetryDelayMs(policy, attempts, o.retry_after_ms, rng)),
                     TextOrNull(error)});
                if (!failed) continue;
                outbox->Audit("ldisd", "delivery.failed", "delivery-" + Int(o.id),
                              boost::json::serialize(boost::json::object{{"partner", partner},
                                                                         {"contact", contact},
                                                                         {"channel", channel},
                                                                         {"attempts", attempts},
                                                                         {"error", error}}));
                const auto falls_back_as = FallsBackAs(kind);
                if (!falls_back_as) continue;
                // The partner's next channel, then a word to the coordinators.
                std::string next = "No fallback contact is configured for this partner.";
                if (g && g->partners && !partner.empty()) {
                    std::set<std::string> used;
                    const auto tried = outbox->Run(
                        "read the contacts tried",
                        "SELECT contact FROM deliveries WHERE alert_id = $1 AND version = $2 AND "
                        "partner = $3 AND kind = $4",
                        {Int(alert_id), Int(version), partner, kind});
                    for (int i = 0; i < tried.size(); ++i) used.emplace(tried.text(i, 0));
                    if (auto fb =
                            g->partners->Fallback(partner, contact, used, g->dispatch.enabled)) {
                        const Contact* c = g->partners->Find(partner)->FindContact(*fb);
                        Delivery d;
                        d.kind = *falls_back_as;
                        d.partner = partner;
                        d.contact = *fb;
                        d.slot = slot;
                        d.channel = c->channel;
                        d.address = c->address;
                        d.ack_due_ms = ack_due;
                        d.detail = detail;
                        outbox->InsertDelivery(alert_id, version, d, now, o.id);
                        next = "Falling back to " + *fb + " (" + std::string(ToString(c->channel)) +
                               ").";
                    }
                }
                if (g) {
                    const Partner* p = g->partners ? g->partners->Find(partner) : nullptr;
                    for (const Delivery& d : CoordinatorNotices(
                             g->partners.get(), g->dispatch.enabled, kKindDeadLetter,
                             boost::json::serialize(boost::json::object{
                                 {"delivery", o.id},
                                 {"partner",
                                  p ? p->name : (partner.empty() ? "the MQTT broker" : partner)},
                                 {"contact", contact},
                                 {"channel", channel},
                                 {"attempts", std::to_string(attempts)},
                                 {"error", error},
                                 {"next", next}})))
                        outbox->InsertDelivery(alert_id, version, d, now);
                }
            }
        },
        now);
    if (!done.ok()) return done.error();
    AfterCommit(done.value());
    return changed;
}

// Sends the latest version of every live alert whose newer versions were held back by
// dispatch.update_interval, once the interval has passed. In the caller's transaction.
void PostgresStore::Impl::FlushUpdates(const GradingSetup& g, std::int64_t now) {
    const auto due = outbox->Run(
        "find held-back updates",
        "SELECT a.id, a.version, a.status, a.level, a.audience, s.authority, s.district FROM "
        "alerts a JOIN signals s ON s.id = a.signal_id WHERE a.status IN ('issued','updated') "
        "AND a.version > a.routed_version AND a.routed_at_ms <= $1 FOR UPDATE OF a",
        {Int(now - g.dispatch.update_interval_ms)});
    for (int i = 0; i < due.size(); ++i) {
        VersionToRoute what;
        ParseAlertStatus(due.text(i, 2), what.status);
        ParseLevel(due.text(i, 3), what.level);
        what.audience = std::string(due.text(i, 4));
        what.authority = std::string(due.text(i, 5));
        what.district = std::string(due.text(i, 6));
        const int version = static_cast<int>(due.integer(i, 1));
        outbox->QueueDeliveries(due.integer(i, 0), version, what, g, now);
        outbox->Run("mark the version routed",
                    "UPDATE alerts SET routed_version = $2, routed_at_ms = $3 WHERE id = $1",
                    {Int(due.integer(i, 0)), Int(version), Int(now)});
    }
}

Result<int> PostgresStore::Impl::EscalateNow(std::int64_t now) {
    const auto g = CurrentGrading();
    if (!g || !g->partners) return 0;
    std::lock_guard lock(outbox->mutex());
    // One instance at a time: the leader's lock is a session lock on this connection, kept
    // until the connection ends (the instance stops or dies), then taken by another.
    // A new connection (the old one was lost) no longer holds the lock.
    pg::Reconnect(outbox->c());
    if (leader && PQbackendPID(outbox->c()) != leader_backend) leader = false;
    if (!leader) {
        auto took = pg::Exec(outbox->c(), "take the leader's lock",
                             "SELECT pg_try_advisory_lock($1)", {Int(pgstore::kLeaderLock)});
        if (!took.ok()) return Error{outbox->where() + ": " + took.error().message};
        leader = took.value().text(0, 0) == "t";
        if (!leader) return 0;
        leader_backend = PQbackendPID(outbox->c());
        spdlog::info(
            "postgresql: this instance now runs the periodic work (escalation, "
            "held-back updates)");
    }
    int queued = 0;
    auto done = outbox->Transaction(
        [&] {
            queued = 0;
            FlushUpdates(*g, now);
            const auto due = outbox->Run(
                "find overdue acknowledgements",
                // The most the partner said: 2 it confirmed what it did, 1 only acknowledged.
                "SELECT d.alert_id, d.partner, max(a.version), max(a.level), coalesce(max(CASE "
                "WHEN x.answer IN ('shared','actions','not_relevant','seen_too') THEN 2 WHEN "
                "x.acknowledged_at_ms IS NOT NULL THEN 1 ELSE 0 END), 0) FROM deliveries d "
                "JOIN alerts a ON "
                "a.id = d.alert_id LEFT JOIN deliveries x ON x.alert_id = d.alert_id AND "
                "x.partner = d.partner WHERE d.escalated = 0 AND d.ack_due_ms IS NOT NULL AND "
                "d.ack_due_ms <= $1 AND d.kind = 'alert' AND a.status IN ('issued','updated') "
                "GROUP BY d.alert_id, d.partner",
                {Int(now)});
            for (int i = 0; i < due.size(); ++i) {
                const std::int64_t alert_id = due.integer(i, 0);
                const std::string partner(due.text(i, 1));
                outbox->Run("mark the deliveries escalated",
                            "UPDATE deliveries SET escalated = 1 WHERE alert_id = $1 AND partner "
                            "= $2 AND kind = 'alert' AND ack_due_ms <= $3",
                            {Int(alert_id), partner, Int(now)});
                Level level = Level::kNone;
                ParseLevel(due.text(i, 3), level);
                const auto escalation = Escalation(*g->partners, partner, level,
                                                   SaidAtMost(due.integer(i, 4)), g->dispatch);
                if (!escalation) continue;
                outbox->InsertDelivery(alert_id, static_cast<int>(due.integer(i, 2)), *escalation,
                                       now);
                outbox->Audit("ldisd", "delivery.escalated", escalation->partner,
                              "{\"alert\":" + Int(alert_id) + "}");
                ++queued;
            }
        },
        now);
    if (!done.ok()) return done.error();
    AfterCommit(done.value());
    return queued;
}

}  // namespace ldis::engine
