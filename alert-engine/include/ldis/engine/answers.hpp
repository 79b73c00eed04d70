#pragma once
// What partners answer when they acknowledge an alert (issue 17 §4): the words, and the
// rules for which answer a delivery keeps. Pure.

#include <cstddef>
#include <string>
#include <string_view>

namespace ldis::engine {

// What a partner says it did with an alert, on the acknowledgement page (issue 17 §4):
// received it; shared it with its team; took actions (with a short note); it is not
// relevant to them; they have seen this too (and report it).
enum class Answer { kNone, kReceived, kShared, kActions, kNotRelevant, kSeenToo };
// "", "received", "shared", "actions", "not_relevant", "seen_too".
std::string_view ToString(Answer answer);
bool ParseAnswer(std::string_view text, Answer& out);
// As the pages say it: "Received", "Shared with our team", "Actions taken", ...
std::string_view AnswerLabel(Answer answer);
// Whether the answer says what the partner did: anything but none or a bare "received".
// A partner who has not confirmed its actions by the deadline is escalated.
bool ConfirmsAction(Answer answer);
// The answer a delivery keeps when `given` comes after `before`: the latest, except that a
// bare "received" (an old link pressed again) never hides what a partner said it did.
Answer KeptAnswer(Answer before, Answer given);
// The longest note a partner may write with "actions taken", in bytes.
inline constexpr std::size_t kAnswerNoteMax = 500;
// The most a partner said as the stores count it when deadlines pass: 2 it confirmed what it
// did (ConfirmsAction), 1 it only acknowledged, 0 nothing. As an answer: kActions stands for
// any confirmation, kReceived, kNone.
inline Answer SaidAtMost(long long counted) {
    return counted >= 2 ? Answer::kActions : counted == 1 ? Answer::kReceived : Answer::kNone;
}

struct PartnerAnswer {
    Answer answer = Answer::kReceived;
    std::string note;  // already scrubbed
};
// What recording `given` does to a delivery that is `acknowledged` or not and holds
// `before` with `before_note`: whether it is acknowledged now (the first time only), and
// the answer and note it keeps (KeptAnswer; a note goes with the answer it came with).
struct AnswerUpdate {
    bool acknowledge = false;  // first acknowledged now
    bool changed = false;      // the answer or its note changed
    Answer answer = Answer::kNone;
    std::string note;
};
AnswerUpdate UpdateAnswer(bool acknowledged, Answer before, const std::string& before_note,
                          const PartnerAnswer& given);

}  // namespace ldis::engine
