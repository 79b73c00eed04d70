#include "ldis/engine/pipeline.hpp"

#include <cstdio>

namespace ldis::engine {

VersionDecision NextVersion(const std::optional<LiveAlert>& live, Level level, const Policy& policy,
                            bool trusted, std::int64_t now_ms, std::int64_t update_interval_ms) {
    VersionDecision d;
    if (!live && level == Level::kNone) return d;  // recorded, no alert
    const PolicyDecision decided = DecidePolicy(level, "professionals", policy, trusted);
    d.status = decided.status;
    d.provisional = decided.provisional;
    d.audience = decided.audience;
    if (!live) {
        d.kind = VersionDecision::Kind::kCreate;
        d.version = 1;
        d.newly_issued = d.status == AlertStatus::kIssued;
        d.audit_action = "alert.created";
        d.ask_coordinators = d.status == AlertStatus::kDraft;
        d.page = d.newly_issued && d.provisional;
        d.route_now = true;
        return d;
    }
    d.kind = VersionDecision::Kind::kRevise;
    d.version = live->version + 1;
    d.audit_action = "alert.version";
    const auto next = Transition("", live->status, AlertAction::kRevise);
    d.status = next.ok() ? next.value() : live->status;
    // A draft whose signal has become red goes out at once, as a new red alert would.
    if (live->status == AlertStatus::kDraft && decided.status == AlertStatus::kIssued)
        d.status = AlertStatus::kIssued;
    d.newly_issued = live->status == AlertStatus::kDraft && d.status == AlertStatus::kIssued;
    // Issued without a coordinator's approval: provisional until one confirms it.
    d.provisional = d.status != AlertStatus::kDraft &&
                    (decided.provisional || live->status == AlertStatus::kDraft);
    d.ask_coordinators = d.status == AlertStatus::kDraft && !trusted && level == Level::kRed &&
                         live->level != Level::kRed;
    d.page = d.newly_issued && d.provisional;
    d.route_now = d.status == AlertStatus::kDraft || d.newly_issued || level != live->level ||
                  now_ms - live->routed_at_ms >= update_interval_ms;
    return d;
}

std::string AlertReference(std::string_view prefix, int year, std::int64_t alerts_this_year) {
    char number[24];
    std::snprintf(number, sizeof number, "%04lld", static_cast<long long>(alerts_this_year + 1));
    return std::string(prefix) + "-" + std::to_string(year) + "-" + number;
}

std::int64_t AckWindowMs(Level level, bool cancellation, std::int64_t red_ack_ms,
                         std::int64_t amber_ack_ms) {
    if (cancellation) return 0;
    if (level == Level::kRed) return red_ack_ms;
    if (level == Level::kAmber) return amber_ack_ms;
    return 0;
}

}  // namespace ldis::engine
