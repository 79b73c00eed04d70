// Deliveries queued for a new version (as PlanDeliveries decides), the coordinators' notices,
// the update throttle's flush.
#include "impl.hpp"

namespace ldis::engine {

int ReportStore::Impl::InsertDelivery(std::int64_t alert_id, int version, const Delivery& d,
                                      std::int64_t now, std::int64_t fallback_of) {
    sqlite3_stmt* stmt = writer_.Cached(
        "INSERT INTO deliveries (alert_id, version, kind, partner, contact, slot, channel, "
        "address, status, next_attempt_ms, created_at_ms, updated_at_ms, ack_due_ms, "
        "fallback_of, detail) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?9, ?9, ?10, ?11, ?12)");
    StatementUse use(stmt);
    if (alert_id > 0)
        sqlite3_bind_int64(stmt, 1, alert_id);
    else
        sqlite3_bind_null(stmt, 1);  // a notice about no alert (a feed's)
    sqlite3_bind_int(stmt, 2, version);
    BindText(stmt, 3, d.kind);
    BindText(stmt, 4, d.partner);
    BindText(stmt, 5, d.contact);
    BindText(stmt, 6, d.slot);
    BindText(stmt, 7, ToString(d.channel));
    BindText(stmt, 8, d.address);
    sqlite3_bind_int64(stmt, 9, now);
    if (d.ack_due_ms > 0)
        sqlite3_bind_int64(stmt, 10, d.ack_due_ms);
    else
        sqlite3_bind_null(stmt, 10);
    if (fallback_of > 0)
        sqlite3_bind_int64(stmt, 11, fallback_of);
    else
        sqlite3_bind_null(stmt, 11);
    BindText(stmt, 12, d.detail);
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return rc;
    ++outbox_added_;
    return SQLITE_OK;
}

int ReportStore::Impl::InsertDeliveries(std::int64_t alert_id, int version,
                                        const std::vector<Delivery>& planned, std::int64_t now) {
    for (const auto& d : planned) {
        if (const int rc = InsertDelivery(alert_id, version, d, now); rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

// Routes a version just written to the outbox, in the caller's transaction: the pipeline
// plans the deliveries (PlanDeliveries) from the alert's earlier recipients; they are
// queued here.
int ReportStore::Impl::QueueDeliveries(const VersionRoute& v, const GradingSetup& g,
                                       std::int64_t now) {
    std::vector<Recipient> earlier;
    if (v.what.status != AlertStatus::kDraft && v.what.status != AlertStatus::kExpired) {
        // Each slot's latest row: the contact that reached it last (after any fallback).
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT partner, contact, slot FROM deliveries WHERE alert_id = ?1 AND kind = "
            "'alert' ORDER BY id");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, v.alert_id);
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
            earlier.push_back({ColumnText(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2)});
        if (rc != SQLITE_DONE) return rc;
        earlier = LatestPerSlot(std::move(earlier));
    }
    return InsertDeliveries(v.alert_id, v.version,
                            PlanDeliveries(v.what, earlier, g.partners.get(), g.dispatch, now),
                            now);
}

int ReportStore::Impl::MarkRouted(std::int64_t alert_id, int version, std::int64_t now) {
    sqlite3_stmt* stmt =
        writer_.Cached("UPDATE alerts SET routed_version = ?2, routed_at_ms = ?3 WHERE id = ?1");
    StatementUse use(stmt);
    if (alert_id > 0)
        sqlite3_bind_int64(stmt, 1, alert_id);
    else
        sqlite3_bind_null(stmt, 1);  // a notice about no alert (a feed's)
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
            r.what.status = StatusColumn(stmt, 2);
            r.what.level = LevelColumn(stmt, 3);
            r.what.audience = ColumnText(stmt, 4);
            r.what.authority = ColumnText(stmt, 5);
            r.what.district = ColumnText(stmt, 6);
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
