// Deliveries as coordinators and partners see them, on PostgreSQL: the lists, and the
// acknowledgement and unsubscribe links, recorded at whichever instance they reach.
#include <boost/json.hpp>

#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;

std::vector<DeliveryRow> PostgresStore::Impl::DeliveryQuery(const std::string& where,
                                                            const pgstore::Params& params) {
    std::lock_guard lock(reader->mutex());
    auto r = pg::Exec(
        reader->c(), "read deliveries",
        "SELECT d.id, coalesce(a.reference, d.detail::json ->> 'reference', ''), d.version, "
        "d.kind, d.partner, d.contact, "
        "d.channel, "
        "d.address, d.status, d.attempts, d.created_at_ms, d.updated_at_ms, "
        "coalesce(d.delivered_at_ms, 0), coalesce(d.acknowledged_at_ms, 0), "
        "coalesce(d.fallback_of, 0), coalesce(d.last_error, ''), coalesce(v.level, ''), "
        "coalesce(d.answer, ''), coalesce(d.answer_note, ''), coalesce(d.answered_at_ms, 0), "
        "coalesce(d.ack_due_ms, 0), coalesce(v.photos, '') FROM "
        "deliveries d LEFT JOIN alerts a ON a.id = d.alert_id LEFT JOIN alert_versions v ON "
        "v.alert_id = d.alert_id AND v.version = d.version " +
            where + " ORDER BY d.id",
        params);
    std::vector<DeliveryRow> out;
    if (!r.ok()) return out;
    const auto& rows = r.value();
    for (int i = 0; i < rows.size(); ++i) {
        DeliveryRow d;
        d.id = rows.integer(i, 0);
        d.reference = std::string(rows.text(i, 1));
        d.version = static_cast<int>(rows.integer(i, 2));
        d.kind = std::string(rows.text(i, 3));
        d.partner = std::string(rows.text(i, 4));
        d.contact = std::string(rows.text(i, 5));
        d.channel = std::string(rows.text(i, 6));
        d.address = std::string(rows.text(i, 7));
        d.status = std::string(rows.text(i, 8));
        d.attempts = static_cast<int>(rows.integer(i, 9));
        d.created_at_ms = rows.integer(i, 10);
        d.updated_at_ms = rows.integer(i, 11);
        d.delivered_at_ms = rows.integer(i, 12);
        d.acknowledged_at_ms = rows.integer(i, 13);
        d.fallback_of = rows.integer(i, 14);
        d.last_error = std::string(rows.text(i, 15));
        d.level = std::string(rows.text(i, 16));
        d.answer = std::string(rows.text(i, 17));
        d.answer_note = std::string(rows.text(i, 18));
        d.answered_at_ms = rows.integer(i, 19);
        d.ack_due_ms = rows.integer(i, 20);
        d.photos = std::string(rows.text(i, 21));
        out.push_back(std::move(d));
    }
    return out;
}

std::vector<DeliveryRow> PostgresStore::Deliveries(std::string_view reference) const {
    if (reference.empty()) return impl_->DeliveryQuery("", {});
    return impl_->DeliveryQuery("WHERE a.reference = $1", {std::string(reference)});
}

std::vector<DeliveryRow> PostgresStore::FailedDeliveries(std::size_t limit) const {
    return impl_->DeliveryQuery(
        "WHERE d.id IN (SELECT id FROM deliveries WHERE status = 'failed' ORDER BY id DESC LIMIT " +
            std::to_string(limit) + ")",
        {});
}

std::optional<DeliveryRow> PostgresStore::FindDelivery(std::int64_t id) const {
    auto rows = impl_->DeliveryQuery("WHERE d.id = $1", {Int(id)});
    if (rows.empty()) return std::nullopt;
    return std::move(rows.front());
}

std::map<std::string, std::int64_t> PostgresStore::DeliveryCounts() const {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "count deliveries",
                      "SELECT status, count(*) FROM deliveries GROUP BY status");
    std::map<std::string, std::int64_t> out;
    if (!r.ok()) return out;
    for (int i = 0; i < r.value().size(); ++i)
        out[std::string(r.value().text(i, 0))] = r.value().integer(i, 1);
    return out;
}

Result<DeliveryRow> PostgresStore::Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                               std::int64_t now_ms, const PartnerAnswer& answer) {
    if (answer.note.size() > kAnswerNoteMax)
        return Error{"the note is longer than " + std::to_string(kAnswerNoteMax) + " characters"};
    const std::string who(actor);
    {
        std::lock_guard lock(impl_->intake->mutex());
        auto done = impl_->intake->Transaction(
            [&] {
                // However often the link is followed, and at whichever instance: acknowledged
                // once, at the first time; the row is locked while the answer is decided.
                auto& w = *impl_->intake;
                const auto row = w.Run("read the acknowledgement",
                                       "SELECT acknowledged_at_ms IS NOT NULL, coalesce(answer, "
                                       "''), coalesce(answer_note, '') FROM deliveries WHERE id "
                                       "= $1 FOR UPDATE",
                                       {Int(delivery_id)});
                if (row.size() == 0) return;
                Answer before = Answer::kNone;
                ParseAnswer(row.text(0, 1), before);
                const AnswerUpdate update = UpdateAnswer(row.text(0, 0) == "t", before,
                                                         std::string(row.text(0, 2)), answer);
                if (!update.acknowledge && !update.changed) return;
                w.Run("record the acknowledgement",
                      "UPDATE deliveries SET acknowledged_at_ms = coalesce(acknowledged_at_ms, "
                      "$2), answer = nullif($3, ''), answer_note = nullif($4, ''), "
                      "answered_at_ms = CASE WHEN $5 THEN $2::bigint ELSE answered_at_ms END "
                      "WHERE id = $1",
                      {Int(delivery_id), Int(now_ms), std::string(ToString(update.answer)),
                       update.note, update.changed ? "true" : "false"});
                const std::string detail = boost::json::serialize(boost::json::object{
                    {"answer", ToString(update.answer)}, {"note", !update.note.empty()}});
                w.Audit(who, update.acknowledge ? "delivery.acknowledged" : "delivery.answered",
                        "delivery-" + Int(delivery_id), detail);
            },
            now_ms);
        if (!done.ok()) return done.error();
    }
    auto row = FindDelivery(delivery_id);
    if (!row) return Error{"no delivery " + Int(delivery_id)};
    return *row;
}

Result<DeliveryRow> PostgresStore::RequestUnsubscribe(std::int64_t delivery_id,
                                                      std::int64_t now_ms) {
    auto row = FindDelivery(delivery_id);
    if (!row) return Error{"no delivery " + Int(delivery_id)};
    bool already = false;
    const auto g = impl_->CurrentGrading();
    std::int64_t queued = 0;
    {
        std::lock_guard lock(impl_->intake->mutex());
        auto done = impl_->intake->Transaction(
            [&] {
                // However often the link is posted, the coordinators hear of it once.
                const auto marked = impl_->intake->Run(
                    "record the unsubscribe request",
                    "UPDATE deliveries SET unsubscribe_requested_at_ms = $2 WHERE id = $1 AND "
                    "unsubscribe_requested_at_ms IS NULL RETURNING alert_id",
                    {Int(delivery_id), Int(now_ms)});
                if (marked.size() == 0) {
                    already = true;
                    return;
                }
                const std::string detail =
                    boost::json::serialize(boost::json::object{{"delivery", delivery_id},
                                                               {"partner", row->partner},
                                                               {"contact", row->contact},
                                                               {"address", row->address}});
                if (g) {
                    for (const Delivery& d : CoordinatorNotices(
                             g->partners.get(), g->dispatch.enabled, kKindUnsubscribe, detail))
                        impl_->intake->InsertDelivery(marked.integer(0, 0), row->version, d,
                                                      now_ms);
                }
                impl_->intake->Audit(row->partner + "/" + row->contact, "unsubscribe.requested",
                                     "delivery-" + Int(delivery_id), detail);
            },
            now_ms);
        if (!done.ok()) return done.error();
        queued = done.value();
    }
    impl_->AfterCommit(static_cast<int>(queued));
    DeliveryRow out = *row;
    out.unsubscribe_already_requested = already;
    return out;
}

}  // namespace ldis::engine
