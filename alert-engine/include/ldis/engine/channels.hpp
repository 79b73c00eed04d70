#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ldis/engine/delivery.hpp"

namespace ldis::engine {

// What a partner's system answered to one delivery, as the dispatcher's transfer saw it.
// Each channel reads its own answers below, as pure functions: the dispatcher only carries
// out the verdict, and the tests read answers recorded from the real services.
struct ChannelAnswer {
    bool transport_ok = true;     // false: no answer at all (refused, timed out, TLS failed)
    std::string transport_error;  // curl's words for that
    long status = 0;              // the HTTP status, or the SMTP reply code (0: none)
    std::string body;             // the HTTP response body
    std::string retry_after;      // the Retry-After header as sent, "" when there was none
};

// The verdicts carry no delivery id (the caller sets it). kRetry: the outbox sends again
// after its backoff, or after retry_after_ms when the server named a time; kFailed: waiting
// will not help (a wrong address, a refused key), so the delivery is dead-lettered and a
// coordinator sees `error`.

// SMTP (curl's smtp:// and smtps://): delivered when the relay accepted the message; a 5xx
// reply is permanent (550 no such mailbox, 552, 554), a 4xx (421, 450, 451, 452) or no
// reply at all is tried again.
DeliveryOutcome ClassifySmtp(const ChannelAnswer& answer);

// A webhook (Teams, Slack, generic JSON). 2xx is delivered, except that Teams' connectors
// answer a throttled request with 200 and "429" in the body. 408, 425, 429 and 5xx are
// tried again (after Retry-After when given); other 4xx (404 a deleted webhook, 410 an
// archived Slack channel, 400 a refused payload) are permanent.
DeliveryOutcome ClassifyWebhook(std::string_view format, const ChannelAnswer& answer,
                                std::int64_t now_ms);

// GOV.UK Notify: 200/201 delivered; 429 (RateLimitError, TooManyRequestsError) and 5xx
// tried again; 400 (BadRequestError, ValidationError) and 403 (AuthError) permanent. The
// error names Notify's own first error ("RateLimitError: Exceeded rate limit ...").
DeliveryOutcome ClassifyNotify(const ChannelAnswer& answer, std::int64_t now_ms);

// Parses an HTTP Retry-After value: delta seconds or an HTTP date. Returns ms from
// `now_ms`, or -1 when absent or unreadable.
std::int64_t ParseRetryAfter(std::string_view value, std::int64_t now_ms);

// The start of a response body on one line (at most 200 bytes), for a delivery's error.
std::string Excerpt(std::string_view body);

}  // namespace ldis::engine
