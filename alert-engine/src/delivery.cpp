#include "ldis/engine/delivery.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

#include "ldis/engine/codec.hpp"

namespace ldis::engine {

std::string_view ToString(DeliveryStatus status) {
    switch (status) {
        case DeliveryStatus::kQueued:
            return "queued";
        case DeliveryStatus::kSending:
            return "sending";
        case DeliveryStatus::kDelivered:
            return "delivered";
        case DeliveryStatus::kRetrying:
            return "retrying";
        case DeliveryStatus::kFailed:
            return "failed";
    }
    return "queued";
}

std::int64_t RetryDelayMs(const DispatchPolicy& policy, int attempts, std::int64_t retry_after_ms,
                          std::mt19937_64& rng) {
    const int doublings = std::clamp(attempts - 1, 0, 30);
    const std::int64_t ceiling =
        std::min(policy.retry_max_ms, policy.retry_base_ms << std::min(doublings, 20));
    const std::int64_t half = std::max<std::int64_t>(ceiling / 2, 1);
    std::uniform_int_distribution<std::int64_t> jitter(0, half);
    const std::int64_t delay = half + jitter(rng);
    return std::max(delay, retry_after_ms);
}

std::string MakeAckToken(std::string_view key, std::int64_t delivery_id, std::int64_t expires_s) {
    const std::string claim = std::to_string(delivery_id) + "." + std::to_string(expires_s);
    return claim + "." + Base64Url(HmacSha256(key, claim));
}

Result<AckClaim> VerifyAckToken(std::string_view key, std::string_view token, std::int64_t now_s) {
    const auto last = token.rfind('.');
    const auto first = token.find('.');
    if (last == std::string_view::npos || first == last)
        return Error{
            "this acknowledgement link is incomplete: copy the whole link from the message"};
    const std::string_view claim = token.substr(0, last);
    AckClaim out;
    const auto number = [](std::string_view text, std::int64_t& n) {
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        return ec == std::errc() && end == text.data() + text.size() && n > 0;
    };
    if (!number(token.substr(0, first), out.delivery_id) ||
        !number(token.substr(first + 1, last - first - 1), out.expires_s))
        return Error{"this acknowledgement link is not one LDIS made"};
    const std::string expected = Base64Url(HmacSha256(key, claim));
    const std::string_view given = token.substr(last + 1);
    // Compare in constant time: the signature is a secret until it matches.
    unsigned char diff = expected.size() == given.size() ? 0 : 1;
    for (std::size_t i = 0; i < std::min(expected.size(), given.size()); ++i)
        diff |= static_cast<unsigned char>(expected[i] ^ given[i]);
    if (diff != 0) return Error{"this acknowledgement link has been altered: it does not verify"};
    if (now_s > out.expires_s)
        return Error{"this acknowledgement link has expired: contact the LDIS coordinators"};
    return out;
}

std::optional<std::string_view> KindNamed(std::string_view text) {
    for (const std::string_view k :
         {kKindAlert, kKindApproval, kKindPage, kKindEscalation, kKindDeadLetter, kKindUnsubscribe,
          kKindMqtt, kKindFeedSilent, kKindFeedBack, kKindFederation, kKindFederated})
        if (k == text) return k;
    return std::nullopt;
}

std::optional<std::string_view> FallsBackAs(std::string_view kind) {
    for (const std::string_view k :
         {kKindAlert, kKindEscalation, kKindMqtt, kKindFederated, kKindFederation})
        if (k == kind) return k;
    return std::nullopt;
}

}  // namespace ldis::engine
