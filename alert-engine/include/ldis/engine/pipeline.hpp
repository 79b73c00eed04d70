#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/delivery.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/partners.hpp"
#include "ldis/engine/report.hpp"

namespace ldis::engine {

// The alert pipeline's decisions as values (issue 14), in the order a report meets them:
//
//   Correlate -> Regrade -> NextVersion -> PlanDeliveries
//
// which signal a report joins, what the signal's grade becomes, what that makes of its
// alert, and who is sent the new version with what deadline. Pure: the store reads what
// they need, calls them inside the report's transaction and persists what they decide
// (store/signals.cpp, store/alerts.cpp, store/routing.cpp); each rule has its unit test
// (tests/unit/pipeline_test.cpp), without SQLite.

// ---- Correlate: which signal a report belongs to ----

// What a report correlates on: the same family of substance, in the same district, seen
// within the correlation window (grading.window) of the signal's reports.
struct SignalKey {
    std::string family;  // the panel's word (CorrelationFamily) when no rule family matched
    std::string district;
    std::int64_t seen_ms = 0;    // observed_at, else submitted_at, else now
    Drill drill = Drill::kNone;  // an exercise's or a test's reports make signals of their own
};

// The key of a report whose own facts are `own`.
SignalKey KeyOf(const Report& report, const SignalFacts& own, const Substances& substances,
                std::int64_t now_ms);

// A stored signal of the key's family and district, as correlation sees it.
struct SignalSpan {
    std::int64_t id = 0;
    std::int64_t first_seen_ms = 0;
    std::int64_t last_seen_ms = 0;
    Drill drill = Drill::kNone;
};

// The signal a report of `key` joins: of `candidates` (signals of its family and district),
// the newest whose reports were seen within `window_ms` of it, either side, and that is as
// real as it (a drill's report never joins a real signal, nor a real report a drill's).
// None: the report opens a new signal.
std::optional<std::int64_t> Correlate(const SignalKey& key,
                                      const std::vector<SignalSpan>& candidates,
                                      std::int64_t window_ms);

// ---- Regrade: the signal's grade on all its reports ----

// A coordinator's override of a signal's level (POST /api/v1/signals/{id}/override).
struct SignalOverride {
    std::int64_t signal_id = 0;
    std::string level;   // what the coordinator set; "" when there is none
    std::string reason;  // their sentence
    std::string by;      // who
    std::int64_t at_ms = 0;
    std::string rules_level;      // what the rules give now
    std::string alert_reference;  // the signal's live alert after the change, if any
};

// The grade an alert shows: the rules', or a coordinator's override of its level, which
// then comes first among the rules with a fixed reason (partners read that a coordinator
// set it, never the coordinator's words or name). An override holds until it is lifted.
Grade WithOverride(Grade grade, const SignalOverride& held);

struct Regrading {
    SignalFacts facts;  // the signal's, with the new report's
    Grade rules;        // what the rules give
    Grade shown;        // what the alert shows: the rules', or the override
};

// The signal's grade after a report with facts `own` joins it. `before` is the signal's
// stored facts (no numbers for a new signal); `new_source` whether the report's
// organisation is new to the signal (independent sources are distinct organisations).
// Facts grow by the report's: no re-reading of every report.
Regrading Regrade(const SignalFacts& before, const SignalFacts& own, bool new_source,
                  const SignalOverride& held, const Rules& rules, const Substances& substances);

// The signal's grade on its stored facts alone, with no new report: when a coordinator sets
// or lifts an override (the rules may have changed since the last report, so they run
// again, as a replay would).
Regrading Regrade(const SignalFacts& facts, const SignalOverride& held, const Rules& rules);

// The text of a version a coordinator's action made (approve, confirm, update, cancel): the
// signal's grade on the version's stored facts (`facts_text`) under `held`, its override,
// shown at the version's own `level` (the rules may have changed since it was graded), and
// rendered from the signal's `documents` with `meta`'s number, status and history. Without
// it, a coordinator's v2 kept v1's text, "Share only this official version, … v1" included.
RenderedAlert RenderVersionAgain(const AlertTemplates& templates, const Rules& rules,
                                 const Substances& substances, const AlertMeta& meta,
                                 const std::vector<std::string>& documents,
                                 std::string_view facts_text, std::string_view level,
                                 const SignalOverride& held);

// ---- NextVersion: what the grade makes of the signal's alert ----

// A signal's live alert (draft, issued or updated), as the next version needs it.
struct LiveAlert {
    AlertStatus status = AlertStatus::kDraft;
    int version = 0;
    Level level = Level::kNone;     // the level its latest version shows
    std::int64_t routed_at_ms = 0;  // when partners were last sent a version of it
};

// What a new grade of the signal makes of its alert.
struct VersionDecision {
    enum class Kind {
        kNone,    // no alert and nothing to alert about: the grade is only recorded
        kCreate,  // the signal's first alert, version 1
        kRevise,  // the next version of its live alert (never a second alert)
    } kind = Kind::kNone;
    AlertStatus status = AlertStatus::kDraft;
    int version = 0;
    bool provisional = false;       // issued before a coordinator confirmed it
    std::string audience;           // professionals, services or public
    bool newly_issued = false;      // goes out to partners for the first time now
    bool ask_coordinators = false;  // a new draft, or a draft a report of unverified origin
                                    // raised to red: the coordinators are asked to approve it
    bool page = false;              // a provisional red issued at once: coordinators are paged
    bool route_now = false;         // partners get this version now; otherwise the update
                                    // throttle holds it for the next flush
    std::string audit_action;       // "alert.created" or "alert.version"
};

// The next version of a signal's alert for a new grade at `level`, by `policy`, from a
// report of a `trusted` source (or a coordinator). The rules, each named:
//  - one alert per signal: a live alert takes a new version, never a second alert;
//  - the policy decides a new alert's status (DecidePolicy): red issued at once and
//    provisional, amber and green drafts; anything a report of unverified origin would
//    issue waits as a draft;
//  - a draft turning red is issued at once, as a new red alert would be, and is provisional;
//  - a new draft, or a draft that an unverified report raised to red, asks the coordinators;
//  - a provisional red issued at once pages the coordinators;
//  - the update throttle: partners get a new version at once only when the alert is new,
//    newly issued, still a draft, or changes level; otherwise at most once per
//    `update_interval_ms` after the last version they were sent.
VersionDecision NextVersion(const std::optional<LiveAlert>& live, Level level, const Policy& policy,
                            bool trusted, std::int64_t now_ms, std::int64_t update_interval_ms);

// An alert's reference: the prefix, the year and its number in that year, from 1, four
// digits at least ("KM-2026-0007"). `alerts_this_year` is how many the year already has.
std::string AlertReference(std::string_view prefix, int year, std::int64_t alerts_this_year);

// How long a partner has to acknowledge a version before its escalation contact is told, in
// ms: red and amber have their windows; green and cancellations have none (0).
std::int64_t AckWindowMs(Level level, bool cancellation, std::int64_t red_ack_ms,
                         std::int64_t amber_ack_ms);

// ---- PlanDeliveries: who is sent a version, and by when they acknowledge ----

// One row the outbox is to send.
struct Delivery {
    std::string_view kind = kKindAlert;  // delivery.hpp's kinds
    std::string partner;                 // "" for the MQTT document
    std::string contact;
    std::string slot;  // "partner/contact" first used: a fallback keeps its slot
    Channel channel = Channel::kEmail;
    std::string address;
    std::int64_t ack_due_ms = 0;  // 0: no acknowledgement asked
    std::string detail = "{}";    // what the message needs beyond the version (JSON)
    bool operator==(const Delivery&) const = default;
};

// The version to route, as routing needs it.
struct VersionToRoute {
    AlertStatus status = AlertStatus::kDraft;
    Level level = Level::kNone;
    std::string authority;
    std::string district;
    std::string audience = "professionals";
    bool ask_coordinators = false;  // NextVersion's: a draft to approve
    bool page = false;              // NextVersion's: a provisional red issued at once
};

// A notice of `kind` to every contact of the coordinators' partner on an enabled channel.
std::vector<Delivery> CoordinatorNotices(const Partners* partners, const std::set<Channel>& enabled,
                                         std::string_view kind, const std::string& detail = "{}");

// The deliveries of a version, by rule:
//  - a draft reaches only the coordinators, and only when it asks them to approve it;
//  - an expired alert reaches no one;
//  - an issued, updated or cancelled version reaches the partners that Partners::Route
//    chooses (a cancellation exactly the earlier recipients; an update the earlier ones
//    through the contact last used, and any new subscriber), each with the level's
//    acknowledgement deadline (AckWindowMs; none for a cancellation or green);
//  - the alert document goes to the broker on its level's topic when MQTT is enabled;
//  - a provisional red issued at once also pages the coordinators.
// `earlier` is each slot's latest recipient of the alert's earlier versions.
std::vector<Delivery> PlanDeliveries(const VersionToRoute& version,
                                     const std::vector<Recipient>& earlier,
                                     const Partners* partners, const DispatchPolicy& dispatch,
                                     std::int64_t now_ms);

// ---- Federation (issue 16 §1): a peer's versions at this instance ----

// What this instance's policy does with a peer's version of a level ([federation.policy]):
// forward it to its own partners at once, put it before its coordinators to adopt or
// decline, or only record it.
enum class FederatedPolicy { kForward, kReview, kRecord };
std::string_view ToString(FederatedPolicy policy);
bool ParseFederatedPolicy(std::string_view text, FederatedPolicy& out);

// What becomes of a version received from a peer: "forwarded", "review" or "recorded". An
// update or cancellation of an alert this instance forwarded (or its coordinators adopted)
// is forwarded whatever its level, so that the partners who had the alert hear that it
// changed or ended; otherwise the policy of its level decides.
std::string_view FederatedDecision(FederatedPolicy for_level, bool forwarded_before);

// The deliveries of a peer's version this instance forwards: its own partners who
// subscribe to the level and area, as for an alert of its own (a cancellation exactly the
// earlier recipients, an update the earlier ones and any new subscriber), each with the
// level's acknowledgement deadline; `detail` is what the message renders (the peer's
// words). No MQTT document and no page: the peer's alert is not this instance's.
std::vector<Delivery> PlanForwarded(const VersionToRoute& version,
                                    const std::vector<Recipient>& earlier, const Partners* partners,
                                    const DispatchPolicy& dispatch, std::int64_t now_ms,
                                    const std::string& detail);

// How a peer's version is routed here: a "Cancel" is a cancellation, a version after the
// first an update, the first an issue; an unknown level routes as none (reaches no one).
VersionToRoute ForwardedRoute(std::string_view msg_type, int version, std::string_view level,
                              std::string authority, std::string district);

// Each slot's latest recipient (`earlier` above), from an alert's deliveries in the order
// they were queued: a fallback stands in place of the contact it replaced, in that
// contact's place in the list.
std::vector<Recipient> LatestPerSlot(std::vector<Recipient> in_order);

// The escalation of an alert whose `partner` has not confirmed by its deadline what it did
// (issue 17 §4): `said` is the most it answered, none (not even acknowledged) or a bare
// "received". A message to the partner's escalation contact, saying how long they had and
// whether they acknowledged at all. None when the partner confirmed its actions
// (ConfirmsAction), has no escalation contact, or its channel is off.
std::optional<Delivery> Escalation(const Partners& partners, std::string_view partner, Level level,
                                   Answer said, const DispatchPolicy& dispatch);

}  // namespace ldis::engine
