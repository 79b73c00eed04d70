#include "ldis/engine/pipeline.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include <boost/json.hpp>

#include "ldis/engine/panel.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"

namespace ldis::engine {

SignalKey KeyOf(const Report& report, const SignalFacts& own, const Substances& substances,
                std::int64_t now_ms) {
    SignalKey key;
    // The same word the grading panel's table correlates on (panel.hpp).
    key.family = own.family.empty() ? CorrelationFamily(report.document, substances) : own.family;
    key.district = report.district;
    key.seen_ms =
        ParseTimeMs(report.observed_at.empty() ? report.submitted_at : report.observed_at);
    if (key.seen_ms < 0) key.seen_ms = now_ms;
    key.drill = report.drill;
    return key;
}

std::optional<std::int64_t> Correlate(const SignalKey& key,
                                      const std::vector<SignalSpan>& candidates,
                                      std::int64_t window_ms) {
    std::optional<std::int64_t> joins;
    for (const auto& s : candidates) {
        const bool near =
            s.last_seen_ms >= key.seen_ms - window_ms && s.first_seen_ms <= key.seen_ms + window_ms;
        if (near && s.drill == key.drill && (!joins || s.id > *joins)) joins = s.id;
    }
    return joins;
}

Grade WithOverride(Grade grade, const SignalOverride& held) {
    Level level = Level::kNone;
    if (held.level.empty() || !ParseLevel(held.level, level)) return grade;
    grade.fired.insert(grade.fired.begin(),
                       FiredRule{"override", level,
                                 "Set by a public health coordinator, who has seen more than the "
                                 "reports show (the rules give " +
                                     std::string(ToString(grade.level)) + ")."});
    grade.level = level;
    return grade;
}

Regrading Regrade(const SignalFacts& before, const SignalFacts& own, bool new_source,
                  const SignalOverride& held, const Rules& rules, const Substances& substances) {
    Regrading out;
    out.facts = own;
    if (!before.numbers.empty()) {
        out.facts = Merge(before, own, substances);
        // Merge adds the two counts of sources; the report's organisation counts once.
        const auto was = before.numbers.find("sources");
        out.facts.numbers["sources"] =
            (was == before.numbers.end() ? 0 : was->second) + (new_source ? 1 : 0);
    }
    return Regrade(out.facts, held, rules);
}

Regrading Regrade(const SignalFacts& facts, const SignalOverride& held, const Rules& rules) {
    Regrading out;
    out.facts = facts;
    out.rules = rules.Apply(out.facts);
    out.shown = WithOverride(out.rules, held);
    return out;
}

RenderedAlert RenderVersionAgain(const AlertTemplates& templates, const Rules& rules,
                                 const Substances& substances, const AlertMeta& meta,
                                 const std::vector<std::string>& documents,
                                 std::string_view facts_text, std::string_view level,
                                 const SignalOverride& held) {
    Regrading graded = Regrade(FactsFromJson(facts_text), held, rules);
    Grade shown = std::move(graded.shown);
    ParseLevel(level, shown.level);
    return RenderAlert(templates, meta, documents, graded.facts, shown, substances);
}

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

namespace ldis::engine {

std::vector<Delivery> CoordinatorNotices(const Partners* partners, const std::set<Channel>& enabled,
                                         std::string_view kind, const std::string& detail) {
    std::vector<Delivery> out;
    const Partner* c = partners ? partners->coordinators() : nullptr;
    if (c == nullptr) return out;
    for (const auto& contact : c->contacts) {
        if (!enabled.contains(contact.channel)) continue;
        out.push_back({kind, c->id, contact.name, c->id + "/" + contact.name, contact.channel,
                       contact.address, 0, detail});
    }
    return out;
}

namespace {

// The partners Partners::Route chooses for a version, each with the level's acknowledgement
// deadline: what an alert of this instance's own and a peer's forwarded alert share.
void RoutedPartners(const VersionToRoute& version, const std::vector<Recipient>& earlier,
                    const Partners& partners, const DispatchPolicy& dispatch, std::int64_t now_ms,
                    std::string_view kind, const std::string& detail, std::vector<Delivery>& out) {
    RouteInput in;
    in.level = version.level;
    in.authority = version.authority;
    in.district = version.district;
    in.audience = version.audience;
    in.cancellation = version.status == AlertStatus::kCancelled;
    in.earlier = earlier;
    const std::int64_t ack_ms =
        AckWindowMs(in.level, in.cancellation, dispatch.red_ack_ms, dispatch.amber_ack_ms);
    for (const auto& r : partners.Route(in, dispatch.enabled)) {
        const Contact* c = partners.Find(r.partner)->FindContact(r.contact);
        out.push_back({kind, r.partner, r.contact, r.slot, c->channel, c->address,
                       ack_ms > 0 ? now_ms + ack_ms : 0, detail});
    }
}

}  // namespace

std::vector<Delivery> PlanDeliveries(const VersionToRoute& version,
                                     const std::vector<Recipient>& earlier,
                                     const Partners* partners, const DispatchPolicy& dispatch,
                                     std::int64_t now_ms) {
    if (version.status == AlertStatus::kDraft) {
        if (!version.ask_coordinators) return {};
        return CoordinatorNotices(partners, dispatch.enabled, kKindApproval);
    }
    if (version.status == AlertStatus::kExpired) return {};
    std::vector<Delivery> out;
    if (partners)
        RoutedPartners(version, earlier, *partners, dispatch, now_ms, kKindAlert, "{}", out);
    if (dispatch.enabled.contains(Channel::kMqtt)) {
        out.push_back({kKindMqtt, "", "mqtt", "mqtt", Channel::kMqtt,
                       wire::AlertTopic(ToString(version.level), version.authority)});
    }
    // Offered to the peers: every version partners are sent of a level this instance offers,
    // in a district it offers that level for (issue 16 §1), whichever channels its own
    // partners use.
    const auto only = dispatch.federation_offer_districts.find(version.level);
    if (!dispatch.federation_topic.empty() && dispatch.federation_offer.contains(version.level) &&
        (only == dispatch.federation_offer_districts.end() ||
         only->second.contains(version.district))) {
        out.push_back({kKindFederation, "", "federation", "federation", Channel::kMqtt,
                       dispatch.federation_topic});
    }
    if (version.page) {
        for (auto& d : CoordinatorNotices(partners, dispatch.enabled, kKindPage))
            out.push_back(std::move(d));
    }
    return out;
}

std::string_view ToString(FederatedPolicy policy) {
    switch (policy) {
        case FederatedPolicy::kForward:
            return "forward";
        case FederatedPolicy::kReview:
            return "review";
        case FederatedPolicy::kRecord:
            return "record";
    }
    return "record";
}

bool ParseFederatedPolicy(std::string_view text, FederatedPolicy& out) {
    for (auto p : {FederatedPolicy::kForward, FederatedPolicy::kReview, FederatedPolicy::kRecord}) {
        if (ToString(p) == text) {
            out = p;
            return true;
        }
    }
    return false;
}

std::string_view FederatedDecision(FederatedPolicy for_level, bool forwarded_before) {
    if (forwarded_before || for_level == FederatedPolicy::kForward) return "forwarded";
    return for_level == FederatedPolicy::kReview ? "review" : "recorded";
}

std::vector<Delivery> PlanForwarded(const VersionToRoute& version,
                                    const std::vector<Recipient>& earlier, const Partners* partners,
                                    const DispatchPolicy& dispatch, std::int64_t now_ms,
                                    const std::string& detail) {
    std::vector<Delivery> out;
    if (!partners || version.status == AlertStatus::kDraft ||
        version.status == AlertStatus::kExpired)
        return out;
    RoutedPartners(version, earlier, *partners, dispatch, now_ms, kKindFederated, detail, out);
    return out;
}

VersionToRoute ForwardedRoute(std::string_view msg_type, int version, std::string_view level,
                              std::string authority, std::string district) {
    VersionToRoute route;
    route.status = msg_type == "Cancel" ? AlertStatus::kCancelled
                   : version > 1        ? AlertStatus::kUpdated
                                        : AlertStatus::kIssued;
    if (!ParseLevel(level, route.level)) route.level = Level::kNone;
    route.authority = std::move(authority);
    route.district = std::move(district);
    return route;
}

std::vector<Recipient> LatestPerSlot(std::vector<Recipient> in_order) {
    std::vector<Recipient> out;
    std::map<std::string, std::size_t> at;
    for (auto& r : in_order) {
        if (auto it = at.find(r.slot); it != at.end()) {
            out[it->second] = std::move(r);
        } else {
            at[r.slot] = out.size();
            out.push_back(std::move(r));
        }
    }
    return out;
}

std::optional<Delivery> Escalation(const Partners& partners, std::string_view partner, Level level,
                                   Answer said, const DispatchPolicy& dispatch) {
    if (ConfirmsAction(said)) return std::nullopt;
    const Partner* p = partners.Find(partner);
    const Contact* c = p ? p->FindContact(p->escalation) : nullptr;
    if (c == nullptr || !dispatch.enabled.contains(c->channel)) return std::nullopt;
    const std::int64_t window = level == Level::kRed ? dispatch.red_ack_ms : dispatch.amber_ack_ms;
    const std::string within =
        window >= 3600000 ? std::to_string(window / 3600000) + " hours"
                          : std::to_string(std::max<std::int64_t>(window / 1000, 1)) + " seconds";
    return Delivery{kKindEscalation,
                    p->id,
                    c->name,
                    p->id + "/" + c->name,
                    c->channel,
                    c->address,
                    0,
                    boost::json::serialize(boost::json::object{{"partner", p->id},
                                                               {"partner_name", p->name},
                                                               {"ack_within", within},
                                                               {"answer", ToString(said)}})};
}

}  // namespace ldis::engine
