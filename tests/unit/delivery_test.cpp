// Delivery rules and message rendering: backoff, Retry-After, acknowledgement tokens,
// Notify keys and JWTs, MIME and webhook bodies. Pure, no sockets.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ldis/engine/channels.hpp"
#include "ldis/engine/codec.hpp"
#include "ldis/engine/delivery.hpp"
#include "ldis/engine/messages.hpp"
#include "support/grading.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file

namespace {

OutboxItem Item() {
    return ldis::test::RedAlertItem();
}

// A whole alert as RenderAlert writes it (templates/alert/), every section.
OutboxItem WholeAlert() {
    OutboxItem it = Item();
    it.status = "issued";
    it.version = 1;
    it.issued_at_ms = 1764000000000;
    it.created_at_ms = 1764000000000;
    it.valid_until_ms = 1795536000000;
    it.body = boost::json::serialize(boost::json::object{
        {"summary",
         "Drug Alert KM-2026-0007 v1: nitazenes in Medway. 3 affected, 2 died. Act now: warn "
         "the people you work with today and have naloxone ready.\n"},
        {"what",
         "Substance: nitazenes\n- heroin, sold as brown, powder\nWhere: Medway "
         "(community)\nWhen: 2026-11-23 to 2026-11-23\n"},
        {"evidence",
         "3 reports from 2 independent sources (hospital, police). Confidence: corroborated. "
         "Not yet confirmed by a laboratory.\nWhy this level: Two or more people died.\n"},
        {"harms",
         "3 affected; 3 admitted to hospital; 1 in critical care; 2 died.\nWarning signs:\n- "
         "pinpoint pupils\n"},
        {"actions", "Share this alert with your teams today.\n"},
        {"advice", "Do not use alone.\n"},
        {"naloxone", "Call 999; give naloxone.\n"},
        {"report", "Report further cases to LDIS with reference KM-2026-0007.\n"},
        {"contacts", "Medway Council Public Health, ldis@example.org.\n"},
        {"sharing", "Share only this official version, KM-2026-0007 v1.\n"},
        {"acknowledgement",
         "Please acknowledge this alert within 4 hours, and say what you did about it.\n"},
        {"history", "v1 issued (red)\n"}});
    return it;
}

MessageContext Links() {
    MessageContext c;
    c.public_url = "https://ldis.example.org";
    c.from = "LDIS <ldis@example.org>";
    c.ack_url = "https://ldis.example.org/ack/t";
    c.unsubscribe_url = "https://ldis.example.org/unsubscribe/u";
    return c;
}

// Each of `marks` in `text`, each after the one before.
void ExpectInOrder(const std::string& text, const std::vector<std::string>& marks) {
    std::size_t from = 0;
    for (std::size_t i = 0; i < marks.size(); ++i) {
        const auto at = text.find(marks[i], from);
        if (at == std::string::npos) {
            ADD_FAILURE() << marks[i] << " is not "
                          << (i == 0 ? std::string("there") : "after " + marks[i - 1]);
            return;
        }
        from = at + marks[i].size();
    }
}

TEST(DeliveryTest, WhatFailsForGoodFallsBackAsItsOwnKindAndTheCoordinatorsNoticesDoNot) {
    for (const auto kind :
         {kKindAlert, kKindEscalation, kKindMqtt, kKindFederated, kKindFederation})
        EXPECT_EQ(FallsBackAs(std::string(kind)), kind) << kind;
    for (const auto kind : {kKindApproval, kKindPage, kKindDeadLetter, kKindUnsubscribe,
                            kKindFeedSilent, kKindFeedBack})
        EXPECT_FALSE(FallsBackAs(kind).has_value()) << kind;
    EXPECT_FALSE(FallsBackAs("").has_value());
}

TEST(DeliveryTest, BackoffDoublesWithJitterUpToTheCap) {
    DispatchPolicy p;
    p.retry_base_ms = 1000;
    p.retry_max_ms = 8000;
    std::mt19937_64 rng(7);
    for (int attempt = 1; attempt <= 8; ++attempt) {
        const std::int64_t ceiling = std::min<std::int64_t>(8000, 1000LL << (attempt - 1));
        for (int i = 0; i < 50; ++i) {
            const auto d = RetryDelayMs(p, attempt, -1, rng);
            EXPECT_GE(d, ceiling / 2) << attempt;
            EXPECT_LE(d, ceiling) << attempt;
        }
    }
    EXPECT_EQ(RetryDelayMs(p, 1, 30000, rng), 30000);  // Retry-After wins when longer
}

TEST(DeliveryTest, RetryAfterSecondsOrHttpDate) {
    EXPECT_EQ(ParseRetryAfter(" 2\r\n", 0), 2000);
    EXPECT_EQ(ParseRetryAfter("", 0), -1);
    EXPECT_EQ(ParseRetryAfter("soon", 0), -1);
    // 1445412480 s is Wed, 21 Oct 2015 07:28:00 GMT.
    EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480000 - 5000), 5000);
}

TEST(DeliveryTest, AckTokensVerifyAndRefuseTamperingAndExpiry) {
    const std::string key = "secret-key";
    const std::string token = MakeAckToken(key, 123, 2000);
    const auto ok = VerifyAckToken(key, token, 1000);
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ(ok.value().delivery_id, 123);
    std::string forged = token;
    forged[0] = '9';  // another delivery, same signature
    EXPECT_NE(VerifyAckToken(key, forged, 1000).error().message.find("altered"), std::string::npos);
    EXPECT_NE(VerifyAckToken("other-key", token, 1000).error().message.find("altered"),
              std::string::npos);
    EXPECT_NE(VerifyAckToken(key, token, 2001).error().message.find("expired"), std::string::npos);
    EXPECT_FALSE(VerifyAckToken(key, "garbage", 1000).ok());
}

TEST(DeliveryTest, NotifyKeyIsSplitFromTheEndAndTheJwtIsHs256) {
    const std::string api_key =
        "my_key-26785a09-ab16-4eb0-8407-a37497a57506-3d844edf-8d35-48ac-975b-e847b4f122b0";
    const auto key = SplitNotifyKey(api_key);
    ASSERT_TRUE(key.ok());
    EXPECT_EQ(key.value().service_id, "26785a09-ab16-4eb0-8407-a37497a57506");
    EXPECT_EQ(key.value().secret, "3d844edf-8d35-48ac-975b-e847b4f122b0");
    EXPECT_FALSE(SplitNotifyKey("short").ok());
    const std::string jwt = NotifyJwt(key.value(), 1700000000);
    const auto first = jwt.find('.'), last = jwt.rfind('.');
    EXPECT_EQ(*Base64UrlDecode(jwt.substr(0, first)), R"({"typ":"JWT","alg":"HS256"})");
    const auto claims =
        boost::json::parse(*Base64UrlDecode(jwt.substr(first + 1, last - first - 1)));
    EXPECT_EQ(claims.at("iss").as_string(), "26785a09-ab16-4eb0-8407-a37497a57506");
    EXPECT_EQ(claims.at("iat").as_int64(), 1700000000);
    EXPECT_EQ(*Base64UrlDecode(jwt.substr(last + 1)),
              HmacSha256(key.value().secret, jwt.substr(0, last)));
}

TEST(DeliveryTest, EmailIsMultipartAlternativeWithStableMessageIdAndEscapedHtml) {
    const auto templates = MessageTemplates::LoadDir(ldis::test::SourcePath("templates"));
    MessageContext c;
    c.public_url = "https://ldis.example.org";
    c.from = "LDIS <ldis@example.org>";
    c.ack_url = "https://ldis.example.org/ack/t";
    const auto m = RenderEmail(templates, Item(), c);
    EXPECT_EQ(m.subject,
              "[LDIS RED \xE2\x80\x93 Drug Alert] KM-2026-0007 v2: Nitazenes (high-potency "
              "synthetic opioids) in Medway");
    EXPECT_EQ(m.message_id, "<ldis-KM-2026-0007-v2-alert-d42@example.org>");
    EXPECT_EQ(RenderEmail(templates, Item(), c).message_id, m.message_id);
    EXPECT_NE(m.text.find("Brown powder, <b>3</b> bags"), std::string::npos);  // as written
    EXPECT_NE(m.html.find("Brown powder, &lt;b&gt;3&lt;/b&gt; bags"), std::string::npos);
    const std::string mime = m.ToMime(c.from, "desk@example.org", 0);
    const auto alternative = mime.find("Content-Type: multipart/alternative");
    const auto plain = mime.find("Content-Type: text/plain");
    const auto html = mime.find("Content-Type: text/html");
    EXPECT_LT(alternative, plain);
    EXPECT_LT(plain, html);
    EXPECT_NE(mime.find("Subject: =?UTF-8?B?"), std::string::npos);
    EXPECT_NE(mime.find("Message-ID: <ldis-KM-2026-0007-v2-alert-d42@example.org>\r\n"),
              std::string::npos);
    EXPECT_NE(mime.find("X-LDIS-Level: red\r\n"), std::string::npos);
}

// One version to many recipients is rendered once with stand-ins for the links; each
// recipient must still get exactly what rendering for them alone gives (a fresh thread
// starts with nothing cached).
TEST(DeliveryTest, EachRecipientOfAVersionGetsTheirOwnLinksAndMessageId) {
    const auto templates = MessageTemplates::LoadDir(ldis::test::SourcePath("templates"));
    auto context_for = [](const std::string& token) {
        MessageContext c;
        c.public_url = "https://ldis.example.org";
        c.from = "LDIS <ldis@example.org>";
        c.ack_url = "https://ldis.example.org/ack/" + token + "&x=<1>";
        c.unsubscribe_url = "https://ldis.example.org/unsubscribe/" + token;
        return c;
    };
    OutboxItem first = Item();
    OutboxItem second = Item();
    second.id = 43;
    second.address = "other@example.org";
    const auto a = RenderEmail(templates, first, context_for("first"));
    const auto b = RenderEmail(templates, second, context_for("second"));
    EmailMessage alone;
    std::thread([&] { alone = RenderEmail(templates, second, context_for("second")); }).join();
    EXPECT_EQ(b.text, alone.text);
    EXPECT_EQ(b.html, alone.html);
    EXPECT_EQ(b.subject, alone.subject);
    EXPECT_EQ(b.headers, alone.headers);
    EXPECT_EQ(b.message_id, "<ldis-KM-2026-0007-v2-alert-d43@example.org>");
    EXPECT_EQ(a.message_id, "<ldis-KM-2026-0007-v2-alert-d42@example.org>");
    EXPECT_NE(b.text.find("/ack/second&x=<1>"), std::string::npos);
    EXPECT_NE(b.html.find("/ack/second&amp;x=&lt;1&gt;"), std::string::npos);
    EXPECT_EQ(b.text.find("first"), std::string::npos);
    EXPECT_EQ(b.html.find("first"), std::string::npos);
    EXPECT_EQ(b.text.find("MARK"), std::string::npos);
    // A new version is rendered anew, not taken from the cache.
    OutboxItem third = Item();
    third.version = 3;
    EXPECT_NE(RenderEmail(templates, third, context_for("t")).subject.find("v3"),
              std::string::npos);
}

// Issue 17 §6: a partner reading on a phone sees the level in colour with what and where,
// then the action and the Acknowledge button, then the sections without their labels, and
// the record and "Stop these messages" last and apart. The plain text reads in the same order.
TEST(DeliveryTest, TheEmailPutsTheLevelTheActionAndTheButtonFirstAndStopTheseMessagesLast) {
    const auto templates = MessageTemplates::LoadDir(ldis::test::SourcePath("templates"));
    const auto m = RenderEmail(templates, WholeAlert(), Links());
    ExpectInOrder(
        m.html,
        {"<title>[LDIS RED", "id=\"banner\" bgcolor=\"#d4351c\"", "RED &#8211; Drug Alert",
         "Nitazenes (high-potency synthetic opioids) in Medway", "KM-2026-0007 version 1",
         "Act now: warn the people", "id=\"acknowledge\" href=\"https://ldis.example.org/ack/t\"",
         "Please acknowledge this alert within 4 hours", ">What is happening</h2>",
         ">Evidence and confidence</h2>", ">Harms and warning signs</h2>", ">Sharing</h2>",
         "Read this alert in LDIS", "Versions: v1 issued (red)", "id=\"unsubscribe\""});
    // Said once: no summary repeating the banner, no acknowledgement section under the button,
    // no "Medway, Medway", no table of labels.
    for (const std::string absent : {"One-minute summary", "Medway, Medway", ">Acknowledgement<",
                                     ">Version history<", "Area:", "<img", "<script"})
        EXPECT_EQ(m.html.find(absent), std::string::npos) << absent;
    // Outlook and Gmail: every table is layout only, and a dark scheme is declared.
    for (auto at = m.html.find("<table"); at != std::string::npos;
         at = m.html.find("<table", at + 1))
        EXPECT_EQ(m.html.compare(at, 26, "<table role=\"presentation\""), 0)
            << m.html.substr(at, 60);
    EXPECT_NE(m.html.find("<meta name=\"color-scheme\" content=\"light dark\">"),
              std::string::npos);
    EXPECT_NE(m.html.find("@media (prefers-color-scheme: dark)"), std::string::npos);

    ExpectInOrder(m.text, {"[LDIS RED",
                           "RED - Drug Alert: Nitazenes (high-potency synthetic opioids) in Medway",
                           "KM-2026-0007 version 1", "Act now: warn the people",
                           "ACKNOWLEDGE: https://ldis.example.org/ack/t",
                           "Please acknowledge this alert within 4 hours",
                           "\nWHAT IS HAPPENING\nSubstance:", "\nEVIDENCE AND CONFIDENCE\n",
                           "\nHARMS AND WARNING SIGNS\n3 affected", "\nSHARING\n",
                           "Read this alert in LDIS: https://ldis.example.org/alerts/KM-2026-0007",
                           "Stop these messages: https://ldis.example.org/unsubscribe/u"});
    EXPECT_EQ(m.text.rfind("[LDIS RED", 0), 0u);
    EXPECT_EQ(m.text.find("One-minute summary"), std::string::npos);
    EXPECT_EQ(m.text.find("\n\n\n"), std::string::npos) << m.text;  // no ragged gaps
}

TEST(DeliveryTest, EachLevelHasItsColourAndACancellationSaysStopSharing) {
    const auto templates = MessageTemplates::LoadDir(ldis::test::SourcePath("templates"));
    OutboxItem amber = WholeAlert();
    amber.level = "amber";
    const auto a = RenderEmail(templates, amber, Links());
    EXPECT_NE(a.html.find("bgcolor=\"#f47738\" style=\"background-color:#f47738;color:#0b0c0c"),
              std::string::npos);
    EXPECT_NE(a.html.find("Warn the people you work with"), std::string::npos);
    OutboxItem cancelled = WholeAlert();
    cancelled.status = "cancelled";
    const auto c = RenderEmail(templates, cancelled, Links());
    EXPECT_NE(c.html.find("bgcolor=\"#505a5f\""), std::string::npos);
    ExpectInOrder(c.html, {"id=\"banner\"", "Stop sharing this alert: it is cancelled."});
    EXPECT_EQ(c.html.find("Act now"), std::string::npos);
    ExpectInOrder(c.text, {"CANCELLED: [LDIS RED", "This alert is cancelled.",
                           "Stop sharing this alert: it is cancelled."});
    // A peer's alert says whose it is in the banner, before the action.
    OutboxItem peer = WholeAlert();
    peer.kind = "federated";
    peer.detail = R"({"peer_name": "Medway LDIS"})";
    const auto f = RenderEmail(templates, peer, Links());
    ExpectInOrder(f.html,
                  {"id=\"banner\"", "Issued by Medway LDIS &#183; KM-2026-0007", "Act now"});
    ExpectInOrder(f.text, {"Issued by Medway LDIS, KM-2026-0007 version 1", "Act now"});
    // An exercise says so before anything else in the banner.
    OutboxItem drill = WholeAlert();
    drill.drill = "exercise";
    const auto d = RenderEmail(templates, drill, Links());
    const auto h1 = d.html.find("<h1");
    EXPECT_EQ(d.html.compare(d.html.find('>', h1) + 1, 8, "EXERCISE"), 0);
}

// The SMS through GOV.UK Notify gets the same parts in the same order to lay out.
TEST(DeliveryTest, NotifyGetsTheActionBesideTheHeadlineAndTheLink) {
    OutboxItem sms = WholeAlert();
    sms.channel = Channel::kNotifySms;
    sms.address = "+447700900123";
    const auto body = boost::json::parse(NotifyBody(sms, "tpl", Links(), "ref"));
    const auto& p = body.at("personalisation");
    EXPECT_EQ(std::string(p.at("headline").as_string()).rfind("[LDIS RED", 0), 0u);
    EXPECT_EQ(p.at("action"),
              "Act now: warn the people you work with today and have naloxone ready.");
    EXPECT_EQ(p.at("ack_url"), "https://ldis.example.org/ack/t");
}

TEST(DeliveryTest, SlackSectionsStayUnder3000Characters) {
    MessageContext c;
    c.public_url = "https://ldis.example.org";
    const auto body = boost::json::parse(WebhookBody(
        MessageTemplates::LoadDir(ldis::test::SourcePath("templates")), "slack", Item(), c));
    for (const auto& block : body.at("blocks").as_array()) {
        if (block.at("type") == "section") {
            EXPECT_LT(block.at("text").at("text").as_string().size(), 3000u);
        }
        if (block.at("type") == "header") {
            EXPECT_LE(block.at("text").at("text").as_string().size(), 150u);
        }
    }
}

// The chat messages are laid out by templates/chat/, as emails are by templates/email/.
class ChatTemplateTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::filesystem::copy(ldis::test::SourcePath("templates"), dir_ / "templates",
                              std::filesystem::copy_options::recursive);
    }
    void Write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / ("templates/chat/" + name)) << text;
    }
    std::string Root() const { return dir_ / "templates"; }
    ldis::test::TempDir dir_;
};

// Issue 17 §6: the card and the blocks in the email's order: the banner in the level's
// colour, the action, the Acknowledge button, then the sections; never the summary again.
TEST_F(ChatTemplateTest, TheShippedTemplatesPutTheBannerTheActionAndTheButtonFirst) {
    const auto templates = MessageTemplates::LoadDir(Root());
    MessageContext c;
    c.public_url = "https://ldis.example.org";
    c.ack_url = "https://ldis.example.org/ack/t\"x";
    const auto card = boost::json::parse(WebhookBody(templates, "teams", Item(), c));
    const auto& content = card.at("attachments").at(0).at("content");
    EXPECT_EQ(content.at("type"), "AdaptiveCard");
    const auto& body = content.at("body").as_array();
    ASSERT_EQ(body.size(), 7u);  // banner, action, buttons, heading and text of what and harms
    EXPECT_EQ(body[0].at("type"), "Container");
    EXPECT_EQ(body[0].at("style"), "attention");  // red
    EXPECT_EQ(std::string(body[0].at("items").at(0).at("text").as_string()).rfind("\\[LDIS RED", 0),
              0u);
    EXPECT_EQ(body[0].at("items").at(1).at("text"), "KM-2026-0007 version 2");
    EXPECT_EQ(body[1].at("text"),
              "Act now: warn the people you work with today and have naloxone ready.");
    EXPECT_EQ(body[2].at("type"), "ActionSet");
    const auto& buttons = body[2].at("actions").as_array();
    ASSERT_EQ(buttons.size(), 2u);
    EXPECT_EQ(buttons[0].at("title"), "Acknowledge");
    EXPECT_EQ(buttons[0].at("url").as_string(), c.ack_url);  // a quote survives, escaped
    EXPECT_EQ(buttons[1].at("url"), "https://ldis.example.org/alerts/KM-2026-0007");
    EXPECT_EQ(body[3].at("text"), "What is happening");
    EXPECT_EQ(body[4].at("text"), "Brown powder, \\<b\\>3\\</b\\> bags");  // as written
    EXPECT_EQ(body[5].at("text"), "Harms and warning signs");
    EXPECT_EQ(boost::json::serialize(card).find("One-minute summary"), std::string::npos);
    OutboxItem amber = Item();
    amber.level = "amber";
    EXPECT_EQ(boost::json::parse(WebhookBody(templates, "teams", amber, c))
                  .at("attachments")
                  .at(0)
                  .at("content")
                  .at("body")
                  .at(0)
                  .at("style"),
              "warning");

    const auto slack = boost::json::parse(WebhookBody(templates, "slack", Item(), c));
    const auto& blocks = slack.at("blocks").as_array();
    ASSERT_EQ(blocks.size(), 6u);  // header, reference, action, buttons, what, harms
    EXPECT_EQ(blocks[0].at("type"), "header");
    EXPECT_EQ(blocks[1].at("type"), "context");
    EXPECT_EQ(blocks[2].at("text").at("text"),
              "*Act now: warn the people you work with today and have naloxone ready.*");
    EXPECT_EQ(blocks[3].at("type"), "actions");
    EXPECT_EQ(blocks[3].at("elements").as_array().size(), 2u);
    EXPECT_EQ(blocks[3].at("elements").at(0).at("text").at("text"), "Acknowledge");
    EXPECT_EQ(blocks[4].at("text").at("text"),
              "*What is happening*\nBrown powder, &lt;b&gt;3&lt;/b&gt; bags");
    // Without an acknowledgement link: one button, still JSON.
    c.ack_url.clear();
    EXPECT_EQ(boost::json::parse(WebhookBody(templates, "slack", Item(), c))
                  .at("blocks")
                  .at(3)
                  .at("elements")
                  .as_array()
                  .size(),
              1u);
}

TEST_F(ChatTemplateTest, ACouncilMayReorderOrDropSectionsInTheTemplate) {
    Write("slack.json.mustache", R"({"text": {{{fallback}}}, "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": {{{header}}}}}
        {{#harms}},{"type": "section", "text": {"type": "mrkdwn", "text": {{{text}}}}}{{/harms}}
    ]})");
    MessageContext c;
    c.public_url = "https://ldis.example.org";
    const auto slack =
        boost::json::parse(WebhookBody(MessageTemplates::LoadDir(Root()), "slack", Item(), c));
    const auto& blocks = slack.at("blocks").as_array();
    ASSERT_EQ(blocks.size(), 2u);
    EXPECT_EQ(std::string(blocks[1].at("text").at("text").as_string()).substr(0, 3), "xxx");
}

TEST_F(ChatTemplateTest, ATemplateThatDoesNotRenderJsonIsRefusedWithItsName) {
    // The commonest mistake: quotes around a value that is a JSON string already.
    Write("teams.json.mustache", R"({"type": "message", "text": "{{{headline}}}"})");
    try {
        MessageTemplates::LoadDir(Root());
        FAIL() << "a template that renders broken JSON was loaded";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("chat/teams.json.mustache: does not render JSON"), std::string::npos)
            << what;
        EXPECT_NE(what.find("{{{name}}} with no quotes"), std::string::npos) << what;
    }
    // A missing one is named too.
    std::filesystem::remove(dir_ / "templates/chat/teams.json.mustache");
    EXPECT_THROW(MessageTemplates::LoadDir(Root()), std::runtime_error);
}

TEST(DeliveryTest, ChatMarkupInReporterTextIsInert) {
    EXPECT_EQ(SlackEscape("<!channel> <https://evil.example|Naloxone> & more"),
              "&lt;!channel&gt; &lt;https://evil.example|Naloxone&gt; &amp; more");
    const std::string teams = TeamsPlainText("[Naloxone](https://evil.example) *now* _x_");
    EXPECT_EQ(teams, "\\[Naloxone\\]\\(https://evil.example\\) \\*now\\* \\_x\\_");
    // Lines that would become lists or headings stay text.
    EXPECT_EQ(TeamsPlainText("- one\n1. two\n# three"), "\\- one\n1\\. two\n\\# three");
    EXPECT_EQ(TeamsPlainText("brown powder, 2 bags"), "brown powder, 2 bags");
}

TEST(DeliveryTest, WebhookSignatureIsHmacOfTimestampAndBody) {
    EXPECT_EQ(WebhookSignature("k", 1700000000, "{}"),
              "sha256=" + Hex(HmacSha256("k", "1700000000.{}")));
}

}  // namespace

// A version with photos (issue 17 §3): the email names each by its Content-ID after the
// warning, with alt text, and the channel's JPEG goes in a multipart/related beside the
// HTML; Teams and Slack get a link to the photos page behind the acknowledgement token and
// never the photo; a notice carries none; a photo the store no longer holds is left out
// and its alt text stands.
TEST(DeliveryTest, PhotosGoInlineInTheEmailAndAsALinkInChatNeverInANotice) {
    const auto templates = MessageTemplates::LoadDir(ldis::test::SourcePath("templates"));
    MessageContext c;
    c.public_url = "https://ldis.example.org";
    c.from = "LDIS <ldis@example.org>";
    c.ack_url = "https://ldis.example.org/ack/t0k";
    auto item = Item();
    const std::string id = "ph-" + std::string(32, 'a');
    item.photos = "[{\"id\":\"" + id + "\",\"sha1\":\"" + std::string(40, '1') +
                  "\",\"bytes\":4,\"width\":640,\"height\":480},{\"id\":\"../x\"}]";
    auto m = RenderEmail(templates, item, c);
    ASSERT_EQ(m.images.size(), 1u);  // the second is not a photo of ours
    EXPECT_EQ(m.images[0].content_id, id + "@ldis");
    const auto warning = m.html.find("Content warning:");
    const auto image =
        m.html.find("<img src=\"cid:" + id + "@ldis\" alt=\"Photo 1 of 1: the batch");
    EXPECT_NE(warning, std::string::npos);
    EXPECT_NE(image, std::string::npos);
    EXPECT_LT(m.html.find("id=\"acknowledge\""), warning);  // after the button and sections
    EXPECT_NE(m.text.find("PHOTOS OF THE BATCH\nOne photo of the batch comes with this email"),
              std::string::npos);
    // Without its JPEG (purged), the email stays multipart/alternative.
    EXPECT_EQ(m.ToMime(c.from, "desk@example.org", 0).find("multipart/related"), std::string::npos);
    m.images[0].jpeg = std::string("\xFF\xD8\xFF\xD9", 4);
    const std::string mime = m.ToMime(c.from, "desk@example.org", 0);
    const auto related = mime.find("Content-Type: multipart/related; type=\"text/html\"");
    const auto html = mime.find("Content-Type: text/html");
    const auto jpeg = mime.find("Content-Type: image/jpeg");
    EXPECT_LT(mime.find("Content-Type: text/plain"), related);
    EXPECT_LT(related, html);
    EXPECT_LT(html, jpeg);
    EXPECT_NE(mime.find("Content-ID: <" + id + "@ldis>\r\n", jpeg), std::string::npos);
    EXPECT_NE(mime.find("/9j/2Q==", jpeg), std::string::npos);  // the JPEG, base64
    // The same version without photos is not served from the rendering with them.
    EXPECT_TRUE(RenderEmail(templates, Item(), c).images.empty());
    EXPECT_EQ(RenderEmail(templates, Item(), c).html.find("cid:"), std::string::npos);

    for (const std::string format : {"teams", "slack"}) {
        const std::string body = WebhookBody(templates, format, item, c);
        EXPECT_NE(body.find("https://ldis.example.org/ack/t0k/photos"), std::string::npos)
            << format;
        EXPECT_NE(body.find("Content warning"), std::string::npos) << format;
        EXPECT_EQ(body.find(id), std::string::npos) << format;  // a link, not the photo
        boost::json::error_code ec;
        boost::json::parse(body, ec);
        EXPECT_FALSE(ec) << format << ": " << body;
        // Without an acknowledgement link there is no token to open the page with.
        MessageContext plain = c;
        plain.ack_url.clear();
        EXPECT_EQ(WebhookBody(templates, format, item, plain).find("/photos"), std::string::npos);
    }
    auto notice = item;
    notice.kind = "approval";
    EXPECT_TRUE(RenderEmail(templates, notice, c).images.empty());
}
