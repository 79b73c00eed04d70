#include "ldis/engine/answers.hpp"

namespace ldis::engine {

std::string_view ToString(Answer answer) {
    switch (answer) {
        case Answer::kNone:
            return "";
        case Answer::kReceived:
            return "received";
        case Answer::kShared:
            return "shared";
        case Answer::kActions:
            return "actions";
        case Answer::kNotRelevant:
            return "not_relevant";
        case Answer::kSeenToo:
            return "seen_too";
    }
    return "";
}

bool ParseAnswer(std::string_view text, Answer& out) {
    for (const auto a : {Answer::kNone, Answer::kReceived, Answer::kShared, Answer::kActions,
                         Answer::kNotRelevant, Answer::kSeenToo}) {
        if (ToString(a) == text) {
            out = a;
            return true;
        }
    }
    return false;
}

std::string_view AnswerLabel(Answer answer) {
    switch (answer) {
        case Answer::kNone:
            return "No answer";
        case Answer::kReceived:
            return "Received";
        case Answer::kShared:
            return "Shared with our team";
        case Answer::kActions:
            return "Actions taken";
        case Answer::kNotRelevant:
            return "Not relevant to us";
        case Answer::kSeenToo:
            return "We have seen this too";
    }
    return "No answer";
}

bool ConfirmsAction(Answer answer) {
    return answer != Answer::kNone && answer != Answer::kReceived;
}

Answer KeptAnswer(Answer before, Answer given) {
    if (given == Answer::kNone || (given == Answer::kReceived && before != Answer::kNone))
        return before;
    return given;
}

AnswerUpdate UpdateAnswer(bool acknowledged, Answer before, const std::string& before_note,
                          const PartnerAnswer& given) {
    AnswerUpdate out;
    out.acknowledge = !acknowledged;
    out.answer = KeptAnswer(before, given.answer);
    out.note = out.answer == given.answer ? given.note : before_note;
    if (out.answer != Answer::kActions) out.note.clear();
    out.changed = out.answer != before || out.note != before_note;
    return out;
}

}  // namespace ldis::engine
