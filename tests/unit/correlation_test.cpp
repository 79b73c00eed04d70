// Correlation into signals, re-grading, one live alert per signal with versions, and the
// audit chain, on both stores: SQLite (a file in a temp folder) and PostgreSQL (a real
// server the test starts, a database of its own per test). The same tests, the same
// expectations (issue 15).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <ctime>
#include <fstream>

#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_store.hpp"
#include "support/grading.hpp"
#include "support/postgres.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace json = boost::json;
using ldis::engine::ReportStore;
using ldis::test::SourcePath;

namespace {

std::shared_ptr<const ldis::engine::GradingSetup> Grading() {
    return ldis::test::ShippedGrading();
}

std::string ThisYear() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    return std::to_string(utc.tm_year + 1900);
}

class CorrelationTest : public ::testing::TestWithParam<std::string> {
protected:
    CorrelationTest() { Open(); }

    // One server for every PostgreSQL test of this process, a database for each test.
    static ldis::test::PostgresServer& Server() {
        static ldis::test::PostgresServer server;
        return server;
    }

    void Open() {
        if (GetParam() == "sqlite") {
            ldis::engine::StoreOptions o;
            o.path = dir_ / "ldis.db";
            o.grading = Grading();
            store_ = std::make_unique<ReportStore>(o);
            return;
        }
        static int databases = 0;
        if (url_.empty())
            url_ = Server().CreateDatabase("correlation" + std::to_string(++databases));
        ldis::engine::PostgresStore::Options o;
        o.url = url_;
        o.grading = Grading();
        auto opened = ldis::engine::PostgresStore::Open(o);
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        store_ = std::move(opened).value();
    }

    // Changes the database behind the store's back (an attacker with the file or a database
    // login), then opens the store again.
    void Tamper(const std::string& sql) {
        store_.reset();
        const std::string command =
            GetParam() == "sqlite"
                ? "sqlite3 '" + (dir_ / "ldis.db") + "' \"" + sql + "\""
                : "psql -q -h '" + Server().socket_dir() + "' -U ldis -d '" +
                      url_.substr(url_.find(":///") + 4, url_.find('?') - url_.find(":///") - 4) +
                      "' -c \"" + sql + "\"";
        ASSERT_EQ(std::system(command.c_str()), 0) << command;
        Open();
    }

    // Stores a report observed at `observed` in `district` naming `substance`.
    ldis::engine::StoredReport Submit(
        const std::string& observed, const std::string& substance,
        json::object harms = {{"cases", 1}},
        const std::string& organisation = "Medway NHS Foundation Trust",
        const std::string& district = "Medway", const std::string& type = "hospital") {
        auto r = ldis::test::ValidReport(ldis::test::NewUuid());
        r["observed_at"] = observed;
        r["substances"] = json::array{{{"name", substance}}};
        r["harms"] = harms;
        r["source"] = json::object{{"type", type}, {"organisation", organisation}};
        r["area"] = district == "Medway"
                        ? json::object{{"authority", "Medway"}, {"district", "Medway"}}
                        : json::object{{"authority", "Kent"}, {"district", district}};
        r.erase("setting");
        auto v = ldis::test::ValidateShipped(r);
        EXPECT_TRUE(v.ok()) << (v.errors.empty() ? ""
                                                 : v.errors[0].path + " " + v.errors[0].message);
        auto stored = store_->Insert(*v.report, "mqtt");
        EXPECT_TRUE(stored.ok());
        return stored.value();
    }

    ldis::test::TempDir dir_;
    std::string url_;
    std::unique_ptr<ldis::engine::Store> store_;
};

INSTANTIATE_TEST_SUITE_P(BothStores, CorrelationTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST_P(CorrelationTest, AReportInsideTheWindowJoinsTheSignal) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-08T10:00:00Z", "spice");  // exactly 7 days later: inside
    EXPECT_EQ(store_->CountSignals(), 1);
}

TEST_P(CorrelationTest, AReportPastTheWindowOpensANewSignal) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-08T10:00:01Z", "spice");  // 7 days and a second: outside
    EXPECT_EQ(store_->CountSignals(), 2);
}

TEST_P(CorrelationTest, TheWindowSlidesWithTheLatestReport) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-06T10:00:00Z", "spice");
    Submit("2026-11-12T10:00:00Z", "spice");  // 11 days after the first, 6 after the latest
    EXPECT_EQ(store_->CountSignals(), 1);
}

TEST_P(CorrelationTest, AReportSeenBeforeASignalJoinsItWithinTheWindow) {
    Submit("2026-11-10T10:00:00Z", "spice");
    Submit("2026-11-03T10:00:00Z", "spice");  // 7 days before: inside
    EXPECT_EQ(store_->CountSignals(), 1);
    Submit("2026-10-26T09:59:59Z", "spice");  // 7 days and a second before the first: outside
    EXPECT_EQ(store_->CountSignals(), 2);
}

// The store reads only the signal correlation would choose: the newest within the window
// either side, not merely the newest of the key. A later signal out of reach must not hide
// an earlier one that a late-reported incident belongs to.
TEST_P(CorrelationTest, ALateReportJoinsTheEarlierSignalItBelongsTo) {
    Submit("2026-11-01T10:00:00Z", "spice");  // signal A
    Submit("2026-11-20T10:00:00Z", "spice");  // signal B, out of A's window
    ASSERT_EQ(store_->CountSignals(), 2);
    Submit("2026-11-03T10:00:00Z", "spice");  // reported late: A's, 17 days before B
    EXPECT_EQ(store_->CountSignals(), 2);
}

TEST_P(CorrelationTest, ADifferentDistrictStartsADifferentSignal) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-01T11:00:00Z", "spice", {{"cases", 1}}, "Kent Police", "Swale", "police");
    EXPECT_EQ(store_->CountSignals(), 2);
}

TEST_P(CorrelationTest, ADifferentFamilyStartsADifferentSignal) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-01T11:00:00Z", "heroin");
    EXPECT_EQ(store_->CountSignals(), 2);
}

TEST_P(CorrelationTest, FamilyAliasesJoin) {
    Submit("2026-11-01T10:00:00Z", "nitazene");
    Submit("2026-11-02T10:00:00Z", "isotonitazene");
    Submit("2026-11-03T10:00:00Z", "Protonitazine");  // misspelt
    EXPECT_EQ(store_->CountSignals(), 1);
}

TEST_P(CorrelationTest, ThreeAmberReportsMakeOneRedAlertWithVersions) {
    const auto first = Submit("2026-11-01T10:00:00Z", "heroin",
                              {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    EXPECT_EQ(first.level, "amber");
    ASSERT_FALSE(first.alert_reference.empty());
    auto alert = store_->FindAlert(first.alert_reference);
    ASSERT_TRUE(alert);
    EXPECT_EQ(alert->status, ldis::engine::AlertStatus::kDraft);  // amber waits for a coordinator
    EXPECT_EQ(alert->version, 1);

    const auto second =
        Submit("2026-11-02T10:00:00Z", "brown", {{"cases", 1}, {"naloxone_poor_response", 1}},
               "South East Coast Ambulance Service", "Medway", "ambulance");
    EXPECT_EQ(second.level, "red");
    EXPECT_EQ(second.alert_reference, first.alert_reference);  // a new version, not a new alert
    alert = store_->FindAlert(first.alert_reference);
    EXPECT_EQ(alert->version, 2);
    EXPECT_EQ(alert->status, ldis::engine::AlertStatus::kIssued);  // red goes out at once
    EXPECT_TRUE(alert->provisional);  // until a coordinator confirms it
    EXPECT_EQ(alert->confidence, "corroborated");

    const auto third = Submit("2026-11-03T10:00:00Z", "heroin",
                              {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}},
                              "Change Grow Live", "Medway", "treatment");
    EXPECT_EQ(third.alert_reference, first.alert_reference);
    alert = store_->FindAlert(first.alert_reference);
    EXPECT_EQ(alert->version, 3);
    EXPECT_EQ(alert->status, ldis::engine::AlertStatus::kUpdated);
    EXPECT_EQ(alert->reports, 3);
    EXPECT_NE(std::find(alert->rules.begin(), alert->rules.end(), "life-threatening-cluster"),
              alert->rules.end());
    EXPECT_EQ(store_->Alerts().size(), 1u);
}

TEST_P(CorrelationTest, ReferencesCountUpWithinTheYear) {
    const auto a = Submit("2026-11-01T10:00:00Z", "spice",
                          {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    const auto b = Submit("2026-11-01T10:00:00Z", "ketamine",
                          {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    EXPECT_NE(a.alert_reference, b.alert_reference);
    EXPECT_EQ(a.alert_reference.substr(0, 3), "KM-");
    EXPECT_EQ(a.alert_reference.substr(a.alert_reference.size() - 5), "-0001");
    EXPECT_EQ(b.alert_reference.substr(b.alert_reference.size() - 5), "-0002");
}

TEST_P(CorrelationTest, NoneLevelMakesNoAlert) {
    const auto r =
        Submit("2026-11-01T10:00:00Z", "heroin", {{"cases", 0}}, "Kent Police", "Medway", "police");
    EXPECT_EQ(r.level, "none");
    EXPECT_TRUE(r.alert_reference.empty());
    EXPECT_TRUE(store_->Alerts().empty());
}

TEST_P(CorrelationTest, NationalAlertRisesWhenLocalEvidenceJoins) {
    const auto national = Submit("2026-11-01T10:00:00Z", "metonitazene", {{"cases", 0}}, "OHID",
                                 "Medway", "national_alert");
    EXPECT_EQ(national.level, "green");
    const auto local = Submit("2026-11-02T10:00:00Z", "metonitazene", {{"cases", 2}});
    EXPECT_EQ(local.level, "red");
    EXPECT_EQ(local.alert_reference, national.alert_reference);
}

TEST_P(CorrelationTest, DuplicateReceiptCarriesTheGrade) {
    auto r = ldis::test::ValidReport(ldis::test::NewUuid());
    const auto v = ldis::test::ValidateShipped(r);
    const auto first = store_->Insert(*v.report, "mqtt");
    const auto again = store_->Insert(*v.report, "mqtt");
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again.value().duplicate);
    EXPECT_EQ(again.value().level, first.value().level);
    EXPECT_EQ(again.value().alert_reference, first.value().alert_reference);
}

TEST_P(CorrelationTest, AuditChainVerifiesAndTamperingIsFound) {
    Submit("2026-11-01T10:00:00Z", "heroin",
           {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    Submit("2026-11-02T10:00:00Z", "heroin",
           {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}}, "Forward Trust", "Medway",
           "treatment");
    const auto entries = store_->VerifyAudit();
    ASSERT_TRUE(entries.ok()) << entries.error().message;
    EXPECT_EQ(entries.value(), 6);  // per report: accepted, graded, alert created or version
    Tamper("UPDATE audit SET detail = '{}' WHERE seq = 3");
    const auto tampered = store_->VerifyAudit();
    ASSERT_FALSE(tampered.ok());
    EXPECT_EQ(tampered.error().message, "audit entry 3 (alert.created KM-" + ThisYear() +
                                            "-0001) does not match its hash: it was "
                                            "changed after it was written")
        << tampered.error().message;
}

TEST_P(CorrelationTest, AuditEntryRemovedIsFound) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Tamper("DELETE FROM audit WHERE seq = 2");
    const auto result = store_->VerifyAudit();
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().message, "audit entry 2 is missing (the next is 3)");
}

TEST_P(CorrelationTest, ACoordinatorApprovesADraft) {
    const auto amber = Submit("2026-11-01T10:00:00Z", "heroin",
                              {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    const auto approved = store_->Act(amber.alert_reference, ldis::engine::AlertAction::kApprove,
                                      "coordinator:alice");
    ASSERT_TRUE(approved.ok()) << approved.error().message;
    EXPECT_EQ(approved.value().status, ldis::engine::AlertStatus::kIssued);
    EXPECT_EQ(approved.value().version, 2);
    EXPECT_FALSE(approved.value().provisional);
    const auto again = store_->Act(amber.alert_reference, ldis::engine::AlertAction::kApprove,
                                   "coordinator:alice");
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().message,
              "cannot approve " + amber.alert_reference + ": it is already issued");
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

TEST_P(CorrelationTest, ACoordinatorConfirmsAProvisionalRedAlert) {
    const auto red = Submit("2026-11-01T10:00:00Z", "heroin", {{"cases", 2}, {"critical_care", 2}});
    ASSERT_TRUE(store_->FindAlert(red.alert_reference)->provisional);
    const auto confirmed =
        store_->Act(red.alert_reference, ldis::engine::AlertAction::kApprove, "coordinator:bob");
    ASSERT_TRUE(confirmed.ok()) << confirmed.error().message;
    EXPECT_EQ(confirmed.value().status, ldis::engine::AlertStatus::kIssued);
    EXPECT_FALSE(confirmed.value().provisional);
}

TEST_P(CorrelationTest, ACancelledAlertCannotBeApprovedAndANewOneIsOpened) {
    const auto amber = Submit("2026-11-01T10:00:00Z", "heroin",
                              {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    ASSERT_TRUE(
        store_->Act(amber.alert_reference, ldis::engine::AlertAction::kCancel, "coordinator:alice")
            .ok());
    const auto refused = store_->Act(amber.alert_reference, ldis::engine::AlertAction::kApprove,
                                     "coordinator:alice");
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().message,
              "cannot approve " + amber.alert_reference + ": it is cancelled");
    // The signal goes on; its next change opens a new alert rather than reviving the cancelled one.
    const auto more = Submit("2026-11-02T10:00:00Z", "heroin",
                             {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    EXPECT_NE(more.alert_reference, amber.alert_reference);
    EXPECT_FALSE(store_->Act("KM-2026-9999", ldis::engine::AlertAction::kCancel, "x").ok());
}

TEST_P(CorrelationTest, IssuedAlertsExpireWhenTheirTimeIsUp) {
    const auto red = Submit("2026-11-01T10:00:00Z", "heroin", {{"cases", 2}, {"critical_care", 2}});
    const auto draft = Submit("2026-11-01T10:00:00Z", "spice",
                              {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    auto none_yet = store_->ExpireDue(now);
    ASSERT_TRUE(none_yet.ok());
    EXPECT_TRUE(none_yet.value().empty());
    const auto later = store_->ExpireDue(now + 366LL * 24 * 3600 * 1000);
    ASSERT_TRUE(later.ok());
    EXPECT_EQ(later.value(), std::vector<std::string>{red.alert_reference});  // drafts never expire
    EXPECT_EQ(store_->FindAlert(red.alert_reference)->status, ldis::engine::AlertStatus::kExpired);
    EXPECT_EQ(store_->FindAlert(draft.alert_reference)->status, ldis::engine::AlertStatus::kDraft);
    EXPECT_TRUE(store_->VerifyAudit().ok());
}

TEST_P(CorrelationTest, AnAutomaticVersionCarriesNoFreeTextOnlyControlledValues) {
    auto r = ldis::test::ValidReport(ldis::test::NewUuid());
    r["harms"].as_object()["deaths"] = 1;
    r["symptoms"] = json::array{"Pinpoint pupils", "collapsed at the home of Peter Brown"};
    r["substances"] =
        json::array{{{"name", "heroin from John Smith"},
                     {"sold_as", "blues"},
                     {"form", "tablet"},
                     {"colour", "off_white"},
                     {"shape", "round"},
                     {"imprint", "DAN 5620"},
                     {"appearance", "found on John Smith, 34, of 12 Elm Road Dartford"},
                     {"markings", "bag from Sarah Jones"}},
                    {{"name", "bromazolam"}}};
    r["description"] = "Sarah Jones's flat, 4 Oak Close, car AB12 CDE";
    const auto v = ldis::test::ValidateShipped(r);
    ASSERT_TRUE(v.ok()) << v.errors.front().path << " " << v.errors.front().message;
    const auto stored = store_->Insert(*v.report, "mqtt");
    ASSERT_TRUE(stored.ok());
    const auto alert = store_->FindAlert(stored.value().alert_reference);
    ASSERT_TRUE(alert);
    ASSERT_EQ(alert->status,
              ldis::engine::AlertStatus::kIssued);  // a provisional red: nobody read it first
    for (const char* planted : {"John", "Smith", "Elm Road", "Sarah", "Jones", "Peter", "Brown",
                                "Oak Close", "AB12", "collapsed", "home of"})
        EXPECT_EQ(alert->body.find(planted), std::string::npos) << planted << "\n" << alert->body;
    const std::string what(json::parse(alert->body).at("what").as_string());
    EXPECT_NE(what.find("- an unidentified substance, sold as blues, tablet; looks like: "
                        "off-white round; marked DAN 5620"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("- bromazolam"), std::string::npos) << what;  // one token: a chemical
    EXPECT_NE(alert->body.find("pinpoint pupils"), std::string::npos);
}

TEST_P(CorrelationTest, AlertTextHasEverySectionAndNothingPersonal) {
    auto r = ldis::test::ValidReport(ldis::test::NewUuid());
    r["harms"] = json::object{{"cases", 2}, {"critical_care", 2}, {"naloxone_doses", 5}};
    r["symptoms"] = json::array{"slow breathing", "patient 943 476 5919 blue lips"};
    r["substances"] = json::array{
        {{"name", "protonitazene"}, {"sold_as", "heroin"}, {"appearance", "brown powder"}}};
    const auto v = ldis::test::ValidateShipped(r);
    ASSERT_TRUE(v.ok());
    const auto stored = store_->Insert(*v.report, "mqtt");
    ASSERT_TRUE(stored.ok());
    const auto alert = store_->FindAlert(stored.value().alert_reference);
    ASSERT_TRUE(alert);
    const auto body = json::parse(alert->body).as_object();
    for (const auto& section : ldis::engine::AlertTemplates::SectionNames()) {
        ASSERT_TRUE(body.contains(section)) << section;
        EXPECT_FALSE(body.at(section).as_string().empty()) << section;
    }
    const std::string summary(body.at("summary").as_string());
    EXPECT_EQ(summary.rfind("Drug Alert " + alert->reference + " v1 (provisional): nitazenes", 0),
              0u)
        << summary;
    // Medway Maritime is an establishment: two cases read "fewer than 3".
    EXPECT_NE(summary.find("fewer than 3 affected"), std::string::npos) << summary;
    // A sign from the controlled list is shown; free text is not, scrubbed or not.
    EXPECT_NE(std::string(body.at("harms").as_string()).find("slow breathing"), std::string::npos);
    EXPECT_EQ(alert->body.find("blue lips"), std::string::npos);
    EXPECT_EQ(alert->body.find("943 476 5919"), std::string::npos);
    EXPECT_EQ(alert->body.find("brown powder"), std::string::npos);
    EXPECT_EQ(alert->scrubbed, 0);
    EXPECT_EQ(alert->body.find("ed.nurse@example.org"),
              std::string::npos);  // the reporter's contact
    EXPECT_EQ(alert->body.find("Medway NHS Foundation Trust"), std::string::npos);
    EXPECT_NE(std::string(body.at("acknowledgement").as_string()).find("within 4 hours"),
              std::string::npos);
    EXPECT_NE(std::string(body.at("history").as_string()).find("v1 issued (red)"),
              std::string::npos);
}

TEST_P(CorrelationTest, LargerCountsAreShownWhenNoWardOrEstablishmentIsNamed) {
    const auto a = Submit("2026-11-01T10:00:00Z", "spice", {{"cases", 4}, {"critical_care", 1}});
    const auto alert = store_->FindAlert(a.alert_reference);
    ASSERT_TRUE(alert);
    EXPECT_NE(alert->body.find("4 affected"), std::string::npos) << alert->body;
}

TEST(AlertTemplatesTest, ABrokenTemplateIsNamed) {
    ldis::test::TempDir dir;
    for (const auto& section : ldis::engine::AlertTemplates::SectionNames()) {
        std::ofstream(dir / (section + ".mustache"))
            << (section == "harms" ? "{{#open}} never closed" : "ok");
    }
    try {
        ldis::engine::AlertTemplates::LoadDir(dir.path().string());
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("harms.mustache"), std::string::npos) << e.what();
    }
}

}  // namespace
