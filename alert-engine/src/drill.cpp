#include "ldis/engine/drill.hpp"

#include <algorithm>
#include <map>

namespace ldis::engine {

DrillSummary SummariseDrill(const std::vector<DeliveryRow>& deliveries) {
    std::map<std::string, DrillResponse> by_partner;
    std::vector<const DeliveryRow*> ordered;
    for (const auto& d : deliveries) ordered.push_back(&d);
    // The first row sent to a partner names its contact and channel: by when, then by id.
    std::sort(ordered.begin(), ordered.end(), [](const DeliveryRow* a, const DeliveryRow* b) {
        return a->created_at_ms != b->created_at_ms ? a->created_at_ms < b->created_at_ms
                                                    : a->id < b->id;
    });
    for (const DeliveryRow* d : ordered) {
        if (d->kind == kKindEscalation) {
            // The escalation of a partner's silence names the partner in its own row.
            if (auto it = by_partner.find(d->partner); it != by_partner.end())
                it->second.escalated = true;
            continue;
        }
        if (d->kind != kKindAlert || d->partner.empty()) continue;
        auto [it, first] = by_partner.try_emplace(d->partner);
        DrillResponse& r = it->second;
        if (first) {
            r.partner = d->partner;
            r.contact = d->contact;
            r.channel = d->channel;
            r.sent_at_ms = d->created_at_ms;
        }
        if (d->delivered_at_ms > 0 &&
            (r.delivered_at_ms == 0 || d->delivered_at_ms < r.delivered_at_ms))
            r.delivered_at_ms = d->delivered_at_ms;
        if (d->acknowledged_at_ms > 0 &&
            (r.acknowledged_at_ms == 0 || d->acknowledged_at_ms < r.acknowledged_at_ms))
            r.acknowledged_at_ms = d->acknowledged_at_ms;
        if (d->ack_due_ms > 0 && (r.due_ms == 0 || d->ack_due_ms < r.due_ms))
            r.due_ms = d->ack_due_ms;
        Answer said = Answer::kNone;
        ParseAnswer(d->answer, said);
        const auto rank = [](Answer a) {
            return ConfirmsAction(a) ? 2 : a == Answer::kNone ? 0 : 1;
        };
        if (said != Answer::kNone &&
            (rank(said) > rank(r.answer) ||
             (rank(said) == rank(r.answer) && d->answered_at_ms >= r.answered_at_ms))) {
            r.answer = said;
            r.answer_note = d->answer_note;
            r.answered_at_ms = d->answered_at_ms;
        }
    }
    DrillSummary out;
    std::vector<std::int64_t> times;
    for (auto& [partner, r] : by_partner) {
        if (r.acknowledged_at_ms > 0) {
            r.to_acknowledge_ms = std::max<std::int64_t>(0, r.acknowledged_at_ms - r.sent_at_ms);
            times.push_back(r.to_acknowledge_ms);
        }
        out.responses.push_back(r);
    }
    std::stable_sort(out.responses.begin(), out.responses.end(),
                     [](const DrillResponse& a, const DrillResponse& b) {
                         const bool ia = a.to_acknowledge_ms >= 0, ib = b.to_acknowledge_ms >= 0;
                         if (ia != ib) return ia;
                         return ia && a.to_acknowledge_ms < b.to_acknowledge_ms;
                     });
    out.acknowledged = static_cast<int>(times.size());
    if (!times.empty()) {
        std::sort(times.begin(), times.end());
        const std::size_t n = times.size();
        out.median_ms = n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
        out.slowest_ms = times.back();
    }
    return out;
}

std::vector<DrillResponse> UnconfirmedByDeadline(const DrillSummary& summary, std::int64_t now_ms) {
    std::vector<DrillResponse> out;
    for (const auto& r : summary.responses)
        if (r.due_ms > 0 && r.due_ms <= now_ms && !ConfirmsAction(r.answer)) out.push_back(r);
    std::stable_sort(out.begin(), out.end(), [](const DrillResponse& a, const DrillResponse& b) {
        return a.due_ms < b.due_ms;
    });
    return out;
}

std::string HumanDuration(std::int64_t ms) {
    if (ms < 0) return "-";
    const std::int64_t s = ms / 1000;
    const auto two = [](std::int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
    if (s < 60) return std::to_string(s) + " s";
    if (s < 3600) return std::to_string(s / 60) + " min " + two(s % 60) + " s";
    if (s < 86400) return std::to_string(s / 3600) + " h " + two(s / 60 % 60) + " min";
    return std::to_string(s / 86400) + " d " + std::to_string(s / 3600 % 24) + " h";
}

}  // namespace ldis::engine
