// ldisd end to end: the real daemon, a real mosquitto, SQLite on disk.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>

#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace json = boost::json;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::NewUuid;
using ldis::test::ParseObject;
using ldis::test::Seen;
using ldis::test::TempDir;

namespace {

constexpr auto kIntakeWait = std::chrono::seconds(10);

class IntakeE2E : public ::testing::Test {
protected:
    void SetUp() override {
        daemon_ = std::make_unique<Ldisd>(broker_, dir_);
        daemon_->Start();
        peer_ = std::make_unique<MqttPeer>(broker_.uri(), "submitter-" + NewUuid().substr(0, 8));
        peer_->Subscribe("ldis/v1/receipts/#");
        peer_->Subscribe("ldis/v1/rejected");
        peer_->Subscribe("test/replies/#");
    }
    void TearDown() override {
        peer_.reset();
        if (HasFailure()) std::cerr << "ldisd log:\n" << daemon_->log();
        daemon_->Stop(SIGTERM);
    }

    // Publishes with a response topic and correlation data; returns the receipt.
    json::object Submit(const std::string& payload, const std::string& source = "hospital") {
        const std::string correlation = NewUuid();
        EXPECT_TRUE(peer_->Publish("ldis/v1/reports/" + source, payload, "test/replies/" + source,
                                   correlation));
        const auto seen = peer_->WaitFor(
            [&](const Seen& s) { return s.correlation_data == correlation; }, kIntakeWait);
        if (!seen) {
            ADD_FAILURE() << "no receipt for " << payload.substr(0, 200);
            return {};
        }
        EXPECT_EQ(seen->topic, "test/replies/" + source);
        return ParseObject(seen->payload);
    }

    json::object NextRejection() {
        const auto seen = peer_->WaitForTopic("ldis/v1/rejected", kIntakeWait);
        if (!seen) {
            ADD_FAILURE() << "nothing on ldis/v1/rejected";
            return {};
        }
        return ParseObject(seen->payload);
    }

    std::int64_t StoredCount() {
        ldis::engine::StoreOptions o;
        o.path = daemon_->db_path();
        return ldis::engine::ReportStore(o).CountReports();
    }

    Mosquitto broker_;
    TempDir dir_;
    std::unique_ptr<Ldisd> daemon_;
    std::unique_ptr<MqttPeer> peer_;
};

std::vector<std::string> ErrorPaths(const json::object& receipt) {
    std::vector<std::string> paths;
    for (const auto& e : receipt.at("errors").as_array())
        paths.emplace_back(e.as_object().at("path").as_string());
    return paths;
}

TEST_F(IntakeE2E, AcceptedReceiptOnResponseTopicWithCorrelationData) {
    const auto id = NewUuid();
    const auto receipt = Submit(ldis::test::ValidReportText(id));
    EXPECT_EQ(receipt.at("status"), "accepted");
    EXPECT_EQ(receipt.at("report_id"), json::value(id));
    EXPECT_EQ(receipt.at("reference"), "KM-R000001");
    EXPECT_TRUE(receipt.at("errors").as_array().empty());
    EXPECT_EQ(StoredCount(), 1);
}

TEST_F(IntakeE2E, ReceiptsCarryTheGradeAndTheAlertReference) {
    // Two people in critical care after heroin in Medway: red, issued at once.
    auto red = ldis::test::ValidReport(NewUuid());
    red["harms"] = json::object{{"cases", 2}, {"critical_care", 2}};
    const auto first = Submit(json::serialize(red));
    EXPECT_EQ(first.at("status"), "accepted");
    EXPECT_EQ(first.at("level"), "red");
    ASSERT_TRUE(first.at("alert_id").is_string());
    const std::string alert(first.at("alert_id").as_string());
    EXPECT_EQ(alert.rfind("KM-", 0), 0u);
    // A second report of the same family in Medway joins the same signal and alert.
    auto more = ldis::test::ValidReport(NewUuid());
    more["substances"] = json::array{{{"name", "brown"}}};
    const auto second = Submit(json::serialize(more));
    EXPECT_EQ(second.at("level"), "red");
    EXPECT_EQ(second.at("alert_id"), json::value(alert));
    // A seizure with nobody harmed is logged: level none, no alert.
    auto seizure = ldis::test::ValidReport(NewUuid());
    seizure["source"] = json::object{{"type", "police"}, {"organisation", "Kent Police"}};
    seizure["area"] = json::object{{"authority", "Kent"}, {"district", "Dover"}};
    seizure["harms"] = json::object{{"cases", 0}};
    seizure["substances"] = json::array{{{"name", "cocaine"}}};
    const auto third = Submit(json::serialize(seizure), "police");
    EXPECT_EQ(third.at("level"), "none");
    EXPECT_TRUE(third.at("alert_id").is_null());
    ldis::engine::StoreOptions o;
    o.path = daemon_->db_path();
    const auto stored = ldis::engine::ReportStore(o).FindAlert(alert);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->version, 2);
    EXPECT_EQ(stored->status, ldis::engine::AlertStatus::kUpdated);
}

TEST_F(IntakeE2E, ReceiptGoesToTheSourceTopicWithoutAResponseTopic) {
    const auto id = NewUuid();
    auto report = ldis::test::ValidReport(id);
    report["source"].as_object()["type"] = "custody";
    report["area"].as_object()["establishment"] = "Medway Custody Suite";
    ASSERT_TRUE(peer_->Publish("ldis/v1/reports/custody", json::serialize(report)));
    const auto seen = peer_->WaitForTopic("ldis/v1/receipts/custody", kIntakeWait);
    ASSERT_TRUE(seen);
    EXPECT_EQ(ParseObject(seen->payload).at("report_id"), json::value(id));
    EXPECT_EQ(ParseObject(seen->payload).at("status"), "accepted");
}

TEST_F(IntakeE2E, SameIdAgainIsADuplicateAndChangesNothing) {
    const auto id = NewUuid();
    const auto first = Submit(ldis::test::ValidReportText(id));
    auto changed = ldis::test::ValidReport(id);
    changed["harms"].as_object()["deaths"] = 1;
    const auto again = Submit(json::serialize(changed));
    EXPECT_EQ(again.at("status"), "duplicate");
    EXPECT_EQ(again.at("reference"), first.at("reference"));
    EXPECT_EQ(StoredCount(), 1);
    ldis::engine::StoreOptions o;
    o.path = daemon_->db_path();
    const auto row = ldis::engine::ReportStore(o).Find(id);
    ASSERT_TRUE(row);
    EXPECT_EQ(json::parse(row->document).as_object().at("harms").as_object().count("deaths"), 0u);
}

TEST_F(IntakeE2E, MalformedJsonIsRejectedAndCopied) {
    const auto receipt = Submit("{\"schema\": \"ldis.report/1\", ");
    EXPECT_EQ(receipt.at("status"), "rejected");
    EXPECT_EQ(ErrorPaths(receipt), std::vector<std::string>{""});
    const auto copy = NextRejection();
    EXPECT_EQ(copy.at("topic"), "ldis/v1/reports/hospital");
    EXPECT_EQ(copy.at("source"), "hospital");
    EXPECT_FALSE(copy.contains("payload"));  // the reporter's text is never republished
    EXPECT_FALSE(copy.at("error_paths").as_array().empty());
}

TEST_F(IntakeE2E, SchemaViolationsAreRejectedWithEveryPath) {
    const auto id = NewUuid();
    auto report = ldis::test::ValidReport(id);
    report.erase("evidence");
    report["harms"].as_object()["cases"] = "several";
    report["nhs_number"] = "943 476 5919";
    const auto receipt = Submit(json::serialize(report));
    EXPECT_EQ(receipt.at("status"), "rejected");
    EXPECT_EQ(receipt.at("report_id"), json::value(id));
    auto paths = ErrorPaths(receipt);
    std::sort(paths.begin(), paths.end());
    EXPECT_EQ(paths, (std::vector<std::string>{"/evidence", "/harms/cases", "/nhs_number"}));
    const auto copy = NextRejection();
    EXPECT_EQ(copy.at("error_paths").as_array().size(), 3u);
    EXPECT_EQ(StoredCount(), 0);
}

TEST_F(IntakeE2E, OversizedPayloadIsRejected) {
    auto report = ldis::test::ValidReport(NewUuid());
    report["description"] = std::string(70 * 1024, 'x');
    const auto receipt = Submit(json::serialize(report));
    EXPECT_EQ(receipt.at("status"), "rejected");
    ASSERT_EQ(receipt.at("errors").as_array().size(), 1u);
    EXPECT_NE(std::string(receipt.at("errors").as_array()[0].as_object().at("message").as_string())
                  .find("64 KiB"),
              std::string::npos);
    const auto copy = NextRejection();
    EXPECT_FALSE(copy.contains("payload"));
    EXPECT_EQ(copy.at("error_paths").as_array().size(), 1u);
}

TEST_F(IntakeE2E, InvalidUtf8AndUnknownSourceAreRejected) {
    auto receipt = Submit(std::string("{\"id\": \"\xFF\xFE\"}"));
    EXPECT_EQ(receipt.at("status"), "rejected");
    const auto copy = NextRejection();
    EXPECT_FALSE(copy.contains("payload") || copy.contains("payload_base64"));
    receipt = Submit(ldis::test::ValidReportText(NewUuid()), "astrologer");
    EXPECT_EQ(receipt.at("status"), "rejected");
    EXPECT_EQ(ErrorPaths(receipt), std::vector<std::string>{""});
}

TEST_F(IntakeE2E, KeepsServingAfterBadInput) {
    for (const std::string& bad : std::vector<std::string>{
             "", "null", "[]", "{", "\"just a string\"", std::string(100 * 1024, '{')}) {
        EXPECT_EQ(Submit(bad).at("status"), "rejected");
    }
    EXPECT_TRUE(daemon_->running());
    EXPECT_EQ(Submit(ldis::test::ValidReportText(NewUuid())).at("status"), "accepted");
}

TEST_F(IntakeE2E, SigtermStopsCleanlyAndPublishesOffline) {
    MqttPeer watcher(broker_.uri(), "watcher-offline");
    watcher.Subscribe("ldis/v1/status/ldisd");
    ASSERT_TRUE(watcher.WaitFor([](const Seen& s) { return s.payload == "online"; }, kIntakeWait));
    EXPECT_EQ(daemon_->Stop(SIGTERM), 0);
    EXPECT_TRUE(watcher.WaitFor([](const Seen& s) { return s.payload == "offline"; }, kIntakeWait));
    EXPECT_NE(daemon_->log().find("ldisd stopped"), std::string::npos);
}

TEST_F(IntakeE2E, LastWillSaysOfflineAfterSigkill) {
    MqttPeer watcher(broker_.uri(), "watcher-will");
    watcher.Subscribe("ldis/v1/status/ldisd");
    ASSERT_TRUE(watcher.WaitFor([](const Seen& s) { return s.payload == "online"; }, kIntakeWait));
    daemon_->Stop(SIGKILL);
    EXPECT_TRUE(watcher.WaitFor([](const Seen& s) { return s.payload == "offline"; }, kIntakeWait));
}

TEST_F(IntakeE2E, LogsOneLinePerReportWithIdAndReference) {
    const auto id = NewUuid();
    const auto receipt = Submit(ldis::test::ValidReportText(id));
    const std::string expected = "report accepted id=" + id +
                                 " reference=" + std::string(receipt.at("reference").as_string());
    EXPECT_TRUE(
        ldis::test::Eventually([&] { return daemon_->log().find(expected) != std::string::npos; },
                               std::chrono::seconds(5)));
}

// Daemons started with their own configuration files.
class DaemonConfigTest : public ::testing::Test {
protected:
    std::string WriteConfig(const std::string& extra) {
        std::filesystem::copy_file(ldis::test::SourcePath("config/areas.toml"),
                                   dir_ / "areas.toml");
        const std::string path = dir_ / "ldisd.toml";
        std::ofstream(path) << "[paths]\nareas = \"areas.toml\"\nschema = \""
                            << ldis::test::SourcePath("config/schema/report.schema.json") << "\"\n"
                            << "rules = \"" << ldis::test::SourcePath("config/rules.toml") << "\"\n"
                            << "substances = \"" << ldis::test::SourcePath("config/substances.toml")
                            << "\"\ntemplates = \"" << ldis::test::SourcePath("templates") << "\"\n"
                            << "partners = \"" << ldis::test::SourcePath("config/partners.toml")
                            << "\"\n"
                            << extra;
        return path;
    }
    Mosquitto broker_;
    TempDir dir_;
};

TEST_F(DaemonConfigTest, CheckConfigNamesFileLineAndProblem) {
    const std::string path =
        WriteConfig("[mqtt]\nclient_id = \"ldisd\"\nkeepalive = 30\n");  // lines 6-8
    ldis::test::Process check({LDISD_PATH, "--config", path, "--check-config"}, dir_ / "check.log");
    EXPECT_EQ(check.Wait(std::chrono::seconds(10)), 1);
    EXPECT_NE(ldis::test::ReadFile(dir_ / "check.log")
                  .find(path + ":10: unknown key mqtt.keepalive (did you mean mqtt.keepalive_s?)"),
              std::string::npos)
        << ldis::test::ReadFile(dir_ / "check.log");
}

TEST_F(DaemonConfigTest, CheckConfigPassesTheShippedConfiguration) {
    ldis::test::Process check({LDISD_PATH, "--config", ldis::test::SourcePath("config/ldisd.toml"),
                               "--check-config", "--set", "store.path=" + (dir_ / "x.db")},
                              dir_ / "check.log");
    EXPECT_EQ(check.Wait(std::chrono::seconds(10)), 0) << ldis::test::ReadFile(dir_ / "check.log");
}

TEST_F(DaemonConfigTest, CorruptDatabaseStopsStartWithAClearError) {
    std::ofstream(dir_ / "ldis.db") << std::string(4096, 'z');
    chmod((dir_ / "ldis.db").c_str(), 0600);  // not readable by others: that is refused first
    ldis::test::Process daemon(
        {LDISD_PATH, "--config", ldis::test::SourcePath("config/ldisd.toml"), "--set",
         "store.path=" + (dir_ / "ldis.db"), "--set", "mqtt.uri=" + broker_.uri()},
        dir_ / "ldisd.log");
    EXPECT_EQ(daemon.Wait(std::chrono::seconds(10)), 3);
    EXPECT_NE(
        ldis::test::ReadFile(dir_ / "ldisd.log").find("is not an LDIS database or is corrupt"),
        std::string::npos);
}

TEST_F(DaemonConfigTest, SighupReloadsAreas) {
    const std::string path = WriteConfig("");
    Ldisd daemon(broker_, dir_, {}, path);
    daemon.Start();
    MqttPeer peer(broker_.uri(), "submitter-reload");
    peer.Subscribe("ldis/v1/receipts/#");
    const auto submit_with_ward = [&](const std::string& ward) {
        auto report = ldis::test::ValidReport(NewUuid());
        report["area"].as_object()["ward"] = ward;
        EXPECT_TRUE(peer.Publish("ldis/v1/reports/hospital", json::serialize(report)));
        const auto seen = peer.WaitForTopic("ldis/v1/receipts/hospital", kIntakeWait);
        return seen ? std::string(ParseObject(seen->payload).at("status").as_string())
                    : std::string("none");
    };
    EXPECT_EQ(submit_with_ward("Chatham Docks"), "rejected");
    // A new ward is added to the areas file, and ldisd is told to reload.
    std::string areas = ldis::test::ReadFile(dir_ / "areas.toml");
    areas.replace(areas.find("\"All Saints\","), 13, "\"All Saints\", \"Chatham Docks\",");
    std::ofstream(dir_ / "areas.toml") << areas;
    kill(daemon.pid(), SIGHUP);
    ASSERT_TRUE(ldis::test::Eventually(
        [&] { return daemon.log().find("configuration reloaded") != std::string::npos; },
        kIntakeWait));
    EXPECT_EQ(submit_with_ward("Chatham Docks"), "accepted");
    // A broken file is refused, and the daemon keeps what it had.
    std::ofstream(dir_ / "areas.toml") << "[authorities\n";
    kill(daemon.pid(), SIGHUP);
    ASSERT_TRUE(ldis::test::Eventually(
        [&] { return daemon.log().find("reload refused") != std::string::npos; }, kIntakeWait));
    EXPECT_EQ(submit_with_ward("Chatham Docks"), "accepted");
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

// SIGHUP loads every file into one new snapshot and swaps it in whole: a reload with one
// bad file changes nothing, not even what the good files said; a good one changes the
// partners that the API shows, the store routes to and the dispatcher sends to, together.
TEST_F(DaemonConfigTest, SighupSwapsEverythingOrNothing) {
    const std::string partners = dir_ / "partners.toml", rules = dir_ / "rules.toml";
    std::filesystem::copy_file(ldis::test::SourcePath("config/partners.toml"), partners);
    std::filesystem::copy_file(ldis::test::SourcePath("config/rules.toml"), rules);
    Ldisd daemon(broker_, dir_, {"paths.partners=" + partners, "paths.rules=" + rules});
    daemon.Start();
    const std::string token = daemon.CreateToken("coordinator", "reload test");
    const auto partner_names = [&] {
        return ldis::test::HttpRequest("GET", daemon.http_url() + "/api/v1/partners", {},
                                       {"Authorization: Bearer " + token})
            .body;
    };
    ASSERT_NE(partner_names().find("Medway Council Public Health"), std::string::npos);
    const auto reloads = [&](const std::string& line) {
        const std::string log = daemon.log();
        std::size_t n = 0;
        for (auto at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++n;
        return n;
    };

    std::string text = ldis::test::ReadFile(partners);
    text.replace(text.find("Medway Council Public Health"), 28, "Medway Public Health Renamed");
    std::ofstream(partners) << text;
    std::ofstream(rules) << "[[rule]\n";  // broken
    kill(daemon.pid(), SIGHUP);
    ASSERT_TRUE(
        ldis::test::Eventually([&] { return reloads("reload refused") == 1; }, kIntakeWait));
    EXPECT_NE(partner_names().find("Medway Council Public Health"), std::string::npos)
        << "a refused reload swapped the partners in";

    std::filesystem::copy_file(ldis::test::SourcePath("config/rules.toml"), rules,
                               std::filesystem::copy_options::overwrite_existing);
    kill(daemon.pid(), SIGHUP);
    ASSERT_TRUE(ldis::test::Eventually([&] { return reloads("configuration reloaded") == 1; },
                                       kIntakeWait));
    EXPECT_NE(partner_names().find("Medway Public Health Renamed"), std::string::npos);
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

// The alert page previews each message with the templates in force: after a reload that
// changes the Teams card, the page shows the new card (it kept a copy of its own, loaded at
// start, before).
TEST_F(DaemonConfigTest, TheAlertPagePreviewsWithTheReloadedTemplates) {
    const std::filesystem::path templates = dir_ / "templates";
    std::filesystem::copy(ldis::test::SourcePath("templates"), templates,
                          std::filesystem::copy_options::recursive);
    Ldisd daemon(broker_, dir_, {"paths.templates=" + templates.string()});
    daemon.Start();
    const auto receipt = ldis::test::HttpRequest(
        "POST", daemon.http_url() + "/api/v1/reports", ldis::test::ValidReportText(NewUuid()),
        {"Authorization: Bearer " + daemon.CreateToken("submitter", "preview test")});
    ASSERT_EQ(receipt.status, 202) << receipt.body;
    const std::string alert(ParseObject(receipt.body).at("alert_id").as_string());
    const std::string cookie =
        ldis::test::SignIn(daemon.http_url(), daemon.CreateToken("coordinator", "preview test"));
    ASSERT_FALSE(cookie.empty());
    const auto page = [&] {
        return ldis::test::HttpRequest("GET", daemon.http_url() + "/alerts/" + alert, {}, {cookie})
            .body;
    };
    const std::string marker = "reloadmarker42";
    ASSERT_NE(page().find("preview"), std::string::npos);
    ASSERT_EQ(page().find(marker), std::string::npos);

    const std::string card = (templates / "chat" / "teams.json.mustache").string();
    std::string text = ldis::test::ReadFile(card);
    const std::string headline = R"({"type": "TextBlock", "text": {{{headline}}},)";
    ASSERT_NE(text.find(headline), std::string::npos);
    text.replace(text.find(headline), headline.size(),
                 R"({"type": "TextBlock", "id": ")" + marker + R"(", "text": {{{headline}}},)");
    std::ofstream(card) << text;
    kill(daemon.pid(), SIGHUP);
    ASSERT_TRUE(ldis::test::Eventually(
        [&] { return daemon.log().find("configuration reloaded") != std::string::npos; },
        kIntakeWait));
    EXPECT_NE(page().find(marker), std::string::npos)
        << "the alert page still previews with the templates loaded at start";
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

TEST_F(DaemonConfigTest, SecretsNeverReachTheLog) {
    std::ofstream(dir_ / "mqtt.secret") << "s3cret-never-logged\n";
    const std::string path = WriteConfig(
        "[mqtt]\nusername = \"ldis\"\npassword_file = \"mqtt.secret\"\n"
        "[log]\nlevel = \"trace\"\n");
    Ldisd daemon(broker_, dir_, {}, path);
    daemon.Start();
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
    EXPECT_EQ(daemon.log().find("s3cret-never-logged"), std::string::npos);
}

}  // namespace

namespace {

TEST_F(IntakeE2E, LdisctlAuditVerifyFindsTampering) {
    auto red = ldis::test::ValidReport(NewUuid());
    red["harms"] = json::object{{"cases", 2}, {"critical_care", 2}};
    ASSERT_EQ(Submit(json::serialize(red)).at("status"), "accepted");
    daemon_->Stop(SIGTERM);
    const std::string db = daemon_->db_path();
    ldis::test::Process good({LDISCTL_PATH, "audit", "verify", "--db", db},
                             dir_ / "verify-good.log");
    EXPECT_EQ(good.Wait(std::chrono::seconds(10)), 0)
        << ldis::test::ReadFile(dir_ / "verify-good.log");
    EXPECT_NE(ldis::test::ReadFile(dir_ / "verify-good.log").find("audit log OK: 3 entries"),
              std::string::npos);
    ASSERT_EQ(
        std::system(
            ("sqlite3 '" + db + "' \"UPDATE audit SET actor = 'mallory' WHERE seq = 2\"").c_str()),
        0);
    ldis::test::Process bad({LDISCTL_PATH, "audit", "verify", "--db", db}, dir_ / "verify-bad.log");
    EXPECT_EQ(bad.Wait(std::chrono::seconds(10)), 5);
    EXPECT_NE(ldis::test::ReadFile(dir_ / "verify-bad.log")
                  .find("audit entry 2 (signal.graded signal-1)"),
              std::string::npos)
        << ldis::test::ReadFile(dir_ / "verify-bad.log");
}

}  // namespace

namespace {

// ldisd's own liveness for an outside monitor (issue 16): a retained heartbeat every
// mqtt.heartbeat_s with the time it was sent, beside the retained online/offline status.
TEST(DaemonLivenessTest, AHeartbeatIsRetainedAndRenewedEveryInterval) {
    Mosquitto broker;
    ldis::test::TempDir dir;
    Ldisd daemon(broker, dir, {"mqtt.heartbeat_s=1", "mqtt.client_id=ldisd-kent-1"});
    daemon.Start();
    MqttPeer monitor(broker.uri(), "monitor-" + NewUuid().substr(0, 8));
    monitor.Subscribe("ldis/v1/status/ldisd/heartbeat/#");
    std::vector<std::string> at;
    for (int i = 0; i < 3; ++i) {
        const auto beat =
            monitor.WaitForTopic("ldis/v1/status/ldisd/heartbeat/ldisd-kent-1", kIntakeWait);
        ASSERT_TRUE(beat) << daemon.log();
        const auto doc = boost::json::parse(beat->payload).as_object();
        EXPECT_EQ(doc.at("client_id").as_string(), "ldisd-kent-1");
        EXPECT_EQ(doc.at("interval_s").as_int64(), 1);
        at.emplace_back(doc.at("at").as_string());
    }
    // Renewed: each later than the one before (RFC 3339 in UTC sorts as text).
    EXPECT_LT(at[0], at[2]) << at[0] << " " << at[2];
    // Retained: a monitor that starts later has the last one at once.
    MqttPeer late(broker.uri(), "late-" + NewUuid().substr(0, 8));
    late.Subscribe("ldis/v1/status/ldisd/heartbeat/#");
    const auto retained =
        late.WaitForTopic("ldis/v1/status/ldisd/heartbeat/ldisd-kent-1", kIntakeWait);
    ASSERT_TRUE(retained);
    EXPECT_TRUE(retained->retained);
    // Stopped: the heartbeats stop (the status topic's last will says "offline").
    daemon.Stop(SIGTERM);
    monitor.Drain();
    EXPECT_FALSE(monitor.WaitForTopic("ldis/v1/status/ldisd/heartbeat/ldisd-kent-1",
                                      std::chrono::milliseconds(2500)));
}

}  // namespace
