#include "ldis/engine/channels.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <ctime>

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

std::int64_t ParseRetryAfter(std::string_view value, std::int64_t now_ms) {
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r' || value.back() == '\n'))
        value.remove_suffix(1);
    if (value.empty()) return -1;
    std::int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc() && end == value.data() + value.size())
        return seconds < 0 ? -1 : std::min<std::int64_t>(seconds, 86400) * 1000;
    // An HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT".
    std::tm tm{};
    const std::string text(value);
    if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return -1;
    const std::int64_t at_ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
    return std::max<std::int64_t>(0, at_ms - now_ms);
}

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
