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
#include "support/processes.hpp"
#include "support/reports.hpp"

using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file

namespace {

OutboxItem Item() {
    OutboxItem it;
    it.id = 42;
    it.kind = "alert";
    it.partner = "ed";
    it.contact = "desk";
    it.address = "desk@example.org";
    it.reference = "KM-2026-0007";
    it.version = 2;
    it.status = "updated";
    it.level = "red";
    it.authority = "Medway";
    it.district = "Medway";
    it.family = "nitazene";
    it.family_label = "nitazenes (high-potency synthetic opioids)";
    it.body = boost::json::serialize(boost::json::object{
        {"summary", "Drug Alert KM-2026-0007 v2: nitazenes in Medway. <b>3</b> affected."},
        {"harms", std::string(5000, 'x')}});
    return it;
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
    EXPECT_NE(m.text.find("<b>3</b>"), std::string::npos);              // plain text as written
    EXPECT_NE(m.html.find("&lt;b&gt;3&lt;/b&gt;"), std::string::npos);  // HTML escaped
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

TEST_F(ChatTemplateTest, TheShippedTemplatesMakeACardAndBlocksWithEverySection) {
    const auto templates = MessageTemplates::LoadDir(Root());
    MessageContext c;
    c.public_url = "https://ldis.example.org";
    c.ack_url = "https://ldis.example.org/ack/t\"x";
    const auto card = boost::json::parse(WebhookBody(templates, "teams", Item(), c));
    const auto& content = card.at("attachments").at(0).at("content");
    EXPECT_EQ(content.at("type"), "AdaptiveCard");
    const auto& body = content.at("body").as_array();
    ASSERT_EQ(body.size(), 5u);  // the headline, then heading and text of summary and harms
    EXPECT_EQ(body[1].at("text"), "One-minute summary");
    EXPECT_EQ(body[3].at("text"), "Harms and warning signs");
    EXPECT_EQ(content.at("actions").at(0).at("url").as_string(),
              c.ack_url);  // a quote survives, escaped
    EXPECT_EQ(content.at("actions").at(1).at("url"),
              "https://ldis.example.org/alerts/KM-2026-0007");
    const auto slack = boost::json::parse(WebhookBody(templates, "slack", Item(), c));
    const auto& blocks = slack.at("blocks").as_array();
    ASSERT_EQ(blocks.size(), 4u);  // header, summary, harms, actions
    EXPECT_EQ(blocks[0].at("type"), "header");
    EXPECT_NE(blocks[1].at("text").at("text").as_string().find("&lt;b&gt;3&lt;/b&gt;"),
              std::string::npos);
    EXPECT_EQ(blocks[3].at("elements").as_array().size(), 2u);
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
