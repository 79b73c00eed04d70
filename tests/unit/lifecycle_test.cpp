#include "ldis/engine/lifecycle.hpp"

#include <gtest/gtest.h>

using ldis::engine::AlertAction;
using ldis::engine::AlertStatus;
using ldis::engine::Level;
using ldis::engine::Transition;

namespace {

struct Row {
    AlertStatus from;
    AlertAction action;
    bool legal;
    AlertStatus to;
};

TEST(LifecycleTest, EveryTransition) {
    using S = AlertStatus;
    using A = AlertAction;
    const Row rows[] = {
        {S::kDraft, A::kApprove, true, S::kIssued},
        {S::kDraft, A::kRevise, true, S::kDraft},
        {S::kDraft, A::kCancel, true, S::kCancelled},
        {S::kDraft, A::kExpire, false, S::kDraft},
        {S::kIssued, A::kApprove, false, S::kIssued},
        {S::kIssued, A::kRevise, true, S::kUpdated},
        {S::kIssued, A::kCancel, true, S::kCancelled},
        {S::kIssued, A::kExpire, true, S::kExpired},
        {S::kUpdated, A::kApprove, false, S::kUpdated},
        {S::kUpdated, A::kRevise, true, S::kUpdated},
        {S::kUpdated, A::kCancel, true, S::kCancelled},
        {S::kUpdated, A::kExpire, true, S::kExpired},
        {S::kCancelled, A::kApprove, false, S::kDraft},
        {S::kCancelled, A::kRevise, false, S::kDraft},
        {S::kCancelled, A::kCancel, false, S::kDraft},
        {S::kCancelled, A::kExpire, false, S::kDraft},
        {S::kExpired, A::kApprove, false, S::kDraft},
        {S::kExpired, A::kRevise, false, S::kDraft},
        {S::kExpired, A::kCancel, false, S::kDraft},
        {S::kExpired, A::kExpire, false, S::kDraft},
    };
    for (const auto& r : rows) {
        const auto result = Transition("KM-2026-0007", r.from, r.action);
        EXPECT_EQ(result.ok(), r.legal) << ToString(r.from) << " + " << ToString(r.action);
        if (r.legal && result.ok()) {
            EXPECT_EQ(ToString(result.value()), ToString(r.to))
                << ToString(r.from) << " + " << ToString(r.action);
        }
        if (!r.legal && !result.ok()) {
            EXPECT_NE(result.error().message.find("KM-2026-0007"), std::string::npos);
        }
    }
}

TEST(LifecycleTest, RefusalsSayWhy) {
    EXPECT_EQ(
        Transition("KM-2026-0007", AlertStatus::kCancelled, AlertAction::kApprove).error().message,
        "cannot approve KM-2026-0007: it is cancelled");
    EXPECT_EQ(
        Transition("KM-2026-0008", AlertStatus::kIssued, AlertAction::kApprove).error().message,
        "cannot approve KM-2026-0008: it is already issued");
}

TEST(LifecycleTest, DefaultPolicy) {
    const auto red = ldis::engine::DecidePolicy(Level::kRed);
    EXPECT_EQ(red.status, AlertStatus::kIssued);
    EXPECT_TRUE(red.provisional);
    EXPECT_EQ(red.audience, "professionals");
    EXPECT_EQ(ldis::engine::DecidePolicy(Level::kAmber).status, AlertStatus::kDraft);
    EXPECT_EQ(ldis::engine::DecidePolicy(Level::kGreen).status, AlertStatus::kDraft);
    EXPECT_EQ(ldis::engine::DecidePolicy(Level::kRed, "public").status, AlertStatus::kDraft);
}

TEST(LifecycleTest, OnlyTrustedSourcesIssueAtOnce) {
    using ldis::engine::Trust;
    using ldis::engine::TrustedSource;
    const ldis::engine::Policy policy;
    EXPECT_TRUE(TrustedSource(Trust::kTrusted, "hospital", policy));
    EXPECT_FALSE(TrustedSource(Trust::kUnverified, "hospital", policy));  // the open form
    EXPECT_FALSE(TrustedSource(Trust::kTrusted, "public", policy));       // anyone can claim it
    EXPECT_FALSE(TrustedSource(Trust::kTrusted, "other", policy));
    const auto untrusted = ldis::engine::DecidePolicy(Level::kRed, "professionals", policy, false);
    EXPECT_EQ(untrusted.status, AlertStatus::kDraft);
    EXPECT_FALSE(untrusted.provisional);
    EXPECT_EQ(ldis::engine::DecidePolicy(Level::kRed, "professionals", policy, true).status,
              AlertStatus::kIssued);
}

}  // namespace

TEST(LifecycleTest, ACoordinatorsWordingAndAudienceAreCheckedBeforeAnythingIsWritten) {
    EXPECT_EQ(ldis::engine::Audiences(),
              (std::vector<std::string>{"professionals", "services", "public"}));
    EXPECT_TRUE(ldis::engine::IsAudience("public"));
    EXPECT_FALSE(ldis::engine::IsAudience("Public"));
    ldis::engine::AlertWording w;
    EXPECT_FALSE(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kCancel, w));
    w.audience = "public";
    EXPECT_FALSE(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kApprove, w));
    EXPECT_FALSE(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w));
    const auto cancel = ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kCancel, w);
    ASSERT_TRUE(cancel);
    EXPECT_EQ(cancel->message,
              "the audience of KM-2026-0007 changes with an approval or an update, not a cancel");
    w.audience = "everyone";
    EXPECT_EQ(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w)->message,
              "\"everyone\" is not an audience: choose professionals, services or public");
    w.audience.clear();
    w.sections["advice"] = "Do not use alone.";
    EXPECT_FALSE(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w));
    EXPECT_EQ(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kExpire, w)->message,
              "the wording of KM-2026-0007 changes with an update, not a expire");
    w.sections["who"] = "x";
    EXPECT_NE(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w)
                  ->message.find("\"who\" is not a section a coordinator writes"),
              std::string::npos);
    w.sections.erase("who");
    w.sections["advice"] = std::string(4001, 'a');
    EXPECT_EQ(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w)->message,
              "the advice section must be 1 to 4,000 characters");
}

// Photos a coordinator chooses for a version (issue 17 §3): at most three, each once, each a
// photo's id, and only with an approval or an update.
TEST(LifecycleTest, ACoordinatorsChoiceOfPhotosIsCheckedBeforeAnythingIsWritten) {
    const std::string a = "ph-" + std::string(32, 'a'), b = "ph-" + std::string(32, 'b');
    ldis::engine::AlertWording w;
    w.photos = std::vector<std::string>{a, b};
    EXPECT_FALSE(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w));
    EXPECT_FALSE(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kApprove, w));
    EXPECT_EQ(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kCancel, w)->message,
              "photos go out with an approval or an update of KM-2026-0007, not a cancel");
    w.photos->push_back(a);
    EXPECT_EQ(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w)->message,
              "the photo " + a + " is chosen twice");
    w.photos =
        std::vector<std::string>{a, b, "ph-" + std::string(32, 'c'), "ph-" + std::string(32, 'd')};
    EXPECT_EQ(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w)->message,
              "at most three photos go out with a version; 4 were chosen");
    w.photos = std::vector<std::string>{"../../etc/passwd"};
    EXPECT_EQ(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kRevise, w)->message,
              "\"../../etc/passwd\" is not a photo's id (ph- and 32 hex digits, as the record "
              "lists them)");
    w.photos = std::vector<std::string>{};  // none chosen: a cancellation may say so
    EXPECT_FALSE(ldis::engine::WordingProblem("KM-2026-0007", AlertAction::kCancel, w));
}

// What the audit log keeps of an action: which sections a coordinator wrote but never what
// they wrote, an audience only when it changed, and the photos chosen.
TEST(LifecycleTest, TheAuditOfAnActionNamesTheSectionsWrittenButNeverTheirText) {
    using ldis::engine::ActionAuditDetail;
    ldis::engine::AlertWording plain;
    EXPECT_EQ(ActionAuditDetail(AlertStatus::kDraft, AlertStatus::kIssued, 1, plain, "services"),
              R"({"from":"draft","to":"issued","version":1})");

    ldis::engine::AlertWording worded;
    worded.sections = {{"what", "Blue tablets in Chatham"}, {"advice", "Test a small amount"}};
    worded.confirmed_findings = 2;
    worded.audience = "services";  // as it was: not a change
    worded.photos = std::vector<std::string>{"ph-1", "ph-2"};
    const std::string detail =
        ActionAuditDetail(AlertStatus::kIssued, AlertStatus::kUpdated, 3, worded, "services");
    EXPECT_EQ(detail, R"({"from":"issued","to":"updated","version":3,"wording":["advice","what"],)"
                      R"("sent_despite_findings":2,"photos":["ph-1","ph-2"]})");
    EXPECT_EQ(detail.find("Chatham"), std::string::npos);

    worded.audience = "public";
    EXPECT_NE(ActionAuditDetail(AlertStatus::kIssued, AlertStatus::kUpdated, 3, worded, "services")
                  .find(R"("audience":{"from":"services","to":"public"})"),
              std::string::npos);
}
