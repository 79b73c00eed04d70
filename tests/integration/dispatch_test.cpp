// Dispatch end to end: the real ldisd, mosquitto, an aiosmtpd SMTP server and HTTP
// receivers (webhooks, a Notify-compatible API), all on loopback, SQLite on disk.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <map>
#include <set>

#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace json = boost::json;
using ldis::test::Eventually;
using ldis::test::HttpReceiver;
using ldis::test::Ldisd;
using ldis::test::MakeCa;
using ldis::test::MakeSignedCertificate;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::NewUuid;
using ldis::test::ParseObject;
using ldis::test::Seen;
using ldis::test::SmtpSink;
using ldis::test::TempDir;

namespace {

constexpr auto kWait = std::chrono::seconds(20);
const std::string kSecret = "test-webhook-secret";
const std::string kNotifyKey = "ldis_test-" + std::string("26785a09-ab16-4eb0-8407-a37497a57506") +
                               "-" + "3d844edf-8d35-48ac-975b-e847b4f122b0";

std::string Str(const json::value& v) {
    return v.is_string() ? std::string(v.as_string()) : std::string();
}

std::string Header(const json::object& message, const std::string& name) {
    const auto& headers = message.at("headers").as_object();
    const auto* v = headers.if_contains(name);
    return v ? Str(*v) : std::string();
}

std::string Recipient(const json::object& message) {
    return Str(message.at("rcpt_tos").as_array().at(0));
}

// The red report: a death in Medway, with personal data in the free text that must
// never leave the system.
json::object RedReport() {
    auto r = ldis::test::ValidReport(NewUuid());
    r["harms"].as_object()["deaths"] = 1;
    r["description"] =
        "Patient John Smith, NHS number 943 476 5919, born 01/02/1990, of ME7 1AA, phone 07700 "
        "900123, jo.smith@example.com, died after using brown bought in Gillingham.";
    return r;
}

class DispatchTest : public ::testing::Test {
protected:
    void TearDown() override {
        peer_.reset();
        if (daemon_) {
            if (HasFailure()) std::cerr << "ldisd log:\n" << daemon_->log();
            daemon_->Stop(SIGTERM);
        }
        unsetenv("LDIS_NOTIFY_API_KEY");
        unsetenv("LDIS_SMTP_PASSWORD");
    }

    // Writes partners.toml (the coordinators come first) and starts ldisd with it.
    void StartDaemon(const std::string& partners, const std::string& smtp_url,
                     std::vector<std::string> sets = {}) {
        const std::string path = dir_ / "partners.toml";
        std::ofstream(dir_ / "hook.key") << kSecret << "\n";
        std::ofstream(path) << "[coordinators]\npartner = \"coord\"\n\n"
                            << "[[partner]]\nid = \"coord\"\nname = \"LDIS coordinators\"\n"
                            << "  [[partner.contact]]\n  name = \"team\"\n  channel = \"email\"\n"
                            << "  address = \"coordinators@example.org\"\n\n"
                            << partners;
        // Defaults first: a test's own settings come later and win.
        sets.insert(sets.begin(), {"dispatch.channels=email,webhook,notify,mqtt",
                                   "paths.partners=" + path, "email.smtp_url=" + smtp_url,
                                   "dispatch.retry_base_ms=200", "dispatch.retry_max_ms=1000",
                                   "escalation.check_s=1", "dispatch.timeout_ms=3000"});
        daemon_ = std::make_unique<Ldisd>(broker_, dir_, sets);
        daemon_->Start();
        peer_ = std::make_unique<MqttPeer>(broker_.uri(), "partner-" + NewUuid().substr(0, 8));
        peer_->Subscribe("test/receipts/#");
        peer_->Subscribe("ldis/v1/alerts/#");
    }

    json::object Submit(const json::object& report) {
        const std::string correlation = NewUuid();
        EXPECT_TRUE(peer_->Publish("ldis/v1/reports/hospital", json::serialize(report),
                                   "test/receipts/x", correlation));
        const auto seen =
            peer_->WaitFor([&](const Seen& s) { return s.correlation_data == correlation; }, kWait);
        if (!seen) {
            ADD_FAILURE() << "no receipt";
            return {};
        }
        return ParseObject(seen->payload);
    }

    std::vector<ldis::engine::DeliveryRow> Deliveries() {
        ldis::engine::StoreOptions o;
        o.path = daemon_->db_path();
        return ldis::engine::ReportStore(o).Deliveries("");
    }

    bool AllSettled() {
        const auto rows = Deliveries();
        for (const auto& d : rows) {
            if (d.status != "delivered" && d.status != "failed") return false;
        }
        return !rows.empty();
    }

    Mosquitto broker_;
    TempDir dir_;
    std::unique_ptr<Ldisd> daemon_;
    std::unique_ptr<MqttPeer> peer_;
};

std::string EmailPartner(const std::string& id, const std::string& address,
                         const std::string& subscription) {
    return "[[partner]]\nid = \"" + id + "\"\nname = \"" + id + "\"\n  [[partner.contact]]\n" +
           "  name = \"mail\"\n  channel = \"email\"\n  address = \"" + address + "\"\n" +
           "  [[partner.subscription]]\n" + subscription + "\n\n";
}

TEST_F(DispatchTest, RedReportReachesEverySubscribedMedwayPartnerAndNoOther) {
    SmtpSink smtp;
    smtp.Start();
    HttpReceiver hooks({}, kSecret);
    const std::string partners =
        EmailPartner("medway-ed", "ed@example.org",
                     "  levels = [\"red\"]\n  authorities = [\"Medway\"]") +
        EmailPartner("kent-only", "kent@example.org", "  authorities = [\"Kent\"]") +
        EmailPartner("amber-only", "amber@example.org", "  levels = [\"amber\"]") +
        "[[partner]]\nid = \"medway-treat\"\nname = \"Medway treatment\"\n"
        "  [[partner.contact]]\n  name = \"mail\"\n  channel = \"email\"\n"
        "  address = \"treat@example.org\"\n"
        "  [[partner.contact]]\n  name = \"teams\"\n  channel = \"webhook\"\n  format = \"teams\"\n"
        "  url = \"" +
        hooks.url("/teams") +
        "\"\n  secret_file = \"hook.key\"\n  insecure = true\n"
        "  [[partner.contact]]\n  name = \"slack\"\n  channel = \"webhook\"\n  format = \"slack\"\n"
        "  url = \"" +
        hooks.url("/slack") +
        "\"\n  secret_file = \"hook.key\"\n  insecure = true\n"
        "  [[partner.subscription]]\n  districts = [\"Medway\"]\n";
    StartDaemon(partners, smtp.url(), {"email.connections=1"});
    const auto receipt = Submit(RedReport());
    ASSERT_EQ(Str(receipt.at("level")), "red");
    const std::string reference = Str(receipt.at("alert_id"));

    ASSERT_TRUE(Eventually([&] { return smtp.Messages().size() >= 3; }, kWait));
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));
    const auto messages = smtp.Messages();
    std::map<std::string, json::object> by_recipient;
    for (const auto& m : messages) by_recipient[Recipient(m)] = m;
    EXPECT_EQ(messages.size(), 3u);
    EXPECT_TRUE(by_recipient.contains("ed@example.org"));
    EXPECT_TRUE(by_recipient.contains("treat@example.org"));
    EXPECT_TRUE(by_recipient.contains("coordinators@example.org"));  // paged: provisional red
    EXPECT_FALSE(by_recipient.contains("kent@example.org"));
    EXPECT_FALSE(by_recipient.contains("amber@example.org"));
    EXPECT_EQ(Header(by_recipient["coordinators@example.org"], "X-LDIS-Kind"), "page");

    const auto& mail = by_recipient["ed@example.org"];
    EXPECT_EQ(Header(mail, "Subject")
                  .rfind("[LDIS RED \xE2\x80\x93 Drug Alert] " + reference + " v1: ", 0),
              0u)
        << Header(mail, "Subject");
    EXPECT_EQ(Header(mail, "X-LDIS-Alert"), reference);
    EXPECT_EQ(Header(mail, "X-LDIS-Level"), "red");
    EXPECT_EQ(Header(mail, "Message-ID").rfind("<ldis-" + reference + "-v1-alert-d", 0), 0u);
    EXPECT_EQ(Header(mail, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    EXPECT_NE(Header(mail, "List-Unsubscribe").find("/unsubscribe/"), std::string::npos);
    // multipart/alternative: plain text first, HTML last.
    const auto& parts = mail.at("parts").as_array();
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(Str(parts[0].at("type")), "multipart/alternative");
    EXPECT_EQ(Str(parts[1].at("type")), "text/plain");
    EXPECT_EQ(Str(parts[2].at("type")), "text/html");
    const std::string text = Str(parts[1].at("text"));
    const std::string html = Str(parts[2].at("text"));
    // Text and HTML say the same, in the same order (issue 17 §6): the reference, the
    // action, the acknowledgement link, then the sections with the one strongest reason.
    for (const std::string& body : {text, html}) {
        std::size_t at = 0;
        for (const std::string& next : {reference, std::string("Act now"), std::string("/ack/"),
                                        std::string("Why this level: ")}) {
            at = body.find(next, at);
            ASSERT_NE(at, std::string::npos) << next << " is missing or out of order";
        }
    }
    // Nothing that identifies the person, or the reporter's contact, left the system.
    for (const auto& m : messages) {
        const std::string all = json::serialize(m);
        for (const char* personal :
             {"943 476 5919", "9434765919", "01/02/1990", "ME7 1AA", "07700 900123",
              "jo.smith@example.com", "ed.nurse@example.org"}) {
            EXPECT_EQ(all.find(personal), std::string::npos) << personal << " leaked";
        }
    }
    // One connection carried every message.
    std::set<std::string> connections;
    for (const auto& m : messages) connections.insert(Str(m.at("conn")));
    EXPECT_EQ(connections.size(), 1u);

    // Teams: an Adaptive Card in a message; Slack: Block Kit; both signed.
    const auto teams = hooks.Requests("/teams");
    ASSERT_EQ(teams.size(), 1u);
    EXPECT_TRUE(teams[0].at("signature_ok").as_bool());
    EXPECT_EQ(Str(teams[0].at("headers").at("idempotency-key")).rfind("ldis-" + reference, 0), 0u);
    const auto card = ParseObject(Str(teams[0].at("body")));
    EXPECT_EQ(Str(card.at("type")), "message");
    const auto& attachment = card.at("attachments").as_array().at(0).as_object();
    EXPECT_EQ(Str(attachment.at("contentType")), "application/vnd.microsoft.card.adaptive");
    EXPECT_EQ(Str(attachment.at("content").at("type")), "AdaptiveCard");
    EXPECT_FALSE(attachment.at("content").at("body").as_array().empty());
    const auto slack = hooks.Requests("/slack");
    ASSERT_EQ(slack.size(), 1u);
    EXPECT_TRUE(slack[0].at("signature_ok").as_bool());
    const auto blocks = ParseObject(Str(slack[0].at("body"))).at("blocks").as_array();
    EXPECT_EQ(Str(blocks.at(0).at("type")), "header");
    for (const auto& b : blocks) {
        if (Str(b.at("type")) == "section") {
            EXPECT_LT(b.at("text").at("text").as_string().size(), 3000u);
        }
    }

    // MQTT: the alert document on ldis/v1/alerts/red/medway.
    const auto alert = peer_->WaitForTopic("ldis/v1/alerts/red/medway", kWait);
    ASSERT_TRUE(alert);
    const auto doc = ParseObject(alert->payload);
    EXPECT_EQ(Str(doc.at("reference")), reference);
    EXPECT_EQ(Str(doc.at("level")), "red");

    for (const auto& d : Deliveries())
        EXPECT_EQ(d.status, "delivered") << d.partner << "/" << d.contact << ": " << d.last_error;
}

// Issue 16 §2: an exercise rehearses the whole chain, and every rendering says first that it
// is not real: the email's subject and first lines (text and HTML), the coordinators' page,
// the Teams card's title, the Slack header, the SMS, the MQTT document and CAP. It never
// counts in the live figures, a real report does not join it, and its drill report shows
// who acknowledged and who did not.
TEST_F(DispatchTest, AnExerciseIsMarkedFirstInEveryChannelAndKeptOutOfLiveFigures) {
    const std::string kMark = "EXERCISE \xE2\x80\x93 NOT A REAL ALERT";
    SmtpSink smtp;
    smtp.Start();
    HttpReceiver hooks({}, kSecret);
    HttpReceiver notify({}, {}, kNotifyKey);
    setenv("LDIS_NOTIFY_API_KEY", kNotifyKey.c_str(), 1);
    const std::string partners =
        EmailPartner("medway-ed", "ed@example.org", "  levels = [\"red\"]") +
        "[[partner]]\nid = \"medway-treat\"\nname = \"Medway treatment\"\n"
        "  [[partner.contact]]\n  name = \"teams\"\n  channel = \"webhook\"\n  format = \"teams\"\n"
        "  url = \"" +
        hooks.url("/teams") +
        "\"\n  secret_file = \"hook.key\"\n  insecure = true\n"
        "  [[partner.contact]]\n  name = \"slack\"\n  channel = \"webhook\"\n  format = \"slack\"\n"
        "  url = \"" +
        hooks.url("/slack") +
        "\"\n  secret_file = \"hook.key\"\n  insecure = true\n"
        "  [[partner.subscription]]\n  districts = [\"Medway\"]\n\n"
        "[[partner]]\nid = \"peers\"\nname = \"Peer naloxone network\"\n"
        "  [[partner.contact]]\n  name = \"phone\"\n  channel = \"notify_sms\"\n"
        "  address = \"+447700900123\"\n"
        "  [[partner.subscription]]\n  levels = [\"red\"]\n";
    StartDaemon(partners, smtp.url(),
                {"notify.base_url=" + notify.url(), "notify.sms_template_id=sms-template"});
    auto report = RedReport();
    report["drill"] = "exercise";
    const auto receipt = Submit(report);
    ASSERT_EQ(Str(receipt.at("level")), "red");
    const std::string reference = Str(receipt.at("alert_id"));
    ASSERT_TRUE(Eventually([&] { return smtp.Messages().size() >= 2; }, kWait));
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));

    // Email: the partner's alert and the coordinators' page, subject and first lines.
    const auto messages = smtp.Messages();
    ASSERT_EQ(messages.size(), 2u);
    std::string ack_token;
    for (const auto& m : messages) {
        EXPECT_EQ(Header(m, "Subject").rfind(kMark + ": ", 0), 0u) << Header(m, "Subject");
        const auto& parts = m.at("parts").as_array();
        ASSERT_EQ(parts.size(), 3u);
        const std::string text = Str(parts[1].at("text"));
        EXPECT_EQ(text.rfind(kMark + ": ", 0), 0u) << text.substr(0, 200);
        const std::string html = Str(parts[2].at("text"));
        const auto title = html.find("<title>"), h1 = html.find("<h1");
        ASSERT_NE(title, std::string::npos);
        ASSERT_NE(h1, std::string::npos);
        EXPECT_EQ(html.compare(title + 7, kMark.size(), kMark), 0) << html.substr(0, 400);
        EXPECT_EQ(html.compare(html.find('>', h1) + 1, kMark.size(), kMark), 0)
            << html.substr(h1, 200);
        if (Recipient(m) == "ed@example.org") {
            const auto at = text.find("/ack/");
            ASSERT_NE(at, std::string::npos);
            ack_token = text.substr(at + 5, text.find_first_of(" \r\n", at) - at - 5);
        }
    }
    // Teams: the card's first block, its title; Slack: the header block.
    const auto teams = hooks.Requests("/teams");
    ASSERT_EQ(teams.size(), 1u);
    const auto card = ParseObject(Str(teams[0].at("body")));
    const auto& body = card.at("attachments").at(0).at("content").at("body").as_array();
    const auto& banner = body.at(0).at("items").at(0);  // the title in the coloured banner
    EXPECT_EQ(Str(banner.at("text")).rfind(kMark, 0), 0u) << Str(banner.at("text"));
    const auto slack = hooks.Requests("/slack");
    ASSERT_EQ(slack.size(), 1u);
    const auto blocks = ParseObject(Str(slack[0].at("body"))).at("blocks").as_array();
    EXPECT_EQ(Str(blocks.at(0).at("type")), "header");
    EXPECT_EQ(Str(blocks.at(0).at("text").at("text")).rfind(kMark, 0), 0u);
    // SMS through Notify: the headline and the summary the template shows.
    const auto sms = notify.Requests("/v2/notifications/sms");
    ASSERT_EQ(sms.size(), 1u);
    const auto personalisation = ParseObject(Str(sms[0].at("body"))).at("personalisation");
    EXPECT_EQ(Str(personalisation.at("headline")).rfind(kMark, 0), 0u);
    EXPECT_EQ(Str(personalisation.at("summary")).rfind(kMark, 0), 0u);
    EXPECT_EQ(Str(personalisation.at("drill")), kMark);
    // MQTT: the alert document.
    const auto alert = peer_->WaitForTopic("ldis/v1/alerts/red/medway", kWait);
    ASSERT_TRUE(alert);
    const auto doc = ParseObject(alert->payload);
    EXPECT_EQ(Str(doc.at("drill")), "exercise");
    EXPECT_EQ(Str(doc.at("title")).rfind(kMark, 0), 0u);
    // CAP: status Exercise, and the headline and description say so first.
    const std::string coordinator =
        "Authorization: Bearer " + daemon_->CreateToken("coordinator", "drill test");
    const auto cap = ldis::test::HttpRequest(
        "GET", daemon_->http_url() + "/api/v1/alerts/" + reference + "/cap", {}, {coordinator});
    ASSERT_EQ(cap.status, 200) << cap.body;
    EXPECT_NE(cap.body.find("<status>Exercise</status>"), std::string::npos) << cap.body;
    EXPECT_NE(cap.body.find("<headline>" + kMark), std::string::npos) << cap.body;
    EXPECT_NE(cap.body.find("<description>" + kMark), std::string::npos) << cap.body;

    // Not in the live figures: /metrics counts no issued red alert; the API's list of alerts
    // shows real ones unless asked for exercises.
    const auto issued_red = [&] {
        const auto m = ldis::test::HttpRequest("GET", daemon_->metrics_url() + "/metrics");
        return m.body.find("ldis_alerts{level=\"red\",status=\"issued\"} 1") != std::string::npos;
    };
    const auto listed = [&](const std::string& query) {
        const auto r = ldis::test::HttpRequest(
            "GET", daemon_->http_url() + "/api/v1/alerts" + query, {}, {coordinator});
        EXPECT_EQ(r.status, 200) << r.body;
        return ParseObject(r.body).at("total").to_number<int>();
    };
    EXPECT_FALSE(issued_red());
    EXPECT_EQ(listed(""), 0);
    EXPECT_EQ(listed("?drill=exercise"), 1);
    EXPECT_EQ(listed("?drill=all"), 1);
    EXPECT_EQ(ldis::test::HttpRequest("GET", daemon_->http_url() + "/api/v1/alerts?drill=real", {},
                                      {coordinator})
                  .status,
              400);

    // One partner acknowledges: the drill report shows its time, and who did not.
    ASSERT_FALSE(ack_token.empty());
    EXPECT_EQ(ldis::test::HttpRequest("POST", daemon_->http_url() + "/ack/" + ack_token).status,
              200);
    const std::string session =
        ldis::test::SignIn(daemon_->http_url(), daemon_->CreateToken("coordinator", "drill page"));
    ASSERT_FALSE(session.empty());
    const auto page = ldis::test::HttpRequest(
        "GET", daemon_->http_url() + "/alerts/" + reference + "/drill", {}, {session});
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_NE(page.body.find(kMark), std::string::npos);
    EXPECT_NE(page.body.find("1 of 3 partners"), std::string::npos) << page.body;
    const auto silent = page.body.find("id=\"silent\"");
    ASSERT_NE(silent, std::string::npos);
    const std::string who = page.body.substr(silent, page.body.find("</ul>", silent) - silent);
    EXPECT_NE(who.find("medway-treat"), std::string::npos) << who;
    EXPECT_NE(who.find("peers"), std::string::npos) << who;
    EXPECT_EQ(who.find("medway-ed"), std::string::npos) << who;

    // A real report of the same batch, place and time makes a real alert of its own.
    const auto real = Submit(RedReport());
    ASSERT_EQ(Str(real.at("level")), "red");
    EXPECT_NE(Str(real.at("alert_id")), reference);
    EXPECT_TRUE(Eventually(issued_red, kWait));
    EXPECT_EQ(listed(""), 1);
}

TEST_F(DispatchTest, AmberDraftAsksTheCoordinatorsOnceAndReachesNoPartner) {
    SmtpSink smtp;
    smtp.Start();
    StartDaemon(EmailPartner("everyone", "all@example.org", ""), smtp.url());
    const auto receipt = Submit(ldis::test::ValidReport(NewUuid()));
    ASSERT_EQ(Str(receipt.at("level")), "amber");
    ASSERT_TRUE(Eventually([&] { return !smtp.Messages().empty(); }, kWait));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const auto messages = smtp.Messages();
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(Recipient(messages[0]), "coordinators@example.org");
    EXPECT_EQ(Header(messages[0], "X-LDIS-Kind"), "approval");
    EXPECT_NE(Header(messages[0], "Subject").find("approval"), std::string::npos);
    EXPECT_FALSE(
        peer_->WaitForTopic("ldis/v1/alerts/amber/medway", std::chrono::milliseconds(200)));
}

TEST_F(DispatchTest, SmtpDownThenUpEveryDeliveryEndsDelivered) {
    SmtpSink smtp;  // not started yet: the relay is down
    StartDaemon(EmailPartner("a", "a@example.org", "") + EmailPartner("b", "b@example.org", ""),
                smtp.url());
    Submit(RedReport());
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& d : Deliveries()) {
                if (d.status == "retrying" && d.channel == "email") return true;
            }
            return false;
        },
        kWait));
    std::this_thread::sleep_for(std::chrono::seconds(2));
    smtp.Start();
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, std::chrono::seconds(30)));
    for (const auto& d : Deliveries()) {
        EXPECT_EQ(d.status, "delivered") << d.partner << ": " << d.last_error;
        if (d.channel == "email") {
            EXPECT_GT(d.attempts, 1);
        }
    }
    std::set<std::string> recipients;
    for (const auto& m : smtp.Messages()) recipients.insert(Recipient(m));
    EXPECT_TRUE(recipients.contains("a@example.org"));
    EXPECT_TRUE(recipients.contains("b@example.org"));
}

std::string HookPartner(const std::string& id, const std::string& url, const std::string& format,
                        const std::string& fallback = {}) {
    std::string p = "[[partner]]\nid = \"" + id + "\"\nname = \"" + id + "\"\n";
    if (!fallback.empty()) p += "fallback = [\"backup\"]\n";
    p += "  [[partner.contact]]\n  name = \"hook\"\n  channel = \"webhook\"\n  format = \"" +
         format + "\"\n  url = \"" + url + "\"\n  secret_file = \"hook.key\"\n  insecure = true\n";
    if (!fallback.empty())
        p += "  [[partner.contact]]\n  name = \"backup\"\n  channel = \"email\"\n  address = \"" +
             fallback + "\"\n";
    return p + "  [[partner.subscription]]\n  levels = [\"red\"]\n\n";
}

TEST_F(DispatchTest, WebhookFailuresAreRetriedWithTheSameIdempotencyKey) {
    SmtpSink smtp;
    smtp.Start();
    HttpReceiver hooks({"/flaky=500,200", "/throttled=429:2,200", "/teams=200:teams429,200"},
                       kSecret);
    StartDaemon(HookPartner("flaky", hooks.url("/flaky"), "json") +
                    HookPartner("throttled", hooks.url("/throttled"), "json") +
                    HookPartner("teams", hooks.url("/teams"), "teams"),
                smtp.url(), {"dispatch.channels=email,webhook"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));
    for (const auto& d : Deliveries()) {
        EXPECT_EQ(d.status, "delivered") << d.partner << ": " << d.last_error;
        if (d.channel == "webhook") {
            EXPECT_EQ(d.attempts, 2) << d.partner;
        }
    }
    for (const std::string path : {"/flaky", "/throttled", "/teams"}) {
        const auto requests = hooks.Requests(path);
        ASSERT_EQ(requests.size(), 2u) << path;
        EXPECT_EQ(Str(requests[0].at("headers").at("idempotency-key")),
                  Str(requests[1].at("headers").at("idempotency-key")))
            << path;
        EXPECT_TRUE(requests[1].at("signature_ok").as_bool()) << path;
    }
    // Retry-After: 2 was honoured.
    const auto throttled = hooks.Requests("/throttled");
    EXPECT_GE(throttled[1].at("at").as_double() - throttled[0].at("at").as_double(), 1.9);
    // The generic format is the alert document.
    const auto doc = ParseObject(Str(hooks.Requests("/flaky")[1].at("body")));
    EXPECT_EQ(Str(doc.at("schema")), "ldis.alert/1");
    EXPECT_EQ(Str(doc.at("level")), "red");
}

TEST_F(DispatchTest, PermanentFailureFallsBackAndTellsTheCoordinators) {
    SmtpSink smtp;
    smtp.Start();
    HttpReceiver hooks({"/broken=400"}, kSecret);
    StartDaemon(HookPartner("broken", hooks.url("/broken"), "slack", "broken-backup@example.org"),
                smtp.url(), {"dispatch.channels=email,webhook"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually(
        [&] {
            std::set<std::string> got;
            for (const auto& m : smtp.Messages())
                got.insert(Recipient(m) + " " + Header(m, "X-LDIS-Kind"));
            return got.contains("broken-backup@example.org alert") &&
                   got.contains("coordinators@example.org dead_letter");
        },
        kWait))
        << json::serialize(json::value_from(smtp.Messages().size()));
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));
    std::int64_t webhook_id = 0;
    for (const auto& d : Deliveries()) {
        if (d.channel == "webhook") {
            EXPECT_EQ(d.status, "failed");
            EXPECT_EQ(d.attempts, 1);  // a 400 is not retried
            EXPECT_NE(d.last_error.find("HTTP 400"), std::string::npos) << d.last_error;
            webhook_id = d.id;
        }
    }
    ASSERT_GT(webhook_id, 0);
    bool fell_back = false;
    for (const auto& d : Deliveries()) {
        if (d.contact == "backup") {
            EXPECT_EQ(d.fallback_of, webhook_id);
            EXPECT_EQ(d.status, "delivered");
            fell_back = true;
        }
    }
    EXPECT_TRUE(fell_back);
    // What a coordinator reads with ldisctl.
    ldis::test::Process ctl({LDISCTL_PATH, "deliveries", "list", "--db", daemon_->db_path()},
                            dir_ / "deliveries.log");
    EXPECT_EQ(ctl.Wait(std::chrono::seconds(10)), 0);
    const std::string table = ldis::test::ReadFile(dir_ / "deliveries.log");
    EXPECT_NE(table.find("broken/hook"), std::string::npos) << table;
    EXPECT_NE(table.find("HTTP 400"), std::string::npos) << table;
    EXPECT_NE(table.find("1 failed"), std::string::npos) << table;
    for (const auto& m : smtp.Messages()) {
        if (Header(m, "X-LDIS-Kind") != "dead_letter") continue;
        const std::string text = Str(m.at("parts").as_array().at(1).at("text"));
        EXPECT_NE(text.find("HTTP 400"), std::string::npos) << text;
        EXPECT_NE(text.find("Falling back to backup"), std::string::npos) << text;
    }
}

TEST_F(DispatchTest, NotifySmsAndEmailCarryAVerifiedJwtAndMapErrors) {
    SmtpSink smtp;
    smtp.Start();
    HttpReceiver notify({"/v2/notifications/email=400"}, {}, kNotifyKey);
    setenv("LDIS_NOTIFY_API_KEY", kNotifyKey.c_str(), 1);
    StartDaemon(
        "[[partner]]\nid = \"peers\"\nname = \"Peer naloxone network\"\n"
        "  [[partner.contact]]\n  name = \"phone\"\n  channel = \"notify_sms\"\n"
        "  address = \"+447700900123\"\n"
        "  [[partner.contact]]\n  name = \"inbox\"\n  channel = \"notify_email\"\n"
        "  address = \"peers@example.org\"\n"
        "  [[partner.subscription]]\n  levels = [\"red\"]\n",
        smtp.url(),
        {"notify.base_url=" + notify.url(), "notify.sms_template_id=sms-template",
         "notify.email_template_id=email-template", "dispatch.channels=email,notify"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));
    const auto sms = notify.Requests("/v2/notifications/sms");
    ASSERT_EQ(sms.size(), 1u);
    EXPECT_EQ(Str(sms[0].at("jwt_error")), "");
    const auto body = ParseObject(Str(sms[0].at("body")));
    EXPECT_EQ(Str(body.at("phone_number")), "+447700900123");
    EXPECT_EQ(Str(body.at("template_id")), "sms-template");
    EXPECT_FALSE(Str(body.at("reference")).empty());
    EXPECT_NE(Str(body.at("personalisation").at("ack_url")).find("/ack/"), std::string::npos);
    const auto email = notify.Requests("/v2/notifications/email");
    ASSERT_EQ(email.size(), 1u);  // a ValidationError is not retried
    EXPECT_EQ(Str(email[0].at("jwt_error")), "");
    for (const auto& d : Deliveries()) {
        if (d.channel == "notify_sms") {
            EXPECT_EQ(d.status, "delivered") << d.last_error;
        }
        if (d.channel == "notify_email") {
            EXPECT_EQ(d.status, "failed");
            EXPECT_NE(d.last_error.find("ValidationError"), std::string::npos) << d.last_error;
        }
    }
}

TEST_F(DispatchTest, UnacknowledgedRedAlertIsEscalated) {
    SmtpSink smtp;
    smtp.Start();
    StartDaemon(
        "[[partner]]\nid = \"ed\"\nname = \"Emergency department\"\nescalation = \"boss\"\n"
        "  [[partner.contact]]\n  name = \"desk\"\n  channel = \"email\"\n"
        "  address = \"desk@example.org\"\n"
        "  [[partner.contact]]\n  name = \"boss\"\n  channel = \"email\"\n"
        "  address = \"boss@example.org\"\n"
        "  [[partner.subscription]]\n  levels = [\"red\"]\n",
        smtp.url(), {"escalation.red_ack_s=2"});
    const auto receipt = Submit(RedReport());
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& m : smtp.Messages()) {
                if (Recipient(m) == "boss@example.org") return true;
            }
            return false;
        },
        kWait));
    int to_boss = 0;
    for (const auto& m : smtp.Messages()) {
        if (Recipient(m) != "boss@example.org") continue;
        ++to_boss;
        EXPECT_EQ(Header(m, "X-LDIS-Kind"), "escalation");
        EXPECT_NE(Header(m, "Subject").find("NOT ACKNOWLEDGED"), std::string::npos);
        EXPECT_NE(Str(m.at("parts").as_array().at(1).at("text"))
                      .find("Emergency department has not acknowledged"),
                  std::string::npos);
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(to_boss, 1);  // once per alert and partner
}

// Issue 17 §4: at the deadline, a partner that only said "received" is escalated, saying so;
// one that said what it did is not. The answers come through the real links, as forms.
TEST_F(DispatchTest, APartnerThatOnlySaidReceivedIsEscalatedAndOneThatSaidWhatItDidIsNot) {
    SmtpSink smtp;
    smtp.Start();
    std::string partners;
    for (const std::string id : {"ed", "police"}) {
        partners += "[[partner]]\nid = \"" + id + "\"\nname = \"" + id +
                    " team\"\nescalation = \"boss\"\n"
                    "  [[partner.contact]]\n  name = \"desk\"\n  channel = \"email\"\n"
                    "  address = \"" +
                    id +
                    "-desk@example.org\"\n"
                    "  [[partner.contact]]\n  name = \"boss\"\n  channel = \"email\"\n"
                    "  address = \"" +
                    id +
                    "-boss@example.org\"\n"
                    "  [[partner.subscription]]\n  levels = [\"red\"]\n";
    }
    StartDaemon(partners, smtp.url(), {"escalation.red_ack_s=6"});
    Submit(RedReport());
    std::map<std::string, std::string> links;  // the desk's address: its acknowledgement token
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& m : smtp.Messages()) {
                const std::string text = Str(m.at("parts").as_array().at(1).at("text"));
                const auto at = text.find("/ack/");
                if (at == std::string::npos || Header(m, "X-LDIS-Kind") != "alert") continue;
                links[Recipient(m)] = text.substr(at + 5, text.find_first_of(" \r\n", at) - at - 5);
            }
            return links.size() == 2;
        },
        kWait));
    const std::string url = daemon_->http_url() + "/ack/";
    const std::vector<std::string> form = {"Content-Type: application/x-www-form-urlencoded"};
    auto said = ldis::test::HttpRequest("POST", url + links.at("ed-desk@example.org"),
                                        "answer=received", form);
    ASSERT_EQ(said.status, 200) << said.body;
    // A word that is not an answer: refused in words, nothing recorded.
    said = ldis::test::HttpRequest("POST", url + links.at("police-desk@example.org"), "answer=done",
                                   form);
    EXPECT_EQ(said.status, 400);
    EXPECT_NE(said.body.find("Choose an answer"), std::string::npos);
    said = ldis::test::HttpRequest("POST", url + links.at("police-desk@example.org"),
                                   "answer=actions&note=Briefed+every+custody+suite", form);
    ASSERT_EQ(said.status, 200) << said.body;
    EXPECT_NE(said.body.find("Actions taken"), std::string::npos);
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& m : smtp.Messages())
                if (Recipient(m) == "ed-boss@example.org") return true;
            return false;
        },
        kWait));
    std::this_thread::sleep_for(std::chrono::seconds(2));
    int to_ed_boss = 0;
    for (const auto& m : smtp.Messages()) {
        EXPECT_NE(Recipient(m), "police-boss@example.org");
        if (Recipient(m) != "ed-boss@example.org") continue;
        ++to_ed_boss;
        EXPECT_EQ(Header(m, "X-LDIS-Kind"), "escalation");
        EXPECT_NE(Str(m.at("parts").as_array().at(1).at("text"))
                      .find("ed team acknowledged this alert but has not said what it did"),
                  std::string::npos);
    }
    EXPECT_EQ(to_ed_boss, 1);
}

TEST_F(DispatchTest, KillDuringFanOutLosesNothingAndRepeatsKeepTheirMessageId) {
    SmtpSink smtp(4);  // a relay that takes a few ms a message
    smtp.Start();
    std::string partners = "[[partner]]\nid = \"many\"\nname = \"Five hundred recipients\"\n";
    for (int i = 0; i < 500; ++i) {
        partners += "  [[partner.contact]]\n  name = \"r" + std::to_string(i) +
                    "\"\n  channel = \"email\"\n  address = \"r" + std::to_string(i) +
                    "@example.org\"\n";
    }
    partners += "  [[partner.subscription]]\n  levels = [\"red\"]\n";
    StartDaemon(partners, smtp.url(), {"email.connections=2", "dispatch.channels=email"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually([&] { return smtp.Messages().size() >= 40; }, kWait));
    daemon_->Stop(SIGKILL);
    const auto before = smtp.Messages().size();
    EXPECT_LT(before, 500u) << "the kill came too late to cut the fan-out";
    daemon_->Start();
    ASSERT_TRUE(Eventually(
        [&] {
            std::set<std::string> recipients;
            for (const auto& m : smtp.Messages()) recipients.insert(Recipient(m));
            return recipients.size() >= 501;  // 500 and the coordinators' page
        },
        std::chrono::seconds(60)));
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));
    std::map<std::string, std::set<std::string>> ids;
    std::size_t repeats = 0;
    for (const auto& m : smtp.Messages()) {
        auto& seen = ids[Recipient(m)];
        if (!seen.empty()) ++repeats;
        seen.insert(Header(m, "Message-ID"));
    }
    for (const auto& [recipient, message_ids] : ids)
        EXPECT_EQ(message_ids.size(), 1u) << recipient << " got different Message-IDs";
    std::cout << "kill -9 during a fan-out of 500: " << before << " accepted before the kill, "
              << repeats << " repeated after the restart\n";
    for (const auto& d : Deliveries()) EXPECT_EQ(d.status, "delivered") << d.contact;
}

TEST_F(DispatchTest, SmtpOverStartTlsWithAuth) {
    TempDir certs;
    const auto ca = MakeCa(certs, "council-");
    const auto [cert, key] = MakeSignedCertificate(certs, ca, "IP:127.0.0.1", "relay-");
    SmtpSink smtp(0, "ldis:relay-password", cert, key);
    smtp.Start();
    setenv("LDIS_SMTP_PASSWORD", "relay-password", 1);
    StartDaemon(EmailPartner("a", "a@example.org", ""), smtp.url(),
                {"email.starttls=true", "email.ca_file=" + ca.cert, "email.username=ldis",
                 "dispatch.channels=email"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));
    for (const auto& d : Deliveries()) EXPECT_EQ(d.status, "delivered") << d.last_error;
    const auto messages = smtp.Messages();
    ASSERT_FALSE(messages.empty());
    for (const auto& m : messages) {
        EXPECT_TRUE(m.at("tls").as_bool());
        EXPECT_EQ(Str(m.at("login")), "ldis");
    }
    EXPECT_EQ(daemon_->log().find("relay-password"), std::string::npos);
}

// smtps:// (TLS from the first byte), the server's certificate checked against
// email.ca_file: delivered over TLS; a certificate that CA did not sign is refused and
// nothing is sent.
TEST_F(DispatchTest, SmtpsWithImplicitTlsVerifiesTheServersCertificate) {
    TempDir certs;
    const auto ca = MakeCa(certs, "council-");
    const auto [cert, key] = MakeSignedCertificate(certs, ca, "IP:127.0.0.1", "relay-");
    SmtpSink smtp(0, {}, cert, key);
    smtp.ImplicitTls();
    smtp.Start();
    StartDaemon(EmailPartner("a", "a@example.org", ""), smtp.url(),
                {"email.ca_file=" + ca.cert, "dispatch.channels=email"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));
    for (const auto& d : Deliveries()) EXPECT_EQ(d.status, "delivered") << d.last_error;
    const auto messages = smtp.Messages();
    ASSERT_FALSE(messages.empty());
    for (const auto& m : messages) EXPECT_TRUE(m.at("tls").as_bool());
}

TEST_F(DispatchTest, SmtpsRefusesACertificateTheCaDidNotSign) {
    TempDir certs;
    const auto ca = MakeCa(certs, "council-"), other = MakeCa(certs, "other-");
    const auto [cert, key] = MakeSignedCertificate(certs, ca, "IP:127.0.0.1", "relay-");
    SmtpSink smtp(0, {}, cert, key);
    smtp.ImplicitTls();
    smtp.Start();
    StartDaemon(EmailPartner("a", "a@example.org", ""), smtp.url(),
                {"email.ca_file=" + other.cert, "dispatch.channels=email"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& d : Deliveries())
                if (d.status == "retrying" && !d.last_error.empty()) return true;
            return false;
        },
        kWait));
    EXPECT_TRUE(smtp.Messages().empty()) << "a message went to a server that was not verified";
    bool said = false;
    for (const auto& d : Deliveries()) {
        EXPECT_NE(d.status, "delivered");
        if (d.last_error.find("certificate") != std::string::npos ||
            d.last_error.find("SSL") != std::string::npos)
            said = true;
    }
    EXPECT_TRUE(said) << "the last error does not say the certificate was refused";
}

TEST_F(DispatchTest, StartTlsRequiredIsNeverSkipped) {
    SmtpSink smtp;  // offers no STARTTLS
    smtp.Start();
    StartDaemon(EmailPartner("a", "a@example.org", ""), smtp.url(),
                {"email.starttls=true", "dispatch.channels=email"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& d : Deliveries()) {
                if (d.status == "retrying") return true;
            }
            return false;
        },
        kWait));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_TRUE(smtp.Messages().empty()) << "a message went out without STARTTLS";
    for (const auto& d : Deliveries()) {
        EXPECT_NE(d.status, "delivered");
        if (d.status == "retrying") {
            EXPECT_NE(d.last_error.find("STARTTLS"), std::string::npos) << d.last_error;
        }
    }
}

TEST_F(DispatchTest, WebhookThatHangsPastTheTimeoutIsRetried) {
    SmtpSink smtp;
    smtp.Start();
    HttpReceiver hooks({"/slow=hang:4,200"}, kSecret);
    StartDaemon(HookPartner("slow", hooks.url("/slow"), "json"), smtp.url(),
                {"dispatch.channels=email,webhook", "dispatch.timeout_ms=1000"});
    Submit(RedReport());
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, kWait));
    for (const auto& d : Deliveries()) {
        EXPECT_EQ(d.status, "delivered") << d.partner << ": " << d.last_error;
        if (d.channel == "webhook") {
            EXPECT_EQ(d.attempts, 2);
        }
    }
    EXPECT_EQ(hooks.Requests("/slow").size(), 1u);  // the hung one never finished
}

}  // namespace
