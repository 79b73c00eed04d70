// The outbox on both stores, SQLite and PostgreSQL (a real server the test starts, a
// database per test): routing in the alert's transaction, claims, outcomes, fallback,
// cancellation to the original recipients, escalation and recovery. The same tests, the
// same expectations (issue 15); only recovery after a crash differs, by design: SQLite's
// one process sends again at once, PostgreSQL's instances when the lease runs out.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>

#include "ldis/engine/messages.hpp"
#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_store.hpp"
#include "ldis/engine/report_validator.hpp"
#include "support/photos.hpp"
#include "support/postgres.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace json = boost::json;
using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file
using ldis::test::SourcePath;

namespace {

const char* kPartners = R"toml(
[coordinators]
partner = "coord"
[[partner]]
id = "coord"
name = "Coordinators"
  [[partner.contact]]
  name = "team"
  channel = "email"
  address = "team@example.org"
[[partner]]
id = "ed"
name = "Medway ED"
fallback = ["backup"]
  [[partner.contact]]
  name = "hook"
  channel = "webhook"
  url = "http://127.0.0.1:9/hook"
  insecure = true
  [[partner.contact]]
  name = "backup"
  channel = "email"
  address = "backup@example.org"
  [[partner.subscription]]
  levels = ["red"]
[[partner]]
id = "police"
name = "Police"
  [[partner.contact]]
  name = "desk"
  channel = "email"
  address = "police@example.org"
  [[partner.subscription]]
  levels = ["red"]
[[partner]]
id = "kent"
name = "Kent only"
  [[partner.contact]]
  name = "desk"
  channel = "email"
  address = "kent@example.org"
  [[partner.subscription]]
  authorities = ["Kent"]
)toml";

std::int64_t Now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class OutboxTest : public ::testing::TestWithParam<std::string> {
protected:
    static constexpr std::int64_t kLeaseMs = 10000;

    OutboxTest() {
        auto setup = std::make_shared<GradingSetup>();
        setup->substances = Substances::LoadFile(SourcePath("config/substances.toml"));
        setup->rules = Rules::LoadFile(SourcePath("config/rules.toml"), setup->substances);
        setup->templates = AlertTemplates::LoadDir(SourcePath("templates/alert"));
        setup->partners = std::make_shared<const Partners>(Partners::Parse(kPartners, "p.toml"));
        setup->dispatch.max_attempts = 3;
        setup->dispatch.red_ack_ms = 1000;
        if (GetParam() == "sqlite") {
            StoreOptions o;
            o.path = dir_ / "ldis.db";
            o.grading = setup;
            store_ = std::make_unique<ReportStore>(o);
            return;
        }
        static ldis::test::PostgresServer server;
        static int databases = 0;
        PostgresStore::Options o;
        o.url = server.CreateDatabase("outbox" + std::to_string(++databases));
        o.grading = setup;
        o.lease_ms = kLeaseMs;
        auto opened = PostgresStore::Open(o);
        EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
        if (opened.ok()) store_ = std::move(opened).value();
    }

    StoredReport SubmitRed() {
        auto r = ldis::test::ValidReport(ldis::test::NewUuid());
        r["harms"].as_object()["deaths"] = 1;
        static const auto validator = LoadReportValidator(
            SourcePath("config/schema/report.schema.json"), SourcePath("config/areas.toml"));
        auto v = validator->Validate(json::serialize(r));
        EXPECT_TRUE(v.ok());
        auto stored = store_->Insert(*v.report, "mqtt");
        EXPECT_TRUE(stored.ok());
        return stored.value();
    }

    std::vector<OutboxItem> Claim(std::int64_t at = Now()) {
        std::promise<Result<std::vector<OutboxItem>>> done;
        store_->ClaimDue(at, 100,
                         [&](Result<std::vector<OutboxItem>> r) { done.set_value(std::move(r)); });
        auto r = done.get_future().get();
        EXPECT_TRUE(r.ok());
        return r.ok() ? r.value() : std::vector<OutboxItem>{};
    }

    void Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t at = Now()) {
        std::promise<Result<int>> done;
        store_->Complete(std::move(outcomes), at,
                         [&](Result<int> r) { done.set_value(std::move(r)); });
        EXPECT_TRUE(done.get_future().get().ok());
    }

    int Escalate(std::int64_t at) {
        std::promise<Result<int>> done;
        store_->EscalateDue(at, [&](Result<int> r) { done.set_value(std::move(r)); });
        auto r = done.get_future().get();
        EXPECT_TRUE(r.ok());
        return r.ok() ? r.value() : -1;
    }

    // Claims and settles everything due: the webhook fails for good, the rest is delivered.
    void DeliverAll() {
        for (int round = 0; round < 5; ++round) {
            auto items = Claim();
            if (items.empty()) return;
            std::vector<DeliveryOutcome> outcomes;
            for (const auto& it : items) {
                outcomes.push_back({it.id,
                                    it.channel == Channel::kWebhook
                                        ? DeliveryOutcome::Kind::kFailed
                                        : DeliveryOutcome::Kind::kDelivered,
                                    it.channel == Channel::kWebhook ? "HTTP 400: bad" : "", -1});
            }
            Complete(outcomes);
        }
    }

    std::multiset<std::string> Recipients(int version, const std::string& kind = "alert") {
        std::multiset<std::string> out;
        for (const auto& d : store_->Deliveries("")) {
            if (d.version == version && d.kind == kind) out.insert(d.partner + "/" + d.contact);
        }
        return out;
    }

    ldis::test::TempDir dir_;
    std::unique_ptr<Store> store_;
};

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

// Issue 16 §3: a notice about no alert (a feed fallen silent) is a delivery without one: it
// is claimed with what it renders from, fails for good with a word to the coordinators like
// any other, and the feed's state is written in its transaction.
TEST_P(OutboxTest, ANoticeAboutNoAlertIsQueuedClaimedAndSettledLikeAnyOther) {
    Store::Notice notice;
    notice.kind = ldis::engine::kKindFeedSilent;
    notice.detail = R"({"source_type":"custody","organisation":"Medway custody"})";
    notice.audit_action = "feed.silent";
    notice.subject = "feed:custody/Medway custody";
    notice.setting_key = "feed:custody/Medway custody";
    notice.setting_value = R"({"silent":true,"since_ms":1})";
    const auto queued = store_->QueueNotice(notice, Now());
    ASSERT_TRUE(queued.ok()) << queued.error().message;
    ASSERT_GE(queued.value(), 1);
    EXPECT_EQ(store_->Setting("feed:custody/Medway custody"), notice.setting_value);
    const auto items = Claim();
    ASSERT_EQ(items.size(), static_cast<std::size_t>(queued.value()));
    for (const auto& it : items) {
        EXPECT_EQ(it.kind, "feed_silent");
        EXPECT_EQ(it.reference, "");
        EXPECT_EQ(it.version, 0);
        EXPECT_EQ(it.detail, notice.detail);
    }
    // Failed for good: listed with the failed deliveries the dashboard shows (as a failed
    // notice to the coordinators is: no word about it goes to them by the same way).
    std::vector<DeliveryOutcome> failed;
    for (const auto& it : items)
        failed.push_back({it.id, DeliveryOutcome::Kind::kFailed, "550", -1});
    Complete(failed);
    const auto rows = store_->Deliveries("");
    ASSERT_EQ(rows.size(), items.size());
    EXPECT_EQ(rows.front().status, "failed");
    EXPECT_EQ(rows.front().kind, "feed_silent");
    EXPECT_EQ(rows.front().reference, "");
    EXPECT_TRUE(Claim().empty());
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

// Issue 16 §1 on both stores: a peer's version stored once; red forwarded at once to the
// partners who subscribe to it, marked as the peer's; its update reaches them again and its
// cancellation exactly them; amber waits for a decision, taken once.
TEST_P(OutboxTest, APeersVersionsAreStoredOnceForwardedByPolicyAndDecidedOnce) {
    FederatedVersion v;
    v.peer = "medway";
    v.reference = "KM-2026-0007";
    v.version = 1;
    v.identifier = "KM-2026-0007-v1";
    v.msg_type = "Alert";
    v.cap_status = "Actual";
    v.level = Level::kRed;
    v.authority = "Medway";
    v.district = "Medway";
    v.family = "nitazene";
    v.headline = "Red Drug Alert KM-2026-0007 v1: nitazene in Medway";
    v.description = "Two deaths after heroin bought in Gillingham.";
    v.instruction = "Carry naloxone.";
    v.sequence = 10;
    v.cap = "<alert/>";
    auto first = store_->ReceiveFederated(v, FederatedPolicy::kForward, "Medway LDIS", Now());
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_TRUE(first.value().stored);
    EXPECT_EQ(first.value().decision, "forwarded");
    EXPECT_EQ(first.value().deliveries, 2);  // ed (webhook) and police; not Kent-only
    EXPECT_EQ(store_->Setting("federation:last:medway"), "10");
    v.sequence = 11;  // the same version again, a new copy: nothing new
    const auto again = store_->ReceiveFederated(v, FederatedPolicy::kForward, "Medway LDIS", Now());
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again.value().stored);
    EXPECT_EQ(again.value().deliveries, 0);
    EXPECT_EQ(store_->Setting("federation:last:medway"), "11");

    // Claimed as an alert of the peer's: its text from the detail.
    const auto items = Claim();
    ASSERT_EQ(items.size(), 2u);
    for (const auto& it : items) {
        EXPECT_EQ(it.kind, "federated");
        EXPECT_EQ(it.reference, "KM-2026-0007");
        EXPECT_EQ(it.version, 1);
        EXPECT_EQ(it.level, "red");
        EXPECT_EQ(it.status, "issued");
        EXPECT_NE(it.body.find("Carry naloxone."), std::string::npos);
        EXPECT_NE(it.detail.find("Medway LDIS"), std::string::npos);
    }
    // The ED's webhook fails for good: the peer's version falls back to the ED's email as
    // the peer's version still (not an alert of this instance's), and the coordinators hear.
    std::vector<DeliveryOutcome> done;
    for (const auto& it : items) {
        const bool ed = it.partner == "ed";
        done.push_back({it.id,
                        ed ? DeliveryOutcome::Kind::kFailed : DeliveryOutcome::Kind::kDelivered,
                        ed ? "410 Gone" : "", -1});
    }
    Complete(done);
    EXPECT_EQ(Recipients(1, "federated"),
              (std::multiset<std::string>{"ed/hook", "ed/backup", "police/desk"}));
    EXPECT_TRUE(Recipients(1, "alert").empty());
    EXPECT_EQ(Recipients(1, "dead_letter"), (std::multiset<std::string>{"coord/team"}));
    const auto after = Claim();
    done.clear();
    int fallbacks = 0;
    for (const auto& it : after) {
        done.push_back({it.id, DeliveryOutcome::Kind::kDelivered, "", -1});
        if (it.partner != "ed") continue;
        ++fallbacks;
        EXPECT_EQ(it.kind, "federated");
        EXPECT_EQ(it.contact, "backup");
        EXPECT_EQ(it.reference, "KM-2026-0007");
        EXPECT_NE(it.body.find("Carry naloxone."), std::string::npos);
    }
    EXPECT_EQ(fallbacks, 1);
    Complete(done);

    // Its cancellation, whatever the policy now says, reaches exactly those partners,
    // each through the contact that last reached it.
    v.version = 2;
    v.identifier = "KM-2026-0007-v2";
    v.msg_type = "Cancel";
    v.sequence = 12;
    const auto cancel = store_->ReceiveFederated(v, FederatedPolicy::kRecord, "Medway LDIS", Now());
    ASSERT_TRUE(cancel.ok());
    EXPECT_EQ(cancel.value().decision, "forwarded");
    EXPECT_EQ(cancel.value().deliveries, 2);
    EXPECT_EQ(Recipients(2, "federated"), (std::multiset<std::string>{"ed/backup", "police/desk"}));

    // Amber under review: nothing sent until a coordinator adopts it, and only once.
    FederatedVersion amber = v;
    amber.reference = "KM-2026-0008";
    amber.identifier = "KM-2026-0008-v1";
    amber.version = 1;
    amber.msg_type = "Alert";
    amber.level = Level::kAmber;
    amber.sequence = 13;
    const auto review =
        store_->ReceiveFederated(amber, FederatedPolicy::kReview, "Medway LDIS", Now());
    ASSERT_TRUE(review.ok());
    EXPECT_EQ(review.value().decision, "review");
    EXPECT_EQ(review.value().deliveries, 0);
    const auto rows = store_->Federated(10);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].reference, "KM-2026-0008");
    const auto declined = store_->DecideFederated(rows[0].id, false, "a coordinator", Now());
    ASSERT_TRUE(declined.ok()) << declined.error().message;
    EXPECT_EQ(declined.value().decision, "declined");
    EXPECT_EQ(declined.value().decided_by, "a coordinator");
    const auto twice = store_->DecideFederated(rows[0].id, true, "another", Now());
    ASSERT_FALSE(twice.ok());
    EXPECT_NE(twice.error().message.find("waiting for a decision"), std::string::npos);
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

namespace {

// Issue 17 §5 on both stores: only a coordinator makes an alert public, with an approval or
// an update (audited, routed as a new version); a public alert is found as published only
// once it was issued, never as a draft; a word that is not an audience, or an audience with
// a cancellation, is refused in words.
TEST_P(OutboxTest, ACoordinatorMakesAnAlertPublicAndOnlyIssuedPublicAlertsArePublished) {
    const auto red = SubmitRed();
    auto draft_report = ldis::test::ValidReport(ldis::test::NewUuid());
    draft_report["area"] = json::object{{"authority", "Kent"}, {"district", "Swale"}};
    draft_report["substances"] = json::array{{{"name", "spice"}}};
    static const auto validator = LoadReportValidator(
        SourcePath("config/schema/report.schema.json"), SourcePath("config/areas.toml"));
    auto parsed = validator->Validate(json::serialize(draft_report));
    ASSERT_TRUE(parsed.ok());
    const auto draft = store_->Insert(*parsed.report, "mqtt");
    ASSERT_TRUE(draft.ok());
    ASSERT_EQ(store_->FindAlert(draft.value().alert_reference)->status, AlertStatus::kDraft);

    AlertFilter published;
    published.audience = "public";
    published.published = true;
    EXPECT_TRUE(store_->FindAlerts(published).alerts.empty());

    AlertWording nonsense;
    nonsense.audience = "everyone";
    const auto refused = store_->Act(red.alert_reference, AlertAction::kRevise, "coord", nonsense);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().message,
              "\"everyone\" is not an audience: choose professionals, services or public");
    AlertWording to_public;
    to_public.audience = "public";
    const auto with_cancel =
        store_->Act(red.alert_reference, AlertAction::kCancel, "coord", to_public);
    ASSERT_FALSE(with_cancel.ok());
    EXPECT_NE(with_cancel.error().message.find("changes with an approval or an update"),
              std::string::npos);
    EXPECT_EQ(store_->FindAlert(red.alert_reference)->status, AlertStatus::kIssued);

    const auto made = store_->Act(red.alert_reference, AlertAction::kRevise, "coord", to_public);
    ASSERT_TRUE(made.ok()) << made.error().message;
    EXPECT_EQ(made.value().audience, "public");
    EXPECT_EQ(made.value().version, 2);
    EXPECT_FALSE(Recipients(2).empty());  // the version was routed as any update is
    // A draft made public is still not published until it is issued.
    ASSERT_TRUE(
        store_->Act(draft.value().alert_reference, AlertAction::kRevise, "coord", to_public).ok());
    auto found = store_->FindAlerts(published).alerts;
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].reference, red.alert_reference);
    ASSERT_TRUE(store_->Act(draft.value().alert_reference, AlertAction::kApprove, "coord").ok());
    EXPECT_EQ(store_->FindAlerts(published).alerts.size(), 2u);

    const auto record = store_->FindAlertRecord(red.alert_reference);
    ASSERT_TRUE(record.has_value());
    bool audited = false;
    for (const auto& e : record->audit)
        if (e.action == "alert.updated" &&
            e.detail.find(R"("audience":{"from":"professionals","to":"public"})") !=
                std::string::npos)
            audited = e.actor == "coord";
    EXPECT_TRUE(audited);
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

}  // namespace

namespace {

// Issue 17 §4 on both stores: a partner's answers are kept (the acknowledgement once, at the
// first time; a bare receipt never hides what it did), audited without the note's text, and
// read back with the delivery; a note too long is refused.
TEST_P(OutboxTest, APartnersAnswersAreKeptAuditedAndReadBack) {
    const auto red = SubmitRed();
    std::int64_t police = 0;
    for (const auto& d : store_->Deliveries(red.alert_reference))
        if (d.partner == "police" && d.kind == "alert") police = d.id;
    ASSERT_GT(police, 0);
    const auto first = store_->Acknowledge(police, "police@example.org", 1000);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first.value().acknowledged_at_ms, 1000);
    EXPECT_EQ(first.value().answer, "received");
    const auto actions = store_->Acknowledge(police, "police@example.org", 2000,
                                             {Answer::kActions, "Briefed the custody suites."});
    ASSERT_TRUE(actions.ok());
    EXPECT_EQ(actions.value().acknowledged_at_ms, 1000);
    EXPECT_EQ(actions.value().answer, "actions");
    EXPECT_EQ(actions.value().answer_note, "Briefed the custody suites.");
    EXPECT_EQ(actions.value().answered_at_ms, 2000);
    const auto again = store_->Acknowledge(police, "police@example.org", 3000);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().answer, "actions");
    EXPECT_EQ(again.value().answered_at_ms, 2000);
    const auto too_long =
        store_->Acknowledge(police, "police@example.org", 4000,
                            {Answer::kActions, std::string(kAnswerNoteMax + 1, 'x')});
    ASSERT_FALSE(too_long.ok());
    EXPECT_NE(too_long.error().message.find("longer than 500"), std::string::npos);
    EXPECT_FALSE(store_->Acknowledge(999999, "nobody", 5000, {Answer::kShared, ""}).ok());

    const auto record = store_->FindAlertRecord(red.alert_reference);
    ASSERT_TRUE(record.has_value());
    std::vector<std::string> said;
    for (const auto& e : record->audit) {
        if (e.subject != "delivery-" + std::to_string(police)) continue;
        said.push_back(e.action + " " + e.detail);
        EXPECT_EQ(e.detail.find("custody"), std::string::npos);  // the note's words: never
    }
    EXPECT_EQ(said, (std::vector<std::string>{
                        R"(delivery.acknowledged {"answer":"received","note":false})",
                        R"(delivery.answered {"answer":"actions","note":true})"}));
    // Past the retention period the note goes with the reports' free text; the answer stays.
    ASSERT_TRUE(store_->PurgeFreeText(2001, Now(), "retention").ok());
    const auto kept = store_->FindDelivery(police);
    ASSERT_TRUE(kept.has_value());
    EXPECT_EQ(kept->answer, "actions");
    EXPECT_EQ(kept->answer_note, "");
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

}  // namespace

// Photos of a batch (issue 17 §3), on both stores: an upload is kept under a random id and
// named by the report that names it (and by no later one); the alert's record lists it; an
// automatic version carries none, a coordinator's choice puts it in the next version and
// in what its deliveries carry (CAP's size and digest among it); a photo of another alert
// is refused; retention takes a report's photos with its free text, and an upload no report
// named after a day.
// A coordinator's version is rendered again: before, it copied the last version's text, so a
// partner's v2 said "Share only this official version, KM-… v1" and its summary "v1". Its
// own number, status and history now, and what coordinators wrote still in it.
TEST_P(OutboxTest, ACoordinatorsVersionNamesItselfNotTheVersionBefore) {
    const auto red = SubmitRed();
    const std::string ref = red.alert_reference;
    AlertWording worded;
    worded.sections["advice"] = "Test a small amount first; carry naloxone.";
    ASSERT_TRUE(store_->Act(ref, AlertAction::kRevise, "coord", worded).ok());
    ASSERT_TRUE(store_->Act(ref, AlertAction::kRevise, "coord").ok());
    ASSERT_TRUE(store_->Act(ref, AlertAction::kCancel, "coord").ok());
    const auto record = store_->FindAlertRecord(ref);
    ASSERT_TRUE(record.has_value());
    ASSERT_EQ(record->versions.size(), 4u);
    for (const auto& v : record->versions) {
        SCOPED_TRACE("version " + std::to_string(v.version));
        const auto body = json::parse(v.body).as_object();
        const std::string sharing(body.at("sharing").as_string());
        const std::string summary(body.at("summary").as_string());
        std::string history(body.at("history").as_string());
        while (!history.empty() && std::isspace(static_cast<unsigned char>(history.back())))
            history.pop_back();
        const std::string mine = ref + " v" + std::to_string(v.version);
        EXPECT_NE(sharing.find(mine + "."), std::string::npos) << sharing;
        EXPECT_NE(summary.find(mine), std::string::npos) << summary;
        EXPECT_TRUE(history.ends_with("v" + std::to_string(v.version) + " " +
                                      std::string(ToString(v.status)) + " (red)"))
            << history;
        if (v.version >= 2) {
            EXPECT_EQ(std::string(body.at("advice").as_string()),
                      "Test a small amount first; carry naloxone.");
        }
    }
    EXPECT_NE(json::parse(record->versions.back().body)
                  .at("history")
                  .as_string()
                  .find("v1 issued (red); v2 updated (red); v3 updated (red); v4 cancelled (red)"),
              std::string::npos);
}

TEST_P(OutboxTest, APhotoIsNamedByItsReportAndGoesOutOnlyWithTheVersionACoordinatorChose) {
    const std::string jpeg = ldis::test::MakeJpeg(64, 48, "");
    const auto saved = store_->SavePhoto(jpeg, 64, 48, "clinician@example.org");
    ASSERT_TRUE(saved.ok()) << saved.error().message;
    const PhotoRow& photo = saved.value();
    EXPECT_TRUE(photo.id.starts_with("ph-"));
    EXPECT_EQ(photo.id.size(), 35u);
    EXPECT_EQ(photo.report_id, "");
    EXPECT_EQ(photo.bytes, static_cast<std::int64_t>(jpeg.size()));
    const auto stray = store_->SavePhoto(jpeg, 64, 48, "clinician@example.org");
    ASSERT_TRUE(stray.ok());
    EXPECT_NE(stray.value().id, photo.id);

    auto r = ldis::test::ValidReport(ldis::test::NewUuid());
    r["harms"].as_object()["deaths"] = 1;
    r["photos"] = json::array{json::value(photo.id)};
    static const auto validator = LoadReportValidator(
        SourcePath("config/schema/report.schema.json"), SourcePath("config/areas.toml"));
    auto v = validator->Validate(json::serialize(r));
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(v.report->photos, std::vector<std::string>{photo.id});
    const auto red = store_->Insert(*v.report, "http");
    ASSERT_TRUE(red.ok());
    const std::string ref = red.value().alert_reference;

    const auto found = store_->FindPhoto(photo.id, true);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->first.report_id, v.report->id);
    EXPECT_EQ(found->first.sha256, photo.sha256);
    EXPECT_EQ(found->second, jpeg);  // byte for byte, whichever store keeps it
    EXPECT_EQ(store_->FindPhoto(photo.id, false)->second, "");
    EXPECT_FALSE(store_->FindPhoto("ph-00000000000000000000000000000000", true).has_value());
    const auto listed = store_->AlertPhotos(ref);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].id, photo.id);

    // A second report naming the same photo does not take it.
    auto again = ldis::test::ValidReport(ldis::test::NewUuid());
    again["photos"] = json::array{json::value(photo.id)};
    auto v2 = validator->Validate(json::serialize(again));
    ASSERT_TRUE(v2.ok());
    ASSERT_TRUE(store_->Insert(*v2.report, "http").ok());
    EXPECT_EQ(store_->FindPhoto(photo.id, false)->first.report_id, v.report->id);

    // The automatic version carries none, nor do its deliveries.
    auto record = store_->FindAlertRecord(ref);
    ASSERT_TRUE(record.has_value());
    for (const auto& version : record->versions) EXPECT_EQ(version.photos, "") << version.version;
    for (const auto& item : Claim()) EXPECT_EQ(item.photos, "") << item.kind;

    // A photo of no report of this alert is refused, and nothing is written.
    AlertWording other;
    other.photos = std::vector<std::string>{stray.value().id};
    const auto refused = store_->Act(ref, AlertAction::kRevise, "coord", other);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().message, "the photo " + stray.value().id +
                                           " is not from a report of " + ref +
                                           ": choose from the photos its record shows");
    EXPECT_EQ(store_->FindAlertRecord(ref)->versions.size(), record->versions.size());

    // The coordinator's choice: the next version and each of its deliveries carry it.
    AlertWording chosen;
    chosen.photos = std::vector<std::string>{photo.id};
    const auto updated = store_->Act(ref, AlertAction::kRevise, "coord", chosen);
    ASSERT_TRUE(updated.ok()) << updated.error().message;
    record = store_->FindAlertRecord(ref);
    const auto& latest = record->versions.back();
    const auto carried = VersionPhotos(latest.photos);
    ASSERT_EQ(carried.size(), 1u);
    EXPECT_EQ(carried[0].id, photo.id);
    EXPECT_EQ(carried[0].sha1, photo.sha1);
    EXPECT_EQ(carried[0].bytes, photo.bytes);
    EXPECT_EQ(carried[0].width, 64);
    bool any = false;
    for (const auto& item : Claim()) {
        if (item.kind != "alert" || item.version != latest.version) continue;
        any = true;
        EXPECT_EQ(item.photos, latest.photos);
    }
    EXPECT_TRUE(any);
    const auto audited = std::find_if(record->audit.rbegin(), record->audit.rend(),
                                      [](const auto& e) { return e.action == "alert.updated"; });
    ASSERT_NE(audited, record->audit.rend());
    EXPECT_NE(audited->detail.find(photo.id), std::string::npos);

    // Retention: nothing is old enough yet but the upload no report named, after a day.
    const std::int64_t now = Now();
    ASSERT_TRUE(store_->PurgeFreeText(0, now, "test").ok());
    EXPECT_TRUE(store_->FindPhoto(stray.value().id, false).has_value());
    ASSERT_TRUE(store_->PurgeFreeText(0, now + 25LL * 3600 * 1000, "test").ok());
    EXPECT_FALSE(store_->FindPhoto(stray.value().id, false).has_value());
    EXPECT_TRUE(store_->FindPhoto(photo.id, false).has_value());
    ASSERT_TRUE(store_->PurgeFreeText(now + 1000, now + 1000, "test").ok());
    EXPECT_FALSE(store_->FindPhoto(photo.id, false).has_value());
    EXPECT_TRUE(store_->AlertPhotos(ref).empty());
    EXPECT_TRUE(store_->VerifyAudit().ok());
}
