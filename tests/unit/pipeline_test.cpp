// The alert pipeline's rules as values, without SQLite (issue 14): one test per named rule
// of Correlate, Regrade, NextVersion and PlanDeliveries, the reference numbering and the
// acknowledgement windows.
#include "ldis/engine/pipeline.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "ldis/engine/text.hpp"
#include "support/shipped.hpp"

namespace {

namespace json = boost::json;
using ldis::engine::Channel;
using ldis::engine::Correlate;
using ldis::engine::Delivery;
using ldis::engine::DispatchPolicy;
using ldis::engine::Escalation;
using ldis::engine::FactsOf;
using ldis::engine::KeyOf;
using ldis::engine::Partners;
using ldis::engine::PlanDeliveries;
using ldis::engine::Recipient;
using ldis::engine::Regrade;
using ldis::engine::Report;
using ldis::engine::Rules;
using ldis::engine::SignalFacts;
using ldis::engine::SignalKey;
using ldis::engine::SignalOverride;
using ldis::engine::SignalSpan;
using ldis::engine::Substances;
using ldis::engine::VersionToRoute;
using ldis::test::ShippedRules;
using ldis::test::ShippedSubstances;

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

namespace {

constexpr std::int64_t kDay = 24 * 60 * kMinute;
constexpr std::int64_t kWeek = 7 * kDay;

// A report as the validator leaves it: the indexed fields and the document.
Report Harm(const std::string& substance, const std::string& organisation, int cases,
            const std::string& observed_at = "2026-11-23T09:00:00Z") {
    const json::object doc{{"schema", "ldis.report/1"},
                           {"id", ldis::test::NewUuid()},
                           {"submitted_at", "2026-11-23T09:30:00Z"},
                           {"observed_at", observed_at},
                           {"source", {{"type", "hospital"}, {"organisation", organisation}}},
                           {"area", {{"authority", "Medway"}, {"district", "Medway"}}},
                           {"setting", "community"},
                           {"substances", json::array{{{"name", substance}}}},
                           {"harms", {{"cases", cases}, {"critical_care", cases}}},
                           {"evidence", "professional"}};
    Report r;
    r.submitted_at = "2026-11-23T09:30:00Z";
    r.observed_at = observed_at;
    r.organisation = organisation;
    r.authority = "Medway";
    r.district = "Medway";
    r.evidence = "professional";
    r.document = json::serialize(doc);
    return r;
}

SignalKey KeyOfReport(const Report& r) {
    return KeyOf(r, FactsOf({r.document}, ShippedSubstances()), ShippedSubstances(), kNow);
}

}  // namespace

// ---- Correlate ----

TEST(PipelineTest, AReportIsKeyedOnItsFamilyDistrictAndWhenItWasSeen) {
    const SignalKey key = KeyOfReport(Harm("heroin", "Medway NHS Foundation Trust", 1));
    EXPECT_EQ(key.family, "opioid");
    EXPECT_EQ(key.district, "Medway");
    EXPECT_EQ(key.seen_ms, ldis::engine::ParseTimeMs("2026-11-23T09:00:00Z"));
    // No time it was seen that parses: now.
    Report r = Harm("heroin", "Medway NHS Foundation Trust", 1, "");
    r.submitted_at = "not a time";
    EXPECT_EQ(KeyOfReport(r).seen_ms, kNow);
}

TEST(PipelineTest, AReportJoinsTheNewestSignalSeenWithinTheWindowEitherSide) {
    const SignalKey key{"opioid", "Medway", kNow};
    // Two signals in the window: the newer one is joined.
    EXPECT_EQ(Correlate(key, {{3, kNow - 2 * kDay, kNow - kDay}, {7, kNow - kDay, kNow}}, kWeek),
              7);
    // Seen before a signal's first report, within the window: it joins too.
    EXPECT_EQ(Correlate(key, {{4, kNow + 3 * kDay, kNow + 4 * kDay}}, kWeek), 4);
    // At the window's edge it joins; a millisecond past it opens a new signal.
    EXPECT_EQ(Correlate(key, {{5, kNow - 9 * kDay, kNow - kWeek}}, kWeek), 5);
    EXPECT_EQ(Correlate(key, {{5, kNow - 9 * kDay, kNow - kWeek - 1}}, kWeek), std::nullopt);
    EXPECT_EQ(Correlate(key, {{6, kNow + kWeek + 1, kNow + 9 * kDay}}, kWeek), std::nullopt);
    EXPECT_EQ(Correlate(key, {}, kWeek), std::nullopt);
}

TEST(PipelineTest, ADrillsReportNeverJoinsARealSignalNorARealReportADrills) {
    Report exercise = Harm("heroin", "Medway NHS Foundation Trust", 1);
    exercise.drill = ldis::engine::Drill::kExercise;
    const SignalKey key = KeyOfReport(exercise);
    EXPECT_EQ(key.drill, ldis::engine::Drill::kExercise);
    EXPECT_EQ(KeyOfReport(Harm("heroin", "Medway NHS Foundation Trust", 1)).drill,
              ldis::engine::Drill::kNone);
    // A real signal of the same family, district and time is not joined; an exercise's is,
    // and a test's is not.
    const std::int64_t seen = key.seen_ms;
    const ldis::engine::SignalSpan real{3, seen - kDay, seen};
    const ldis::engine::SignalSpan drill{2, seen - kDay, seen, ldis::engine::Drill::kExercise};
    const ldis::engine::SignalSpan test{4, seen - kDay, seen, ldis::engine::Drill::kTest};
    EXPECT_EQ(Correlate(key, {real}, kWeek), std::nullopt);
    EXPECT_EQ(Correlate(key, {real, drill, test}, kWeek), 2);
    const SignalKey live{"opioid", "Medway", seen};
    EXPECT_EQ(Correlate(live, {drill, test}, kWeek), std::nullopt);
    EXPECT_EQ(Correlate(live, {real, drill, test}, kWeek), 3);
}

TEST(PipelineTest, ADrillIsMarkedFirstWithCapsStatusWord) {
    using ldis::engine::Drill;
    EXPECT_EQ(ldis::engine::DrillMarking(Drill::kNone), "");
    EXPECT_EQ(ldis::engine::DrillMarking(Drill::kExercise),
              "EXERCISE \xE2\x80\x93 NOT A REAL ALERT");
    EXPECT_EQ(ldis::engine::DrillMarking(Drill::kTest), "TEST \xE2\x80\x93 NOT A REAL ALERT");
    EXPECT_EQ(ldis::engine::CapStatus(Drill::kNone), "Actual");
    EXPECT_EQ(ldis::engine::CapStatus(Drill::kExercise), "Exercise");
    EXPECT_EQ(ldis::engine::CapStatus(Drill::kTest), "Test");
    for (Drill d : {Drill::kNone, Drill::kExercise, Drill::kTest}) {
        Drill back = Drill::kTest;
        ASSERT_TRUE(ldis::engine::ParseDrill(ldis::engine::ToString(d), back));
        EXPECT_EQ(back, d);
    }
    Drill unchanged = Drill::kNone;
    EXPECT_FALSE(ldis::engine::ParseDrill("Exercise", unchanged));
    EXPECT_EQ(unchanged, Drill::kNone);
}

// ---- Regrade ----

TEST(PipelineTest, ASignalIsGradedOnAllItsReportsAndCountsEachOrganisationOnce) {
    const Report first = Harm("heroin", "Medway NHS Foundation Trust", 1);
    const auto one = Regrade({}, FactsOf({first.document}, ShippedSubstances()), true, {},
                             ShippedRules(), ShippedSubstances());
    EXPECT_EQ(one.facts.numbers.at("reports"), 1);
    EXPECT_EQ(one.facts.numbers.at("sources"), 1);
    // A second life-threatening event from the same trust: the cluster rule makes it red, and
    // the trust is still one source.
    const Report second = Harm("heroin", "Medway NHS Foundation Trust", 1);
    const auto two = Regrade(one.facts, FactsOf({second.document}, ShippedSubstances()), false, {},
                             ShippedRules(), ShippedSubstances());
    EXPECT_EQ(two.facts.numbers.at("reports"), 2);
    EXPECT_EQ(two.facts.numbers.at("sources"), 1);
    EXPECT_EQ(two.rules.level, Level::kRed);
    EXPECT_EQ(two.shown.level, Level::kRed);
    const auto& fired = two.rules.fired;
    EXPECT_TRUE(std::any_of(fired.begin(), fired.end(),
                            [](const auto& f) { return f.id == "life-threatening-cluster"; }));
    // Another organisation is a second source.
    const Report third = Harm("heroin", "Kent Police", 1);
    const auto three = Regrade(two.facts, FactsOf({third.document}, ShippedSubstances()), true, {},
                               ShippedRules(), ShippedSubstances());
    EXPECT_EQ(three.facts.numbers.at("sources"), 2);
}

TEST(PipelineTest, ACoordinatorsOverrideHoldsWhenNewReportsGradeTheSignalAgain) {
    SignalOverride held;
    held.level = "amber";
    held.reason = "The lab says it is not a nitazene.";
    const Report r = Harm("heroin", "Medway NHS Foundation Trust", 2);
    const auto graded = Regrade({}, FactsOf({r.document}, ShippedSubstances()), true, held,
                                ShippedRules(), ShippedSubstances());
    EXPECT_EQ(graded.rules.level, Level::kRed);  // what the rules give is kept
    EXPECT_EQ(graded.shown.level, Level::kAmber);
    ASSERT_FALSE(graded.shown.fired.empty());
    EXPECT_EQ(graded.shown.fired.front().id, "override");
    // Partners read that a coordinator set it, never the coordinator's words.
    EXPECT_EQ(graded.shown.fired.front().reason.find("lab"), std::string::npos);
    EXPECT_NE(graded.shown.fired.front().reason.find("the rules give red"), std::string::npos);
    // Lifted: the rules' grade again.
    const auto lifted = Regrade({}, FactsOf({r.document}, ShippedSubstances()), true, {},
                                ShippedRules(), ShippedSubstances());
    EXPECT_EQ(lifted.shown.level, Level::kRed);
}

TEST(PipelineTest, AnOverrideSetOrLiftedGradesTheStoredFactsAgain) {
    // A coordinator acts on a signal with no new report: its stored facts are graded by the
    // rules as they are now, and the override decides what is shown.
    const Report r = Harm("heroin", "Medway NHS Foundation Trust", 2);
    const SignalFacts stored = Regrade({}, FactsOf({r.document}, ShippedSubstances()), true, {},
                                       ShippedRules(), ShippedSubstances())
                                   .facts;
    SignalOverride held;
    held.level = "green";
    const auto lowered = Regrade(stored, held, ShippedRules());
    EXPECT_EQ(lowered.facts.numbers, stored.numbers);  // nothing new is counted
    EXPECT_EQ(lowered.rules.level, Level::kRed);
    EXPECT_EQ(lowered.shown.level, Level::kGreen);
    EXPECT_EQ(lowered.shown.fired.front().id, "override");
    const auto lifted = Regrade(stored, {}, ShippedRules());
    EXPECT_EQ(lifted.shown.level, Level::kRed);
    EXPECT_EQ(lifted.shown.fired.front().id, lifted.rules.fired.front().id);
}

// ---- PlanDeliveries ----

namespace {

const Partners& Routing() {
    static const Partners p = Partners::Parse(R"toml(
[coordinators]
partner = "coord"

[[partner]]
id = "coord"
name = "Coordinators"
  [[partner.contact]]
  name = "team"
  channel = "email"
  address = "team@example.org"
  [[partner.contact]]
  name = "phone"
  channel = "notify_sms"
  address = "+447700900002"

[[partner]]
id = "ed"
name = "Medway ED"
escalation = "boss"
  [[partner.contact]]
  name = "desk"
  channel = "email"
  address = "desk@example.org"
  [[partner.contact]]
  name = "boss"
  channel = "email"
  address = "boss@example.org"
  [[partner.subscription]]
  levels = ["red", "amber"]
  authorities = ["Medway"]

[[partner]]
id = "kent"
name = "Kent service"
  [[partner.contact]]
  name = "mail"
  channel = "email"
  address = "kent@example.org"
  [[partner.subscription]]
  levels = ["red"]
  authorities = ["Kent"]
)toml",
                                              "partners.toml");
    return p;
}

VersionToRoute Version(AlertStatus status, Level level) {
    VersionToRoute v;
    v.status = status;
    v.level = level;
    v.authority = "Medway";
    v.district = "Medway";
    return v;
}

std::vector<std::string> Slots(const std::vector<Delivery>& planned) {
    std::vector<std::string> out;
    for (const auto& d : planned) out.push_back(std::string(d.kind) + ":" + d.slot);
    return out;
}

}  // namespace

TEST(PipelineTest, AnIssuedVersionReachesItsSubscribersWithTheLevelsDeadlineAndTheBroker) {
    DispatchPolicy dispatch;
    const auto red =
        PlanDeliveries(Version(AlertStatus::kIssued, Level::kRed), {}, &Routing(), dispatch, kNow);
    EXPECT_EQ(Slots(red), (std::vector<std::string>{"alert:ed/desk", "mqtt:mqtt"}));
    EXPECT_EQ(red[0].address, "desk@example.org");
    EXPECT_EQ(red[0].ack_due_ms, kNow + dispatch.red_ack_ms);
    EXPECT_EQ(red[1].address, "ldis/v1/alerts/red/medway");
    EXPECT_EQ(red[1].ack_due_ms, 0);
    const auto amber = PlanDeliveries(Version(AlertStatus::kUpdated, Level::kAmber), {}, &Routing(),
                                      dispatch, kNow);
    EXPECT_EQ(amber[0].ack_due_ms, kNow + dispatch.amber_ack_ms);
    // MQTT off: no document on the broker.
    dispatch.enabled.erase(Channel::kMqtt);
    EXPECT_EQ(Slots(PlanDeliveries(Version(AlertStatus::kIssued, Level::kRed), {}, &Routing(),
                                   dispatch, kNow)),
              (std::vector<std::string>{"alert:ed/desk"}));
}

// Issue 16 §1: what this instance offers its peers is its own rule, by level and district.
TEST(PipelineTest, AVersionIsOfferedToThePeersByLevelAndWhereOnlySomeDistricts) {
    DispatchPolicy dispatch;
    dispatch.enabled.erase(Channel::kMqtt);
    const auto offered = [&](AlertStatus status, Level level, const std::string& district) {
        auto v = Version(status, level);
        v.district = district;
        for (const auto& d : PlanDeliveries(v, {}, &Routing(), dispatch, kNow))
            if (d.kind == ldis::engine::kKindFederation) return d.address;
        return std::string("not offered");
    };
    EXPECT_EQ(offered(AlertStatus::kIssued, Level::kRed, "Medway"), "not offered");  // no peers
    dispatch.federation_topic = "ldis/v1/federation/medway/alerts";
    dispatch.federation_offer = {Level::kRed, Level::kAmber};
    dispatch.federation_offer_districts[Level::kAmber] = {"Medway"};  // borders Kent
    EXPECT_EQ(offered(AlertStatus::kIssued, Level::kRed, "Thanet"),
              "ldis/v1/federation/medway/alerts");
    EXPECT_EQ(offered(AlertStatus::kCancelled, Level::kRed, "Thanet"),
              "ldis/v1/federation/medway/alerts");
    EXPECT_EQ(offered(AlertStatus::kUpdated, Level::kAmber, "Medway"),
              "ldis/v1/federation/medway/alerts");
    EXPECT_EQ(offered(AlertStatus::kIssued, Level::kAmber, "Thanet"), "not offered");
    EXPECT_EQ(offered(AlertStatus::kIssued, Level::kGreen, "Medway"), "not offered");
    EXPECT_EQ(offered(AlertStatus::kDraft, Level::kRed, "Medway"), "not offered");
}

TEST(PipelineTest, APeersVersionIsForwardedByPolicyAndItsFollowUpsAlways) {
    using ldis::engine::FederatedDecision;
    using ldis::engine::FederatedPolicy;
    EXPECT_EQ(FederatedDecision(FederatedPolicy::kForward, false), "forwarded");
    EXPECT_EQ(FederatedDecision(FederatedPolicy::kReview, false), "review");
    EXPECT_EQ(FederatedDecision(FederatedPolicy::kRecord, false), "recorded");
    // An update or cancellation of an alert that went to partners goes to them too.
    EXPECT_EQ(FederatedDecision(FederatedPolicy::kRecord, true), "forwarded");
    EXPECT_EQ(FederatedDecision(FederatedPolicy::kReview, true), "forwarded");
    // Forwarded to the partners who subscribe, marked with the detail; a cancellation
    // exactly to the earlier recipients.
    DispatchPolicy dispatch;
    const auto planned = ldis::engine::PlanForwarded(Version(AlertStatus::kIssued, Level::kRed), {},
                                                     &Routing(), dispatch, kNow, "{\"x\":1}");
    EXPECT_EQ(Slots(planned), (std::vector<std::string>{"federated:ed/desk"}));
    EXPECT_EQ(planned[0].detail, "{\"x\":1}");
    EXPECT_EQ(planned[0].ack_due_ms, kNow + dispatch.red_ack_ms);
    EXPECT_TRUE(ldis::engine::PlanForwarded(Version(AlertStatus::kCancelled, Level::kRed), {},
                                            &Routing(), dispatch, kNow, "{}")
                    .empty());
}

TEST(PipelineTest, APeersVersionRoutesAsItsMessageTypeSaysAndItsRecipientsAreEachSlotsLatest) {
    const auto first = ldis::engine::ForwardedRoute("Alert", 1, "red", "Medway", "Medway");
    EXPECT_EQ(first.status, AlertStatus::kIssued);
    EXPECT_EQ(first.level, Level::kRed);
    EXPECT_EQ(first.authority, "Medway");
    EXPECT_EQ(ldis::engine::ForwardedRoute("Update", 2, "amber", "Kent", "Swale").status,
              AlertStatus::kUpdated);
    const auto cancel = ldis::engine::ForwardedRoute("Cancel", 3, "red", "Medway", "Medway");
    EXPECT_EQ(cancel.status, AlertStatus::kCancelled);
    // A level this instance does not know routes as none: it reaches no one.
    const auto odd = ldis::engine::ForwardedRoute("Alert", 1, "purple", "Medway", "Medway");
    EXPECT_EQ(odd.level, Level::kNone);
    EXPECT_TRUE(
        ldis::engine::PlanForwarded(odd, {}, &Routing(), DispatchPolicy{}, kNow, "{}").empty());

    // Read in the order queued: the ED's desk, then its boss as the desk's fallback, then
    // the police. What is left: the boss for the ED's slot, and the police.
    const auto recipients = ldis::engine::LatestPerSlot(
        {{"ed", "desk", "ed/desk"}, {"police", "desk", "police/desk"}, {"ed", "boss", "ed/desk"}});
    ASSERT_EQ(recipients.size(), 2u);
    EXPECT_EQ(recipients[0].contact, "boss");
    EXPECT_EQ(recipients[1].partner, "police");
}

TEST(PipelineTest, AProvisionalRedIssuedAtOncePagesTheCoordinatorsOnEveryEnabledChannel) {
    DispatchPolicy dispatch;
    auto v = Version(AlertStatus::kIssued, Level::kRed);
    v.page = true;
    EXPECT_EQ(Slots(PlanDeliveries(v, {}, &Routing(), dispatch, kNow)),
              (std::vector<std::string>{"alert:ed/desk", "mqtt:mqtt", "page:coord/team",
                                        "page:coord/phone"}));
    dispatch.enabled.erase(Channel::kNotifySms);
    EXPECT_EQ(Slots(PlanDeliveries(v, {}, &Routing(), dispatch, kNow)),
              (std::vector<std::string>{"alert:ed/desk", "mqtt:mqtt", "page:coord/team"}));
}

TEST(PipelineTest, ADraftReachesOnlyTheCoordinatorsAndOnlyWhenItAsksThemToApprove) {
    const DispatchPolicy dispatch;
    auto v = Version(AlertStatus::kDraft, Level::kAmber);
    EXPECT_TRUE(PlanDeliveries(v, {}, &Routing(), dispatch, kNow).empty());
    v.ask_coordinators = true;
    EXPECT_EQ(Slots(PlanDeliveries(v, {}, &Routing(), dispatch, kNow)),
              (std::vector<std::string>{"approval:coord/team", "approval:coord/phone"}));
}

TEST(PipelineTest, ACancellationReachesExactlyTheEarlierRecipientsWithNoDeadline) {
    const DispatchPolicy dispatch;
    // The ED was reached through its boss last time (a fallback): the cancellation goes the
    // same way; the Kent service never had it and does not get the cancellation.
    const std::vector<Recipient> earlier{{"ed", "boss", "ed/desk"}};
    auto v = Version(AlertStatus::kCancelled, Level::kRed);
    const auto planned = PlanDeliveries(v, earlier, &Routing(), dispatch, kNow);
    EXPECT_EQ(Slots(planned), (std::vector<std::string>{"alert:ed/desk", "mqtt:mqtt"}));
    EXPECT_EQ(planned[0].contact, "boss");
    EXPECT_EQ(planned[0].ack_due_ms, 0);
    EXPECT_TRUE(PlanDeliveries(Version(AlertStatus::kExpired, Level::kRed), earlier, &Routing(),
                               dispatch, kNow)
                    .empty());
}

TEST(PipelineTest, AnUnacknowledgedAlertEscalatesToThePartnersEscalationContact) {
    using ldis::engine::Answer;
    DispatchPolicy dispatch;
    dispatch.red_ack_ms = 4 * 3600 * 1000;
    const auto escalation = Escalation(Routing(), "ed", Level::kRed, Answer::kNone, dispatch);
    ASSERT_TRUE(escalation.has_value());
    EXPECT_EQ(escalation->kind, ldis::engine::kKindEscalation);
    EXPECT_EQ(escalation->address, "boss@example.org");
    EXPECT_NE(escalation->detail.find("\"ack_within\":\"4 hours\""), std::string::npos);
    EXPECT_NE(escalation->detail.find("\"answer\":\"\""), std::string::npos);
    // Received, and nothing said of what they did by the deadline (issue 17 §4): escalated,
    // saying so.
    const auto received = Escalation(Routing(), "ed", Level::kRed, Answer::kReceived, dispatch);
    ASSERT_TRUE(received.has_value());
    EXPECT_NE(received->detail.find("\"answer\":\"received\""), std::string::npos);
    // Actions confirmed in any words, no escalation contact, or its channel off: none.
    for (const auto said :
         {Answer::kShared, Answer::kActions, Answer::kNotRelevant, Answer::kSeenToo})
        EXPECT_FALSE(Escalation(Routing(), "ed", Level::kRed, said, dispatch));
    EXPECT_FALSE(Escalation(Routing(), "kent", Level::kRed, Answer::kNone, dispatch));
    dispatch.enabled.erase(Channel::kEmail);
    EXPECT_FALSE(Escalation(Routing(), "ed", Level::kRed, Answer::kNone, dispatch));
}
