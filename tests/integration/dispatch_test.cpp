// Dispatch end to end: who receives a red alert on which channel and what it says, an
// exercise marked in each, an amber draft to the coordinators only (dispatch_fixture.hpp).
#include "integration/dispatch_fixture.hpp"

namespace ldis::test::dispatch {

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
    ASSERT_EQ(StringOf(receipt.at("level")), "red");
    const std::string reference = StringOf(receipt.at("alert_id"));

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
    EXPECT_EQ(StringOf(parts[0].at("type")), "multipart/alternative");
    EXPECT_EQ(StringOf(parts[1].at("type")), "text/plain");
    EXPECT_EQ(StringOf(parts[2].at("type")), "text/html");
    const std::string text = StringOf(parts[1].at("text"));
    const std::string html = StringOf(parts[2].at("text"));
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
    for (const auto& m : messages) connections.insert(StringOf(m.at("conn")));
    EXPECT_EQ(connections.size(), 1u);

    // Teams: an Adaptive Card in a message; Slack: Block Kit; both signed.
    const auto teams = hooks.Requests("/teams");
    ASSERT_EQ(teams.size(), 1u);
    EXPECT_TRUE(teams[0].at("signature_ok").as_bool());
    EXPECT_EQ(StringOf(teams[0].at("headers").at("idempotency-key")).rfind("ldis-" + reference, 0),
              0u);
    const auto card = ParseObject(StringOf(teams[0].at("body")));
    EXPECT_EQ(StringOf(card.at("type")), "message");
    const auto& attachment = card.at("attachments").as_array().at(0).as_object();
    EXPECT_EQ(StringOf(attachment.at("contentType")), "application/vnd.microsoft.card.adaptive");
    EXPECT_EQ(StringOf(attachment.at("content").at("type")), "AdaptiveCard");
    EXPECT_FALSE(attachment.at("content").at("body").as_array().empty());
    const auto slack = hooks.Requests("/slack");
    ASSERT_EQ(slack.size(), 1u);
    EXPECT_TRUE(slack[0].at("signature_ok").as_bool());
    const auto blocks = ParseObject(StringOf(slack[0].at("body"))).at("blocks").as_array();
    EXPECT_EQ(StringOf(blocks.at(0).at("type")), "header");
    for (const auto& b : blocks) {
        if (StringOf(b.at("type")) == "section") {
            EXPECT_LT(b.at("text").at("text").as_string().size(), 3000u);
        }
    }

    // MQTT: the alert document on ldis/v1/alerts/red/medway.
    const auto alert = peer_->WaitForTopic("ldis/v1/alerts/red/medway", kWait);
    ASSERT_TRUE(alert);
    const auto doc = ParseObject(alert->payload);
    EXPECT_EQ(StringOf(doc.at("reference")), reference);
    EXPECT_EQ(StringOf(doc.at("level")), "red");

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
    ASSERT_EQ(StringOf(receipt.at("level")), "red");
    const std::string reference = StringOf(receipt.at("alert_id"));
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
        const std::string text = StringOf(parts[1].at("text"));
        EXPECT_EQ(text.rfind(kMark + ": ", 0), 0u) << text.substr(0, 200);
        const std::string html = StringOf(parts[2].at("text"));
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
    const auto card = ParseObject(StringOf(teams[0].at("body")));
    const auto& body = card.at("attachments").at(0).at("content").at("body").as_array();
    const auto& banner = body.at(0).at("items").at(0);  // the title in the coloured banner
    EXPECT_EQ(StringOf(banner.at("text")).rfind(kMark, 0), 0u) << StringOf(banner.at("text"));
    const auto slack = hooks.Requests("/slack");
    ASSERT_EQ(slack.size(), 1u);
    const auto blocks = ParseObject(StringOf(slack[0].at("body"))).at("blocks").as_array();
    EXPECT_EQ(StringOf(blocks.at(0).at("type")), "header");
    EXPECT_EQ(StringOf(blocks.at(0).at("text").at("text")).rfind(kMark, 0), 0u);
    // SMS through Notify: the headline and the summary the template shows.
    const auto sms = notify.Requests("/v2/notifications/sms");
    ASSERT_EQ(sms.size(), 1u);
    const auto personalisation = ParseObject(StringOf(sms[0].at("body"))).at("personalisation");
    EXPECT_EQ(StringOf(personalisation.at("headline")).rfind(kMark, 0), 0u);
    EXPECT_EQ(StringOf(personalisation.at("summary")).rfind(kMark, 0), 0u);
    EXPECT_EQ(StringOf(personalisation.at("drill")), kMark);
    // MQTT: the alert document.
    const auto alert = peer_->WaitForTopic("ldis/v1/alerts/red/medway", kWait);
    ASSERT_TRUE(alert);
    const auto doc = ParseObject(alert->payload);
    EXPECT_EQ(StringOf(doc.at("drill")), "exercise");
    EXPECT_EQ(StringOf(doc.at("title")).rfind(kMark, 0), 0u);
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
    ASSERT_EQ(StringOf(real.at("level")), "red");
    EXPECT_NE(StringOf(real.at("alert_id")), reference);
    EXPECT_TRUE(Eventually(issued_red, kWait));
    EXPECT_EQ(listed(""), 1);
}

TEST_F(DispatchTest, AmberDraftAsksTheCoordinatorsOnceAndReachesNoPartner) {
    SmtpSink smtp;
    smtp.Start();
    StartDaemon(EmailPartner("everyone", "all@example.org", ""), smtp.url());
    const auto receipt = Submit(ldis::test::ValidReport(NewUuid()));
    ASSERT_EQ(StringOf(receipt.at("level")), "amber");
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

// A red alert's first emails do not wait for what is left of an earlier alert's fan-out: a
// partner told of the second batch a minute late could be the one whose client uses it.
TEST_F(DispatchTest, ASecondRedAlertsFirstEmailGoesBeforeWhatIsLeftOfAnEarlierFanOut) {
    SmtpSink smtp(/*delay_ms=*/40);  // a busy relay: each message takes 40 ms
    smtp.Start();
    constexpr int kMedwayPartners = 30;
    std::string partners;
    for (int i = 0; i < kMedwayPartners; ++i) {
        const std::string n = std::to_string(i);
        partners += EmailPartner("medway-" + n, "medway-" + n + "@example.org",
                                 "  authorities = [\"Medway\"]");
    }
    partners += EmailPartner("kent-ed", "kent@example.org", "  authorities = [\"Kent\"]");
    StartDaemon(partners, smtp.url(), {"email.connections=1"});

    ASSERT_EQ(StringOf(Submit(RedReport()).at("level")), "red");
    // Every one of the Medway alert's emails is claimed and waiting for the relay.
    const auto medway_claimed = [&] {
        int sending = 0;
        for (const auto& d : Deliveries())
            if (d.address.rfind("medway-", 0) == 0 && d.status == "sending") ++sending;
        return sending >= kMedwayPartners - 4;
    };
    ASSERT_TRUE(Eventually(medway_claimed, kWait));

    auto kent = RedReport();
    kent["area"] = json::object{{"authority", "Kent"}, {"district", "Swale"}};
    ASSERT_EQ(StringOf(Submit(kent).at("level")), "red");
    ASSERT_TRUE(Eventually([&] { return AllSettled(); }, std::chrono::seconds(30)));

    int medway_before = 0, medway_after = 0;
    bool seen = false;
    for (const auto& m : smtp.Messages()) {
        const std::string to = Recipient(m);
        if (to == "kent@example.org") seen = true;
        if (to.rfind("medway-", 0) == 0) ++(seen ? medway_after : medway_before);
    }
    ASSERT_TRUE(seen);
    EXPECT_EQ(medway_before + medway_after, kMedwayPartners);
    // First in first out, the Kent email would come after every Medway one.
    EXPECT_GE(medway_after, kMedwayPartners / 2) << medway_before << " Medway emails before it";
}

}  // namespace ldis::test::dispatch
