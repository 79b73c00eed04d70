#pragma once

#include <string>
#include <string_view>

#include "ldis/engine/grading.hpp"
#include "ldis/engine/result.hpp"

namespace ldis::engine {

// An alert's status (DESIGN §7). draft -> issued -> updated -> cancelled | expired.
enum class AlertStatus { kDraft, kIssued, kUpdated, kCancelled, kExpired };
std::string_view ToString(AlertStatus status);
bool ParseAlertStatus(std::string_view text, AlertStatus& out);

// What may happen to an alert.
enum class AlertAction { kApprove, kRevise, kCancel, kExpire };
std::string_view ToString(AlertAction action);

// Live alerts (draft, issued, updated) take new versions; cancelled and expired ones
// are closed for good.
bool IsLive(AlertStatus status);

// The status after `action`, or an Error saying why it makes no sense, naming the
// alert: "cannot approve KM-2026-0007: it is cancelled". Pure.
Result<AlertStatus> Transition(std::string_view reference, AlertStatus from, AlertAction action);

// What the per-level policy decides for a new or re-graded alert (ldisd.toml [policy]).
struct PolicyDecision {
    AlertStatus status;    // draft, or issued at once
    bool provisional;      // issued before a coordinator confirmed it
    std::string audience;  // professionals, services or public
};

// Per level, whether a new or re-graded alert is issued at once ("issue") or waits as a
// draft ("draft"): ldisd.toml [policy]. Indexed by Level.
struct Policy {
    bool issue_at_once[4] = {false, false, false, true};  // none, green, amber, red
};

// Red goes out at once to professionals by default, provisional until a coordinator
// confirms it; amber and green wait as drafts; the public audience always waits for a
// coordinator, whatever the policy says.
PolicyDecision DecidePolicy(Level level, std::string_view audience = "professionals",
                            const Policy& policy = Policy{});

}  // namespace ldis::engine
