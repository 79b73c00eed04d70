// The outbox: claiming due deliveries, recording outcomes, escalation, acknowledgements and
// unsubscribe requests.
#include "impl.hpp"
#include "ldis/engine/federated.hpp"

namespace ldis::engine {

// A claim only marks rows `sending`, and rows left `sending` are sent again at start
// (RecoverInFlight), so a claim lost with the power changes nothing: it is committed
// without waiting for the disk (synchronous=NORMAL in WAL still survives a crash of
// ldisd), which takes one fsync off the path from a red report to its first email.
// The next full commit's fsync covers it, as the WAL is written in order.
void ReportStore::Impl::ClaimDue(std::int64_t now, std::size_t limit,
                                 std::function<void(Result<std::vector<OutboxItem>>)> done) {
    if (!Post([this, now, limit, done] { done(ClaimRelaxed(now, limit)); }))
        done(Error{"the store is closing"});
}

Result<std::vector<OutboxItem>> ReportStore::Impl::ClaimRelaxed(std::int64_t now,
                                                                std::size_t limit) {
    WriteOutDeferredNow();  // deferred rows are due from their decision
    RelaxedSync relaxed(writer_, options_.synchronous);
    return ClaimOnWriter(now, limit);
}

void ReportStore::Impl::Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now,
                                 std::function<void(Result<int>)> done) {
    auto shared = std::make_shared<std::vector<DeliveryOutcome>>(std::move(outcomes));
    if (!Post([this, shared, now, done] { done(CompleteOnWriter(*shared, now)); }))
        done(Error{"the store is closing"});
}

void ReportStore::Impl::EscalateDue(std::int64_t now, std::function<void(Result<int>)> done) {
    if (!Post([this, now, done] { done(EscalateOnWriter(now)); }))
        done(Error{"the store is closing"});
}

Result<int> ReportStore::Impl::RecoverInFlight(std::int64_t now) {
    return OnWriter<int>([&]() -> Result<int> {
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE deliveries SET status = 'retrying', next_attempt_ms = ?1, updated_at_ms = "
            "?1, last_error = 'interrupted: ldisd stopped while sending' "
            "WHERE status = 'sending'");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, now);
        const int rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
        return sqlite3_changes(writer_.get());
    });
}

Result<DeliveryRow> ReportStore::Impl::RequestUnsubscribe(std::int64_t delivery_id,
                                                          std::int64_t now) {
    auto rows = DeliveryQuery("WHERE d.id = ?1", std::to_string(delivery_id));
    if (rows.empty()) return Error{"no delivery " + std::to_string(delivery_id)};
    const DeliveryRow row = rows.front();
    auto outcome = OnWriter<int>([&]() -> Result<int> {
        const auto g = CurrentGrading();
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        std::int64_t alert_id = 0;
        {
            // However often the link is posted, the coordinators hear of it once.
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE deliveries SET unsubscribe_requested_at_ms = ?2 WHERE id = ?1 AND "
                "unsubscribe_requested_at_ms IS NULL RETURNING alert_id");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, delivery_id);
            sqlite3_bind_int64(stmt, 2, now);
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE) return 0;  // asked before: nothing more to send
            if (rc != SQLITE_ROW) return Error{options_.path + ": " + writer_.Describe(rc)};
            alert_id = sqlite3_column_int64(stmt, 0);
        }
        const std::string detail =
            boost::json::serialize(boost::json::object{{"delivery", delivery_id},
                                                       {"partner", row.partner},
                                                       {"contact", row.contact},
                                                       {"address", row.address}});
        int rc = SQLITE_OK;
        if (g) {
            rc = InsertDeliveries(alert_id, row.version,
                                  CoordinatorNotices(g->partners.get(), g->dispatch.enabled,
                                                     kKindUnsubscribe, detail),
                                  now);
        }
        audit_.push_back({now, row.partner + "/" + row.contact, "unsubscribe.requested",
                          "delivery-" + std::to_string(delivery_id), detail});
        if (auto failed = Finish(tx, rc)) return *failed;
        return 1;
    });
    if (!outcome.ok()) return outcome.error();
    DeliveryRow out = row;
    out.unsubscribe_already_requested = outcome.value() == 0;
    return out;
}

Result<DeliveryRow> ReportStore::Impl::Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                                   std::int64_t now, const PartnerAnswer& answer) {
    if (answer.note.size() > kAnswerNoteMax)
        return Error{"the note is longer than " + std::to_string(kAnswerNoteMax) + " characters"};
    const std::string who(actor);
    auto outcome = OnWriter<int>([&]() -> Result<int> {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        bool acknowledged = false;
        Answer before = Answer::kNone;
        std::string before_note;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT acknowledged_at_ms IS NOT NULL, coalesce(answer, ''), "
                "coalesce(answer_note, '') FROM deliveries WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, delivery_id);
            if (sqlite3_step(stmt) != SQLITE_ROW) return 0;
            acknowledged = sqlite3_column_int(stmt, 0) != 0;
            ParseAnswer(ColumnText(stmt, 1), before);
            before_note = ColumnText(stmt, 2);
        }
        const AnswerUpdate update = UpdateAnswer(acknowledged, before, before_note, answer);
        if (!update.acknowledge && !update.changed) return 0;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE deliveries SET acknowledged_at_ms = coalesce(acknowledged_at_ms, ?2), "
                "answer = nullif(?3, ''), answer_note = nullif(?4, ''), answered_at_ms = CASE "
                "WHEN ?5 THEN ?2 ELSE answered_at_ms END WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, delivery_id);
            sqlite3_bind_int64(stmt, 2, now);
            BindText(stmt, 3, ToString(update.answer));
            BindText(stmt, 4, update.note);
            sqlite3_bind_int(stmt, 5, update.changed ? 1 : 0);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        // The answer's word in the audit, never the note's text.
        const std::string detail = boost::json::serialize(boost::json::object{
            {"answer", ToString(update.answer)}, {"note", !update.note.empty()}});
        const std::string subject = "delivery-" + std::to_string(delivery_id);
        if (update.acknowledge)
            audit_.push_back({now, who, "delivery.acknowledged", subject, detail});
        else
            audit_.push_back({now, who, "delivery.answered", subject, detail});
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return 1;
    });
    if (!outcome.ok()) return outcome.error();
    auto rows = DeliveryQuery("WHERE d.id = ?1", std::to_string(delivery_id));
    if (rows.empty()) return Error{"no delivery " + std::to_string(delivery_id)};
    return rows.front();
}

std::vector<DeliveryRow> ReportStore::Impl::DeliveryQuery(const std::string& where,
                                                          const std::string& key) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    const std::string sql =
        // A peer's alert forwarded here has its reference in its detail (issue 16 §1).
        "SELECT d.id, coalesce(a.reference, json_extract(d.detail, '$.reference'), ''), "
        "d.version, d.kind, d.partner, d.contact, d.channel, "
        "d.address, d.status, d.attempts, d.created_at_ms, d.updated_at_ms, "
        "coalesce(d.delivered_at_ms, 0), coalesce(d.acknowledged_at_ms, 0), "
        "coalesce(d.fallback_of, 0), coalesce(d.last_error, ''), v.level, "
        "coalesce(d.answer, ''), coalesce(d.answer_note, ''), coalesce(d.answered_at_ms, 0), "
        "coalesce(d.ack_due_ms, 0), coalesce(v.photos, '') "
        "FROM deliveries d LEFT JOIN alerts a ON a.id = d.alert_id "
        "LEFT JOIN alert_versions v ON v.alert_id = d.alert_id AND v.version = d.version " +
        where + " ORDER BY d.id";
    if (sqlite3_prepare_v2(reader_->get(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) return {};
    if (!key.empty()) BindText(stmt, 1, key);
    std::vector<DeliveryRow> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        DeliveryRow r;
        r.id = sqlite3_column_int64(stmt, 0);
        r.reference = ColumnText(stmt, 1);
        r.version = sqlite3_column_int(stmt, 2);
        r.kind = ColumnText(stmt, 3);
        r.partner = ColumnText(stmt, 4);
        r.contact = ColumnText(stmt, 5);
        r.channel = ColumnText(stmt, 6);
        r.address = ColumnText(stmt, 7);
        r.status = ColumnText(stmt, 8);
        r.attempts = sqlite3_column_int(stmt, 9);
        r.created_at_ms = sqlite3_column_int64(stmt, 10);
        r.updated_at_ms = sqlite3_column_int64(stmt, 11);
        r.delivered_at_ms = sqlite3_column_int64(stmt, 12);
        r.acknowledged_at_ms = sqlite3_column_int64(stmt, 13);
        r.fallback_of = sqlite3_column_int64(stmt, 14);
        r.last_error = ColumnText(stmt, 15);
        r.level = ColumnText(stmt, 16);
        r.answer = ColumnText(stmt, 17);
        r.answer_note = ColumnText(stmt, 18);
        r.answered_at_ms = sqlite3_column_int64(stmt, 19);
        r.ack_due_ms = sqlite3_column_int64(stmt, 20);
        r.photos = ColumnText(stmt, 21);
        out.push_back(std::move(r));
    }
    sqlite3_finalize(stmt);
    return out;
}

std::optional<std::int64_t> ReportStore::Impl::NextDueMs() const {
    const std::int64_t n = CountOf(
        "SELECT coalesce(min(next_attempt_ms), -1) FROM deliveries "
        "WHERE status IN ('queued','retrying')");
    if (n < 0) return std::nullopt;
    return n;
}

std::map<std::string, std::int64_t> ReportStore::Impl::DeliveryCounts() const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(reader_->get(), "SELECT status, count(*) FROM deliveries GROUP BY status",
                       -1, &stmt, nullptr);
    std::map<std::string, std::int64_t> out;
    while (sqlite3_step(stmt) == SQLITE_ROW)
        out[ColumnText(stmt, 0)] = sqlite3_column_int64(stmt, 1);
    sqlite3_finalize(stmt);
    return out;
}

Result<std::vector<OutboxItem>> ReportStore::Impl::ClaimOnWriter(std::int64_t now,
                                                                 std::size_t limit) {
    Transaction tx(writer_);
    if (tx.begun() != SQLITE_OK) return Error{options_.path + ": " + writer_.Describe(tx.begun())};
    auto items = ClaimRows(now, limit);
    if (!items.ok()) return items;
    if (const int rc = tx.Commit(); rc != SQLITE_OK)
        return Error{options_.path + ": " + writer_.Describe(rc)};
    return items;
}

// The claim's statements, in the writer's transaction in hand.
Result<std::vector<OutboxItem>> ReportStore::Impl::ClaimRows(std::int64_t now, std::size_t limit) {
    const auto g = CurrentGrading();
    std::vector<OutboxItem> items;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT d.id, d.kind, d.partner, d.contact, d.channel, d.address, d.attempts, "
            "d.detail, d.version, a.reference, v.status, v.level, v.confidence, a.audience, "
            "a.provisional, s.authority, s.district, s.family, coalesce(a.issued_at_ms, 0), "
            "v.created_at_ms, coalesce(a.valid_until_ms, 0), v.body, s.drill, "
            "coalesce(v.photos, '') "
            // LEFT: a notice about no alert (a feed's) has none, and renders from its detail.
            "FROM deliveries d LEFT JOIN alerts a ON a.id = d.alert_id "
            "LEFT JOIN alert_versions v ON v.alert_id = d.alert_id AND v.version = d.version "
            "LEFT JOIN signals s ON s.id = a.signal_id "
            "WHERE d.status IN ('queued','retrying') AND d.next_attempt_ms <= ?1 "
            "ORDER BY d.next_attempt_ms, d.id LIMIT ?2");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, now);
        sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(limit));
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            OutboxItem it;
            it.id = sqlite3_column_int64(stmt, 0);
            it.kind = ColumnText(stmt, 1);
            it.partner = ColumnText(stmt, 2);
            it.contact = ColumnText(stmt, 3);
            ParseChannel(ColumnText(stmt, 4), it.channel);
            it.address = ColumnText(stmt, 5);
            it.attempts = sqlite3_column_int(stmt, 6) + 1;
            it.detail = ColumnText(stmt, 7);
            it.version = sqlite3_column_int(stmt, 8);
            it.reference = ColumnText(stmt, 9);
            it.status = ColumnText(stmt, 10);
            it.level = ColumnText(stmt, 11);
            it.confidence = ColumnText(stmt, 12);
            it.audience = ColumnText(stmt, 13);
            it.provisional = sqlite3_column_int(stmt, 14) != 0;
            it.authority = ColumnText(stmt, 15);
            it.district = ColumnText(stmt, 16);
            it.family = ColumnText(stmt, 17);
            it.issued_at_ms = sqlite3_column_int64(stmt, 18);
            it.created_at_ms = sqlite3_column_int64(stmt, 19);
            it.valid_until_ms = sqlite3_column_int64(stmt, 20);
            it.body = ColumnText(stmt, 21);
            it.drill = ColumnText(stmt, 22);
            it.photos = ColumnText(stmt, 23);
            ExpandForwarded(it);  // a peer's version: it renders from its detail
            if (g) {
                if (const Family* f = g->substances.Find(it.family)) it.family_label = f->label;
            }
            if (it.family_label.empty() && it.family.starts_with("other:"))
                it.family_label = it.family.substr(6);
            items.push_back(std::move(it));
        }
        if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
    }
    sqlite3_stmt* mark = writer_.Cached(
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at_ms = ?2 "
        "WHERE id = ?1");
    for (const auto& it : items) {
        StatementUse use(mark);
        sqlite3_bind_int64(mark, 1, it.id);
        sqlite3_bind_int64(mark, 2, now);
        if (const int rc = sqlite3_step(mark); rc != SQLITE_DONE)
            return Error{options_.path + ": " + writer_.Describe(rc)};
    }
    return items;
}

Result<int> ReportStore::Impl::CompleteOnWriter(const std::vector<DeliveryOutcome>& outcomes,
                                                std::int64_t now) {
    const auto g = CurrentGrading();
    const DispatchPolicy policy = g ? g->dispatch : DispatchPolicy{};
    Transaction tx(writer_);
    if (tx.begun() != SQLITE_OK) return Error{options_.path + ": " + writer_.Describe(tx.begun())};
    int changed = 0;
    int rc = SQLITE_OK;
    for (const auto& o : outcomes) {
        std::string kind, partner, contact, slot, channel, status, detail;
        std::int64_t alert_id = 0, ack_due = 0;
        int version = 0, attempts = 0;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT kind, partner, contact, slot, channel, status, alert_id, version, "
                "attempts, coalesce(ack_due_ms, 0), detail FROM deliveries WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, o.id);
            if (sqlite3_step(stmt) != SQLITE_ROW) continue;
            kind = ColumnText(stmt, 0);
            partner = ColumnText(stmt, 1);
            contact = ColumnText(stmt, 2);
            slot = ColumnText(stmt, 3);
            channel = ColumnText(stmt, 4);
            status = ColumnText(stmt, 5);
            alert_id = sqlite3_column_int64(stmt, 6);
            version = sqlite3_column_int(stmt, 7);
            attempts = sqlite3_column_int(stmt, 8);
            ack_due = sqlite3_column_int64(stmt, 9);
            detail = ColumnText(stmt, 10);
        }
        if (status != "sending") continue;  // settled already
        ++changed;
        const bool delivered = o.kind == DeliveryOutcome::Kind::kDelivered;
        const bool failed = !delivered && (o.kind == DeliveryOutcome::Kind::kFailed ||
                                           attempts >= policy.max_attempts);
        std::string error = o.error;
        if (!delivered && o.kind == DeliveryOutcome::Kind::kRetry && failed)
            error = "gave up after " + std::to_string(attempts) + " attempts: " + error;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE deliveries SET status = ?2, updated_at_ms = ?3, next_attempt_ms = ?4, "
                "last_error = ?5, delivered_at_ms = CASE WHEN ?2 = 'delivered' THEN ?3 END "
                "WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, o.id);
            BindText(stmt, 2, delivered ? "delivered" : failed ? "failed" : "retrying");
            sqlite3_bind_int64(stmt, 3, now);
            sqlite3_bind_int64(stmt, 4,
                               delivered || failed
                                   ? now
                                   : now + RetryDelayMs(policy, attempts, o.retry_after_ms, rng_));
            BindText(stmt, 5, error, true);
            rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(writer_.get());
        }
        if (rc != SQLITE_OK) break;
        if (!failed) continue;
        audit_.push_back({now, "ldisd", "delivery.failed", "delivery-" + std::to_string(o.id),
                          boost::json::serialize(boost::json::object{{"partner", partner},
                                                                     {"contact", contact},
                                                                     {"channel", channel},
                                                                     {"attempts", attempts},
                                                                     {"error", error}})});
        const auto falls_back_as = FallsBackAs(kind);
        if (!falls_back_as) continue;
        // The partner's next channel, then a word to the coordinators.
        std::string next = "No fallback contact is configured for this partner.";
        if (g && g->partners && !partner.empty()) {
            std::set<std::string> used;
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT contact FROM deliveries WHERE alert_id = ?1 AND version = ?2 AND "
                "partner = ?3 AND kind = ?4");
            {
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, alert_id);
                sqlite3_bind_int(stmt, 2, version);
                BindText(stmt, 3, partner);
                BindText(stmt, 4, kind);
                while (sqlite3_step(stmt) == SQLITE_ROW) used.insert(ColumnText(stmt, 0));
            }
            if (auto fb = g->partners->Fallback(partner, contact, used, g->dispatch.enabled)) {
                const Contact* c = g->partners->Find(partner)->FindContact(*fb);
                rc = InsertDelivery(
                    alert_id, version,
                    {*falls_back_as, partner, *fb, slot, c->channel, c->address, ack_due, detail},
                    now, o.id);
                if (rc != SQLITE_OK) break;
                next = "Falling back to " + *fb + " (" + std::string(ToString(c->channel)) + ").";
            }
        }
        if (g) {
            const Partner* p = g->partners ? g->partners->Find(partner) : nullptr;
            rc = InsertDeliveries(
                alert_id, version,
                CoordinatorNotices(
                    g->partners.get(), g->dispatch.enabled, kKindDeadLetter,
                    boost::json::serialize(boost::json::object{
                        {"delivery", o.id},
                        {"partner", p ? p->name : (partner.empty() ? "the MQTT broker" : partner)},
                        {"contact", contact},
                        {"channel", channel},
                        {"attempts", std::to_string(attempts)},
                        {"error", error},
                        {"next", next}})),
                now);
            if (rc != SQLITE_OK) break;
        }
    }
    if (auto failed = Finish(tx, rc)) return *failed;
    return changed;
}

Result<int> ReportStore::Impl::EscalateOnWriter(std::int64_t now) {
    const auto g = CurrentGrading();
    if (!g || !g->partners) return 0;
    Transaction tx(writer_);
    if (tx.begun() != SQLITE_OK) return Error{options_.path + ": " + writer_.Describe(tx.begun())};
    if (const int rc = FlushUpdates(*g, now); rc != SQLITE_OK) {
        outbox_added_ = 0;
        return Error{options_.path + ": " + writer_.Describe(rc)};
    }
    struct Due {
        std::int64_t alert_id;
        std::string partner;
        int version;
        std::string level;
        Answer said;
    };
    std::vector<Due> due;
    {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT d.alert_id, d.partner, a.version, a.level, "
            // The most the partner said: 2 it confirmed what it did, 1 only acknowledged.
            "(SELECT max(CASE WHEN x.answer IN ('shared','actions','not_relevant','seen_too') "
            "THEN 2 WHEN x.acknowledged_at_ms IS NOT NULL THEN 1 ELSE 0 END) FROM deliveries x "
            "WHERE x.alert_id = d.alert_id AND x.partner = d.partner) "
            "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "WHERE d.escalated = 0 AND d.ack_due_ms IS NOT NULL AND d.ack_due_ms <= ?1 "
            "AND d.kind = 'alert' AND a.status IN ('issued','updated') "
            "GROUP BY d.alert_id, d.partner");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, now);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            due.push_back({sqlite3_column_int64(stmt, 0), ColumnText(stmt, 1),
                           sqlite3_column_int(stmt, 2), ColumnText(stmt, 3),
                           SaidAtMost(sqlite3_column_int64(stmt, 4))});
        }
    }
    int queued = 0;
    int rc = SQLITE_OK;
    for (const auto& d : due) {
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE deliveries SET escalated = 1 WHERE alert_id = ?1 AND partner = ?2 AND "
                "kind = 'alert' AND ack_due_ms <= ?3");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, d.alert_id);
            BindText(stmt, 2, d.partner);
            sqlite3_bind_int64(stmt, 3, now);
            if ((rc = sqlite3_step(stmt)) != SQLITE_DONE) break;
            rc = SQLITE_OK;
        }
        Level level = Level::kNone;
        ParseLevel(d.level, level);
        const auto escalation = Escalation(*g->partners, d.partner, level, d.said, g->dispatch);
        if (!escalation) continue;
        rc = InsertDelivery(d.alert_id, d.version, *escalation, now);
        if (rc != SQLITE_OK) break;
        audit_.push_back({now, "ldisd", "delivery.escalated", escalation->partner,
                          "{\"alert\":" + std::to_string(d.alert_id) + "}"});
        ++queued;
    }
    if (auto failed = Finish(tx, rc)) return *failed;
    return queued;
}

}  // namespace ldis::engine
