// Silent feeds (issue 16 §3), end to end: the real ldisd with [[feeds]] in its configuration,
// mosquitto, an SMTP server for the coordinators. A feed silent past its limit raises
// exactly one notice, which a restart does not repeat; its return (a heartbeat on
// ldis/v1/heartbeat/{source}/{organisation}) raises exactly one more; /metrics shows each
// feed's age and state.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace {

namespace json = boost::json;
using ldis::test::Eventually;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::SmtpSink;
using ldis::test::SourcePath;
using ldis::test::TempDir;

constexpr auto kFeedsWait = std::chrono::seconds(20);
const std::string kCustody = "Medway Police custody";

// The coordinators' feed notices the SMTP server has had, of `kind`.
int Notices(const SmtpSink& smtp, const std::string& kind) {
    int n = 0;
    for (const auto& m : smtp.Messages()) {
        const auto* k = m.at("headers").as_object().if_contains("X-LDIS-Kind");
        if (k && k->is_string() && k->as_string() == kind) ++n;
    }
    return n;
}

std::string Metrics(const Ldisd& daemon) {
    return ldis::test::HttpRequest("GET", daemon.metrics_url() + "/metrics").body;
}

TEST(FeedsTest, ASilentFeedTellsTheCoordinatorsOnceAndItsReturnOnceMore) {
    TempDir dir;
    Mosquitto broker;
    SmtpSink smtp;
    smtp.Start();
    std::ofstream(dir / "partners.toml")
        << "[coordinators]\npartner = \"coord\"\n\n[[partner]]\nid = \"coord\"\n"
           "name = \"LDIS coordinators\"\n  [[partner.contact]]\n  name = \"team\"\n"
           "  channel = \"email\"\n  address = \"coordinators@example.org\"\n";
    const std::string config = ldis::test::ConfigWith(
        dir, "[[feeds]]\nsource_type = \"custody\"\norganisation = \"" + kCustody +
                 "\"\nmax_silence_s = 2\n\n"
                 "[[feeds]]\nsource_type = \"hospital\"\norganisation = \"Medway NHS Foundation "
                 "Trust\"\nmax_silence_s = 3600\n");
    Ldisd daemon(broker, dir,
                 {"paths.partners=" + (dir / "partners.toml"), "email.smtp_url=" + smtp.url(),
                  "dispatch.channels=email"},
                 config);
    daemon.Start();

    // Nothing from custody for longer than 2 s: one notice to the coordinators, then no more.
    ASSERT_TRUE(Eventually([&] { return Notices(smtp, "feed_silent") == 1; }, kFeedsWait))
        << daemon.log();
    const auto notice = smtp.Messages().front();
    EXPECT_EQ(std::string(notice.at("headers").at("Subject").as_string()),
              "[LDIS feed silent] " + kCustody + " (custody)");
    const std::string text(notice.at("parts").at(1).at("text").as_string());
    EXPECT_NE(text.find("No report or heartbeat has come from " + kCustody), std::string::npos)
        << text;
    EXPECT_NE(text.find("usual longest silence of 2 seconds"), std::string::npos) << text;
    EXPECT_EQ(text.find("Reference:"), std::string::npos) << text;  // about no alert
    EXPECT_TRUE(Eventually(
        [&] {
            return Metrics(daemon).find("ldis_feed_silent{source_type=\"custody\",organisation=\"" +
                                        kCustody + "\"} 1") != std::string::npos;
        },
        kFeedsWait));
    const std::string metrics = Metrics(daemon);
    EXPECT_NE(metrics.find("ldis_feed_last_seen_age_seconds{source_type=\"hospital\","
                           "organisation=\"Medway NHS Foundation Trust\"}"),
              std::string::npos)
        << metrics;
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_EQ(Notices(smtp, "feed_silent"), 1);

    // A restart keeps what the coordinators were told: no second notice.
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
    daemon.Start();
    std::this_thread::sleep_for(std::chrono::seconds(4));
    EXPECT_EQ(Notices(smtp, "feed_silent"), 1) << daemon.log();
    EXPECT_EQ(Notices(smtp, "feed_back"), 0);

    // A report from the hospital, never silent, raises nothing; custody's heartbeat raises
    // exactly one "back", however many follow.
    MqttPeer peer(broker.uri(), "feeds-test");
    ASSERT_TRUE(peer.Publish("ldis/v1/reports/hospital",
                             ldis::test::ValidReportText(ldis::test::NewUuid())));
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(peer.Publish("ldis/v1/heartbeat/custody/" + kCustody, "{}"));
    ASSERT_TRUE(Eventually([&] { return Notices(smtp, "feed_back") == 1; }, kFeedsWait))
        << daemon.log();
    const auto back = smtp.Messages().back();
    EXPECT_EQ(std::string(back.at("headers").at("Subject").as_string()),
              "[LDIS feed back] " + kCustody + " (custody)");
    EXPECT_TRUE(Eventually(
        [&] {
            return Metrics(daemon).find("ldis_feed_silent{source_type=\"custody\",organisation=\"" +
                                        kCustody + "\"} 0") != std::string::npos;
        },
        kFeedsWait));
    // Heartbeats within the limit keep it sending: no new notice.
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(peer.Publish("ldis/v1/heartbeat/custody/" + kCustody, "{}"));
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
    }
    EXPECT_EQ(Notices(smtp, "feed_silent"), 1);
    EXPECT_EQ(Notices(smtp, "feed_back"), 1);
    // And when it falls silent again, the coordinators hear of it again, once.
    ASSERT_TRUE(Eventually([&] { return Notices(smtp, "feed_silent") == 2; }, kFeedsWait));
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
    EXPECT_NE(daemon.log().find("feed silent: custody/" + kCustody), std::string::npos);
}

}  // namespace
