// Nothing the broker thinks was delivered is lost: ldisd killed with SIGKILL mid-stream,
// and the broker restarted mid-stream.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <set>
#include <sstream>
#include <thread>

#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

using ldis::test::Eventually;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::NewUuid;
using ldis::test::TempDir;

namespace {

std::set<std::string> StoredIds(const std::string& db) {
    ldis::engine::StoreOptions o;
    o.path = db;
    const auto ids = ldis::engine::ReportStore(o).ListIds();
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size())
        << "an id is stored twice";
    return {ids.begin(), ids.end()};
}

std::int64_t StoredCount(const std::string& db) {
    ldis::engine::StoreOptions o;
    o.path = db;
    return ldis::engine::ReportStore(o).CountReports();
}

TEST(DurabilityTest, RepeatedSigkillLosesNothingAndStoresEachReportOnce) {
    constexpr int kReports = 2000;
    constexpr int kKills = 4;
    Mosquitto broker;
    TempDir dir;
    Ldisd daemon(broker, dir);
    daemon.Start();

    std::vector<std::string> ids;
    for (int i = 0; i < kReports; ++i) ids.push_back(NewUuid());
    std::atomic<int> published{0};
    std::atomic<bool> publish_failed{false};
    std::thread publisher([&] {
        MqttPeer peer(broker.uri(), "durability-publisher");
        for (const auto& id : ids) {
            // Waits for the broker's PUBACK: from then on the broker owns the report.
            if (!peer.Publish("ldis/v1/reports/hospital", ldis::test::ValidReportText(id)))
                publish_failed = true;
            ++published;
            std::this_thread::sleep_for(std::chrono::microseconds(1500));
        }
    });
    int kills = 0;
    while (kills < kKills) {
        const int before = published.load();
        Eventually([&] { return published.load() >= before + kReports / (kKills + 2); },
                   std::chrono::seconds(20));
        daemon.Stop(SIGKILL);
        ++kills;
        // Reports go on arriving at the broker while ldisd is down.
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        daemon.Start();
    }
    publisher.join();
    ASSERT_FALSE(publish_failed.load());
    EXPECT_EQ(kills, kKills);

    const bool all = Eventually([&] { return StoredCount(daemon.db_path()) >= kReports; },
                                std::chrono::seconds(60));
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
    if (!all) {
        std::istringstream log(daemon.log());
        for (std::string line; std::getline(log, line);) {
            if (line.find(" info ") == std::string::npos) std::cerr << line << '\n';
        }
    }
    const auto stored = StoredIds(daemon.db_path());
    std::size_t missing = 0;
    for (const auto& id : ids) missing += stored.count(id) == 0;
    EXPECT_TRUE(all);
    EXPECT_EQ(missing, 0u);
    EXPECT_EQ(stored.size(), ids.size());
}

TEST(DurabilityTest, BrokerRestartMidStreamLosesNothingPublishedAfterIt) {
    Mosquitto broker;  // with persistence, as a production broker runs
    TempDir dir;
    Ldisd daemon(broker, dir);
    daemon.Start();
    std::vector<std::string> before, after;
    {
        MqttPeer peer(broker.uri(), "restart-publisher-1");
        for (int i = 0; i < 300; ++i) {
            before.push_back(NewUuid());
            ASSERT_TRUE(peer.Publish("ldis/v1/reports/hospital",
                                     ldis::test::ValidReportText(before.back())));
        }
    }
    broker.Restart();
    {
        MqttPeer peer(broker.uri(), "restart-publisher-2");
        for (int i = 0; i < 300; ++i) {
            after.push_back(NewUuid());
            ASSERT_TRUE(peer.Publish("ldis/v1/reports/hospital",
                                     ldis::test::ValidReportText(after.back())));
        }
    }
    const bool all =
        Eventually([&] { return StoredCount(daemon.db_path()) >= 600; }, std::chrono::seconds(60));
    EXPECT_TRUE(all) << "ldisd log:\n" << daemon.log();
    EXPECT_TRUE(daemon.running());
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
    const auto stored = StoredIds(daemon.db_path());
    for (const auto& id : after) EXPECT_TRUE(stored.count(id)) << "lost after the restart: " << id;
    for (const auto& id : before)
        EXPECT_TRUE(stored.count(id)) << "lost across the restart: " << id;
}

TEST(DurabilityTest, ReportsPublishedWhileLdisdIsDownAreTakenInAtStart) {
    Mosquitto broker;
    TempDir dir;
    Ldisd daemon(broker, dir);
    daemon.Start();
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
    std::vector<std::string> ids;
    MqttPeer peer(broker.uri(), "offline-publisher");
    peer.Subscribe("ldis/v1/receipts/#");
    for (int i = 0; i < 50; ++i) {
        ids.push_back(NewUuid());
        ASSERT_TRUE(
            peer.Publish("ldis/v1/reports/hospital", ldis::test::ValidReportText(ids.back())));
    }
    daemon.Start();
    EXPECT_TRUE(
        Eventually([&] { return StoredCount(daemon.db_path()) == 50; }, std::chrono::seconds(30)));
    // Every submitter still gets its receipt.
    std::set<std::string> receipted;
    while (auto seen = peer.WaitForTopic("ldis/v1/receipts/hospital", std::chrono::seconds(5))) {
        receipted.insert(
            std::string(ldis::test::ParseObject(seen->payload).at("report_id").as_string()));
        if (receipted.size() == ids.size()) break;
    }
    EXPECT_EQ(receipted.size(), ids.size());
    daemon.Stop(SIGTERM);
}

}  // namespace

// Lowering mqtt.intake_connections leaves the broker holding the old connections' sessions
// and their share of the shared subscription: ldisd takes in what they queued and ends
// them, so nothing waits there unread until it expires.
TEST(DurabilityTest, FewerIntakeConnectionsLeaveNothingInOldSessions) {
    Mosquitto broker;
    TempDir dir;
    std::vector<std::string> ids;
    MqttPeer peer(broker.uri(), "while-down-publisher");
    {
        Ldisd three(broker, dir, {"mqtt.shared_group=ldis", "mqtt.intake_connections=3"});
        three.Start();
        // Reports taken in by all three connections: every subscription is in place.
        for (int i = 0; i < 6; ++i) {
            ids.push_back(NewUuid());
            ASSERT_TRUE(
                peer.Publish("ldis/v1/reports/hospital", ldis::test::ValidReportText(ids.back())));
        }
        ASSERT_TRUE(Eventually([&] { return StoredCount(three.db_path()) == 6; },
                               std::chrono::seconds(20)));
        EXPECT_EQ(three.Stop(SIGTERM), 0);
    }
    for (int i = 0; i < 60; ++i) {  // shared out among the three stopped sessions
        ids.push_back(NewUuid());
        ASSERT_TRUE(
            peer.Publish("ldis/v1/reports/hospital", ldis::test::ValidReportText(ids.back())));
    }
    Ldisd one(broker, dir, {"mqtt.shared_group=ldis", "mqtt.intake_connections=1"});
    one.Start();
    EXPECT_TRUE(
        Eventually([&] { return StoredCount(one.db_path()) == 66; }, std::chrono::seconds(30)))
        << StoredCount(one.db_path()) << " of 66 stored\n"
        << one.log();
    EXPECT_TRUE(Eventually(
        [&] { return one.log().find("old session(s) taken in and ended") != std::string::npos; },
        std::chrono::seconds(20)))
        << one.log();
    // The old sessions are gone: every new report reaches the one connection left.
    for (int i = 0; i < 30; ++i) {
        ids.push_back(NewUuid());
        ASSERT_TRUE(
            peer.Publish("ldis/v1/reports/hospital", ldis::test::ValidReportText(ids.back())));
    }
    EXPECT_TRUE(
        Eventually([&] { return StoredCount(one.db_path()) == 96; }, std::chrono::seconds(30)))
        << StoredCount(one.db_path()) << " of 96 stored\n"
        << one.log();
    EXPECT_EQ(one.Stop(SIGTERM), 0);
    const auto stored = StoredIds(one.db_path());
    for (const auto& id : ids) EXPECT_TRUE(stored.count(id)) << "not stored: " << id;
}
