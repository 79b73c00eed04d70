// The outbox on both stores: routing in the alert's transaction, the claim at the commit,
// fallback and cancellation, retries, recovery after a crash, escalation, the update
// throttle (outbox_fixture.hpp; more in outbox_more_test.cpp).
#include "unit/outbox_fixture.hpp"

namespace ldis::test::outbox {
namespace {

INSTANTIATE_TEST_SUITE_P(BothStores, OutboxTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST_P(OutboxTest, IssuedRedAlertQueuesItsDeliveriesInTheSameTransaction) {
    const auto stored = SubmitRed();
    ASSERT_EQ(stored.level, "red");
    EXPECT_EQ(Recipients(1), (std::multiset<std::string>{"ed/hook", "police/desk"}));
    EXPECT_EQ(Recipients(1, "page"), (std::multiset<std::string>{"coord/team"}));
    EXPECT_EQ(Recipients(1, "mqtt").size(), 1u);
    for (const auto& d : store_->Deliveries(stored.alert_reference)) EXPECT_EQ(d.status, "queued");
    EXPECT_EQ(store_->DeliveryCounts().at("queued"), 4);
}

// The claim at the commit: the first deliveries a commit queued are handed to the dispatcher
// by the store itself. SQLite claims them inside the commit's transaction and hands them over
// held, before the commit is durable (a reader does not see the alert yet), then settles them;
// PostgreSQL claims them just after the commit. Either way they are "sending" afterwards and
// the rest are left for the pump.
TEST_P(OutboxTest, TheFirstDeliveriesAreClaimedAtTheirCommitAndLeaveOnlyOnceItIsDurable) {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::string> events;
    std::vector<OutboxItem> taken;
    CommitClaim hooks;
    hooks.room = [] { return std::size_t{2}; };
    hooks.claimed = [&](Result<std::vector<OutboxItem>> items, std::size_t asked, bool held) {
        // Before a held claim is settled, nothing of its transaction can be read.
        const bool visible = !held || !store_->Deliveries("").empty();
        std::lock_guard lock(mutex);
        events.push_back(std::string(held ? "held" : "claimed") + (visible ? " visible" : ""));
        EXPECT_EQ(asked, 2u);
        ASSERT_TRUE(items.ok());
        taken = items.value();
        changed.notify_all();
    };
    hooks.settled = [&](bool committed) {
        std::lock_guard lock(mutex);
        events.push_back(committed ? "committed" : "rolled back");
        changed.notify_all();
    };
    store_->SetClaimAtCommit(hooks);
    const auto stored = SubmitRed();
    {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] {
            return std::find(events.begin(), events.end(), "committed") != events.end() ||
                   std::find(events.begin(), events.end(), "claimed visible") != events.end();
        }));
        if (GetParam() == "sqlite")
            EXPECT_EQ(events, (std::vector<std::string>{"held", "committed"}));
        else
            EXPECT_EQ(events, (std::vector<std::string>{"claimed visible"}));
        ASSERT_EQ(taken.size(), 2u);
    }
    store_->SetClaimAtCommit({});
    std::map<std::int64_t, std::string> status;
    for (const auto& d : store_->Deliveries(stored.alert_reference)) status[d.id] = d.status;
    for (const auto& it : taken) EXPECT_EQ(status[it.id], "sending") << it.id;
    // The other two are the pump's.
    const auto rest = Claim();
    EXPECT_EQ(rest.size(), 2u);
    for (const auto& it : rest) {
        for (const auto& t : taken) EXPECT_NE(it.id, t.id);
    }
}

TEST_P(OutboxTest, PermanentFailureFallsBackAndCancellationReachesExactlyTheOriginalRecipients) {
    const auto stored = SubmitRed();
    DeliverAll();
    // The webhook failed; its fallback took over; the coordinators were told.
    EXPECT_EQ(Recipients(1), (std::multiset<std::string>{"ed/hook", "ed/backup", "police/desk"}));
    EXPECT_EQ(Recipients(1, "dead_letter"), (std::multiset<std::string>{"coord/team"}));
    auto cancelled = store_->Act(stored.alert_reference, AlertAction::kCancel, "coordinator@test");
    ASSERT_TRUE(cancelled.ok()) << cancelled.error().message;
    // v2 (the cancellation) goes to the contacts that reached each recipient: ed through
    // its fallback, not the broken webhook; nobody new.
    EXPECT_EQ(Recipients(2), (std::multiset<std::string>{"ed/backup", "police/desk"}));
}

TEST_P(OutboxTest, RetriesBackOffThenFailAfterTheLastAttempt) {
    SubmitRed();
    auto items = Claim();
    std::int64_t police = 0;
    for (const auto& it : items) {
        if (it.partner == "police") police = it.id;
    }
    ASSERT_GT(police, 0);
    std::int64_t at = Now();
    for (int attempt = 1; attempt <= 3; ++attempt) {
        Complete({{police, DeliveryOutcome::Kind::kRetry, "SMTP: connection refused", -1}}, at);
        const auto rows = store_->Deliveries("");
        const auto row =
            std::find_if(rows.begin(), rows.end(), [&](const auto& d) { return d.id == police; });
        EXPECT_EQ(row->attempts, attempt);
        if (attempt < 3) {
            EXPECT_EQ(row->status, "retrying");
            EXPECT_TRUE(Claim(at).empty() || Claim(at).front().id != police);  // not yet due
            at += 600000;
            const auto again = Claim(at);
            ASSERT_TRUE(std::any_of(again.begin(), again.end(),
                                    [&](const auto& it) { return it.id == police; }));
        } else {
            EXPECT_EQ(row->status, "failed");
            EXPECT_NE(row->last_error.find("gave up after 3 attempts"), std::string::npos);
        }
    }
}

TEST_P(OutboxTest, DeliveriesLeftSendingAreRecoveredAfterACrash) {
    SubmitRed();
    const auto first = Claim();
    ASSERT_FALSE(first.empty());
    EXPECT_TRUE(Claim().empty());  // all "sending"
    // SQLite: the one process restarted sends them again at once. PostgreSQL: another
    // instance may still be sending them; they are due again when the lease runs out.
    const std::int64_t at = GetParam() == "sqlite" ? Now() : Now() + kLeaseMs + 1;
    if (GetParam() == "postgresql") {
        EXPECT_EQ(store_->RecoverInFlight(Now()).value(), 0);
        EXPECT_TRUE(Claim(Now()).empty());
    }
    ASSERT_EQ(store_->RecoverInFlight(at).value(), static_cast<int>(first.size()));
    const auto again = Claim(at);
    ASSERT_EQ(again.size(), first.size());
    EXPECT_EQ(again.front().attempts, 2);
}

TEST_P(OutboxTest, OnlyUnacknowledgedPartnersAreEscalatedOnce) {
    SubmitRed();
    DeliverAll();
    std::int64_t police = 0;
    for (const auto& d : store_->Deliveries("")) {
        if (d.partner == "police" && d.kind == "alert") police = d.id;
    }
    const auto acked = store_->Acknowledge(police, "police@example.org", Now());
    ASSERT_TRUE(acked.ok()) << acked.error().message;
    EXPECT_GT(acked.value().acknowledged_at_ms, 0);
    // ed has no escalation contact, police acknowledged: nothing to send, and nothing twice.
    EXPECT_EQ(Escalate(Now() + 5000), 0);
    EXPECT_EQ(Escalate(Now() + 10000), 0);
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

TEST_P(OutboxTest, MoreReportsInALiveAlertReachPartnersAtMostOncePerInterval) {
    const auto first = SubmitRed();
    DeliverAll();
    EXPECT_EQ(Recipients(1), (std::multiset<std::string>{"ed/hook", "ed/backup", "police/desk"}));
    // Two more reports of the same batch: new versions, held back (same level, within 15 min).
    SubmitRed();
    SubmitRed();
    const auto alert = store_->FindAlert(first.alert_reference);
    ASSERT_TRUE(alert);
    EXPECT_EQ(alert->version, 3);
    EXPECT_TRUE(Recipients(2).empty());
    EXPECT_TRUE(Recipients(3).empty());
    // When the interval has passed, the latest version goes out, once.
    EXPECT_EQ(Escalate(Now() + 16 * 60 * 1000), 0);
    EXPECT_EQ(Recipients(3), (std::multiset<std::string>{"ed/backup", "police/desk"}));
    EXPECT_TRUE(Recipients(2).empty());
    Escalate(Now() + 17 * 60 * 1000);
    EXPECT_EQ(Recipients(3).size(), 2u);
    // A coordinator's update always goes at once.
    ASSERT_TRUE(store_->Act(first.alert_reference, AlertAction::kRevise, "coordinator").ok());
    EXPECT_EQ(Recipients(4), (std::multiset<std::string>{"ed/backup", "police/desk"}));
}

}  // namespace
}  // namespace ldis::test::outbox
