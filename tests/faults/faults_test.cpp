// Fault injection: the real ldisd, mosquitto, an aiosmtpd server and SQLite, with the
// faults made for real: kill -9 during a burst that raises alerts, a full disk (a tiny
// tmpfs), and a database locked by another process at start.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace json = boost::json;
using ldis::test::Eventually;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::NewUuid;
using ldis::test::Seen;
using ldis::test::SmtpSink;
using ldis::test::TempDir;

namespace {

ldis::engine::StoreOptions At(const std::string& db) {
    ldis::engine::StoreOptions o;
    o.path = db;
    return o;
}

const char* kDistricts[] = {"Ashford",   "Canterbury", "Dartford", "Dover",  "Gravesham",
                            "Maidstone", "Sevenoaks",  "Swale",    "Thanet", "Tunbridge Wells"};

// Report i of a burst: most are rumours (no alert); every tenth is a death, which raises
// a red alert (or updates it) in one of 100 signals: ten districts, ten unknown compounds.
std::string BurstReport(int i, const std::string& id) {
    auto r = ldis::test::ValidReport(id);
    r["area"] = json::object{{"authority", "Kent"}, {"district", kDistricts[(i / 10) % 10]}};
    if (i % 10 == 0) {
        r["harms"].as_object()["deaths"] = 1;
        r["substances"] = json::array{json::object{
            {"name", "faultcompound " + std::to_string((i / 100) % 10)}, {"form", "powder"}}};
    } else {
        r["evidence"] = "anecdotal";
        r["harms"] = json::object{{"cases", 1}};
    }
    return json::serialize(r);
}

// Sizes come from the environment so that CI runs them small and `scripts/faults` full size
// (DESIGN §10: 5,000 reports, a 60 s SMTP outage).
int EnvInt(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

std::string OnePartnerFile(const TempDir& dir) {
    const std::string partners = dir / "partners.toml";
    std::ofstream out(partners);
    out << "[coordinators]\npartner = \"coord\"\n"
        << "[[partner]]\nid = \"coord\"\nname = \"Coordinators\"\n"
        << "  [[partner.contact]]\n  name = \"team\"\n  channel = \"email\"\n"
        << "  address = \"coordinators@example.org\"\n"
        << "[[partner]]\nid = \"kent\"\nname = \"Kent services\"\n"
        << "  [[partner.contact]]\n  name = \"desk\"\n  channel = \"email\"\n"
        << "  address = \"kent@example.org\"\n";
    for (int i = 1; i <= 4; ++i)  // five recipients of every alert
        out << "  [[partner.contact]]\n  name = \"duty" << i << "\"\n  channel = \"email\"\n"
            << "  address = \"duty" << i << "@example.org\"\n";
    out << "  [[partner.subscription]]\n  levels = [\"red\"]\n";
    return partners;
}

// What every fault must leave: each report stored exactly once, each delivery delivered,
// one Message-ID per recipient and alert version however often it was sent. Returns the
// number of emails the SMTP server accepted twice.
std::size_t ExpectNothingLost(const Ldisd& daemon, const SmtpSink& smtp,
                              const std::vector<std::string>& ids) {
    EXPECT_TRUE(Eventually(
        [&] {
            return ldis::engine::ReportStore(At(daemon.db_path())).CountReports() >=
                   static_cast<std::int64_t>(ids.size());
        },
        std::chrono::seconds(180)))
        << ldis::engine::ReportStore(At(daemon.db_path())).CountReports() << " stored";
    const auto stored = ldis::engine::ReportStore(At(daemon.db_path())).ListIds();
    EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()).size(), stored.size());
    EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()),
              std::set<std::string>(ids.begin(), ids.end()));

    EXPECT_TRUE(Eventually(
        [&] {
            const auto rows = ldis::engine::ReportStore(At(daemon.db_path())).Deliveries("");
            return !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const auto& d) {
                return d.status == "delivered";
            });
        },
        std::chrono::seconds(180)));
    const auto deliveries = ldis::engine::ReportStore(At(daemon.db_path())).Deliveries("");
    std::map<std::string, std::set<std::string>> message_ids;
    std::size_t emails = 0;
    for (const auto& m : smtp.Messages()) {
        ++emails;
        const auto& h = m.at("headers").as_object();
        const std::string key = std::string(m.at("rcpt_tos").at(0).as_string()) + " " +
                                std::string(h.at("X-LDIS-Alert").as_string()) + " v" +
                                std::string(h.at("X-LDIS-Version").as_string()) + " " +
                                std::string(h.at("X-LDIS-Kind").as_string());
        message_ids[key].insert(std::string(h.at("Message-ID").as_string()));
    }
    for (const auto& [key, set] : message_ids) EXPECT_EQ(set.size(), 1u) << key;
    EXPECT_EQ(message_ids.size(), deliveries.size()) << "an email is missing or unexpected";
    return emails - message_ids.size();
}

// Publishes reports [from, to) of a burst, retrying each until the broker takes it (a
// submitter does the same when the broker is away).
void PublishBurst(const Mosquitto& broker, const std::string& client_id,
                  const std::vector<std::string>& ids, int from, int to, int pause_ms,
                  std::atomic<int>& published) {
    auto peer = std::make_unique<MqttPeer>(broker.uri(), client_id);
    for (int i = from; i < to; ++i) {
        while (!peer->Publish("ldis/v1/reports/hospital", BurstReport(i, ids[i]))) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            peer = std::make_unique<MqttPeer>(broker.uri(), client_id);
        }
        ++published;
        if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
}

// The parts every burst test needs: a broker, an SMTP server and ldisd sending email to
// OnePartnerFile's recipients, with `dispatch` settings of the test's own.
struct BurstRig {
    explicit BurstRig(std::vector<std::string> dispatch) {
        smtp.Start();
        dispatch.insert(dispatch.end(),
                        {"paths.partners=" + OnePartnerFile(dir), "email.smtp_url=" + smtp.url(),
                         "dispatch.channels=email"});
        daemon = std::make_unique<Ldisd>(broker, dir, std::move(dispatch));
        daemon->Start();
    }
    Mosquitto broker;
    TempDir dir;
    SmtpSink smtp;
    std::unique_ptr<Ldisd> daemon;
};

std::vector<std::string> NewIds(int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(NewUuid());
    return ids;
}

TEST(FaultTest, RepeatedKillDuringABurstLosesNoReportAndNoDelivery) {
    const int reports = EnvInt("LDIS_FAULT_REPORTS", 1000);
    const int kills = EnvInt("LDIS_FAULT_KILLS", 3);
    BurstRig rig({"dispatch.retry_base_ms=200", "dispatch.retry_max_ms=1000"});
    auto& [broker, dir, smtp, daemon_ptr] = rig;
    Ldisd& daemon = *daemon_ptr;

    const auto ids = NewIds(reports);
    std::atomic<int> published{0};
    std::thread publisher(
        [&, &b = broker] { PublishBurst(b, "fault-publisher", ids, 0, reports, 2, published); });
    for (int k = 1; k <= kills; ++k) {
        Eventually([&] { return published.load() >= k * reports / (kills + 1); },
                   std::chrono::seconds(120));
        daemon.Stop(SIGKILL);
        daemon.Start();
    }
    publisher.join();
    const std::size_t repeats = ExpectNothingLost(daemon, smtp, ids);
    std::cout << reports << " reports with " << kills << " kill -9: "
              << ldis::engine::ReportStore(At(daemon.db_path())).Deliveries("").size()
              << " deliveries, all delivered; " << repeats
              << " email(s) sent twice, each with its Message-ID\n";
}

// The broker restarts (SIGTERM, persistence on, as a production broker runs) twice while
// a burst that raises alerts is being published and taken in.
TEST(FaultTest, BrokerRestartsDuringABurstLoseNothing) {
    const int reports = EnvInt("LDIS_FAULT_REPORTS", 1000);
    BurstRig rig({"dispatch.retry_base_ms=200", "dispatch.retry_max_ms=1000"});
    auto& [broker, dir, smtp, daemon_ptr] = rig;
    Ldisd& daemon = *daemon_ptr;
    const auto ids = NewIds(reports);
    std::atomic<int> published{0};
    std::thread publisher(
        [&, &b = broker] { PublishBurst(b, "restart-publisher", ids, 0, reports, 1, published); });
    for (int k = 1; k <= 2; ++k) {
        Eventually([&] { return published.load() >= k * reports / 3; }, std::chrono::seconds(120));
        broker.Restart();
    }
    publisher.join();
    const std::size_t repeats = ExpectNothingLost(daemon, smtp, ids);
    EXPECT_TRUE(daemon.running());
    std::cout << reports << " reports across 2 broker restarts: all stored once, every delivery "
              << "delivered; " << repeats << " email(s) sent twice\n";
}

// The mail relay is away for LDIS_FAULT_SMTP_OUTAGE_S seconds (60 in the full run) while red
// alerts are raised: nothing is lost or dead-lettered, and all of it goes out once it is back.
TEST(FaultTest, SmtpOutageThenRecoveryDeliversEverything) {
    const int outage_s = EnvInt("LDIS_FAULT_SMTP_OUTAGE_S", 15);
    BurstRig rig({"dispatch.retry_base_ms=500", "dispatch.retry_max_ms=4000",
                  "dispatch.max_attempts=100", "dispatch.timeout_ms=2000"});
    auto& [broker, dir, smtp, daemon_ptr] = rig;
    Ldisd& daemon = *daemon_ptr;
    smtp.Stop();
    const auto outage_began = std::chrono::steady_clock::now();
    const auto ids = NewIds(100);
    std::atomic<int> published{0};
    PublishBurst(broker, "outage-publisher", ids, 0, 100, 0, published);  // 10 red alerts

    std::this_thread::sleep_until(outage_began + std::chrono::seconds(outage_s));
    const auto rows = ldis::engine::ReportStore(At(daemon.db_path())).Deliveries("");
    EXPECT_EQ(rows.size(), 60u);  // 10 alerts to 5 recipients, 10 pages to the coordinators
    for (const auto& d : rows) {
        EXPECT_NE(d.status, "delivered") << d.id;
        EXPECT_NE(d.status, "failed") << d.id;
    }
    EXPECT_TRUE(smtp.Messages().empty());
    EXPECT_TRUE(daemon.running());

    smtp.Start();  // the same port
    const auto back = std::chrono::steady_clock::now();
    const std::size_t repeats = ExpectNothingLost(daemon, smtp, ids);
    EXPECT_EQ(repeats, 0u);
    const auto after = ldis::engine::ReportStore(At(daemon.db_path())).Deliveries("");
    int most_attempts = 0;
    for (const auto& d : after) most_attempts = std::max(most_attempts, d.attempts);
    std::cout << outage_s << " s SMTP outage: " << after.size() << " deliveries, all delivered "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - back).count()
              << " s after the relay came back, up to " << most_attempts << " attempts each\n";
}

// A tiny filesystem for the database, filled up: ldisd must not acknowledge what it cannot
// store, and must store it once space returns.
TEST(FaultTest, FullDiskIsNeverAcknowledgedAndRecovers) {
    TempDir dir;
    const std::string mountpoint = dir / "small";
    std::filesystem::create_directories(mountpoint);
    if (mount("tmpfs", mountpoint.c_str(), "tmpfs", 0, "size=3m") != 0)
        GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
    struct Unmount {
        std::string path;
        ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
    } unmount{mountpoint};

    Mosquitto broker;
    TempDir logs;
    Ldisd daemon(broker, logs, {"store.path=" + mountpoint + "/ldis.db"});
    daemon.Start();
    MqttPeer peer(broker.uri(), "disk-full-submitter");
    peer.Subscribe("test/receipts");
    const auto submit = [&](const std::string& id) {
        EXPECT_TRUE(peer.Publish("ldis/v1/reports/hospital", ldis::test::ValidReportText(id),
                                 "test/receipts", id));
    };
    const std::string before = NewUuid();
    submit(before);
    ASSERT_TRUE(peer.WaitFor([&](const Seen& s) { return s.correlation_data == before; },
                             std::chrono::seconds(10)));

    // Fill the filesystem to the last byte.
    const std::string filler = mountpoint + "/filler";
    {
        std::ofstream out(filler, std::ios::binary);
        const std::string chunk(4096, 'x');
        while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) {
        }
    }
    const std::string during = NewUuid();
    submit(during);
    // No receipt while it cannot be stored: the report is not acknowledged.
    EXPECT_FALSE(peer.WaitFor([&](const Seen& s) { return s.correlation_data == during; },
                              std::chrono::seconds(3)));
    EXPECT_TRUE(daemon.running());
    EXPECT_NE(daemon.log().find("disk is full"), std::string::npos) << daemon.log();

    std::filesystem::remove(filler);  // space returns
    const auto receipt = peer.WaitFor([&](const Seen& s) { return s.correlation_data == during; },
                                      std::chrono::seconds(20));
    ASSERT_TRUE(receipt) << daemon.log();
    EXPECT_EQ(ldis::test::ParseObject(receipt->payload).at("status"), "accepted");
    daemon.Stop(SIGTERM);
    const auto ids = ldis::engine::ReportStore(At(mountpoint + "/ldis.db")).ListIds();
    EXPECT_EQ(ids.size(), 2u);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), during), 1);
}

// Another process holds the database: a clear error and a non-zero exit, nothing lost.
TEST(FaultTest, LockedDatabaseAtStartIsAClearErrorAndExit) {
    Mosquitto broker;
    TempDir dir;
    const std::string db = dir / "ldis.db";
    // A rollback-journal database held in an exclusive transaction by another process.
    ldis::test::Process holder({"/usr/bin/python3", "-c",
                                "import os, sqlite3, sys, time\n"
                                "os.umask(0o077)\n"  // ldisd refuses a readable database first
                                "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                                "c.execute('CREATE TABLE held(x)')\n"
                                "c.execute('BEGIN EXCLUSIVE')\n"
                                "c.execute('INSERT INTO held VALUES (1)')\n"
                                "print('holding', flush=True)\n"
                                "time.sleep(60)\n",
                                db},
                               dir / "holder.log");
    ASSERT_TRUE(Eventually(
        [&] {
            return ldis::test::ReadFile(dir / "holder.log").find("holding") != std::string::npos;
        },
        std::chrono::seconds(10)));
    ldis::test::Process ldisd({LDISD_PATH, "--config", ldis::test::SourcePath("config/ldisd.toml"),
                               "--set", "mqtt.uri=" + broker.uri(), "--set", "store.path=" + db,
                               "--set", "http.listen=127.0.0.1:0"},
                              dir / "ldisd.log");
    EXPECT_EQ(ldisd.Wait(std::chrono::seconds(30)), 3);
    const std::string log = ldis::test::ReadFile(dir / "ldisd.log");
    EXPECT_NE(log.find("is locked by another process"), std::string::npos) << log;
    EXPECT_NE(log.find(db), std::string::npos) << log;
    holder.Stop(SIGKILL);
    // The holder's table is still there: ldisd changed nothing.
    ldis::test::Process check({"/usr/bin/sqlite3", db, "SELECT name FROM sqlite_schema"},
                              dir / "check.log");
    EXPECT_EQ(check.Wait(std::chrono::seconds(10)), 0);
    EXPECT_NE(ldis::test::ReadFile(dir / "check.log").find("held"), std::string::npos);
}

}  // namespace
