#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>

#include "ldis/engine/answers.hpp"
#include "ldis/engine/partners.hpp"
#include "ldis/engine/result.hpp"

namespace ldis::engine {

// A delivery's status (DESIGN §7): queued -> sending -> delivered | retrying | failed.
enum class DeliveryStatus { kQueued, kSending, kDelivered, kRetrying, kFailed };
std::string_view ToString(DeliveryStatus status);

// What a delivery carries:
//   alert       an alert version to a subscribed partner (or its fallback contact);
//   approval    a draft, to the coordinators, asking for approval;
//   page        a provisional red alert issued at once, to the coordinators;
//   escalation  an unacknowledged alert, to the partner's escalation contact;
//   dead_letter a delivery that failed for good, to the coordinators;
//   unsubscribe a recipient asked to stop these messages, to the coordinators;
//   mqtt        the alert document on ldis/v1/alerts/{level}/{authority};
//   feed_silent an expected feed silent past its limit, to the coordinators (no alert);
//   feed_back   that feed sending again, to the coordinators (no alert);
//   federation  an alert version offered to the peer instances, signed CAP on
//               ldis/v1/federation/{this instance}/alerts (issue 16 §1);
//   federated   a peer's alert version forwarded to this instance's partners (no alert of
//               its own: the detail holds what it renders).
inline constexpr std::string_view kKindAlert = "alert";
inline constexpr std::string_view kKindApproval = "approval";
inline constexpr std::string_view kKindPage = "page";
inline constexpr std::string_view kKindEscalation = "escalation";
inline constexpr std::string_view kKindDeadLetter = "dead_letter";
inline constexpr std::string_view kKindUnsubscribe =
    "unsubscribe";  // a request, to the coordinators
inline constexpr std::string_view kKindMqtt = "mqtt";
inline constexpr std::string_view kKindFeedSilent = "feed_silent";
inline constexpr std::string_view kKindFeedBack = "feed_back";
inline constexpr std::string_view kKindFederation = "federation";
inline constexpr std::string_view kKindFederated = "federated";

// The kind named `text`, as one of the constants above; none for a name that is not one.
std::optional<std::string_view> KindNamed(std::string_view text);

// What a delivery of `kind` that failed for good becomes: the same kind to the partner's
// next contact, and a dead letter to the coordinators. None for the coordinators' own
// notices (a dead letter about a dead letter would never end): they are only logged.
std::optional<std::string_view> FallsBackAs(std::string_view kind);

// How the dispatcher treats failures, and what the outbox writer needs to route.
struct DispatchPolicy {
    std::set<Channel> enabled{Channel::kEmail, Channel::kWebhook, Channel::kNotifySms,
                              Channel::kNotifyEmail, Channel::kMqtt};
    int max_attempts = 10;
    std::int64_t retry_base_ms = 2000;               // the first retry waits about this long
    std::int64_t retry_max_ms = 600000;              // no wait is longer than this
    std::int64_t red_ack_ms = 4LL * 3600 * 1000;     // DESIGN §6: acknowledge within 4 h
    std::int64_t amber_ack_ms = 24LL * 3600 * 1000;  // and 24 h
    // A new report in a live signal makes a new version; unless the level changed, it
    // reaches partners at most once per this interval (the latest version then).
    std::int64_t update_interval_ms = 15LL * 60 * 1000;
    // Federation (issue 16 §1): where this instance offers its versions to its peers
    // (wire::FederationTopic; "" when it has none), and the levels it offers.
    std::string federation_topic;
    std::set<Level> federation_offer;
    // Levels offered only in some districts (e.g. amber where the district borders the
    // peer's area): the level's districts. A level offered and not here: every district.
    std::map<Level, std::set<std::string>> federation_offer_districts;
};

// The wait before attempt `attempts + 1`, after `attempts` failed: exponential from
// `retry_base_ms`, capped at `retry_max_ms`, with "equal jitter" (half fixed, half random)
// so that many deliveries failing together do not retry together. A server's
// Retry-After (ms, or < 0 for none) wins when it is longer. Pure given `rng`.
std::int64_t RetryDelayMs(const DispatchPolicy& policy, int attempts, std::int64_t retry_after_ms,
                          std::mt19937_64& rng);

// Acknowledgement tokens: "<delivery id>.<expiry, unix s>.<HMAC-SHA256, base64url>",
// signed with the store's key. Pure.
std::string MakeAckToken(std::string_view key, std::int64_t delivery_id, std::int64_t expires_s);
struct AckClaim {
    std::int64_t delivery_id = 0;
    std::int64_t expires_s = 0;
};
// The token's claim, or an Error saying whether it is malformed, tampered or expired.
Result<AckClaim> VerifyAckToken(std::string_view key, std::string_view token, std::int64_t now_s);

// One row of the outbox, claimed for sending, with what is needed to render it.
struct OutboxItem {
    std::int64_t id = 0;
    std::string kind;
    std::string partner;
    std::string contact;
    Channel channel = Channel::kEmail;
    std::string address;
    int attempts = 0;    // including this one
    std::string detail;  // JSON: what a notice is about
    std::int64_t ack_expires_s = 0;
    // The alert version it carries.
    std::string reference;
    int version = 0;
    std::string status;  // of that version: draft, issued, updated, cancelled
    std::string level;
    std::string confidence;
    std::string audience;
    bool provisional = false;
    std::string authority;
    std::string district;
    std::string family;
    std::string family_label;  // "nitazenes (high-potency synthetic opioids)"
    std::int64_t issued_at_ms = 0;
    std::int64_t created_at_ms = 0;  // of the version
    std::int64_t valid_until_ms = 0;
    std::string body;   // the version's sections as JSON
    std::string drill;  // "" for a real alert, "exercise" or "test" (Drill): marked first
    // The photos a coordinator chose for this version (issue 17 §3), as the version keeps
    // them: a JSON array of {"id", "sha1", "bytes", "width", "height"}; "" for none.
    std::string photos;
};

// What became of one attempt.
struct DeliveryOutcome {
    std::int64_t id = 0;
    enum class Kind { kDelivered, kRetry, kFailed } kind = Kind::kDelivered;
    std::string error;                 // for kRetry and kFailed: what the channel said
    std::int64_t retry_after_ms = -1;  // the server's Retry-After, if any
};

// One delivery as a coordinator reads it.
struct DeliveryRow {
    std::int64_t id = 0;
    std::string reference;
    int version = 0;
    std::string kind;
    std::string partner;
    std::string contact;
    std::string channel;
    std::string address;
    std::string status;
    int attempts = 0;
    std::int64_t created_at_ms = 0;
    std::int64_t updated_at_ms = 0;
    std::int64_t delivered_at_ms = 0;
    std::int64_t acknowledged_at_ms = 0;
    std::int64_t ack_due_ms = 0;  // 0: no acknowledgement asked
    std::int64_t fallback_of = 0;
    std::string last_error;
    std::string level;  // of the version delivered
    // What the partner said it did (issue 17 §4): an Answer's word, "" before any.
    std::string answer;
    std::string answer_note;  // scrubbed, with "actions"
    std::int64_t answered_at_ms = 0;
    // The photos of the version delivered (VersionPhotos reads it), "" when none.
    std::string photos;
    // Set by RequestUnsubscribe when the request had been made before (nothing was sent).
    bool unsubscribe_already_requested = false;
};

}  // namespace ldis::engine
