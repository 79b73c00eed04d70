#include "ldis/engine/lifecycle.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "ldis/engine/alert_text.hpp"

namespace ldis::engine {

std::string_view ToString(AlertStatus status) {
    switch (status) {
        case AlertStatus::kDraft:
            return "draft";
        case AlertStatus::kIssued:
            return "issued";
        case AlertStatus::kUpdated:
            return "updated";
        case AlertStatus::kCancelled:
            return "cancelled";
        case AlertStatus::kExpired:
            return "expired";
    }
    return "draft";
}

bool ParseAlertStatus(std::string_view text, AlertStatus& out) {
    for (auto s : {AlertStatus::kDraft, AlertStatus::kIssued, AlertStatus::kUpdated,
                   AlertStatus::kCancelled, AlertStatus::kExpired}) {
        if (ToString(s) == text) {
            out = s;
            return true;
        }
    }
    return false;
}

std::string_view ToString(Drill drill) {
    switch (drill) {
        case Drill::kNone:
            return "";
        case Drill::kExercise:
            return "exercise";
        case Drill::kTest:
            return "test";
    }
    return "";
}

bool ParseDrill(std::string_view text, Drill& out) {
    for (Drill d : {Drill::kNone, Drill::kExercise, Drill::kTest}) {
        if (ToString(d) == text) {
            out = d;
            return true;
        }
    }
    return false;
}

std::string_view CapStatus(Drill drill) {
    switch (drill) {
        case Drill::kNone:
            return "Actual";
        case Drill::kExercise:
            return "Exercise";
        case Drill::kTest:
            return "Test";
    }
    return "Actual";
}

std::string_view DrillMarking(Drill drill) {
    switch (drill) {
        case Drill::kNone:
            return "";
        case Drill::kExercise:
            return "EXERCISE \xE2\x80\x93 NOT A REAL ALERT";
        case Drill::kTest:
            return "TEST \xE2\x80\x93 NOT A REAL ALERT";
    }
    return "";
}

std::string_view ToString(AlertAction action) {
    switch (action) {
        case AlertAction::kApprove:
            return "approve";
        case AlertAction::kRevise:
            return "update";
        case AlertAction::kCancel:
            return "cancel";
        case AlertAction::kExpire:
            return "expire";
    }
    return "update";
}

bool IsLive(AlertStatus status) {
    return status == AlertStatus::kDraft || status == AlertStatus::kIssued ||
           status == AlertStatus::kUpdated;
}

std::string ActionAuditDetail(AlertStatus from, AlertStatus to, int version,
                              const AlertWording& wording, std::string_view audience_before) {
    boost::json::object detail{{"from", std::string(ToString(from))},
                               {"to", std::string(ToString(to))},
                               {"version", version}};
    if (!wording.sections.empty()) {
        boost::json::array worded;  // which sections, never their text
        for (const auto& section : wording.sections) worded.emplace_back(section.first);
        detail["wording"] = std::move(worded);
        detail["sent_despite_findings"] = wording.confirmed_findings;
    }
    if (!wording.audience.empty() && wording.audience != audience_before)
        detail["audience"] = {{"from", audience_before}, {"to", wording.audience}};
    if (wording.photos && !wording.photos->empty()) {
        boost::json::array pictured;
        for (const auto& id : *wording.photos) pictured.emplace_back(id);
        detail["photos"] = std::move(pictured);
    }
    return boost::json::serialize(detail);
}

Result<AlertStatus> Transition(std::string_view reference, AlertStatus from, AlertAction action) {
    const auto refuse = [&](std::string_view why) -> Result<AlertStatus> {
        return Error{"cannot " + std::string(ToString(action)) + " " + std::string(reference) +
                     ": " + std::string(why)};
    };
    if (!IsLive(from)) return refuse("it is " + std::string(ToString(from)));
    switch (action) {
        case AlertAction::kApprove:
            if (from != AlertStatus::kDraft)
                return refuse("it is already " + std::string(ToString(from)));
            return AlertStatus::kIssued;
        case AlertAction::kRevise:
            // A draft stays a draft with a new version; an issued alert becomes updated.
            return from == AlertStatus::kDraft ? AlertStatus::kDraft : AlertStatus::kUpdated;
        case AlertAction::kCancel:
            return AlertStatus::kCancelled;
        case AlertAction::kExpire:
            if (from == AlertStatus::kDraft)
                return refuse("a draft was never issued, so it cannot expire");
            return AlertStatus::kExpired;
    }
    return refuse("unknown action");
}

bool TrustedSource(Trust trust, std::string_view source_type, const Policy& policy) {
    return trust == Trust::kTrusted && !policy.untrusted_sources.contains(source_type);
}

PolicyDecision DecidePolicy(Level level, std::string_view audience, const Policy& policy,
                            bool trusted) {
    if (trusted && policy.issue_at_once[static_cast<int>(level)] && level != Level::kNone &&
        audience != "public") {
        return {AlertStatus::kIssued, true, std::string(audience)};
    }
    return {AlertStatus::kDraft, false, std::string(audience)};
}

const std::vector<std::string>& Audiences() {
    static const std::vector<std::string> kAudiences = {"professionals", "services", "public"};
    return kAudiences;
}

bool IsAudience(std::string_view text) {
    const auto& all = Audiences();
    return std::find(all.begin(), all.end(), text) != all.end();
}

std::optional<Error> WordingProblem(std::string_view reference, AlertAction action,
                                    const AlertWording& wording) {
    const bool closing = action == AlertAction::kCancel || action == AlertAction::kExpire;
    if (closing && !wording.sections.empty())
        return Error{"the wording of " + std::string(reference) +
                     " changes with an update, not a " + std::string(ToString(action))};
    if (closing && !wording.audience.empty())
        return Error{"the audience of " + std::string(reference) +
                     " changes with an approval or an update, not a " +
                     std::string(ToString(action))};
    if (closing && wording.photos && !wording.photos->empty())
        return Error{"photos go out with an approval or an update of " + std::string(reference) +
                     ", not a " + std::string(ToString(action))};
    if (wording.photos) {
        if (wording.photos->size() > 3)
            return Error{"at most three photos go out with a version; " +
                         std::to_string(wording.photos->size()) + " were chosen"};
        for (const auto& id : *wording.photos) {
            const bool hex = id.size() == 35 && id.starts_with("ph-") &&
                             id.find_first_not_of("0123456789abcdef", 3) == std::string::npos;
            if (!hex)
                return Error{"\"" + id.substr(0, 40) +
                             "\" is not a photo's id (ph- and 32 hex digits, as the record "
                             "lists them)"};
            if (std::count(wording.photos->begin(), wording.photos->end(), id) > 1)
                return Error{"the photo " + id + " is chosen twice"};
        }
    }
    if (!wording.audience.empty() && !IsAudience(wording.audience))
        return Error{"\"" + wording.audience +
                     "\" is not an audience: choose professionals, services or public"};
    const auto& allowed = WordingSections();
    for (const auto& [name, text] : wording.sections) {
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
            return Error{"\"" + name +
                         "\" is not a section a coordinator writes; choose what, harms or advice"};
        if (text.empty() || text.size() > 4000)
            return Error{"the " + name + " section must be 1 to 4,000 characters"};
    }
    return std::nullopt;
}

}  // namespace ldis::engine
