#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ldis/engine/delivery.hpp"

namespace ldis::engine {

// What an exercise showed (issue 16 §2): for each partner the alert was sent to, how long
// they took to acknowledge it, and who did not. The drill report a coordinator prints after
// the exercise (GET /alerts/{reference}/drill). Pure, over the alert's deliveries.

// One partner's part in the drill.
struct DrillResponse {
    std::string partner;
    std::string contact;                  // the contact first sent the alert
    std::string channel;                  // and its channel
    std::int64_t sent_at_ms = 0;          // when LDIS queued the first version to the partner
    std::int64_t delivered_at_ms = 0;     // when the first delivery to it succeeded; 0 if none did
    std::int64_t acknowledged_at_ms = 0;  // the partner's first acknowledgement; 0 if none
    std::int64_t to_acknowledge_ms = -1;  // acknowledged - sent; -1 when not acknowledged
    bool escalated = false;               // its escalation contact was told
    // What it said it did (issue 17 §4): its strongest answer to any version (a confirmation
    // over a bare "received"; the later of two alike), the note with it, and when.
    Answer answer = Answer::kNone;
    std::string answer_note;
    std::int64_t answered_at_ms = 0;
    std::int64_t due_ms = 0;  // its first acknowledgement deadline; 0 when none was asked
};

struct DrillSummary {
    std::vector<DrillResponse> responses;  // the acknowledged first, quickest first; then the rest
    int acknowledged = 0;
    std::int64_t median_ms = -1;  // of the times to acknowledge; -1 when no one did
    std::int64_t slowest_ms = -1;
};

// The partners' responses to an alert, from its deliveries of every version: alert
// deliveries to a partner (not the coordinators' notices, nor the MQTT document), a
// fallback counted with the contact it stood in for.
DrillSummary SummariseDrill(const std::vector<DeliveryRow>& deliveries);

// The partners of an alert who had to say what they did by a deadline that has passed at
// `now_ms` and have not (ConfirmsAction): SummariseDrill's responses, by deadline. Pure.
std::vector<DrillResponse> UnconfirmedByDeadline(const DrillSummary& summary, std::int64_t now_ms);

// "4 min 05 s", "1 h 02 min", "38 s": a duration as the drill report shows it. Pure.
std::string HumanDuration(std::int64_t ms);

}  // namespace ldis::engine
