// Deliveries queued for a new version (by Partners::Route), the coordinators' notices, the
// update throttle's flush.
#include "impl.hpp"

namespace ldis::engine {

int ReportStore::Impl::InsertDelivery(std::int64_t alert_id, int version, std::string_view kind,
                                      const std::string& partner, const std::string& contact,
                                      const std::string& slot, Channel channel,
                                      const std::string& address, std::int64_t now,
                                      std::int64_t ack_due, std::int64_t fallback_of,
                                      const std::string& detail) {
    sqlite3_stmt* stmt = writer_.Cached(
        "INSERT INTO deliveries (alert_id, version, kind, partner, contact, slot, channel, "
        "address, status, next_attempt_ms, created_at_ms, updated_at_ms, ack_due_ms, "
        "fallback_of, detail) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?9, ?9, ?10, ?11, ?12)");
    StatementUse use(stmt);
    sqlite3_bind_int64(stmt, 1, alert_id);
    sqlite3_bind_int(stmt, 2, version);
    BindText(stmt, 3, kind);
    BindText(stmt, 4, partner);
    BindText(stmt, 5, contact);
    BindText(stmt, 6, slot);
    BindText(stmt, 7, ToString(channel));
    BindText(stmt, 8, address);
    sqlite3_bind_int64(stmt, 9, now);
    if (ack_due > 0)
        sqlite3_bind_int64(stmt, 10, ack_due);
    else
        sqlite3_bind_null(stmt, 10);
    if (fallback_of > 0)
        sqlite3_bind_int64(stmt, 11, fallback_of);
    else
        sqlite3_bind_null(stmt, 11);
    BindText(stmt, 12, detail);
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return rc;
    ++outbox_added_;
    return SQLITE_OK;
}

// A notice to every contact of the coordinators' partner.
int ReportStore::Impl::NoticeCoordinators(const GradingSetup& g, std::int64_t alert_id, int version,
                                          std::string_view kind, std::int64_t now,
                                          const std::string& detail) {
    const Partner* c = g.partners ? g.partners->coordinators() : nullptr;
    if (c == nullptr) return SQLITE_OK;
    for (const auto& contact : c->contacts) {
        if (!g.dispatch.enabled.contains(contact.channel)) continue;
        const int rc =
            InsertDelivery(alert_id, version, kind, c->id, contact.name, c->id + "/" + contact.name,
                           contact.channel, contact.address, now, 0, 0, detail);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

// Routes a version just written to the outbox, in the caller's transaction.
int ReportStore::Impl::QueueDeliveries(const VersionRoute& v, const GradingSetup& g,
                                       std::int64_t now) {
    if (v.status == "draft") {
        return v.created_draft
                   ? NoticeCoordinators(g, v.alert_id, v.version, kKindApproval, now, "{}")
                   : SQLITE_OK;
    }
    if (v.status == "expired") return SQLITE_OK;
    RouteInput in;
    ParseLevel(v.level, in.level);
    in.authority = v.authority;
    in.district = v.district;
    in.audience = v.audience;
    in.cancellation = v.status == "cancelled";
    {
        // Each slot's latest row: the contact that reached it last (after any fallback).
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT partner, contact, slot FROM deliveries WHERE alert_id = ?1 AND kind = "
            "'alert' ORDER BY id");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, v.alert_id);
        std::map<std::string, std::size_t> at;
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            Recipient r{ColumnText(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2)};
            if (auto it = at.find(r.slot); it != at.end()) {
                in.earlier[it->second] = std::move(r);
            } else {
                at[r.slot] = in.earlier.size();
                in.earlier.push_back(std::move(r));
            }
        }
        if (rc != SQLITE_DONE) return rc;
    }
    const std::int64_t ack_ms =
        AckWindowMs(in.level, in.cancellation, g.dispatch.red_ack_ms, g.dispatch.amber_ack_ms);
    if (g.partners) {
        for (const auto& r : g.partners->Route(in, g.dispatch.enabled)) {
            const Contact* c = g.partners->Find(r.partner)->FindContact(r.contact);
            const int rc =
                InsertDelivery(v.alert_id, v.version, kKindAlert, r.partner, r.contact, r.slot,
                               c->channel, c->address, now, ack_ms > 0 ? now + ack_ms : 0, 0, "{}");
            if (rc != SQLITE_OK) return rc;
        }
    }
    if (g.dispatch.enabled.contains(Channel::kMqtt)) {
        const int rc =
            InsertDelivery(v.alert_id, v.version, kKindMqtt, "", "mqtt", "mqtt", Channel::kMqtt,
                           wire::AlertTopic(v.level, v.authority), now, 0, 0, "{}");
        if (rc != SQLITE_OK) return rc;
    }
    if (v.page) return NoticeCoordinators(g, v.alert_id, v.version, kKindPage, now, "{}");
    return SQLITE_OK;
}

int ReportStore::Impl::MarkRouted(std::int64_t alert_id, int version, std::int64_t now) {
    sqlite3_stmt* stmt =
        writer_.Cached("UPDATE alerts SET routed_version = ?2, routed_at_ms = ?3 WHERE id = ?1");
    StatementUse use(stmt);
    sqlite3_bind_int64(stmt, 1, alert_id);
    sqlite3_bind_int(stmt, 2, version);
    sqlite3_bind_int64(stmt, 3, now);
    return sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(writer_.get());
}

// Sends the latest version of every live alert whose newer versions were held back
// by dispatch.update_interval, once the interval has passed. In the caller's transaction.
int ReportStore::Impl::FlushUpdates(const GradingSetup& g, std::int64_t now) {
    std::vector<VersionRoute> due;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT a.id, a.version, a.status, a.level, a.audience, s.authority, s.district "
            "FROM alerts a JOIN signals s ON s.id = a.signal_id "
            "WHERE a.status IN ('issued','updated') AND a.version > a.routed_version "
            "AND a.routed_at_ms <= ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, now - g.dispatch.update_interval_ms);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            VersionRoute r;
            r.alert_id = sqlite3_column_int64(stmt, 0);
            r.version = sqlite3_column_int(stmt, 1);
            r.status = ColumnText(stmt, 2);
            r.level = ColumnText(stmt, 3);
            r.audience = ColumnText(stmt, 4);
            r.authority = ColumnText(stmt, 5);
            r.district = ColumnText(stmt, 6);
            due.push_back(std::move(r));
        }
    }
    for (const auto& r : due) {
        if (const int rc = QueueDeliveries(r, g, now); rc != SQLITE_OK) return rc;
        if (const int rc = MarkRouted(r.alert_id, r.version, now); rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

}  // namespace ldis::engine
