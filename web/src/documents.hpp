#pragma once
// What the HTTP API returns, built without any I/O: JSON documents, CAP 1.2 and Atom.
// Private to web/.

#include <boost/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ldis/engine/store.hpp"

namespace ldis::web {

// Text made safe inside HTML or XML: & < > " ' escaped, control characters dropped.
std::string EscapeMarkup(std::string_view text);

// "2026-11-23T19:00:00+00:00" (CAP's form: no "Z"). "" for 0.
std::string IsoTime(std::int64_t ms);
// Milliseconds since the epoch of "2026-11-23" or an RFC 3339 date-time, or nullopt.
std::optional<std::int64_t> ParseTime(std::string_view text);

boost::json::object AlertJson(const engine::Alert& alert, const std::string& public_url);
// True for a reason a coordinator gives for an audited act (a reveal, an override): 10 to
// 500 characters.
inline bool IsAuditReason(std::string_view reason) {
    return reason.size() >= 10 && reason.size() <= 500;
}

// A signal's override as JSON {level, reason, by, at, rules_level}, or null when none.
boost::json::value OverrideJson(const engine::SignalOverride& override_);
boost::json::object AlertRecordJson(const engine::AlertRecord& record,
                                    const std::string& public_url);

// What the scrubber finds in the words a coordinator wrote for an alert: per section, in
// words ("1 name, 1 street address"; no entry when it finds nothing), and how many
// things in all. Pure.
struct WordingCheck {
    std::vector<std::pair<std::string, std::string>> findings;
    int count = 0;
};
WordingCheck CheckWording(const std::map<std::string, std::string>& sections);

// An alert as the public reads it (/public/alerts, issue 17 §5): what it is, where, what to
// do, when, who issued it; nothing from a report (no counts, no descriptions, no sources).
// Only the sections written for anyone: the advice (a coordinator's words when they wrote
// them) and what to do in an overdose. Pure.
struct PublicAlert {
    std::string reference;
    int version = 0;
    std::string level;        // red, amber, green
    std::string level_label;  // Drug Alert, Drug Warning, Drug Information
    std::string title;        // "Drug Alert: Nitazene in Medway"
    std::string status;       // "In force", "Cancelled", "Expired"
    bool cancelled = false;
    bool in_force = false;
    std::string advice;
    std::string overdose;
    std::string issued;   // "23 November 2026"
    std::string updated;  // "24 November 2026, 14:05"
};
PublicAlert PublicView(const engine::Alert& alert);
// The public Atom feed: the same alerts, as PublicView, linking to their public pages.
std::string PublicAtomFeed(const std::vector<engine::Alert>& alerts, const std::string& public_url,
                           const std::string& issuer, std::int64_t now_ms);

// CAP 1.2 for one version of an alert (the latest when `version` is 0): Alert, Update
// (referencing every earlier version) or Cancel. Valid against CAP-v1.2.xsd.
std::string CapXml(const engine::AlertRecord& record, int version, const std::string& sender,
                   const std::string& public_url);
// An Atom 1.0 feed of issued (and later updated, cancelled, expired) alerts.
std::string AtomFeed(const std::vector<engine::Alert>& alerts, const std::string& public_url,
                     std::int64_t now_ms);

}  // namespace ldis::web
