// Deliveries queued for a new version (as PlanDeliveries decides), the coordinators' notices,
// the update throttle's flush, and a fan-out's deferred rows.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

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
        // The alert's earlier fan-out may still be deferred (two reports in one batch).
        if (const int rc = WriteOutDeferred(v.alert_id); rc != SQLITE_OK) return rc;
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
    const auto planned = PlanDeliveries(v.what, earlier, g.partners.get(), g.dispatch, now);
    const std::size_t first = options_.first_deliveries;
    if (first == 0 || planned.size() <= first)
        return InsertDeliveries(v.alert_id, v.version, planned, now);
    for (std::size_t i = 0; i < first; ++i) {
        if (const int rc = InsertDelivery(v.alert_id, v.version, planned[i], now); rc != SQLITE_OK)
            return rc;
    }
    return DeferDeliveries(v.alert_id, v.version, {planned.begin() + first, planned.end()}, now);
}

// A fan-out's deliveries after its first few, as one row: a red alert's 101 rows (one row
// and four index entries each) took the writer 0.9 ms before its commit, and the first email
// waited for all of them. The row is in the deciding transaction, so nothing is lost if
// ldisd stops before WriteOutDeferred: it is written out at the next start.
int ReportStore::Impl::DeferDeliveries(std::int64_t alert_id, int version,
                                       std::span<const Delivery> rest, std::int64_t now) {
    boost::json::array planned;
    planned.reserve(rest.size());
    for (const auto& d : rest) {
        planned.push_back(boost::json::object{{"kind", d.kind},
                                              {"partner", d.partner},
                                              {"contact", d.contact},
                                              {"slot", d.slot},
                                              {"channel", ToString(d.channel)},
                                              {"address", d.address},
                                              {"ack_due_ms", d.ack_due_ms},
                                              {"detail", d.detail}});
    }
    const std::string text = boost::json::serialize(planned);  // bound, not copied: kept
    sqlite3_stmt* stmt = writer_.Cached(
        "INSERT INTO deferred_deliveries (alert_id, version, created_at_ms, planned) "
        "VALUES (?1, ?2, ?3, ?4)");
    StatementUse use(stmt);
    sqlite3_bind_int64(stmt, 1, alert_id);
    sqlite3_bind_int(stmt, 2, version);
    sqlite3_bind_int64(stmt, 3, now);
    BindText(stmt, 4, text);
    if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
    deferred_waiting_ = true;
    deferred_in_hand_ = true;
    return SQLITE_OK;
}

namespace {

// One deferred delivery back from its JSON; false when it is not one (never written so).
bool DeferredDelivery(const boost::json::value& v, Delivery& d) {
    const auto* o = v.if_object();
    if (o == nullptr) return false;
    const auto text = [&](std::string_view key, std::string& out) {
        const auto* s = o->if_contains(key);
        if (s == nullptr || !s->is_string()) return false;
        out = std::string(s->as_string());
        return true;
    };
    std::string kind, channel;
    const auto* due = o->if_contains("ack_due_ms");
    if (!text("kind", kind) || !text("partner", d.partner) || !text("contact", d.contact) ||
        !text("slot", d.slot) || !text("channel", channel) || !text("address", d.address) ||
        !text("detail", d.detail) || due == nullptr || !due->is_int64())
        return false;
    const auto named = KindNamed(kind);
    if (!named || !ParseChannel(channel, d.channel)) return false;
    d.kind = *named;
    d.ack_due_ms = due->as_int64();
    return true;
}

}  // namespace

// The deferred rows of `alert_id` (every alert's when 0) written out as deliveries, in the
// caller's transaction, each with the time its fan-out was decided.
int ReportStore::Impl::WriteOutDeferred(std::int64_t alert_id) {
    if (!deferred_waiting_) return SQLITE_OK;
    struct Row {
        std::int64_t id, alert_id;
        int version;
        std::int64_t created_at_ms;
        std::string planned;
    };
    std::vector<Row> rows;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT id, alert_id, version, created_at_ms, planned FROM deferred_deliveries "
            "WHERE ?1 = 0 OR alert_id = ?1 ORDER BY id");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            rows.push_back({sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1),
                            sqlite3_column_int(stmt, 2), sqlite3_column_int64(stmt, 3),
                            ColumnText(stmt, 4)});
        }
        if (rc != SQLITE_DONE) return rc;
    }
    for (const auto& row : rows) {
        // Never written so by this store: kept as it is for an operator to look at, and not
        // in the way of any other fan-out.
        const auto unreadable = [&] {
            spdlog::error(
                "store: deferred deliveries {} (alert {}, version {}) cannot be read; kept in "
                "deferred_deliveries",
                row.id, row.alert_id, row.version);
        };
        boost::system::error_code ec;
        const auto planned = boost::json::parse(row.planned, ec);
        std::vector<Delivery> deliveries;
        bool readable = !ec && planned.is_array();
        for (std::size_t i = 0; readable && i < planned.as_array().size(); ++i) {
            Delivery d;
            readable = DeferredDelivery(planned.as_array()[i], d);
            deliveries.push_back(std::move(d));
        }
        if (!readable) {
            unreadable();
            continue;
        }
        for (const auto& d : deliveries) {
            if (const int rc = InsertDelivery(row.alert_id, row.version, d, row.created_at_ms);
                rc != SQLITE_OK)
                return rc;
        }
        sqlite3_stmt* remove = writer_.Cached("DELETE FROM deferred_deliveries WHERE id = ?1");
        StatementUse use(remove);
        sqlite3_bind_int64(remove, 1, row.id);
        if (const int rc = sqlite3_step(remove); rc != SQLITE_DONE) return rc;
    }
    if (alert_id == 0) deferred_waiting_ = false;
    return SQLITE_OK;
}

// Rows a commit deferred are written out kDeferredWait after it, or sooner when the writer
// commits anything else (the first outcomes of the fan-out) or a reader asks: not at once,
// because on two cores their 0.8 ms of the writer's time competes with the first emails'
// transfers and the relay's answers (bench/run --only latency, first email p50 4.5-5.1 ms
// written out at once against 4.05-4.2 after the first outcomes).
constexpr auto kDeferredWait = std::chrono::milliseconds(3);

void ReportStore::Impl::AfterCommitDeferred(bool committed) {
    const bool deferred = std::exchange(deferred_in_hand_, false);
    if (!committed) return;
    if (deferred) {
        if (!deferred_due_) deferred_due_ = std::chrono::steady_clock::now() + kDeferredWait;
        return;
    }
    WriteOutDeferredNow();
}

void ReportStore::Impl::SettleDeferred() {
    if (!deferred_waiting_ || std::this_thread::get_id() == thread_.get_id()) return;
    OnWriter<int>([this]() -> Result<int> {
        WriteOutDeferredNow();
        return 0;
    });
}

// Deferred rows written out (after a commit that deferred them, at start, or when a reader
// asks) in a transaction of their own, committed without waiting for the disk, as a claim is
// (the rows they come from are durable already, and the WAL keeps order: anything later that
// is durable has them). The dispatcher is told of them as of any new rows.
void ReportStore::Impl::WriteOutDeferredNow() {
    deferred_due_.reset();
    if (!deferred_waiting_) return;
    int rc;
    std::string failure;
    {
        RelaxedSync relaxed(writer_, options_.synchronous);
        Transaction tx(writer_);
        rc = tx.begun();
        if (rc == SQLITE_OK) rc = WriteOutDeferred(0);
        if (rc == SQLITE_OK) rc = tx.Commit();
        if (rc != SQLITE_OK) failure = writer_.Describe(rc);
    }
    if (rc != SQLITE_OK) {
        // Kept, and tried again after the next commit (and at the next start).
        outbox_added_ = 0;
        deferred_waiting_ = true;
        spdlog::error("store: the deferred deliveries could not be written out: {}", failure);
        return;
    }
    NotifyOutbox();
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
