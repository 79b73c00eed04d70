// The drill report's arithmetic (issue 16 §2): each partner's time to acknowledge, from the
// first version it was sent to its first acknowledgement, and who never did.
#include "ldis/engine/drill.hpp"

#include <gtest/gtest.h>

namespace {

using ldis::engine::DeliveryRow;
using ldis::engine::SummariseDrill;

DeliveryRow Row(std::int64_t id, const std::string& kind, const std::string& partner,
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
        Row(1, "alert", "ed", "mail", 1000, 1100, 0),
        Row(2, "alert", "ed", "teams", 1000, 1200, 61000),  // a second contact acknowledged
        Row(3, "alert", "police", "mail", 1000, 1150, 0),
        Row(4, "alert", "prison", "mail", 1000, 0, 0),    // never delivered
        Row(5, "page", "coord", "team", 1000, 1100, 0),   // a notice: not a partner's
        Row(6, "mqtt", "", "", 1000, 1100, 0),            // the MQTT document
        Row(7, "alert", "ed", "mail", 5000, 5100, 9000),  // version 2: later, not first
        Row(8, "escalation", "police", "duty", 20000, 20100, 0),
        Row(9, "alert", "youth", "mail", 1000, 1100, 3000),
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
    const auto summary = SummariseDrill({Row(1, "alert", "ed", "mail", 1000, 1100, 0)});
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
