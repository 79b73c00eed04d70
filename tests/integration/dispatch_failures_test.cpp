// Dispatch end to end when things fail: an SMTP outage, webhook retries with one idempotency
// key, a permanent failure's fallback, Notify's errors, escalation, a kill during fan-out,
// and TLS to the relay that is never skipped (dispatch_fixture.hpp).
#include "integration/dispatch_fixture.hpp"

namespace ldis::test::dispatch {

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
        EXPECT_EQ(StringOf(requests[0].at("headers").at("idempotency-key")),
                  StringOf(requests[1].at("headers").at("idempotency-key")))
            << path;
        EXPECT_TRUE(requests[1].at("signature_ok").as_bool()) << path;
    }
    // Retry-After: 2 was honoured.
    const auto throttled = hooks.Requests("/throttled");
    EXPECT_GE(throttled[1].at("at").as_double() - throttled[0].at("at").as_double(), 1.9);
    // The generic format is the alert document.
    const auto doc = ParseObject(StringOf(hooks.Requests("/flaky")[1].at("body")));
    EXPECT_EQ(StringOf(doc.at("schema")), "ldis.alert/1");
    EXPECT_EQ(StringOf(doc.at("level")), "red");
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
        const std::string text = StringOf(m.at("parts").as_array().at(1).at("text"));
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
    EXPECT_EQ(StringOf(sms[0].at("jwt_error")), "");
    const auto body = ParseObject(StringOf(sms[0].at("body")));
    EXPECT_EQ(StringOf(body.at("phone_number")), "+447700900123");
    EXPECT_EQ(StringOf(body.at("template_id")), "sms-template");
    EXPECT_FALSE(StringOf(body.at("reference")).empty());
    EXPECT_NE(StringOf(body.at("personalisation").at("ack_url")).find("/ack/"), std::string::npos);
    const auto email = notify.Requests("/v2/notifications/email");
    ASSERT_EQ(email.size(), 1u);  // a ValidationError is not retried
    EXPECT_EQ(StringOf(email[0].at("jwt_error")), "");
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
        EXPECT_NE(StringOf(m.at("parts").as_array().at(1).at("text"))
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
                const std::string text = StringOf(m.at("parts").as_array().at(1).at("text"));
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
        EXPECT_NE(StringOf(m.at("parts").as_array().at(1).at("text"))
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
        EXPECT_EQ(StringOf(m.at("login")), "ldis");
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

}  // namespace ldis::test::dispatch
