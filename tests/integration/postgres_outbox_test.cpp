// The outbox on PostgreSQL with two instances on one real database (issue 15): claims that
// never share a row, a lease another instance takes over when it runs out, outcomes with
// fallback and a word to the coordinators, escalation on one instance at a time, and two
// real dispatchers sharing a fan-out to a real SMTP server, each email sent once.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include "ldis/engine/text.hpp"

#include <future>
#include <set>
#include <thread>

#include "ldis/engine/dispatcher.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/postgres.hpp"
#include "support/grading.hpp"
#include "support/postgres.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace json = boost::json;
using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file
using ldis::test::SourcePath;

namespace {

// Coordinators, a partner whose webhook is refused for good (with an email to fall back
// to, and an escalation contact), and `emails` partners reached by email, all for red.
std::string PartnersToml(int emails) {
    std::string t = R"toml(
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
escalation = "duty"
  [[partner.contact]]
  name = "hook"
  channel = "webhook"
  url = "http://127.0.0.1:9/hook"
  insecure = true
  [[partner.contact]]
  name = "backup"
  channel = "email"
  address = "backup@example.org"
  [[partner.contact]]
  name = "duty"
  channel = "email"
  address = "duty@example.org"
  [[partner.subscription]]
  levels = ["red"]
)toml";
    for (int i = 0; i < emails; ++i) {
        const std::string n = std::to_string(i);
        t += "[[partner]]\nid = \"p" + n + "\"\nname = \"Partner " + n +
             "\"\n  [[partner.contact]]\n  name = \"desk\"\n  channel = \"email\"\n  address = "
             "\"p" +
             n + "@example.org\"\n  [[partner.subscription]]\n  levels = [\"red\"]\n";
    }
    return t;
}

using ldis::test::PgRows;

class PostgresOutboxTest : public ::testing::Test {
protected:
    explicit PostgresOutboxTest(int emails = 3) {
        url_ = server_.CreateDatabase("ldis");
        auto setup = std::make_shared<GradingSetup>();
        setup->substances = Substances::LoadFile(SourcePath("config/substances.toml"));
        setup->rules = Rules::LoadFile(SourcePath("config/rules.toml"), setup->substances);
        setup->templates = AlertTemplates::LoadDir(SourcePath("templates/alert"));
        setup->partners =
            std::make_shared<const Partners>(Partners::Parse(PartnersToml(emails), "p.toml"));
        setup->dispatch.max_attempts = 3;
        setup->dispatch.red_ack_ms = 1000;
        grading_ = setup;
        a_ = Instance(1000);
        b_ = Instance(1000);
    }

    std::unique_ptr<PostgresStore> Instance(std::int64_t lease_ms) {
        PostgresStore::Options o;
        o.url = url_;
        o.grading = grading_;
        o.lease_ms = lease_ms;
        auto opened = PostgresStore::Open(o);
        EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
        return opened.ok() ? std::move(opened).value() : nullptr;
    }

    static StoredReport SubmitRed(PostgresStore& at) { return ldis::test::SubmitRed(at); }

    static std::vector<OutboxItem> Claim(PostgresStore& at, std::size_t limit = 100,
                                         std::int64_t when = ldis::engine::NowMs()) {
        std::promise<Result<std::vector<OutboxItem>>> done;
        at.ClaimDue(when, limit,
                    [&](Result<std::vector<OutboxItem>> r) { done.set_value(std::move(r)); });
        auto r = done.get_future().get();
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
        return r.ok() ? r.value() : std::vector<OutboxItem>{};
    }

    static void Complete(PostgresStore& at, std::vector<DeliveryOutcome> outcomes,
                         std::int64_t when = ldis::engine::NowMs()) {
        std::promise<Result<int>> done;
        at.Complete(std::move(outcomes), when,
                    [&](Result<int> r) { done.set_value(std::move(r)); });
        auto r = done.get_future().get();
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    }

    static int Escalate(PostgresStore& at, std::int64_t when) {
        std::promise<Result<int>> done;
        at.EscalateDue(when, [&](Result<int> r) { done.set_value(std::move(r)); });
        auto r = done.get_future().get();
        EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
        return r.ok() ? r.value() : -1;
    }

    std::multiset<std::string> Recipients(int version, const std::string& kind = "alert") {
        std::multiset<std::string> out;
        for (const auto& row :
             PgRows(url_, "SELECT partner || '/' || contact FROM deliveries WHERE version = " +
                              std::to_string(version) + " AND kind = '" + kind + "'"))
            out.insert(row);
        return out;
    }

    ldis::test::PostgresServer server_;
    std::string url_;
    std::shared_ptr<const GradingSetup> grading_;
    std::unique_ptr<PostgresStore> a_, b_;
};

TEST_F(PostgresOutboxTest, ClaimsAtTwoInstancesAtOnceNeverTakeOneRow) {
    for (int i = 0; i < 3; ++i) SubmitRed(*a_);
    const auto due = PgRows(url_, "SELECT count(*) FROM deliveries WHERE status = 'queued'");
    ASSERT_GE(std::stoi(due.at(0)), 6);
    std::vector<std::int64_t> by_a, by_b;
    const auto take = [](PostgresStore& at, std::vector<std::int64_t>& ids) {
        for (;;) {
            const auto items = Claim(at, 1);
            if (items.empty()) return;
            for (const auto& it : items) ids.push_back(it.id);
        }
    };
    std::thread ta([&] { take(*a_, by_a); });
    std::thread tb([&] { take(*b_, by_b); });
    ta.join();
    tb.join();
    std::set<std::int64_t> all(by_a.begin(), by_a.end());
    for (auto id : by_b)
        EXPECT_TRUE(all.insert(id).second) << "delivery " << id << " claimed twice";
    EXPECT_EQ(static_cast<int>(all.size()), std::stoi(due.at(0)));
    EXPECT_EQ(PgRows(url_, "SELECT count(*) FROM deliveries WHERE status <> 'sending'"),
              std::vector<std::string>{"0"});
}

TEST_F(PostgresOutboxTest, ALeaseThatRunsOutIsTakenOverByTheOtherInstance) {
    SubmitRed(*a_);
    const std::int64_t now = ldis::engine::NowMs();
    const auto first = Claim(*a_, 100, now);
    ASSERT_FALSE(first.empty());
    // A is "sending" them: B finds nothing, and its start takes nothing from a live lease.
    EXPECT_TRUE(Claim(*b_, 100, now + 500).empty());
    EXPECT_EQ(b_->RecoverInFlight(now + 500).value(), 0);
    // A died: once the lease (1 s) has run out, B takes every one over, a second attempt.
    EXPECT_EQ(b_->RecoverInFlight(now + 1001).value(), static_cast<int>(first.size()));
    const auto again = Claim(*b_, 100, now + 1001);
    ASSERT_EQ(again.size(), first.size());
    for (const auto& it : again) EXPECT_EQ(it.attempts, 2);
    EXPECT_EQ(b_->NextDueMs(), std::optional<std::int64_t>(now + 1001 + 1000));
}

TEST_F(PostgresOutboxTest, PermanentFailureFallsBackAndTellsTheCoordinators) {
    SubmitRed(*a_);
    for (int round = 0; round < 5; ++round) {
        auto items = Claim(round % 2 ? *b_ : *a_);
        if (items.empty()) break;
        std::vector<DeliveryOutcome> outcomes;
        for (const auto& it : items) {
            const bool hook = it.channel == Channel::kWebhook;
            outcomes.push_back(
                {it.id, hook ? DeliveryOutcome::Kind::kFailed : DeliveryOutcome::Kind::kDelivered,
                 hook ? "HTTP 400: bad" : "", -1});
        }
        Complete(round % 2 ? *a_ : *b_, outcomes);  // settled by the other instance
    }
    EXPECT_EQ(Recipients(1), (std::multiset<std::string>{"ed/hook", "ed/backup", "p0/desk",
                                                         "p1/desk", "p2/desk"}));
    EXPECT_EQ(Recipients(1, "dead_letter"), (std::multiset<std::string>{"coord/team"}));
    EXPECT_EQ(PgRows(url_, "SELECT status, last_error FROM deliveries WHERE contact = 'hook'"),
              std::vector<std::string>{"failed\tHTTP 400: bad"});
    auto db = PostgresDatabase::Open(url_);
    ASSERT_TRUE(db.ok());
    EXPECT_TRUE(db.value()->VerifyAudit().ok());
}

TEST_F(PostgresOutboxTest, RetriesBackOffThenFailAfterTheLastAttempt) {
    SubmitRed(*a_);
    std::int64_t at = ldis::engine::NowMs();
    std::int64_t p0 = 0;
    for (const auto& it : Claim(*a_, 100, at))
        if (it.partner == "p0") p0 = it.id;
    ASSERT_GT(p0, 0);
    for (int attempt = 1; attempt <= 3; ++attempt) {
        Complete(*b_, {{p0, DeliveryOutcome::Kind::kRetry, "SMTP: connection refused", -1}}, at);
        const auto row =
            PgRows(url_, "SELECT status, attempts, next_attempt_ms > " + std::to_string(at) +
                             " FROM deliveries WHERE id = " + std::to_string(p0));
        if (attempt < 3) {
            EXPECT_EQ(row,
                      std::vector<std::string>{"retrying\t" + std::to_string(attempt) + "\tt"});
            at += 600000;
            const auto again = Claim(attempt % 2 ? *b_ : *a_, 100, at);
            ASSERT_TRUE(std::any_of(again.begin(), again.end(),
                                    [&](const auto& it) { return it.id == p0; }));
        } else {
            EXPECT_EQ(row, std::vector<std::string>{"failed\t3\tf"});
        }
    }
}

TEST_F(PostgresOutboxTest, EscalationRunsOnOneInstanceAtATimeAndMovesWhenItStops) {
    SubmitRed(*a_);
    std::vector<DeliveryOutcome> outcomes;
    for (const auto& it : Claim(*a_))
        outcomes.push_back({it.id, DeliveryOutcome::Kind::kDelivered, "", -1});
    Complete(*a_, outcomes);
    // The acknowledgement is 1 s overdue: the leader escalates ed's to its duty contact, once.
    EXPECT_EQ(Escalate(*a_, ldis::engine::NowMs() + 5000), 1);
    EXPECT_TRUE(a_->leader());
    EXPECT_EQ(Escalate(*b_, ldis::engine::NowMs() + 5000), 0);
    EXPECT_FALSE(b_->leader());
    EXPECT_EQ(Escalate(*a_, ldis::engine::NowMs() + 10000), 0);  // not twice
    EXPECT_EQ(Recipients(1, "escalation"), (std::multiset<std::string>{"ed/duty"}));
    // A stops (or dies: its connection ends either way); B leads from its next round once
    // the server has ended A's session (its backend exits a moment after the connection
    // closes: one run in six, B's first round came before that).
    a_.reset();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    EXPECT_EQ(Escalate(*b_, ldis::engine::NowMs() + 15000), 0);
    while (!b_->leader() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_EQ(Escalate(*b_, ldis::engine::NowMs() + 15000), 0);
    }
    EXPECT_TRUE(b_->leader());
}

TEST_F(PostgresOutboxTest, AnAcknowledgementOrUnsubscribeAtEitherInstanceIsRecordedOnce) {
    const auto stored = SubmitRed(*a_);
    const auto rows = a_->Deliveries(stored.alert_reference);
    const auto p1 = std::find_if(rows.begin(), rows.end(),
                                 [](const DeliveryRow& d) { return d.partner == "p1"; });
    ASSERT_NE(p1, rows.end());
    EXPECT_EQ(p1->level, "red");
    EXPECT_EQ(p1->status, "queued");
    // The link reaches B, then A: recorded once, at the first time.
    const auto first = b_->Acknowledge(p1->id, "p1@example.org", 1000);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first.value().acknowledged_at_ms, 1000);
    const auto second = a_->Acknowledge(p1->id, "p1@example.org", 2000);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second.value().acknowledged_at_ms, 1000);
    EXPECT_FALSE(a_->Acknowledge(999999, "nobody", 3000).ok());
    // An unsubscribe request: the coordinators hear of it once, however often it is posted.
    const auto asked = a_->RequestUnsubscribe(p1->id, 4000);
    ASSERT_TRUE(asked.ok()) << asked.error().message;
    EXPECT_FALSE(asked.value().unsubscribe_already_requested);
    const auto again = b_->RequestUnsubscribe(p1->id, 5000);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again.value().unsubscribe_already_requested);
    EXPECT_EQ(Recipients(1, "unsubscribe"), (std::multiset<std::string>{"coord/team"}));
    EXPECT_EQ(a_->DeliveryCounts().at("queued"), static_cast<std::int64_t>(rows.size()) + 1);
    auto db = PostgresDatabase::Open(url_);
    ASSERT_TRUE(db.ok());
    EXPECT_TRUE(db.value()->VerifyAudit().ok());
}

// The whole path with real parts: two instances, each with its own dispatcher on its own
// io thread, sharing one fan-out to a real SMTP server. Every partner gets the alert once.
class PostgresDispatchTest : public PostgresOutboxTest {
protected:
    PostgresDispatchTest() : PostgresOutboxTest(40) {}
};

TEST_F(PostgresDispatchTest, TwoInstancesShareAFanOutAndSendEachEmailOnce) {
    ldis::test::SmtpSink smtp;
    smtp.Start();
    const auto templates = MessageTemplates::LoadDir(SourcePath("templates"));
    struct Side {
        boost::asio::io_context io;
        std::unique_ptr<Dispatcher> dispatcher;
        std::thread thread;
    };
    Side sides[2];
    PostgresStore* stores[2] = {a_.get(), b_.get()};
    for (int i = 0; i < 2; ++i) {
        DispatcherOptions o;
        o.smtp_url = smtp.url();
        o.templates = templates;
        o.partners = grading_->partners;
        o.max_in_flight = 8;  // small, so that both instances take part
        sides[i].dispatcher = std::make_unique<Dispatcher>(sides[i].io, *stores[i], o);
        sides[i].dispatcher->Start();
    }
    for (auto& s : sides) {
        s.thread = std::thread([&s] {
            auto work = boost::asio::make_work_guard(s.io);
            s.io.run();
        });
    }
    SubmitRed(*a_);
    SubmitRed(*b_);  // a second version of the same alert, taken in at the other instance
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::vector<std::string> pending;
    do {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        pending = PgRows(url_,
                         "SELECT count(*) FROM deliveries WHERE partner LIKE 'p%' AND "
                         "status <> 'delivered'");
    } while (pending != std::vector<std::string>{"0"} &&
             std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(pending, std::vector<std::string>{"0"});
    for (auto& s : sides) {
        std::promise<void> stopped;
        boost::asio::post(s.io, [&] { s.dispatcher->Stop([&] { stopped.set_value(); }); });
        stopped.get_future().wait_for(std::chrono::seconds(10));
        s.io.stop();
        s.thread.join();
    }
    // The 40 partners' rows (version 1; the second report's version is held back by the
    // update interval) were each sent once, whichever instance sent them.
    EXPECT_EQ(PgRows(url_, "SELECT count(*) FROM deliveries WHERE partner LIKE 'p%'"),
              std::vector<std::string>{"40"});
    std::multiset<std::string> seen;
    for (const auto& m : smtp.Messages()) {
        const std::string to = json::serialize(m.at("rcpt_tos"));
        if (to.starts_with("[\"p")) seen.insert(to);
    }
    EXPECT_EQ(seen.size(), 40u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 40u) << "an email sent twice";
}

}  // namespace
