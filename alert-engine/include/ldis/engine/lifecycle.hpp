#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/grading.hpp"
#include "ldis/engine/report.hpp"
#include "ldis/engine/result.hpp"

namespace ldis::engine {

// An alert's status (DESIGN §7). draft -> issued -> updated -> cancelled | expired.
enum class AlertStatus { kDraft, kIssued, kUpdated, kCancelled, kExpired };
std::string_view ToString(AlertStatus status);
bool ParseAlertStatus(std::string_view text, AlertStatus& out);

// A drill's word in the report, the store and the API: "" (real), "exercise", "test".
std::string_view ToString(Drill drill);
bool ParseDrill(std::string_view text, Drill& out);
// CAP 1.2's <status> for it: "Actual", "Exercise", "Test".
std::string_view CapStatus(Drill drill);
// What every rendering of a drill's message says before anything else, so that no one who
// reads only the first words acts on it: "EXERCISE – NOT A REAL ALERT", "TEST – NOT A
// REAL ALERT"; "" for a real alert. Pure.
std::string_view DrillMarking(Drill drill);

// What may happen to an alert.
enum class AlertAction { kApprove, kRevise, kCancel, kExpire };
std::string_view ToString(AlertAction action);

// Live alerts (draft, issued, updated) take new versions; cancelled and expired ones
// are closed for good.
bool IsLive(AlertStatus status);

// Who an alert is for (DESIGN §6): "professionals", "services" (for people who use drugs)
// or "public". Only a coordinator makes an alert public, and only a public alert is
// published without sign-in (/public/alerts).
const std::vector<std::string>& Audiences();
bool IsAudience(std::string_view text);

// Words a coordinator wrote for an alert: section name (WordingSections()) to text, how
// many things the scrubber found in them that the coordinator chose to send anyway, and
// the audience the coordinator chose ("" keeps the alert's).
struct AlertWording {
    std::map<std::string, std::string> sections;
    int confirmed_findings = 0;
    std::string audience;
    // The photos of the alert's reports to go out with this version (issue 17 §3), by id;
    // unset sends none. At most three, with an approval or an update only.
    std::optional<std::vector<std::string>> photos;
};

// What is wrong with a coordinator's wording for `action` on `reference`, in words they
// understand ("the wording of KM-2026-0007 changes with an update, not a cancel"; "\"all\"
// is not an audience: choose professionals, services or public"), or nullopt. Pure.
std::optional<Error> WordingProblem(std::string_view reference, AlertAction action,
                                    const AlertWording& wording);

// What the audit log keeps of a coordinator's action taking an alert from `from` to `to`
// as `version`, as JSON: the statuses, the version, which sections they wrote (never their
// text) and whether they sent it despite the scrubber's findings, the audience if it
// changed from `audience_before`, and the photos chosen. Pure; every store writes this.
std::string ActionAuditDetail(AlertStatus from, AlertStatus to, int version,
                              const AlertWording& wording, std::string_view audience_before);

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
    // Source types whose reports never issue an alert by themselves ([policy]
    // untrusted_sources): anyone can claim to be "public".
    std::set<std::string, std::less<>> untrusted_sources = {"public", "other"};
};

// Red goes out at once to professionals by default, provisional until a coordinator
// confirms it; amber and green wait as drafts; the public audience always waits for a
// coordinator, whatever the policy says; and so does every alert that a report of
// unverified origin (`trusted` false) would issue.
PolicyDecision DecidePolicy(Level level, std::string_view audience = "professionals",
                            const Policy& policy = Policy{}, bool trusted = true);

// Whether a report may make an alert go out before a person reads it: it came from an
// authenticated source, and its source type is not one the policy marks untrusted. Pure.
bool TrustedSource(Trust trust, std::string_view source_type, const Policy& policy);

}  // namespace ldis::engine
