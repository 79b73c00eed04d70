// Each channel's reading of the answers partners' systems give, from answers recorded from
// (or documented by) the real services: Teams' 200 with a 429 inside, Slack's error words,
// GOV.UK Notify's error bodies, SMTP reply codes.
#include "ldis/engine/channels.hpp"

#include <gtest/gtest.h>

namespace {

using ldis::engine::ChannelAnswer;
using ldis::engine::ClassifyNotify;
using ldis::engine::ClassifySmtp;
using ldis::engine::ClassifyWebhook;
using Verdict = ldis::engine::DeliveryOutcome::Kind;

constexpr std::int64_t kFixedNow = 1764000000000;  // a fixed clock: the verdicts are pure

ChannelAnswer Http(long status, std::string body, std::string retry_after = {}) {
    ChannelAnswer a;
    a.status = status;
    a.body = std::move(body);
    a.retry_after = std::move(retry_after);
    return a;
}

ChannelAnswer NoAnswer(std::string error, long status = 0) {
    ChannelAnswer a;
    a.transport_ok = false;
    a.transport_error = std::move(error);
    a.status = status;
    return a;
}

TEST(ChannelsTest, TeamsSaysThrottledInsideA200) {
    // What a Teams incoming webhook answers when it throttles: 200, and the 429 in words.
    const auto throttled = ClassifyWebhook(
        "teams",
        Http(200,
             "Microsoft Teams endpoint returned HTTP error 429 with ContextId "
             "tcid=0,server=msgapi-production-weu-azsc2-4-53,cv=k2dG3Z9vqkWB4tI0hdT4Eg.0."),
        kFixedNow);
    EXPECT_EQ(throttled.kind, Verdict::kRetry);
    EXPECT_NE(throttled.error.find("Teams throttled the request (429 in a HTTP 200 body)"),
              std::string::npos)
        << throttled.error;
    EXPECT_EQ(ClassifyWebhook("teams", Http(200, "1"), kFixedNow).kind, Verdict::kDelivered);
    // The same words from a generic receiver are its own business: a 200 is delivered.
    EXPECT_EQ(ClassifyWebhook("json", Http(200, "{\"note\":\"429 rows\"}"), kFixedNow).kind,
              Verdict::kDelivered);
    const auto refused = ClassifyWebhook(
        "teams", Http(400, "Bad payload received by generic incoming webhook."), kFixedNow);
    EXPECT_EQ(refused.kind, Verdict::kFailed);
    EXPECT_EQ(refused.error, "HTTP 400: Bad payload received by generic incoming webhook.");
}

TEST(ChannelsTest, SlackErrorsThatWaitingWillNotMend) {
    EXPECT_EQ(ClassifyWebhook("slack", Http(200, "ok"), kFixedNow).kind, Verdict::kDelivered);
    for (const auto& [status, body] : std::vector<std::pair<long, std::string>>{
             {404, "no_service"},           // the webhook was removed
             {410, "channel_is_archived"},  // the channel was archived
             {403, "action_prohibited"},    // an admin restricted posting
             {400, "invalid_payload"}}) {
        const auto verdict = ClassifyWebhook("slack", Http(status, body), kFixedNow);
        EXPECT_EQ(verdict.kind, Verdict::kFailed) << status << " " << body;
        EXPECT_EQ(verdict.error, "HTTP " + std::to_string(status) + ": " + body);
    }
    const auto limited = ClassifyWebhook("slack", Http(429, "rate_limited", "30"), kFixedNow);
    EXPECT_EQ(limited.kind, Verdict::kRetry);
    EXPECT_EQ(limited.retry_after_ms, 30000);
    EXPECT_EQ(ClassifyWebhook("slack", Http(500, "rollup_error"), kFixedNow).kind, Verdict::kRetry);
    EXPECT_EQ(ClassifyWebhook("slack", Http(503, "<html>\r\n<h1>503</h1>"), kFixedNow).error,
              "HTTP 503: <html>  <h1>503</h1>");
}

TEST(ChannelsTest, WebhooksRetryWhatTimeMendsAndNothingElse) {
    for (long status : {408L, 425L, 429L, 500L, 502L, 503L, 504L})
        EXPECT_EQ(ClassifyWebhook("json", Http(status, ""), kFixedNow).kind, Verdict::kRetry)
            << status;
    for (long status : {301L, 400L, 401L, 403L, 404L, 405L, 410L, 413L, 422L})
        EXPECT_EQ(ClassifyWebhook("json", Http(status, ""), kFixedNow).kind, Verdict::kFailed)
            << status;
    // No answer at all: tried again, with curl's words.
    const auto refused = ClassifyWebhook("json", NoAnswer("Couldn't connect to server"), kFixedNow);
    EXPECT_EQ(refused.kind, Verdict::kRetry);
    EXPECT_EQ(refused.error, "HTTP: Couldn't connect to server");
    // Retry-After as an HTTP date, five seconds after now.
    const auto dated =
        ClassifyWebhook("json", Http(503, "", "Wed, 21 Oct 2015 07:28:00 GMT"), 1445412475000);
    EXPECT_EQ(dated.retry_after_ms, 5000);
    // A long body is cut to 200 bytes on one line.
    const auto long_body = ClassifyWebhook("json", Http(500, std::string(1000, 'x')), kFixedNow);
    EXPECT_EQ(long_body.error.size(), std::string("HTTP 500: ").size() + 200);
}

TEST(ChannelsTest, NotifyReadsItsOwnErrorBodies) {
    EXPECT_EQ(ClassifyNotify(Http(201,
                                  "{\"id\":\"740e5834-3a29-46b4-9a6f-16142fde533a\","
                                  "\"reference\":null,\"content\":{}}"),
                             kFixedNow)
                  .kind,
              Verdict::kDelivered);
    struct NotifyCase {
        long status;
        std::string body;
        Verdict kind;
        std::string error;
    };
    for (
        const auto& c : std::vector<NotifyCase>{
            {429,
             R"({"errors":[{"error":"RateLimitError","message":"Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"}],"status_code":429})",
             Verdict::kRetry,
             "Notify HTTP 429: RateLimitError: Exceeded rate limit for key type LIVE of 3000 "
             "requests per 60 seconds"},
            {429,
             R"({"errors":[{"error":"TooManyRequestsError","message":"Exceeded send limits (250000) for today"}],"status_code":429})",
             Verdict::kRetry,
             "Notify HTTP 429: TooManyRequestsError: Exceeded send limits (250000) for today"},
            {400,
             R"({"errors":[{"error":"BadRequestError","message":"Can't send to this recipient using a team-only API key"}],"status_code":400})",
             Verdict::kFailed,
             "Notify HTTP 400: BadRequestError: Can't send to this recipient using a team-only "
             "API key"},
            {400,
             R"({"errors":[{"error":"ValidationError","message":"phone_number Not a UK mobile number"}],"status_code":400})",
             Verdict::kFailed,
             "Notify HTTP 400: ValidationError: phone_number Not a UK mobile number"},
            {403,
             R"({"errors":[{"error":"AuthError","message":"Invalid token: API key not found"}],"status_code":403})",
             Verdict::kFailed, "Notify HTTP 403: AuthError: Invalid token: API key not found"},
            {500,
             R"({"errors":[{"error":"Exception","message":"Internal server error"}],"status_code":500})",
             Verdict::kRetry, "Notify HTTP 500: Exception: Internal server error"},
            // A proxy's page, not Notify's JSON: the start of it.
            {502, "<html><body>Bad Gateway</body></html>", Verdict::kRetry,
             "Notify HTTP 502: <html><body>Bad Gateway</body></html>"},
        }) {
        const auto verdict = ClassifyNotify(Http(c.status, c.body), kFixedNow);
        EXPECT_EQ(verdict.kind, c.kind) << c.body;
        EXPECT_EQ(verdict.error, c.error);
    }
    EXPECT_EQ(
        ClassifyNotify(NoAnswer("Operation timed out after 20000 milliseconds"), kFixedNow).kind,
        Verdict::kRetry);
}

TEST(ChannelsTest, SmtpFiveHundredsArePermanentFourHundredsAreNot) {
    EXPECT_EQ(ClassifySmtp(Http(250, "")).kind, Verdict::kDelivered);
    const auto no_mailbox = ClassifySmtp(NoAnswer("RCPT failed: 550", 550));
    EXPECT_EQ(no_mailbox.kind, Verdict::kFailed);
    EXPECT_EQ(no_mailbox.error, "SMTP 550: RCPT failed: 550");
    EXPECT_EQ(ClassifySmtp(NoAnswer("Login denied", 535)).kind, Verdict::kFailed);
    EXPECT_EQ(ClassifySmtp(NoAnswer("Failed sending data to the peer", 554)).kind,
              Verdict::kFailed);
    for (long code : {421L, 450L, 451L, 452L})
        EXPECT_EQ(ClassifySmtp(NoAnswer("RCPT failed: " + std::to_string(code), code)).kind,
                  Verdict::kRetry)
            << code;
    const auto down = ClassifySmtp(NoAnswer("Couldn't connect to server"));
    EXPECT_EQ(down.kind, Verdict::kRetry);
    EXPECT_EQ(down.error, "SMTP: Couldn't connect to server");
}

}  // namespace
