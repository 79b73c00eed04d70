// The silent-feed watch's rules (issue 16 §3), without a clock or a broker: a feed is
// silent once it has sent nothing for longer than its limit, the coordinators hear of it
// once and of its return once, and a restart neither forgets nor repeats it.
#include "ldis/engine/feeds.hpp"

#include <gtest/gtest.h>

#include "ldis/engine/wire.hpp"

namespace {

using ldis::engine::FeedChange;
using ldis::engine::FeedSpec;
using ldis::engine::FeedWatch;

const FeedSpec kCustody{"custody", "Medway custody", 60000};
const FeedSpec kHospital{"hospital", "Medway NHS Foundation Trust", 3600000};

TEST(FeedsTest, AFeedIsSilentOncePastItsLimitAndToldOnce) {
    FeedWatch watch({kCustody, kHospital}, 1000);
    EXPECT_TRUE(watch.Check(61000).empty());  // exactly at the limit: not yet
    const auto silent = watch.Check(61001);
    ASSERT_EQ(silent.size(), 1u);
    EXPECT_EQ(silent[0].kind, FeedChange::Kind::kSilent);
    EXPECT_EQ(silent[0].feed, kCustody);
    EXPECT_EQ(silent[0].last_seen_ms, 1000);
    EXPECT_TRUE(watch.Check(500000).empty());  // told once
    // A report from it: back, once; a second report is nothing new.
    const auto back = watch.Seen("custody", "Medway custody", 600000);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->kind, FeedChange::Kind::kBack);
    EXPECT_EQ(back->last_seen_ms, 1000);
    EXPECT_FALSE(watch.Seen("custody", "Medway custody", 600001));
    EXPECT_TRUE(watch.Check(660001).empty());
    EXPECT_EQ(watch.Check(660002).size(), 1u);  // silent again: told again
}

TEST(FeedsTest, EachReportOrHeartbeatKeepsItsFeedAliveAndNoOther) {
    FeedWatch watch({kCustody}, 0);
    EXPECT_FALSE(watch.Seen("custody", "Medway custody", 50000));
    EXPECT_FALSE(watch.Seen("custody", "Kent custody", 100000));  // not a configured feed
    EXPECT_FALSE(watch.Seen("hospital", "Medway custody", 100000));
    EXPECT_TRUE(watch.Check(110000).empty());
    EXPECT_EQ(watch.Check(110001).size(), 1u);
    // Seen out of order (an older time) never moves it back.
    FeedWatch other({kCustody}, 100000);
    EXPECT_FALSE(other.Seen("custody", "Medway custody", 5));
    EXPECT_TRUE(other.Check(160000).empty());
}

TEST(FeedsTest, ARestartKeepsASilenceTheCoordinatorsWereToldOf) {
    FeedWatch first({kCustody, kHospital}, 0);
    const auto silent = first.Check(70000);
    ASSERT_EQ(silent.size(), 1u);
    const ldis::engine::FeedState told{silent[0].last_seen_ms, true, silent[0].now_ms};
    const auto kept = ldis::engine::ParseFeedState(ldis::engine::FeedStateJson(told));
    ASSERT_TRUE(kept);
    EXPECT_TRUE(kept->silent);
    EXPECT_EQ(kept->since_ms, 70000);
    // After the restart: custody is not told again (the hospital, judged from the restart,
    // is within its limit); its return is told.
    FeedWatch second({kCustody, kHospital}, 200000, {kept, std::nullopt});
    EXPECT_TRUE(second.Check(900000).empty());
    EXPECT_TRUE(second.Seen("custody", "Medway custody", 950000));
    // A feed not told of is judged from the restart, whatever happened before it.
    FeedWatch third({kCustody, kHospital}, 200000, {std::nullopt, std::nullopt});
    EXPECT_TRUE(third.Check(260000).empty());
    EXPECT_EQ(third.Check(260001).size(), 1u);
    // A state that does not parse is no state.
    EXPECT_FALSE(ldis::engine::ParseFeedState("not json"));
    EXPECT_FALSE(ldis::engine::ParseFeedState(R"({"silent":"yes","since_ms":1})"));
}

TEST(FeedsTest, ANoticeThatCouldNotBeStoredIsTriedAgain) {
    FeedWatch watch({kCustody}, 0);
    const auto silent = watch.Check(70000);
    ASSERT_EQ(silent.size(), 1u);
    watch.Revert(silent[0]);
    EXPECT_EQ(watch.Check(70001).size(), 1u);
    const auto back = watch.Seen("custody", "Medway custody", 80000);
    ASSERT_TRUE(back);
    watch.Revert(*back);
    EXPECT_TRUE(watch.Seen("custody", "Medway custody", 80001));
}

TEST(FeedsTest, AHeartbeatTopicNamesItsSourceAndOrganisation) {
    std::string_view source, organisation;
    ASSERT_TRUE(ldis::engine::wire::FeedHeartbeat("ldis/v1/heartbeat/custody/Medway custody",
                                                  source, organisation));
    EXPECT_EQ(source, "custody");
    EXPECT_EQ(organisation, "Medway custody");
    for (const char* bad :
         {"ldis/v1/heartbeat/custody", "ldis/v1/heartbeat/custody/", "ldis/v1/heartbeat//x",
          "ldis/v1/heartbeat/a/b/c", "ldis/v1/reports/custody"})
        EXPECT_FALSE(ldis::engine::wire::FeedHeartbeat(bad, source, organisation)) << bad;
}

TEST(FeedsTest, TheNoticeSaysHowLongAndWhatTheLimitIs) {
    const std::string detail = ldis::engine::FeedNoticeDetail(
        {FeedChange::Kind::kSilent, kCustody, 1000, 1000 + 3 * 3600000});
    EXPECT_NE(detail.find("\"silent_for\":\"3 hours\""), std::string::npos) << detail;
    EXPECT_NE(detail.find("\"limit\":\"1 minute\""), std::string::npos) << detail;
    EXPECT_NE(detail.find("\"organisation\":\"Medway custody\""), std::string::npos) << detail;
}

}  // namespace
