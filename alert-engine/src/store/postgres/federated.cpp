// A peer instance's versions at this one (issue 16 §1) on PostgreSQL, as SQLite's
// store/federated.cpp: stored once under the table's unique key, whichever instance takes
// the message, decided by policy or by a coordinator, forwarded in the same transaction.
#include <boost/json.hpp>

#include "ldis/engine/federated.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;

namespace {

// Queues a forwarded version's deliveries on `w` (in its transaction): the peer alert's
// recipients so far, then the pipeline's plan.
int QueueForwarded(pgstore::Writer& w, const GradingSetup* g, const std::string& detail,
                   const VersionToRoute& route, int version, std::int64_t now) {
    if (g == nullptr) return 0;
    boost::json::error_code ec;
    const auto d = boost::json::parse(detail, ec);
    const std::string source = !ec && d.is_object() && d.as_object().contains("source")
                                   ? std::string(d.at("source").as_string())
                                   : std::string();
    const auto rows = w.Run("read the peer alert's recipients",
                            "SELECT partner, contact, slot FROM deliveries WHERE kind = "
                            "'federated' AND (detail::json ->> 'source') = $1 ORDER BY id",
                            {source});
    std::vector<Recipient> earlier;
    for (int i = 0; i < rows.size(); ++i) {
        earlier.push_back({std::string(rows.text(i, 0)), std::string(rows.text(i, 1)),
                           std::string(rows.text(i, 2))});
    }
    earlier = LatestPerSlot(std::move(earlier));
    const auto planned = PlanForwarded(route, earlier, g->partners.get(), g->dispatch, now, detail);
    for (const auto& delivery : planned) w.InsertDelivery(0, version, delivery, now);
    return static_cast<int>(planned.size());
}

}  // namespace

Result<FederatedOutcome> PostgresStore::ReceiveFederated(const FederatedVersion& v,
                                                         FederatedPolicy for_level,
                                                         const std::string& peer_name,
                                                         std::int64_t now_ms) {
    const auto g = impl_->CurrentGrading();
    FederatedOutcome out;
    std::lock_guard lock(impl_->intake->mutex());
    auto& w = *impl_->intake;
    auto done = w.Transaction(
        [&] {
            out = {};
            // One peer alert at a time, on any instance: its decision reads its earlier ones.
            w.Run("take the peer alert's lock", "SELECT pg_advisory_xact_lock(hashtext($1))",
                  {v.peer + "/" + v.reference});
            const bool forwarded_before =
                w.Run("read the peer alert's decisions",
                      "SELECT 1 FROM federated WHERE peer = $1 AND reference = $2 AND decision "
                      "IN ('forwarded', 'adopted') LIMIT 1",
                      {v.peer, v.reference})
                    .size() > 0;
            out.decision = std::string(FederatedDecision(for_level, forwarded_before));
            const std::string detail = ForwardedDetail(v, peer_name);
            out.stored =
                w.Run("store the peer's version",
                      "INSERT INTO federated (peer, identifier, reference, version, msg_type, "
                      "cap_status, level, authority, district, headline, sequence, "
                      "received_at_ms, decision, detail, cap) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                      "$8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (peer, identifier) DO "
                      "NOTHING RETURNING id",
                      {v.peer, v.identifier, v.reference, Int(v.version), v.msg_type, v.cap_status,
                       std::string(ToString(v.level)), v.authority, v.district, v.headline,
                       Int(static_cast<std::int64_t>(v.sequence)), Int(now_ms), out.decision,
                       detail, v.cap})
                    .size() == 1;
            if (out.stored && WentToPartners(out.decision))
                out.deliveries =
                    QueueForwarded(w, g.get(), detail,
                                   ForwardedRoute(v.msg_type, v.version, ToString(v.level),
                                                  v.authority, v.district),
                                   v.version, now_ms);
            w.Run("keep the peer's last sequence",
                  "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE "
                  "SET value = excluded.value",
                  {"federation:last:" + v.peer, std::to_string(v.sequence)});
            if (out.stored)
                w.Audit("federation:" + v.peer, "federation.received", v.peer + "/" + v.identifier,
                        boost::json::serialize(
                            boost::json::object{{"decision", out.decision},
                                                {"sequence", std::to_string(v.sequence)},
                                                {"deliveries", out.deliveries}}));
        },
        now_ms);
    if (!done.ok()) return done.error();
    return out;
}

std::vector<FederatedRow> PostgresStore::Federated(std::size_t limit) const {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "read the peers' versions",
                      "SELECT id, peer, identifier, reference, version, msg_type, cap_status, "
                      "level, authority, district, headline, received_at_ms, decision, "
                      "coalesce(decided_by, ''), coalesce(decided_at_ms, 0) FROM federated "
                      "ORDER BY id DESC LIMIT $1",
                      {Int(static_cast<std::int64_t>(limit))});
    std::vector<FederatedRow> out;
    if (!r.ok()) return out;
    const auto& rows = r.value();
    for (int i = 0; i < rows.size(); ++i) {
        FederatedRow f;
        f.id = rows.integer(i, 0);
        f.peer = std::string(rows.text(i, 1));
        f.identifier = std::string(rows.text(i, 2));
        f.reference = std::string(rows.text(i, 3));
        f.version = static_cast<int>(rows.integer(i, 4));
        f.msg_type = std::string(rows.text(i, 5));
        f.cap_status = std::string(rows.text(i, 6));
        f.level = std::string(rows.text(i, 7));
        f.authority = std::string(rows.text(i, 8));
        f.district = std::string(rows.text(i, 9));
        f.headline = std::string(rows.text(i, 10));
        f.received_at_ms = rows.integer(i, 11);
        f.decision = std::string(rows.text(i, 12));
        f.decided_by = std::string(rows.text(i, 13));
        f.decided_at_ms = rows.integer(i, 14);
        out.push_back(std::move(f));
    }
    return out;
}

std::vector<ForwardedAcks> PostgresStore::ForwardedAcknowledgements(std::int64_t now_ms) const {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "count the peers' alerts' acknowledgements",
                      "SELECT detail::json ->> 'peer', detail::json ->> 'reference', "
                      "count(DISTINCT partner), count(DISTINCT partner) FILTER (WHERE "
                      "acknowledged_at_ms IS NOT NULL) FROM deliveries WHERE kind = 'federated' "
                      "AND created_at_ms >= $1 GROUP BY 1, 2 ORDER BY 1, 2",
                      {Int(now_ms - 30LL * 24 * 3600 * 1000)});
    std::vector<ForwardedAcks> out;
    if (!r.ok()) return out;
    const auto& rows = r.value();
    for (int i = 0; i < rows.size(); ++i)
        out.push_back({std::string(rows.text(i, 0)), std::string(rows.text(i, 1)),
                       static_cast<int>(rows.integer(i, 2)), static_cast<int>(rows.integer(i, 3))});
    return out;
}

Result<FederatedRow> PostgresStore::DecideFederated(std::int64_t id, bool adopt,
                                                    const std::string& actor, std::int64_t now_ms) {
    const auto g = impl_->CurrentGrading();
    std::lock_guard lock(impl_->intake->mutex());
    auto& w = *impl_->intake;
    auto done = w.Transaction(
        [&] {
            const auto row = w.Run(
                "decide on the peer's version",
                "UPDATE federated SET decision = $2, decided_by = $3, decided_at_ms = $4 WHERE id "
                "= $1 AND decision = 'review' RETURNING msg_type, version, level, authority, "
                "district, detail, peer || '/' || identifier",
                {Int(id), adopt ? "adopted" : "declined", actor, Int(now_ms)});
            if (row.size() == 0)
                throw pgstore::Refused{
                    Error{"there is no version " + std::to_string(id) +
                          " from another LDIS waiting for a decision: it was adopted or declined "
                          "already, or it never needed one"}};
            int queued = 0;
            if (adopt)
                queued = QueueForwarded(
                    w, g.get(), std::string(row.text(0, 5)),
                    ForwardedRoute(row.text(0, 0), static_cast<int>(row.integer(0, 1)),
                                   row.text(0, 2), std::string(row.text(0, 3)),
                                   std::string(row.text(0, 4))),
                    static_cast<int>(row.integer(0, 1)), now_ms);
            w.Audit(actor, adopt ? "federation.adopted" : "federation.declined",
                    std::string(row.text(0, 6)),
                    boost::json::serialize(boost::json::object{{"deliveries", queued}}));
        },
        now_ms);
    if (!done.ok()) return done.error();
    for (auto& r : Federated(100000)) {
        if (r.id == id) return r;
    }
    return Error{"version " + std::to_string(id) + " is not there any more"};
}

}  // namespace ldis::engine
