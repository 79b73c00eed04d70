#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ldis/engine/delivery.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/result.hpp"

namespace ldis::engine {

// A peer instance's alert version at this instance (issue 16 §1): what its signed CAP says
// (ReadCap, cap.hpp), kept in the store's `federated` table with what became of it.

struct FederatedVersion {
    std::string peer;        // the instance that issued it ("medway")
    std::string identifier;  // CAP <identifier>: "KM-2026-0007-v2"
    std::string reference;   // "KM-2026-0007"
    int version = 0;
    std::string msg_type;    // Alert, Update, Cancel
    std::string cap_status;  // Actual, Exercise, Test
    Level level = Level::kNone;
    std::string authority;
    std::string district;
    std::string family;    // the peer's words for the substance ("nitazenes")
    std::string headline;  // CAP <headline>
    std::string description;
    std::string instruction;
    std::string sent;  // CAP <sent>
    std::string audience = "professionals";
    std::uint64_t sequence = 0;  // the envelope's
    std::string cap;             // the document as signed
};

// One row of the store's `federated` table, as the dashboard shows it.
struct FederatedRow {
    std::int64_t id = 0;
    std::string peer;
    std::string identifier;
    std::string reference;
    int version = 0;
    std::string msg_type;
    std::string cap_status;
    std::string level;
    std::string authority;
    std::string district;
    std::string headline;
    std::int64_t received_at_ms = 0;
    std::string decision;  // forwarded, review, recorded, adopted, declined
    std::string decided_by;
    std::int64_t decided_at_ms = 0;
};

// What storing a peer's version did.
struct FederatedOutcome {
    bool stored = false;  // false: this instance had the version already (one version, once)
    std::string decision;
    int deliveries = 0;  // forwarded to this many of its partners' contacts
};

// How many of this instance's partners were sent a peer's alert (any version) and how many
// acknowledged it: the counts sent back to the peer (issue 16 §1, "acknowledgements roll
// up"), and what the peer shows beside its own.
struct ForwardedAcks {
    std::string peer;       // whose alert: the issuing instance
    std::string reference;  // in its reference
    int partners = 0;
    int acknowledged = 0;
    bool operator==(const ForwardedAcks&) const = default;
};

// The counts message, JSON: {"for", "reference", "partners", "acknowledged"}. Pure.
std::string AcksJson(const ForwardedAcks& acks);
// Reads a peer's counts message, hostile: the instance it is for, an LDIS reference, whole
// numbers with acknowledged <= partners <= 100000. Pure.
Result<ForwardedAcks> ParseAcks(std::string_view json);

// "forwarded", "adopted": the version went to this instance's partners.
inline bool WentToPartners(std::string_view decision) {
    return decision == "forwarded" || decision == "adopted";
}

// The detail of a forwarded delivery (JSON): everything its messages render, so that a
// delivery of a peer's version needs no alert of this instance's. Pure.
std::string ForwardedDetail(const FederatedVersion& v, std::string_view peer_name);

// Fills an outbox row of kind "federated" from its detail (reference, version, status,
// level, area, the peer's text as the summary and actions), so that every channel renders it
// as an alert, marked as the peer's (Headline). Other rows are left as they are. Pure.
void ExpandForwarded(OutboxItem& item);

}  // namespace ldis::engine
