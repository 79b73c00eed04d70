// Intake on the PostgreSQL store (issue 15), against a real PostgreSQL that each test
// starts: the same grades, alerts and versions as on SQLite, and instances writing at once
// that make one signal, one alert, one stored report, consecutive alert numbers and one
// audit chain.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_store.hpp"
#include "support/grading.hpp"
#include "support/postgres.hpp"
#include "support/reports.hpp"

namespace {

using ldis::engine::PostgresDatabase;
using ldis::test::PgRows;
using ldis::test::PostgresServer;
namespace json = boost::json;
using ldis::engine::PostgresStore;
using ldis::test::SourcePath;

std::shared_ptr<const ldis::engine::GradingSetup> Grading() {
    return ldis::test::ShippedGrading();
}

// A report as the validator makes it (the same shape as CorrelationTest's).
ldis::engine::Report MakeReport(const std::string& observed, const std::string& substance,
                                json::object harms,
                                const std::string& organisation = "Medway NHS Foundation Trust",
                                const std::string& district = "Medway",
                                const std::string& type = "hospital",
                                const std::string& id = ldis::test::NewUuid()) {
    auto r = ldis::test::ValidReport(id);
    r["observed_at"] = observed;
    r["substances"] = json::array{{{"name", substance}}};
    r["harms"] = harms;
    r["source"] = json::object{{"type", type}, {"organisation", organisation}};
    r["area"] = district == "Medway" ? json::object{{"authority", "Medway"}, {"district", "Medway"}}
                                     : json::object{{"authority", "Kent"}, {"district", district}};
    r.erase("setting");
    auto v = ldis::test::ValidateShipped(r);
    EXPECT_TRUE(v.ok()) << (v.errors.empty() ? "" : v.errors[0].path + " " + v.errors[0].message);
    return *v.report;
}

std::unique_ptr<PostgresStore> Instance(const std::string& url) {
    PostgresStore::Options o;
    o.url = url;
    o.grading = Grading();
    auto opened = PostgresStore::Open(o);
    EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
    return opened.ok() ? std::move(opened).value() : nullptr;
}

// The alerts' references end -0001 to -`count`: no number taken twice, none skipped.
void ExpectNumberedInTurn(const std::string& url, std::size_t count) {
    const auto references = PgRows(url, "SELECT reference FROM alerts ORDER BY reference");
    ASSERT_EQ(references.size(), count);
    for (std::size_t i = 0; i < references.size(); ++i) {
        char tail[32];
        std::snprintf(tail, sizeof tail, "-%04zu", i + 1);
        EXPECT_TRUE(references[i].ends_with(tail)) << references[i];
    }
}

// How many entries the audit log's one chain has; a test failure, and -1, when it breaks.
std::int64_t ExpectOneAuditChain(const std::string& url) {
    auto db = PostgresDatabase::Open(url);
    EXPECT_TRUE(db.ok());
    if (!db.ok()) return -1;
    const auto chain = db.value()->VerifyAudit();
    EXPECT_TRUE(chain.ok()) << chain.error().message;
    return chain.ok() ? static_cast<std::int64_t>(chain.value()) : -1;
}

using Stored = ldis::engine::Result<ldis::engine::StoredReport>;

// `ra` stored by `a` and `rb` by `b` at the same moment, as from `channel`.
std::pair<Stored, Stored> InsertAtOnce(PostgresStore& a, const ldis::engine::Report& ra,
                                       PostgresStore& b, const ldis::engine::Report& rb,
                                       const std::string& channel_b = "mqtt") {
    Stored sa = ldis::engine::Error{"not run"}, sb = ldis::engine::Error{"not run"};
    ldis::test::AtOnce([&] { sa = a.Insert(ra, "mqtt"); }, [&] { sb = b.Insert(rb, channel_b); });
    return {std::move(sa), std::move(sb)};
}

// CorrelationTest.ThreeAmberReportsMakeOneRedAlertWithVersions, on PostgreSQL: the same
// grades, one alert, its versions and statuses.
TEST(PostgresIntakeTest, ThreeAmberReportsMakeOneRedAlertWithVersions) {
    PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    auto intake = Instance(url);
    ASSERT_TRUE(intake);
    const auto report = MakeReport("2026-11-01T10:00:00Z", "heroin",
                                   {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}});
    const auto first = intake->Insert(report, "mqtt");
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first.value().level, "amber");
    EXPECT_EQ(first.value().reference, "KM-R000001");
    const std::string alert = first.value().alert_reference;
    ASSERT_FALSE(alert.empty());
    EXPECT_EQ(PgRows(url, "SELECT status, version FROM alerts"),
              std::vector<std::string>{"draft\t1"});
    const auto second = intake->Insert(
        MakeReport("2026-11-02T10:00:00Z", "brown", {{"cases", 1}, {"naloxone_poor_response", 1}},
                   "South East Coast Ambulance Service", "Medway", "ambulance"),
        "mqtt");
    ASSERT_TRUE(second.ok()) << second.error().message;
    EXPECT_EQ(second.value().level, "red");
    EXPECT_EQ(second.value().alert_reference, alert);
    EXPECT_EQ(PgRows(url, "SELECT status, version, provisional, confidence FROM alerts"),
              std::vector<std::string>{"issued\t2\t1\tcorroborated"});
    const auto third =
        intake->Insert(MakeReport("2026-11-03T10:00:00Z", "heroin",
                                  {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}},
                                  "Change Grow Live", "Medway", "treatment"),
                       "mqtt");
    ASSERT_TRUE(third.ok()) << third.error().message;
    EXPECT_EQ(third.value().alert_reference, alert);
    EXPECT_EQ(PgRows(url, "SELECT status, version FROM alerts"),
              std::vector<std::string>{"updated\t3"});
    EXPECT_EQ(PgRows(url, "SELECT version, status, level FROM alert_versions ORDER BY version"),
              (std::vector<std::string>{"1\tdraft\tamber", "2\tissued\tred", "3\tupdated\tred"}));
    EXPECT_NE(PgRows(url, "SELECT rules FROM alert_versions WHERE version = 3")
                  .at(0)
                  .find("life-threatening-cluster"),
              std::string::npos);
    // A report stored again is found, not stored twice.
    const auto again = intake->Insert(report, "http");
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(again.value().duplicate);
    EXPECT_EQ(again.value().reference, "KM-R000001");
    EXPECT_EQ(again.value().alert_reference, alert);
    EXPECT_EQ(PgRows(url, "SELECT count(*) FROM reports"), std::vector<std::string>{"3"});
    EXPECT_GT(ExpectOneAuditChain(url), 6);
}

// Issue 15's concurrency test: the reports of one signal go alternately to two instances,
// at once, many times (a new signal each round); each round makes exactly one signal and
// one alert. Alert numbers have no gap, the audit log is one chain.
TEST(PostgresIntakeTest, ReportsOfOneSignalAtTwoInstancesAtOnceMakeOneSignalAndOneAlert) {
    PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    auto a = Instance(url);
    auto b = Instance(url);
    ASSERT_TRUE(a && b);
    const std::vector<std::string> districts = {
        "Medway",         "Swale",     "Canterbury",
        "Thanet",         "Dover",     "Folkestone & Hythe",
        "Ashford",        "Maidstone", "Tonbridge & Malling",
        "Sevenoaks",      "Dartford",  "Gravesham",
        "Tunbridge Wells"};
    constexpr int kPerRound = 6;
    for (std::size_t round = 0; round < districts.size(); ++round) {
        std::vector<ldis::engine::Report> reports;
        for (int i = 0; i < kPerRound; ++i) {
            reports.push_back(
                MakeReport("2026-11-0" + std::to_string(1 + i % 5) + "T10:00:00Z", "heroin",
                           {{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}},
                           "Organisation " + std::to_string(i), districts[round],
                           districts[round] == "Medway" ? "hospital" : "treatment"));
        }
        std::vector<std::string> errors;
        std::mutex errors_mutex;
        const auto take = [&](PostgresStore& instance, int first) {
            for (int i = first; i < kPerRound; i += 2) {
                const auto stored = instance.Insert(reports[static_cast<std::size_t>(i)], "mqtt");
                if (!stored.ok()) {
                    std::lock_guard lock(errors_mutex);
                    errors.push_back(stored.error().message);
                }
            }
        };
        ldis::test::AtOnce([&] { take(*a, 0); }, [&] { take(*b, 1); });
        EXPECT_TRUE(errors.empty()) << errors.front();
        const std::string where = "WHERE district = '" + districts[round] + "'";
        EXPECT_EQ(PgRows(url, "SELECT count(*) FROM signals " + where),
                  std::vector<std::string>{"1"})
            << districts[round];
        EXPECT_EQ(PgRows(url,
                         "SELECT count(*) FROM alerts a JOIN signals s ON s.id = "
                         "a.signal_id " +
                             where),
                  std::vector<std::string>{"1"})
            << districts[round];
    }
    EXPECT_EQ(PgRows(url, "SELECT count(*) FROM reports"),
              std::vector<std::string>{std::to_string(districts.size() * kPerRound)});
    ExpectNumberedInTurn(url, districts.size());  // KM-YYYY-0001 to -0013
    ExpectOneAuditChain(url);
}

// The same report (one id) at two instances at once: stored once; the other instance
// answers it as a duplicate with the first one's reference.
TEST(PostgresIntakeTest, OneReportAtTwoInstancesAtOnceIsStoredOnce) {
    PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    auto a = Instance(url);
    auto b = Instance(url);
    ASSERT_TRUE(a && b);
    for (int round = 0; round < 10; ++round) {
        const auto report = MakeReport("2026-11-01T10:00:00Z", "spice", {{"cases", 1}});
        const auto [ra, rb] = InsertAtOnce(*a, report, *b, report, "http");
        ASSERT_TRUE(ra.ok()) << ra.error().message;
        ASSERT_TRUE(rb.ok()) << rb.error().message;
        EXPECT_NE(ra.value().duplicate, rb.value().duplicate);
        EXPECT_EQ(ra.value().reference, rb.value().reference);
        EXPECT_EQ(PgRows(url, "SELECT count(*) FROM reports WHERE id = '" + report.id + "'"),
                  std::vector<std::string>{"1"});
    }
}

// Alerts of two signals opened at the same moment at two instances take the next two
// numbers: none twice, none skipped.
TEST(PostgresIntakeTest, AlertsOpenedAtOnceAtTwoInstancesTakeConsecutiveNumbers) {
    PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    auto a = Instance(url);
    auto b = Instance(url);
    ASSERT_TRUE(a && b);
    const std::vector<std::string> families = {"heroin", "spice", "ketamine", "cocaine",
                                               "xylazine"};
    constexpr int kRounds = 5;
    int n = 0;
    for (int round = 0; round < kRounds; ++round) {
        const json::object harms{{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}};
        const auto ra =
            MakeReport("2026-11-01T10:00:00Z", families[static_cast<std::size_t>(round)], harms,
                       "Medway NHS Foundation Trust", "Medway");
        const auto rb =
            MakeReport("2026-11-01T10:00:00Z", families[static_cast<std::size_t>(round)], harms,
                       "Kent Community Health", "Swale", "treatment");
        const auto [sa, sb] = InsertAtOnce(*a, ra, *b, rb);
        ASSERT_TRUE(sa.ok()) << sa.error().message;
        ASSERT_TRUE(sb.ok()) << sb.error().message;
        EXPECT_NE(sa.value().alert_reference, sb.value().alert_reference);
        n += 2;
    }
    ExpectNumberedInTurn(url, static_cast<std::size_t>(n));
    ExpectOneAuditChain(url);
}

// Two instances appending to the audit log at once (reports only stored, no grading: no
// other lock orders them) still make one chain.
TEST(PostgresIntakeTest, TheAuditLogStaysOneChainWhenInstancesWriteAtOnce) {
    PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    PostgresStore::Options o;
    o.url = url;
    auto a = PostgresStore::Open(o);
    auto b = PostgresStore::Open(o);
    ASSERT_TRUE(a.ok() && b.ok());
    constexpr int kEach = 100;
    std::atomic<int> failed{0};
    const auto take = [&](PostgresStore& instance) {
        for (int i = 0; i < kEach; ++i) {
            if (!instance
                     .Insert(MakeReport("2026-11-01T10:00:00Z", "spice", {{"cases", 1}}), "mqtt")
                     .ok())
                ++failed;
        }
    };
    ldis::test::AtOnce([&] { take(*a.value()); }, [&] { take(*b.value()); });
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(ExpectOneAuditChain(url), 2 * kEach);
}

}  // namespace
