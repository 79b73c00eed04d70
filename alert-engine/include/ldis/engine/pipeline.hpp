#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ldis/engine/grading.hpp"
#include "ldis/engine/lifecycle.hpp"

namespace ldis::engine {

// The alert pipeline's decisions as values (issue 14): what a new grade does to a signal's
// alert, how alerts are numbered, how long partners have to acknowledge. Pure: the store
// persists what these decide, and each rule has its unit test (tests/unit/pipeline_test.cpp).

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

}  // namespace ldis::engine
