#include "ldis/engine/channels.hpp"

#include <boost/json.hpp>

namespace ldis::engine {
namespace {

using Kind = DeliveryOutcome::Kind;

DeliveryOutcome Verdict(Kind kind, std::string error = {}, std::int64_t retry_after_ms = -1) {
    return {0, kind, std::move(error), retry_after_ms};
}

// Notify's first error as "Name: message", or "" when the body is not Notify's shape.
std::string NotifyError(std::string_view body) {
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(body, ec);
    if (ec || !parsed.is_object()) return {};
    const auto* errors = parsed.as_object().if_contains("errors");
    if (errors == nullptr || !errors->is_array() || errors->as_array().empty() ||
        !errors->as_array()[0].is_object())
        return {};
    const auto& first = errors->as_array()[0].as_object();
    const auto text = [&](const char* key) {
        const auto* v = first.if_contains(key);
        return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    return text("error") + ": " + text("message");
}

}  // namespace

std::string Excerpt(std::string_view body) {
    std::string out(body.substr(0, 200));
    for (char& c : out) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    return out;
}

DeliveryOutcome ClassifySmtp(const ChannelAnswer& answer) {
    if (answer.transport_ok) return Verdict(Kind::kDelivered);
    const bool permanent = answer.status >= 500 && answer.status < 600;
    return Verdict(permanent ? Kind::kFailed : Kind::kRetry,
                   "SMTP" +
                       (answer.status > 0 ? " " + std::to_string(answer.status) : std::string()) +
                       ": " + answer.transport_error);
}

DeliveryOutcome ClassifyWebhook(std::string_view format, const ChannelAnswer& answer,
                                std::int64_t now_ms) {
    if (!answer.transport_ok) return Verdict(Kind::kRetry, "HTTP: " + answer.transport_error);
    const std::int64_t retry_after = ParseRetryAfter(answer.retry_after, now_ms);
    const std::string status = "HTTP " + std::to_string(answer.status);
    if (answer.status >= 200 && answer.status < 300) {
        // Teams' connectors answer a throttled request with 200 and the 429 in the body.
        if (format == "teams" && answer.body.find("429") != std::string::npos)
            return Verdict(Kind::kRetry,
                           "Teams throttled the request (429 in a " + status +
                               " body): " + Excerpt(answer.body),
                           retry_after);
        return Verdict(Kind::kDelivered);
    }
    const long code = answer.status;
    const bool retry = code == 429 || code == 408 || code == 425 || code >= 500;
    return Verdict(retry ? Kind::kRetry : Kind::kFailed, status + ": " + Excerpt(answer.body),
                   retry_after);
}

DeliveryOutcome ClassifyNotify(const ChannelAnswer& answer, std::int64_t now_ms) {
    if (!answer.transport_ok) return Verdict(Kind::kRetry, "HTTP: " + answer.transport_error);
    if (answer.status == 200 || answer.status == 201) return Verdict(Kind::kDelivered);
    std::string what = NotifyError(answer.body);
    if (what.empty()) what = Excerpt(answer.body);
    // Notify: 400 BadRequestError/ValidationError and 403 AuthError will not get better by
    // waiting; 429 RateLimitError/TooManyRequestsError and 5xx will.
    const bool retry = answer.status == 429 || answer.status >= 500;
    return Verdict(retry ? Kind::kRetry : Kind::kFailed,
                   "Notify HTTP " + std::to_string(answer.status) + ": " + what,
                   ParseRetryAfter(answer.retry_after, now_ms));
}

}  // namespace ldis::engine
