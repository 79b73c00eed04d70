// The alert pipeline's rules as values, without SQLite (issue 14): one test per named rule
// of NextVersion, the reference numbering and the acknowledgement windows.
#include "ldis/engine/pipeline.hpp"

#include <gtest/gtest.h>

namespace {

using ldis::engine::AckWindowMs;
using ldis::engine::AlertReference;
using ldis::engine::AlertStatus;
using ldis::engine::Level;
using ldis::engine::LiveAlert;
using ldis::engine::NextVersion;
using ldis::engine::Policy;
using ldis::engine::VersionDecision;
using Kind = VersionDecision::Kind;

constexpr std::int64_t kMinute = 60'000;
constexpr std::int64_t kNow = 1'764'000'000'000;
constexpr std::int64_t kThrottle = 15 * kMinute;  // dispatch.update_interval_s = 900

VersionDecision Next(std::optional<LiveAlert> live, Level level, bool trusted = true,
                     std::int64_t now = kNow) {
    return NextVersion(live, level, Policy{}, trusted, now, kThrottle);
}

LiveAlert Live(AlertStatus status, Level level, int version = 1,
               std::int64_t routed_at = kNow - kMinute) {
    return {status, version, level, routed_at};
}

TEST(PipelineTest, NothingToAlertAboutMakesNoAlert) {
    EXPECT_EQ(Next(std::nullopt, Level::kNone).kind, Kind::kNone);
}

TEST(PipelineTest, AFirstRedIsIssuedAtOnceProvisionalAndPagesTheCoordinators) {
    const auto d = Next(std::nullopt, Level::kRed);
    EXPECT_EQ(d.kind, Kind::kCreate);
    EXPECT_EQ(d.version, 1);
    EXPECT_EQ(d.status, AlertStatus::kIssued);
    EXPECT_TRUE(d.provisional);
    EXPECT_TRUE(d.newly_issued);
    EXPECT_TRUE(d.page);
    EXPECT_TRUE(d.route_now);
    EXPECT_FALSE(d.ask_coordinators);
    EXPECT_EQ(d.audience, "professionals");
    EXPECT_EQ(d.audit_action, "alert.created");
}

TEST(PipelineTest, AFirstAmberOrGreenWaitsAsADraftThatAsksTheCoordinators) {
    for (Level level : {Level::kAmber, Level::kGreen}) {
        const auto d = Next(std::nullopt, level);
        EXPECT_EQ(d.kind, Kind::kCreate);
        EXPECT_EQ(d.status, AlertStatus::kDraft);
        EXPECT_FALSE(d.provisional);
        EXPECT_FALSE(d.newly_issued);
        EXPECT_FALSE(d.page);
        EXPECT_TRUE(d.ask_coordinators);
        EXPECT_TRUE(d.route_now);  // to the coordinators
    }
}

TEST(PipelineTest, ARedFromAReportOfUnverifiedOriginWaitsForACoordinator) {
    const auto d = Next(std::nullopt, Level::kRed, /*trusted=*/false);
    EXPECT_EQ(d.status, AlertStatus::kDraft);
    EXPECT_FALSE(d.provisional);
    EXPECT_FALSE(d.page);
    EXPECT_TRUE(d.ask_coordinators);
}

TEST(PipelineTest, ALiveAlertTakesANewVersionNeverASecondAlert) {
    const auto d = Next(Live(AlertStatus::kIssued, Level::kAmber, 3), Level::kAmber);
    EXPECT_EQ(d.kind, Kind::kRevise);
    EXPECT_EQ(d.version, 4);
    EXPECT_EQ(d.status, AlertStatus::kUpdated);
    EXPECT_EQ(d.audit_action, "alert.version");
    EXPECT_FALSE(d.newly_issued);
    EXPECT_FALSE(d.ask_coordinators);
    // A signal graded down to nothing still revises its live alert (the coordinators cancel).
    EXPECT_EQ(Next(Live(AlertStatus::kIssued, Level::kAmber), Level::kNone).kind, Kind::kRevise);
}

TEST(PipelineTest, ADraftTurningRedIsIssuedAtOnceAndProvisional) {
    const auto d = Next(Live(AlertStatus::kDraft, Level::kAmber, 2), Level::kRed);
    EXPECT_EQ(d.status, AlertStatus::kIssued);
    EXPECT_TRUE(d.newly_issued);
    EXPECT_TRUE(d.provisional);
    EXPECT_TRUE(d.page);
    EXPECT_TRUE(d.route_now);
    EXPECT_EQ(d.version, 3);
    // An amber draft that stays amber stays a draft.
    EXPECT_EQ(Next(Live(AlertStatus::kDraft, Level::kAmber), Level::kAmber).status,
              AlertStatus::kDraft);
}

TEST(PipelineTest, ADraftAnUnverifiedReportRaisesToRedAsksTheCoordinators) {
    const auto raised = Next(Live(AlertStatus::kDraft, Level::kAmber), Level::kRed, false);
    EXPECT_EQ(raised.status, AlertStatus::kDraft);
    EXPECT_TRUE(raised.ask_coordinators);
    EXPECT_FALSE(raised.page);
    // Asked once: a draft already red is not asked about again.
    EXPECT_FALSE(Next(Live(AlertStatus::kDraft, Level::kRed), Level::kRed, false).ask_coordinators);
}

TEST(PipelineTest, TheUpdateThrottleHoldsSameLevelVersionsForTheInterval) {
    const auto recent = Live(AlertStatus::kIssued, Level::kRed, 2, kNow - 10 * kMinute);
    EXPECT_FALSE(Next(recent, Level::kRed).route_now);
    const auto older = Live(AlertStatus::kUpdated, Level::kRed, 2, kNow - 15 * kMinute);
    EXPECT_TRUE(Next(older, Level::kRed).route_now);
    // A change of level goes at once, up or down.
    EXPECT_TRUE(Next(Live(AlertStatus::kIssued, Level::kAmber, 2, kNow), Level::kRed).route_now);
    EXPECT_TRUE(Next(Live(AlertStatus::kIssued, Level::kRed, 2, kNow), Level::kAmber).route_now);
    // A draft's versions go to the coordinators at once.
    EXPECT_TRUE(Next(Live(AlertStatus::kDraft, Level::kAmber, 2, kNow), Level::kAmber).route_now);
}

TEST(PipelineTest, ReferencesNumberTheYearsAlertsFromOne) {
    EXPECT_EQ(AlertReference("KM", 2026, 0), "KM-2026-0001");
    EXPECT_EQ(AlertReference("KM", 2026, 6), "KM-2026-0007");
    EXPECT_EQ(AlertReference("MW", 2027, 9999), "MW-2027-10000");
}

TEST(PipelineTest, PartnersHaveAWindowToAcknowledgeRedAndAmber) {
    EXPECT_EQ(AckWindowMs(Level::kRed, false, 30 * kMinute, 4 * 60 * kMinute), 30 * kMinute);
    EXPECT_EQ(AckWindowMs(Level::kAmber, false, 30 * kMinute, 4 * 60 * kMinute), 4 * 60 * kMinute);
    EXPECT_EQ(AckWindowMs(Level::kGreen, false, 30 * kMinute, 4 * 60 * kMinute), 0);
    EXPECT_EQ(AckWindowMs(Level::kRed, true, 30 * kMinute, 4 * 60 * kMinute), 0);
}

}  // namespace
