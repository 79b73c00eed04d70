// Correlation into signals, re-grading, one live alert per signal with versions, and the
// audit chain: ReportStore with grading, on an SQLite file in a temp folder.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <ctime>

#include "ldis/engine/report_store.hpp"
#include "ldis/engine/report_validator.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace json = boost::json;
using ldis::engine::ReportStore;
using ldis::test::SourcePath;

namespace {

std::shared_ptr<const ldis::engine::GradingSetup> Grading() {
    auto substances = ldis::engine::Substances::LoadFile(SourcePath("config/substances.toml"));
    auto rules = ldis::engine::Rules::LoadFile(SourcePath("config/rules.toml"), substances);
    return std::make_shared<ldis::engine::GradingSetup>(ldis::engine::GradingSetup{
        std::move(substances), std::move(rules), 7LL * 24 * 3600 * 1000, 365LL * 24 * 3600 * 1000});
}

std::string ThisYear() {
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    return std::to_string(utc.tm_year + 1900);
}

class CorrelationTest : public ::testing::Test {
protected:
    CorrelationTest() {
        ldis::engine::StoreOptions o;
        o.path = dir_ / "ldis.db";
        o.grading = Grading();
        store_ = std::make_unique<ReportStore>(o);
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
        static const auto validator = ldis::engine::LoadReportValidator(
            SourcePath("config/schema/report.schema.json"), SourcePath("config/areas.toml"));
        auto v = validator->Validate(json::serialize(r));
        EXPECT_TRUE(v.ok()) << (v.errors.empty() ? ""
                                                 : v.errors[0].path + " " + v.errors[0].message);
        auto stored = store_->Insert(*v.report, "mqtt");
        EXPECT_TRUE(stored.ok());
        return stored.value();
    }

    ldis::test::TempDir dir_;
    std::unique_ptr<ReportStore> store_;
};

TEST_F(CorrelationTest, AReportInsideTheWindowJoinsTheSignal) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-08T10:00:00Z", "spice");  // exactly 7 days later: inside
    EXPECT_EQ(store_->CountSignals(), 1);
}

TEST_F(CorrelationTest, AReportPastTheWindowOpensANewSignal) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-08T10:00:01Z", "spice");  // 7 days and a second: outside
    EXPECT_EQ(store_->CountSignals(), 2);
}

TEST_F(CorrelationTest, TheWindowSlidesWithTheLatestReport) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-06T10:00:00Z", "spice");
    Submit("2026-11-12T10:00:00Z", "spice");  // 11 days after the first, 6 after the latest
    EXPECT_EQ(store_->CountSignals(), 1);
}

TEST_F(CorrelationTest, ADifferentDistrictStartsADifferentSignal) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-01T11:00:00Z", "spice", {{"cases", 1}}, "Kent Police", "Swale", "police");
    EXPECT_EQ(store_->CountSignals(), 2);
}

TEST_F(CorrelationTest, ADifferentFamilyStartsADifferentSignal) {
    Submit("2026-11-01T10:00:00Z", "spice");
    Submit("2026-11-01T11:00:00Z", "heroin");
    EXPECT_EQ(store_->CountSignals(), 2);
}

TEST_F(CorrelationTest, FamilyAliasesJoin) {
    Submit("2026-11-01T10:00:00Z", "nitazene");
    Submit("2026-11-02T10:00:00Z", "isotonitazene");
    Submit("2026-11-03T10:00:00Z", "Protonitazine");  // misspelt
    EXPECT_EQ(store_->CountSignals(), 1);
}

TEST_F(CorrelationTest, ThreeAmberReportsMakeOneRedAlertWithVersions) {
    const auto first =
        Submit("2026-11-01T10:00:00Z", "heroin", {{"cases", 1}, {"critical_care", 1}});
    EXPECT_EQ(first.level, "amber");
    ASSERT_FALSE(first.alert_reference.empty());
    auto alert = store_->FindAlert(first.alert_reference);
    ASSERT_TRUE(alert);
    EXPECT_EQ(alert->status, "draft");  // amber waits for a coordinator
    EXPECT_EQ(alert->version, 1);

    const auto second =
        Submit("2026-11-02T10:00:00Z", "brown", {{"cases", 1}, {"naloxone_poor_response", 1}},
               "South East Coast Ambulance Service", "Medway", "ambulance");
    EXPECT_EQ(second.level, "red");
    EXPECT_EQ(second.alert_reference, first.alert_reference);  // a new version, not a new alert
    alert = store_->FindAlert(first.alert_reference);
    EXPECT_EQ(alert->version, 2);
    EXPECT_EQ(alert->status, "issued");  // red goes out at once
    EXPECT_TRUE(alert->provisional);     // until a coordinator confirms it
    EXPECT_EQ(alert->confidence, "corroborated");

    const auto third =
        Submit("2026-11-03T10:00:00Z", "heroin", {{"cases", 1}, {"critical_care", 1}},
               "Change Grow Live", "Medway", "treatment");
    EXPECT_EQ(third.alert_reference, first.alert_reference);
    alert = store_->FindAlert(first.alert_reference);
    EXPECT_EQ(alert->version, 3);
    EXPECT_EQ(alert->status, "updated");
    EXPECT_EQ(alert->reports, 3);
    EXPECT_NE(std::find(alert->rules.begin(), alert->rules.end(), "life-threatening-cluster"),
              alert->rules.end());
    EXPECT_EQ(store_->Alerts().size(), 1u);
}

TEST_F(CorrelationTest, ReferencesCountUpWithinTheYear) {
    const auto a = Submit("2026-11-01T10:00:00Z", "spice", {{"cases", 1}, {"critical_care", 1}});
    const auto b = Submit("2026-11-01T10:00:00Z", "ketamine", {{"cases", 1}, {"critical_care", 1}});
    EXPECT_NE(a.alert_reference, b.alert_reference);
    EXPECT_EQ(a.alert_reference.substr(0, 3), "KM-");
    EXPECT_EQ(a.alert_reference.substr(a.alert_reference.size() - 5), "-0001");
    EXPECT_EQ(b.alert_reference.substr(b.alert_reference.size() - 5), "-0002");
}

TEST_F(CorrelationTest, NoneLevelMakesNoAlert) {
    const auto r =
        Submit("2026-11-01T10:00:00Z", "heroin", {{"cases", 0}}, "Kent Police", "Medway", "police");
    EXPECT_EQ(r.level, "none");
    EXPECT_TRUE(r.alert_reference.empty());
    EXPECT_TRUE(store_->Alerts().empty());
}

TEST_F(CorrelationTest, NationalAlertRisesWhenLocalEvidenceJoins) {
    const auto national = Submit("2026-11-01T10:00:00Z", "metonitazene", {{"cases", 0}}, "OHID",
                                 "Medway", "national_alert");
    EXPECT_EQ(national.level, "green");
    const auto local = Submit("2026-11-02T10:00:00Z", "metonitazene", {{"cases", 2}});
    EXPECT_EQ(local.level, "red");
    EXPECT_EQ(local.alert_reference, national.alert_reference);
}

TEST_F(CorrelationTest, DuplicateReceiptCarriesTheGrade) {
    auto r = ldis::test::ValidReport(ldis::test::NewUuid());
    static const auto validator = ldis::engine::LoadReportValidator(
        SourcePath("config/schema/report.schema.json"), SourcePath("config/areas.toml"));
    const auto v = validator->Validate(json::serialize(r));
    const auto first = store_->Insert(*v.report, "mqtt");
    const auto again = store_->Insert(*v.report, "mqtt");
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again.value().duplicate);
    EXPECT_EQ(again.value().level, first.value().level);
    EXPECT_EQ(again.value().alert_reference, first.value().alert_reference);
}

TEST_F(CorrelationTest, AuditChainVerifiesAndTamperingIsFound) {
    Submit("2026-11-01T10:00:00Z", "heroin", {{"cases", 1}, {"critical_care", 1}});
    Submit("2026-11-02T10:00:00Z", "heroin", {{"cases", 1}, {"critical_care", 1}}, "Forward Trust",
           "Medway", "treatment");
    const auto entries = store_->VerifyAudit();
    ASSERT_TRUE(entries.ok()) << entries.error().message;
    EXPECT_EQ(entries.value(), 6);  // per report: accepted, graded, alert created or version
    store_.reset();
    const std::string db = dir_ / "ldis.db";
    ASSERT_EQ(
        std::system(
            ("sqlite3 '" + db + "' \"UPDATE audit SET detail = '{}' WHERE seq = 3\"").c_str()),
        0);
    ldis::engine::StoreOptions o;
    o.path = db;
    ReportStore reopened(o);
    const auto tampered = reopened.VerifyAudit();
    ASSERT_FALSE(tampered.ok());
    EXPECT_EQ(tampered.error().message, "audit entry 3 (alert.created KM-" + ThisYear() +
                                            "-0001) does not match its hash: it was "
                                            "changed after it was written")
        << tampered.error().message;
}

TEST_F(CorrelationTest, AuditEntryRemovedIsFound) {
    Submit("2026-11-01T10:00:00Z", "spice");
    store_.reset();
    const std::string db = dir_ / "ldis.db";
    ASSERT_EQ(std::system(("sqlite3 '" + db + "' 'DELETE FROM audit WHERE seq = 2'").c_str()), 0);
    ldis::engine::StoreOptions o;
    o.path = db;
    const auto result = ReportStore(o).VerifyAudit();
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().message, "audit entry 2 is missing (the next is 3)");
}

}  // namespace
