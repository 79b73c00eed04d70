// Kent and Medway federated (issue 16 §1), end to end: two ldisd, each with its own broker,
// database and partners, and the shipped bridge between the brokers (Kent's the production
// configuration, TLS and access list), all started here. A red alert issued in Medway reaches
// Kent's partners within a second of Medway's own, marked as Medway's; its update and
// cancellation follow; a replayed and a forged message are refused; an amber one waits for
// Kent's coordinators, who adopt it.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <condition_variable>
#include <fstream>
#include <mutex>

#include "ldis/broker/client.hpp"
#include "ldis/engine/federation.hpp"
#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace {

namespace json = boost::json;
using ldis::broker::Client;
using ldis::broker::ClientOptions;
using ldis::broker::Message;
using ldis::test::Eventually;
using ldis::test::HttpRequest;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::NewUuid;
using ldis::test::ReadFile;
using ldis::test::ReplaceOnce;
using ldis::test::SmtpSink;
using ldis::test::SourcePath;
using ldis::test::TempDir;

constexpr auto kFederationWait = std::chrono::seconds(20);

// Every message on a topic at a broker, with its user properties (a tap on Medway's offers).
class Tap {
public:
    Tap(const std::string& uri, const std::string& topic) {
        ClientOptions o;
        o.uri = uri;
        o.client_id = "tap-" + NewUuid().substr(0, 8);
        o.subscriptions = {topic};
        client_ = std::make_unique<Client>(o, [this](const Message& m) {
            std::lock_guard lock(mutex_);
            seen_.push_back(m);
        });
        client_->Start();
        client_->WaitConnected(kFederationWait);
    }
    ~Tap() { client_->Stop(std::chrono::seconds(2)); }
    std::vector<Message> seen() {
        std::lock_guard lock(mutex_);
        return seen_;
    }
    void Publish(Message m) { client_->Publish(std::move(m)); }

private:
    std::mutex mutex_;
    std::vector<Message> seen_;
    std::unique_ptr<Client> client_;
};

class FederationTest : public ::testing::Test {
protected:
    void SetUp() override {
        kent_broker_ = ldis::test::StartProductionBroker(
            files_, {{"ldisd", "ldisd-pass"}, {"federation-medway", "bridge-pass"}}, true);
        cert_ = files_ / "cert.pem";
        std::string bridge = ReadFile(SourcePath("packaging/mosquitto/federation-bridge.conf"));
        ReplaceOnce(bridge, "kent-ldis.example.org:8883",
                    "127.0.0.1:" + std::to_string(kent_broker_->port()));
        ReplaceOnce(bridge, "/etc/mosquitto/ldis/federation-ca.pem", cert_);
        ReplaceOnce(bridge, "remote_password change-me", "remote_password bridge-pass");
        medway_broker_ = std::make_unique<Mosquitto>(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            "persistence_location {dir}/\n" +
            bridge);
        for (const std::string name : {"medway", "kent", "thanet"}) {
            const std::string key = files_ / (name + ".key");
            ASSERT_EQ(
                std::system(("openssl genpkey -algorithm ed25519 -out " + key + " >/dev/null 2>&1")
                                .c_str()),
                0);
            chmod(key.c_str(), 0600);
            std::ofstream(files_ / (name + ".pub"))
                << ldis::engine::SigningKey::LoadFile(key).value().PublicKeyPem();
        }
        smtp_.Start();
        const std::string coordinators =
            "[coordinators]\npartner = \"coord\"\n\n"
            "[[partner]]\nid = \"coord\"\nname = \"Coordinators\"\n"
            "  [[partner.contact]]\n  name = \"team\"\n"
            "  channel = \"email\"\n  address = \"";
        std::ofstream(medway_dir_ / "partners.toml")
            << coordinators << "medway-coord@example.org\"\n\n"
            << "[[partner]]\nid = \"medway-ed\"\nname = \"Medway ED\"\n  [[partner.contact]]\n"
               "  name = \"mail\"\n  channel = \"email\"\n  address = \"ed@medway.example\"\n"
               "  [[partner.subscription]]\n  levels = [\"red\", \"amber\"]\n";
        std::ofstream(kent_dir_ / "partners.toml")
            << coordinators << "kent-coord@example.org\"\n\n"
            << "[[partner]]\nid = \"kent-treat\"\nname = \"Kent treatment\"\n"
               "  [[partner.contact]]\n  name = \"mail\"\n  channel = \"email\"\n"
               "  address = \"treat@kent.example\"\n"
               "  [[partner.subscription]]\n  levels = [\"red\", \"amber\"]\n";
        medway_ = std::make_unique<Ldisd>(
            *medway_broker_, medway_dir_,
            std::vector<std::string>{"paths.partners=" + (medway_dir_ / "partners.toml"),
                                     "email.smtp_url=" + smtp_.url(),
                                     "mqtt.client_id=ldisd-medway"},
            ldis::test::ConfigWith(medway_dir_,
                                   "[federation]\ninstance = \"medway\"\nkey_file = \"" +
                                       (files_ / "medway.key") +
                                       "\"\noffer = [\"red\", \"amber\"]\n\n[[federation.peers]]\n"
                                       "instance = \"kent\"\npublic_key_file = \"" +
                                       (files_ / "kent.pub") + "\"\n"));
        medway_->Start();
        setenv("LDIS_MQTT_PASSWORD", "ldisd-pass", 1);
        kent_ = std::make_unique<Ldisd>(
            *kent_broker_, kent_dir_,
            std::vector<std::string>{
                "mqtt.uri=ssl://127.0.0.1:" + std::to_string(kent_broker_->port()),
                "mqtt.ca_file=" + cert_, "mqtt.username=ldisd",
                "paths.partners=" + (kent_dir_ / "partners.toml"), "email.smtp_url=" + smtp_.url()},
            ldis::test::ConfigWith(
                kent_dir_, "[federation]\ninstance = \"kent\"\nkey_file = \"" +
                               (files_ / "kent.key") +
                               "\"\noffer = [\"red\"]\n\n[federation.policy]\nred = \"forward\"\n"
                               "amber = \"review\"\ngreen = \"record\"\n\n[[federation.peers]]\n"
                               "instance = \"medway\"\nname = \"Medway LDIS\"\n"
                               "public_key_file = \"" +
                               (files_ / "medway.pub") + "\"\n"));
        kent_->SetProbeLogin("ldisd", "ldisd-pass", cert_);
        kent_->Start();
        unsetenv("LDIS_MQTT_PASSWORD");
        // The bridge is up once an unsigned probe published at Medway reaches Kent's ldisd
        // (which refuses it, unsigned). The bridge connects on its own schedule.
        MqttPeer probe(medway_broker_->uri(), "probe-" + NewUuid().substr(0, 8));
        ASSERT_TRUE(Eventually(
            [&] {
                probe.Publish("ldis/v1/federation/medway/alerts", "probe");
                return Eventually(
                    [&] { return kent_->log().find("unsigned") != std::string::npos; },
                    std::chrono::milliseconds(500));
            },
            kFederationWait))
            << kent_->log();
    }

    void TearDown() override {
        if (HasFailure()) {
            if (medway_) std::cerr << "Medway's ldisd:\n" << medway_->log();
            if (kent_) std::cerr << "Kent's ldisd:\n" << kent_->log();
        }
        if (kent_) kent_->Stop(SIGTERM);
        if (medway_) medway_->Stop(SIGTERM);
    }

    // A report at Medway; its receipt.
    json::object ReportAtMedway(bool red) {
        MqttPeer peer(medway_broker_->uri(), "medway-ed-" + NewUuid().substr(0, 8));
        peer.Subscribe("ldis/v1/receipts/hospital");
        auto r = ldis::test::ValidReport(NewUuid());
        if (red) r["harms"].as_object()["deaths"] = 1;  // else amber (the sample report)
        EXPECT_TRUE(peer.Publish("ldis/v1/reports/hospital", json::serialize(r)));
        const auto seen = peer.WaitForTopic("ldis/v1/receipts/hospital", kFederationWait);
        return seen ? ldis::test::ParseObject(seen->payload) : json::object{};
    }

    // The emails to `to` so far, by subject.
    std::vector<std::string> Subjects(const std::string& to) {
        std::vector<std::string> out;
        for (const auto& m : smtp_.Messages()) {
            if (ldis::test::StringOf(m.at("rcpt_tos").as_array().at(0)) == to)
                out.push_back(ldis::test::StringOf(m.at("headers").at("Subject")));
        }
        return out;
    }

    std::vector<ldis::engine::DeliveryRow> Deliveries(const Ldisd& d) {
        ldis::engine::StoreOptions o;
        o.path = d.db_path();
        return ldis::engine::ReportStore(o).Deliveries("");
    }

    std::vector<ldis::engine::FederatedRow> Received() {
        ldis::engine::StoreOptions o;
        o.path = kent_->db_path();
        return ldis::engine::ReportStore(o).Federated(100);
    }

    TempDir files_, medway_dir_, kent_dir_;
    std::string cert_;
    std::unique_ptr<Mosquitto> kent_broker_, medway_broker_;
    SmtpSink smtp_;
    std::unique_ptr<Ldisd> medway_, kent_;
};

TEST_F(FederationTest, AMedwayAlertReachesKentsPartnersAndOnlySignedFreshVersionsDo) {
    Tap offers(medway_broker_->uri(), "ldis/v1/federation/medway/alerts");
    const auto receipt = ReportAtMedway(true);
    ASSERT_EQ(ldis::test::StringOf(receipt.at("level")), "red");
    const std::string reference = ldis::test::StringOf(receipt.at("alert_id"));

    // Kent's partner has it, marked as Medway's, in Medway's reference.
    ASSERT_TRUE(
        Eventually([&] { return Subjects("treat@kent.example").size() == 1; }, kFederationWait));
    const std::string subject = Subjects("treat@kent.example")[0];
    EXPECT_NE(subject.find("] Issued by Medway LDIS, " + reference + " v1: "), std::string::npos)
        << subject;
    EXPECT_EQ(subject.rfind("[LDIS RED", 0), 0u) << subject;
    ASSERT_TRUE(
        Eventually([&] { return Subjects("ed@medway.example").size() == 1; }, kFederationWait));
    // Within a second of Medway's own partner.
    std::int64_t medway_at = 0, kent_at = 0;
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& d : Deliveries(*medway_))
                if (d.partner == "medway-ed") medway_at = d.delivered_at_ms;
            for (const auto& d : Deliveries(*kent_))
                if (d.partner == "kent-treat") kent_at = d.delivered_at_ms;
            return medway_at > 0 && kent_at > 0;
        },
        kFederationWait));
    EXPECT_LT(kent_at - medway_at, 1000)
        << "Kent's partner heard " << kent_at - medway_at << " ms after Medway's";
    // Kent's partner acknowledges: Medway's coordinators see the count beside their own.
    std::string text;
    for (const auto& m : smtp_.Messages())
        if (ldis::test::StringOf(m.at("rcpt_tos").as_array().at(0)) == "treat@kent.example")
            text = ldis::test::StringOf(m.at("parts").as_array().at(1).at("text"));
    const auto at = text.find("/ack/");
    ASSERT_NE(at, std::string::npos) << text;
    const std::string ack = text.substr(at, text.find_first_of(" \r\n", at) - at);
    EXPECT_EQ(HttpRequest("POST", kent_->http_url() + ack).status, 200);
    const std::string medway_session =
        ldis::test::SignIn(medway_->http_url(), medway_->CreateToken("coordinator", "m"));
    EXPECT_TRUE(Eventually(
        [&] {
            const auto page = HttpRequest("GET", medway_->http_url() + "/alerts/" + reference, {},
                                          {medway_session});
            return page.body.find("Kent LDIS partners: 1 of 1 acknowledged") != std::string::npos;
        },
        kFederationWait))
        << kent_->log();

    // Nothing personal crossed: the CAP has no report, no contact.
    const auto tapped = offers.seen();
    ASSERT_EQ(tapped.size(), 1u);
    // (The report's contact, its reporter's role, its free text.)
    for (const char* personal : {"ed.nurse@example.org", "ED nurse", "bought in Gillingham"})
        EXPECT_EQ(tapped[0].payload.find(personal), std::string::npos) << personal;
    EXPECT_EQ(Received().size(), 1u);
    EXPECT_EQ(Received()[0].decision, "forwarded");

    // A replay of the same message, and a forgery (Medway's name, another key), are refused.
    Message replay = tapped[0];
    offers.Publish(replay);
    Message forged = tapped[0];
    const auto envelope = ldis::engine::EnvelopeFrom(forged.user_properties).value();
    const auto other = ldis::engine::SigningKey::LoadFile(files_ / "thanet.key")
                           .value()
                           .Sign("medway", envelope.sequence + 1000, forged.payload);
    forged.user_properties = {{"ldis-instance", "medway"},
                              {"ldis-sequence", std::to_string(envelope.sequence + 1000)},
                              {"ldis-signature", other.signature}};
    offers.Publish(forged);
    EXPECT_TRUE(Eventually(
        [&] {
            const std::string log = kent_->log();
            return log.find("the signature is not medway's over these bytes") !=
                       std::string::npos &&
                   log.find("is not after the last one accepted") != std::string::npos;
        },
        kFederationWait))
        << kent_->log();

    // Medway's coordinators update, then cancel: Kent's partner hears both.
    const std::string token = "Authorization: Bearer " + medway_->CreateToken("coordinator", "c");
    ASSERT_EQ(HttpRequest("POST", medway_->http_url() + "/api/v1/alerts/" + reference + "/update",
                          {}, {token})
                  .status,
              200);
    ASSERT_TRUE(
        Eventually([&] { return Subjects("treat@kent.example").size() == 2; }, kFederationWait));
    EXPECT_NE(Subjects("treat@kent.example")[1].find(reference + " v2"), std::string::npos);
    ASSERT_EQ(HttpRequest("POST", medway_->http_url() + "/api/v1/alerts/" + reference + "/cancel",
                          {}, {token})
                  .status,
              200);
    ASSERT_TRUE(
        Eventually([&] { return Subjects("treat@kent.example").size() == 3; }, kFederationWait));
    EXPECT_EQ(Subjects("treat@kent.example")[2].rfind("CANCELLED: ", 0), 0u)
        << Subjects("treat@kent.example")[2];
    const auto rows = Received();
    ASSERT_EQ(rows.size(), 3u);  // one version each, once
    EXPECT_EQ(rows[0].msg_type, "Cancel");
    EXPECT_EQ(rows[1].msg_type, "Update");
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_EQ(Subjects("treat@kent.example").size(), 3u);  // the replay and forgery sent nothing
}

TEST_F(FederationTest, AnAmberAlertWaitsForKentsCoordinatorsWhoAdoptIt) {
    // An amber report at Medway: a draft, which Medway's coordinators approve.
    const auto receipt = ReportAtMedway(false);
    ASSERT_EQ(ldis::test::StringOf(receipt.at("level")), "amber") << json::serialize(receipt);
    const std::string reference = ldis::test::StringOf(receipt.at("alert_id"));
    const std::string token = "Authorization: Bearer " + medway_->CreateToken("coordinator", "c");
    ASSERT_EQ(HttpRequest("POST", medway_->http_url() + "/api/v1/alerts/" + reference + "/approve",
                          {}, {token})
                  .status,
              200);
    ASSERT_TRUE(Eventually([&] { return Received().size() == 1; }, kFederationWait))
        << kent_->log();
    EXPECT_EQ(Received()[0].decision, "review");
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_TRUE(Subjects("treat@kent.example").empty());

    // Kent's coordinator adopts it on the dashboard: then Kent's partner has it.
    const std::string session =
        ldis::test::SignIn(kent_->http_url(), kent_->CreateToken("coordinator", "kent coord"));
    const auto page = HttpRequest("GET", kent_->http_url() + "/", {}, {session});
    ASSERT_EQ(page.status, 200);
    const auto form = page.body.find("action=\"/federated/");
    ASSERT_NE(form, std::string::npos) << page.body;
    const auto csrf_at = page.body.find("name=\"csrf\" value=\"", form) + 19;
    const std::string csrf = page.body.substr(csrf_at, page.body.find('"', csrf_at) - csrf_at);
    const std::string id = std::to_string(Received()[0].id);
    const auto adopted =
        HttpRequest("POST", kent_->http_url() + "/federated/" + id + "/adopt", "csrf=" + csrf,
                    {session, "Content-Type: application/x-www-form-urlencoded"});
    EXPECT_EQ(adopted.status, 303) << adopted.body;
    ASSERT_TRUE(
        Eventually([&] { return Subjects("treat@kent.example").size() == 1; }, kFederationWait));
    EXPECT_NE(Subjects("treat@kent.example")[0].find("Issued by Medway LDIS, " + reference),
              std::string::npos);
    EXPECT_EQ(Received()[0].decision, "adopted");
    EXPECT_EQ(Received()[0].decided_by, "kent coord");
    // A second adoption is refused: the coordinators decide once.
    const auto again =
        HttpRequest("POST", kent_->http_url() + "/federated/" + id + "/adopt", "csrf=" + csrf,
                    {session, "Content-Type: application/x-www-form-urlencoded"});
    ASSERT_TRUE(again.headers.contains("location"));
    EXPECT_NE(again.headers.at("location").find("federated-stale"), std::string::npos);
}

}  // namespace

namespace {

// The link down for 30 s (Kent's broker stopped, so the bridge cannot deliver): what Medway
// issues meanwhile waits in the bridge's persistent session and reaches Kent's partners once
// the link is back, each version once.
TEST_F(FederationTest, ALinkDownForThirtySecondsLosesNothingAndDuplicatesNothing) {
    const auto receipt = ReportAtMedway(true);
    const std::string reference = ldis::test::StringOf(receipt.at("alert_id"));
    ASSERT_TRUE(
        Eventually([&] { return Subjects("treat@kent.example").size() == 1; }, kFederationWait));
    kent_broker_->Stop();
    const std::string token = "Authorization: Bearer " + medway_->CreateToken("coordinator", "c");
    ASSERT_EQ(HttpRequest("POST", medway_->http_url() + "/api/v1/alerts/" + reference + "/update",
                          {}, {token})
                  .status,
              200);
    ASSERT_EQ(HttpRequest("POST", medway_->http_url() + "/api/v1/alerts/" + reference + "/cancel",
                          {}, {token})
                  .status,
              200);
    std::this_thread::sleep_for(std::chrono::seconds(30));
    EXPECT_EQ(Subjects("treat@kent.example").size(), 1u);
    kent_broker_->Start();
    ASSERT_TRUE(Eventually([&] { return Subjects("treat@kent.example").size() == 3; },
                           std::chrono::seconds(40)))
        << kent_->log();
    const auto subjects = Subjects("treat@kent.example");
    EXPECT_NE(subjects[1].find(reference + " v2"), std::string::npos) << subjects[1];
    EXPECT_EQ(subjects[2].rfind("CANCELLED: ", 0), 0u) << subjects[2];
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_EQ(Subjects("treat@kent.example").size(), 3u);
    EXPECT_EQ(Received().size(), 3u);
}

}  // namespace
