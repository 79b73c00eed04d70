// The outbox on both stores, SQLite and PostgreSQL (a real server the test starts, a
// database per test): routing in the alert's transaction, claims, outcomes, fallback,
// cancellation to the original recipients, escalation and recovery. The same tests, the
// same expectations (issue 15); only recovery after a crash differs, by design: SQLite's
// one process sends again at once, PostgreSQL's instances when the lease runs out.
// The fixture: each test runs on both stores (outbox_test.cpp instantiates the suite);
// the tests are in outbox_test.cpp and outbox_more_test.cpp.
#pragma once

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
#include "support/grading.hpp"
#include "support/photos.hpp"
#include "support/postgres.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace ldis::test::outbox {

namespace json = boost::json;
using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file
using ldis::test::SourcePath;

inline const char* kPartners = R"toml(
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

inline std::int64_t Now() {
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

    StoredReport SubmitRed() { return ldis::test::SubmitRed(*store_); }

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

}  // namespace ldis::test::outbox
