// The drill report's arithmetic (issue 16 §2): each partner's time to acknowledge, from the
// first version it was sent to its first acknowledgement, and who never did.
#include "ldis/engine/drill.hpp"

#include <gtest/gtest.h>

#include <map>

namespace {

using ldis::engine::DeliveryRow;
using ldis::engine::SummariseDrill;

DeliveryRow Delivered(std::int64_t id, const std::string& kind, const std::string& partner,
                      const std::string& contact, std::int64_t created, std::int64_t delivered,
                      std::int64_t acknowledged) {
    DeliveryRow d;
    d.id = id;
    d.kind = kind;
    d.partner = partner;
    d.contact = contact;
    d.channel = "email";
    d.created_at_ms = created;
    d.delivered_at_ms = delivered;
    d.acknowledged_at_ms = acknowledged;
    return d;
}

TEST(DrillTest, EachPartnersTimeRunsFromItsFirstMessageToItsFirstAcknowledgement) {
    const auto summary = SummariseDrill({
        Delivered(1, "alert", "ed", "mail", 1000, 1100, 0),
        Delivered(2, "alert", "ed", "teams", 1000, 1200, 61000),  // a second contact acknowledged
        Delivered(3, "alert", "police", "mail", 1000, 1150, 0),
        Delivered(4, "alert", "prison", "mail", 1000, 0, 0),    // never delivered
        Delivered(5, "page", "coord", "team", 1000, 1100, 0),   // a notice: not a partner's
        Delivered(6, "mqtt", "", "", 1000, 1100, 0),            // the MQTT document
        Delivered(7, "alert", "ed", "mail", 5000, 5100, 9000),  // version 2: later, not first
        Delivered(8, "escalation", "police", "duty", 20000, 20100, 0),
        Delivered(9, "alert", "youth", "mail", 1000, 1100, 3000),
    });
    ASSERT_EQ(summary.responses.size(), 4u);
    EXPECT_EQ(summary.acknowledged, 2);
    // The acknowledged first, quickest first; then the rest.
    EXPECT_EQ(summary.responses[0].partner, "youth");
    EXPECT_EQ(summary.responses[0].to_acknowledge_ms, 2000);
    EXPECT_EQ(summary.responses[1].partner, "ed");
    EXPECT_EQ(summary.responses[1].contact, "mail");  // first sent
    EXPECT_EQ(summary.responses[1].delivered_at_ms, 1100);
    EXPECT_EQ(summary.responses[1].acknowledged_at_ms, 9000);  // the earliest acknowledgement
    EXPECT_EQ(summary.responses[1].to_acknowledge_ms, 8000);
    EXPECT_EQ(summary.responses[2].to_acknowledge_ms, -1);
    EXPECT_EQ(summary.responses[3].to_acknowledge_ms, -1);
    for (const auto& r : summary.responses) {
        EXPECT_EQ(r.escalated, r.partner == "police") << r.partner;
        if (r.partner == "prison") {
            EXPECT_EQ(r.delivered_at_ms, 0);
        }
    }
    EXPECT_EQ(summary.median_ms, 5000);  // of 2000 and 8000
    EXPECT_EQ(summary.slowest_ms, 8000);
}

TEST(DrillTest, NoAcknowledgementHasNoMedian) {
    const auto summary = SummariseDrill({Delivered(1, "alert", "ed", "mail", 1000, 1100, 0)});
    EXPECT_EQ(summary.acknowledged, 0);
    EXPECT_EQ(summary.median_ms, -1);
    EXPECT_EQ(summary.slowest_ms, -1);
    EXPECT_TRUE(SummariseDrill({}).responses.empty());
}

TEST(DrillTest, DurationsReadAsAPersonWouldSayThem) {
    EXPECT_EQ(ldis::engine::HumanDuration(-1), "-");
    EXPECT_EQ(ldis::engine::HumanDuration(38000), "38 s");
    EXPECT_EQ(ldis::engine::HumanDuration(245000), "4 min 05 s");
    EXPECT_EQ(ldis::engine::HumanDuration(3720000), "1 h 02 min");
    EXPECT_EQ(ldis::engine::HumanDuration(90000000), "1 d 1 h");
}

}  // namespace

namespace {

// Issue 17 §4: what partners say they did, the answer a delivery keeps, and who has not
// confirmed by the deadline.
TEST(AnswersTest, AnAnswerIsKeptUntilAStrongerOrLaterOneAndABareReceivedNeverHidesIt) {
    using ldis::engine::Answer;
    using ldis::engine::KeptAnswer;
    for (const auto a : {Answer::kNone, Answer::kReceived, Answer::kShared, Answer::kActions,
                         Answer::kNotRelevant, Answer::kSeenToo}) {
        Answer back = Answer::kReceived;
        ASSERT_TRUE(ldis::engine::ParseAnswer(ldis::engine::ToString(a), back));
        EXPECT_EQ(back, a);
    }
    Answer unchanged = Answer::kShared;
    EXPECT_FALSE(ldis::engine::ParseAnswer("done", unchanged));
    EXPECT_EQ(unchanged, Answer::kShared);
    EXPECT_FALSE(ldis::engine::ConfirmsAction(Answer::kNone));
    EXPECT_FALSE(ldis::engine::ConfirmsAction(Answer::kReceived));
    EXPECT_TRUE(ldis::engine::ConfirmsAction(Answer::kNotRelevant));
    EXPECT_EQ(KeptAnswer(Answer::kNone, Answer::kReceived), Answer::kReceived);
    EXPECT_EQ(KeptAnswer(Answer::kReceived, Answer::kActions), Answer::kActions);
    EXPECT_EQ(KeptAnswer(Answer::kActions, Answer::kReceived), Answer::kActions);
    EXPECT_EQ(KeptAnswer(Answer::kActions, Answer::kNotRelevant), Answer::kNotRelevant);

    // The first acknowledgement; then actions with a note; an old link pressed again keeps
    // them; a new note replaces the old; another answer drops the note.
    auto u = ldis::engine::UpdateAnswer(false, Answer::kNone, "", {Answer::kReceived, ""});
    EXPECT_TRUE(u.acknowledge);
    EXPECT_TRUE(u.changed);
    EXPECT_EQ(u.answer, Answer::kReceived);
    u = ldis::engine::UpdateAnswer(true, Answer::kReceived, "", {Answer::kActions, "briefed"});
    EXPECT_FALSE(u.acknowledge);
    EXPECT_TRUE(u.changed);
    EXPECT_EQ(u.note, "briefed");
    u = ldis::engine::UpdateAnswer(true, Answer::kActions, "briefed", {Answer::kReceived, ""});
    EXPECT_FALSE(u.changed);
    EXPECT_EQ(u.answer, Answer::kActions);
    EXPECT_EQ(u.note, "briefed");
    u = ldis::engine::UpdateAnswer(true, Answer::kActions, "briefed", {Answer::kActions, "more"});
    EXPECT_TRUE(u.changed);
    EXPECT_EQ(u.note, "more");
    u = ldis::engine::UpdateAnswer(true, Answer::kActions, "briefed", {Answer::kShared, "x"});
    EXPECT_EQ(u.answer, Answer::kShared);
    EXPECT_EQ(u.note, "");
}

TEST(AnswersTest, EachPartnersStrongestAnswerShowsAndThoseUnconfirmedAtTheirDeadlineAreListed) {
    auto ed = Delivered(1, "alert", "ed", "mail", 1000, 1100, 2000);
    ed.ack_due_ms = 5000;
    ed.answer = "actions";
    ed.answer_note = "briefed";
    ed.answered_at_ms = 3000;
    auto ed2 = Delivered(4, "alert", "ed", "mail", 4000, 4100, 4200);  // version 2, bare receipt
    ed2.ack_due_ms = 9000;
    ed2.answer = "received";
    ed2.answered_at_ms = 4200;
    auto police = Delivered(2, "alert", "police", "mail", 1000, 1100, 2500);
    police.ack_due_ms = 5000;
    police.answer = "received";
    police.answered_at_ms = 2500;
    auto prison = Delivered(3, "alert", "prison", "mail", 1000, 1100, 0);
    prison.ack_due_ms = 7000;
    auto youth = Delivered(5, "alert", "youth", "mail", 1000, 1100, 0);  // green: no deadline
    const auto summary = SummariseDrill({ed, ed2, police, prison, youth});
    std::map<std::string, ldis::engine::DrillResponse> by;
    for (const auto& r : summary.responses) by[r.partner] = r;
    EXPECT_EQ(by["ed"].answer, ldis::engine::Answer::kActions);
    EXPECT_EQ(by["ed"].answer_note, "briefed");
    EXPECT_EQ(by["ed"].due_ms, 5000);
    EXPECT_EQ(by["police"].answer, ldis::engine::Answer::kReceived);
    EXPECT_EQ(by["prison"].answer, ldis::engine::Answer::kNone);
    EXPECT_TRUE(ldis::engine::UnconfirmedByDeadline(summary, 4999).empty());
    auto late = ldis::engine::UnconfirmedByDeadline(summary, 6000);
    ASSERT_EQ(late.size(), 1u);
    EXPECT_EQ(late[0].partner, "police");
    late = ldis::engine::UnconfirmedByDeadline(summary, 8000);
    ASSERT_EQ(late.size(), 2u);
    EXPECT_EQ(late[0].partner, "police");
    EXPECT_EQ(late[1].partner, "prison");
}

}  // namespace
