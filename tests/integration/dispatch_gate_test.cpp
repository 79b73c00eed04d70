// The claim at the commit, on the wire: an email a commit claims is handed to a real SMTP
// server's connection while that commit's disk write is under way, and its message goes
// only once the commit is durable. The envelope (MAIL FROM, RCPT TO, DATA) may go before:
// it carries the partner's address and nothing of the report. A rolled-back commit takes
// its emails back before any byte of their messages leaves, and records nothing for them.
// The store here is one whose commit the test decides (HeldCommit); the dispatcher, libcurl
// and the SMTP server (aiosmtpd) are the real ones. With email.envelope_before_commit =
// false nothing reaches the server before the commit.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "ldis/engine/dispatcher.hpp"
#include "ldis/engine/messages.hpp"
#include "support/daemon.hpp"
#include "support/grading.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file

namespace {

// The outbox of a store whose commits the test settles by hand, as SQLite's writer does
// around its COMMIT: Hold hands the dispatcher a claim made inside the transaction, Settle
// says whether the transaction became durable. Nothing else is ever due.
class HeldCommit : public Outbox {
public:
    void SetOutboxListener(std::function<void()>) override {}
    void SetClaimAtCommit(CommitClaim hooks) override {
        std::lock_guard lock(mutex_);
        hooks_ = std::move(hooks);
    }
    void ClaimDue(std::int64_t, std::size_t,
                  std::function<void(Result<std::vector<OutboxItem>>)> done) override {
        done(std::vector<OutboxItem>{});
    }
    void Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t,
                  std::function<void(Result<int>)> done) override {
        {
            std::lock_guard lock(mutex_);
            outcomes_.insert(outcomes_.end(), outcomes.begin(), outcomes.end());
        }
        done(static_cast<int>(outcomes.size()));
    }
    void EscalateDue(std::int64_t, std::function<void(Result<int>)> done) override { done(0); }
    Result<int> RecoverInFlight(std::int64_t) override { return 0; }
    const std::string& AckKey() const override { return key_; }
    std::optional<std::int64_t> NextDueMs() const override { return std::nullopt; }

    void Hold(std::vector<OutboxItem> items) {
        CommitClaim hooks;
        {
            std::lock_guard lock(mutex_);
            hooks = hooks_;
        }
        ASSERT_TRUE(hooks.claimed) << "the dispatcher did not ask for claims at the commit";
        ASSERT_GE(hooks.room(), items.size());
        const std::size_t n = items.size();
        hooks.claimed(std::move(items), n, true);
        settle_ = hooks.settled;
    }
    void Settle(bool committed) { std::exchange(settle_, {})(committed); }

    std::vector<DeliveryOutcome> Outcomes() const {
        std::lock_guard lock(mutex_);
        return outcomes_;
    }

private:
    mutable std::mutex mutex_;
    CommitClaim hooks_;
    std::function<void(bool)> settle_;
    std::vector<DeliveryOutcome> outcomes_;
    std::string key_ = std::string(32, 'k');
};

OutboxItem RedEmail(std::int64_t id, const std::string& address) {
    OutboxItem it = ldis::test::RedAlertItem();
    it.id = id;
    it.address = address;
    return it;
}

class DispatchGateTest : public ::testing::Test {
protected:
    explicit DispatchGateTest(bool envelope_before_commit = true) {
        smtp_.Start();
        DispatcherOptions o;
        o.smtp_url = smtp_.url();
        o.templates = MessageTemplates::LoadDir(ldis::test::SourcePath("templates"));
        o.smtp_connections = 1;
        o.smtp_envelope_before_commit = envelope_before_commit;
        dispatcher_ = std::make_unique<Dispatcher>(io_, store_, o);
        dispatcher_->Start();
        thread_ = std::thread([this] {
            auto work = boost::asio::make_work_guard(io_);
            io_.run();
        });
    }
    ~DispatchGateTest() override {
        std::promise<void> stopped;
        boost::asio::post(io_, [&] { dispatcher_->Stop([&] { stopped.set_value(); }); });
        stopped.get_future().wait_for(std::chrono::seconds(10));
        io_.stop();
        thread_.join();
    }

    bool Accepted(const std::string& address) const {
        const auto all = smtp_.Recipients();
        return std::find(all.begin(), all.end(), address) != all.end();
    }
    std::vector<std::string> MessagesTo() const {
        std::vector<std::string> out;
        for (const auto& m : smtp_.Messages())
            for (const auto& to : m.at("rcpt_tos").as_array()) out.emplace_back(to.as_string());
        return out;
    }
    std::optional<DeliveryOutcome> OutcomeOf(std::int64_t id) const {
        for (const auto& o : store_.Outcomes())
            if (o.id == id) return o;
        return std::nullopt;
    }
    static void Quiet() { std::this_thread::sleep_for(std::chrono::milliseconds(700)); }

    ldis::test::SmtpSink smtp_;
    HeldCommit store_;
    boost::asio::io_context io_;
    std::unique_ptr<Dispatcher> dispatcher_;
    std::thread thread_;
};

using ldis::test::Eventually;
constexpr auto kGateWait = std::chrono::seconds(15);

TEST_F(DispatchGateTest, TheEnvelopeGoesWhileTheCommitSyncsAndTheMessageOnlyOnceItIsDurable) {
    store_.Hold({RedEmail(1, "ed@example.org")});
    // The server has the recipient: the transaction is open, waiting for the message.
    ASSERT_TRUE(Eventually([&] { return Accepted("ed@example.org"); }, kGateWait));
    Quiet();
    EXPECT_TRUE(MessagesTo().empty()) << "the message left before its commit was durable";
    EXPECT_TRUE(store_.Outcomes().empty());

    store_.Settle(true);
    ASSERT_TRUE(Eventually([&] { return OutcomeOf(1).has_value(); }, kGateWait));
    EXPECT_EQ(OutcomeOf(1)->kind, DeliveryOutcome::Kind::kDelivered) << OutcomeOf(1)->error;
    EXPECT_EQ(MessagesTo(), std::vector<std::string>{"ed@example.org"});
    const auto messages = smtp_.Messages();
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].at("headers").at("X-LDIS-Alert").as_string(), "KM-2026-0007");
}

TEST_F(DispatchGateTest, ARolledBackCommitTakesItsEmailBackBeforeAnyOfTheMessageLeaves) {
    // First on a new connection, then on one that an email before it left open.
    const std::vector<std::string> first{"first@example.org"};
    for (const bool reused : {false, true}) {
        SCOPED_TRACE(reused ? "a connection reused" : "a new connection");
        const std::int64_t id = reused ? 3 : 1;
        const std::string gone = reused ? "gone-too@example.org" : "gone@example.org";
        store_.Hold({RedEmail(id, gone)});
        ASSERT_TRUE(Eventually([&] { return Accepted(gone); }, kGateWait));
        store_.Settle(false);
        Quiet();
        EXPECT_EQ(MessagesTo(), reused ? first : std::vector<std::string>{})
            << "a rolled-back commit's message reached the server";
        // Its row is not there: nothing may be recorded against its id (SQLite can give
        // the id to the next row).
        EXPECT_FALSE(OutcomeOf(id).has_value());
        if (reused) break;

        // The dispatcher goes on: the next commit's email goes, on a new connection.
        store_.Hold({RedEmail(2, "first@example.org")});
        store_.Settle(true);
        ASSERT_TRUE(Eventually([&] { return OutcomeOf(2).has_value(); }, kGateWait));
        EXPECT_EQ(OutcomeOf(2)->kind, DeliveryOutcome::Kind::kDelivered) << OutcomeOf(2)->error;
        EXPECT_EQ(MessagesTo(), first);
    }
}

TEST_F(DispatchGateTest, ARecipientRefusedBeforeTheCommitIsRecordedOnlyIfTheCommitHolds) {
    // The server refuses the recipient (550) while the commit is still syncing: curl is done
    // with the transfer before the gate opens. What that means waits for the commit.
    store_.Hold({RedEmail(1, "reject-one@example.org")});
    Quiet();
    EXPECT_TRUE(store_.Outcomes().empty());
    store_.Settle(false);
    Quiet();
    EXPECT_TRUE(store_.Outcomes().empty()) << "an outcome for a row that was rolled back";

    store_.Hold({RedEmail(2, "reject-two@example.org")});
    Quiet();
    EXPECT_TRUE(store_.Outcomes().empty());
    store_.Settle(true);
    ASSERT_TRUE(Eventually([&] { return OutcomeOf(2).has_value(); }, kGateWait));
    EXPECT_NE(OutcomeOf(2)->kind, DeliveryOutcome::Kind::kDelivered);
    EXPECT_NE(OutcomeOf(2)->error.find("550"), std::string::npos) << OutcomeOf(2)->error;
    EXPECT_TRUE(MessagesTo().empty());
}

// email.envelope_before_commit = false: nothing at all reaches the relay before the commit.
class DispatchWithoutGateTest : public DispatchGateTest {
protected:
    DispatchWithoutGateTest() : DispatchGateTest(false) {}
};

TEST_F(DispatchWithoutGateTest, NothingReachesTheRelayBeforeTheCommitIsDurable) {
    store_.Hold({RedEmail(1, "ed@example.org")});
    Quiet();
    EXPECT_TRUE(smtp_.Recipients().empty()) << "the envelope went before the commit";
    store_.Settle(true);
    ASSERT_TRUE(Eventually([&] { return OutcomeOf(1).has_value(); }, kGateWait));
    EXPECT_EQ(OutcomeOf(1)->kind, DeliveryOutcome::Kind::kDelivered) << OutcomeOf(1)->error;
    EXPECT_EQ(MessagesTo(), std::vector<std::string>{"ed@example.org"});

    store_.Hold({RedEmail(2, "gone@example.org")});
    store_.Settle(false);
    Quiet();
    EXPECT_EQ(smtp_.Recipients(), std::vector<std::string>{"ed@example.org"});
    EXPECT_FALSE(OutcomeOf(2).has_value());
}

}  // namespace
