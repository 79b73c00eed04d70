// The same history on both backends (issue 15): the same reports taken in by the SQLite
// store and by the PostgreSQL store, with the same grading and partners, read back through
// the same calls, give the same alerts, versions, deliveries, records and audit actions.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_store.hpp"
#include "ldis/engine/report_validator.hpp"
#include "support/postgres.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace json = boost::json;
using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file
using ldis::test::SourcePath;

namespace {

const char* kPartners = R"toml(
[coordinators]
partner = "coord"
[[partner]]
id = "coord"
name = "Coordinators"
  [[partner.contact]]
  name = "team"
  channel = "email"
  address = "team@example.org"
[[partner]]
id = "ae"
name = "Medway A&E"
  [[partner.contact]]
  name = "desk"
  channel = "email"
  address = "ae@example.org"
  [[partner.subscription]]
  levels = ["red", "amber"]
[[partner]]
id = "cgl"
name = "Change Grow Live"
  [[partner.contact]]
  name = "team"
  channel = "email"
  address = "cgl@example.org"
  [[partner.subscription]]
  levels = ["red"]
)toml";

// Every report of the history: amber heroin, then red, then a second signal in Swale, a
// report stored twice, and one graded none.
std::vector<Report> History() {
    static const auto validator = LoadReportValidator(
        SourcePath("config/schema/report.schema.json"), SourcePath("config/areas.toml"));
    const auto make = [&](const std::string& id, const std::string& observed,
                          const std::string& substance, json::object harms,
                          const std::string& organisation, const std::string& district,
                          const std::string& type) {
        auto r = ldis::test::ValidReport(id);
        r["observed_at"] = observed;
        r["substances"] = json::array{{{"name", substance}}};
        r["harms"] = harms;
        r["source"] = json::object{{"type", type}, {"organisation", organisation}};
        r["area"] = district == "Medway"
                        ? json::object{{"authority", "Medway"}, {"district", "Medway"}}
                        : json::object{{"authority", "Kent"}, {"district", district}};
        r.erase("setting");
        auto v = validator->Validate(json::serialize(r));
        EXPECT_TRUE(v.ok());
        return *v.report;
    };
    const json::object amber{{"cases", 3}, {"hospitalisations", 2}, {"critical_care", 1}};
    std::vector<Report> out;
    out.push_back(make("7d0a3d5e-0001-4c1a-9a00-000000000001", "2026-11-01T10:00:00Z", "heroin",
                       amber, "Medway NHS Foundation Trust", "Medway", "hospital"));
    out.push_back(make("7d0a3d5e-0001-4c1a-9a00-000000000002", "2026-11-02T10:00:00Z", "brown",
                       {{"cases", 1}, {"naloxone_poor_response", 1}},
                       "South East Coast Ambulance Service", "Medway", "ambulance"));
    out.push_back(make("7d0a3d5e-0001-4c1a-9a00-000000000003", "2026-11-02T11:00:00Z", "spice",
                       amber, "Kent Police", "Swale", "police"));
    out.push_back(out[1]);  // the same report again
    out.push_back(make("7d0a3d5e-0001-4c1a-9a00-000000000004", "2026-11-03T10:00:00Z", "heroin",
                       {{"cases", 0}}, "Kent Police", "Dover", "police"));
    return out;
}

std::string Summary(const Alert& a) {
    std::string rules;
    for (const auto& r : a.rules) rules += r + ",";
    return a.reference + " " + std::string(ToString(a.status)) + " " +
           std::string(ToString(a.level)) + " " + a.confidence + " v" + std::to_string(a.version) +
           (a.provisional ? " provisional" : "") + " " + a.family + " " + a.district +
           " reports=" + std::to_string(a.reports) + " rules=" + rules;
}

// What both backends must agree on, read through the same calls.
std::vector<std::string> Read(auto& store) {
    std::vector<std::string> out;
    out.push_back("reports " + std::to_string(store.CountReports()) + " signals " +
                  std::to_string(store.CountSignals()));
    for (const auto& row : store.Recent(10))
        out.push_back("recent " + row.reference + " " + row.id);
    for (const auto& a : store.Alerts()) {
        out.push_back("alert " + Summary(a));
        const auto record = store.FindAlertRecord(a.reference);
        if (!record) {
            out.push_back("no record");
            continue;
        }
        for (const auto& v : record->versions) {
            out.push_back("  version " + std::to_string(v.version) + " " +
                          std::string(ToString(v.status)) + " " + std::string(ToString(v.level)) +
                          " " + v.rules);
        }
        for (const auto& r : record->reports) out.push_back("  report " + r.reference);
        for (const auto& d : record->deliveries) {
            out.push_back("  delivery v" + std::to_string(d.version) + " " + d.kind + " " +
                          d.partner + "/" + d.contact + " " + d.channel + " " + d.status + " " +
                          d.level);
        }
        for (const auto& e : record->audit) out.push_back("  audit " + e.action + " " + e.subject);
    }
    AlertFilter red;
    red.level = "red";
    out.push_back("red alerts " + std::to_string(store.FindAlerts(red).total));
    AlertFilter words;
    words.q = "HEROIN";
    out.push_back("alerts naming heroin " + std::to_string(store.FindAlerts(words).total));
    const auto counts = store.CountAll();
    for (const auto& [k, v] : counts.alerts)
        out.push_back("count alerts " + k + " " + std::to_string(v));
    for (const auto& [k, v] : counts.deliveries)
        out.push_back("count deliveries " + k + " " + std::to_string(v));
    for (const auto& [k, v] : store.DeliveryCounts())
        out.push_back("deliveries " + k + " " + std::to_string(v));
    const auto chain = store.VerifyAudit();
    out.push_back("audit " + (chain.ok() ? std::to_string(chain.value()) : chain.error().message));
    return out;
}

TEST(PostgresParityTest, TheSameReportsGiveTheSameHistoryOnBothBackends) {
    auto setup = std::make_shared<GradingSetup>();
    setup->substances = Substances::LoadFile(SourcePath("config/substances.toml"));
    setup->rules = Rules::LoadFile(SourcePath("config/rules.toml"), setup->substances);
    setup->templates = AlertTemplates::LoadDir(SourcePath("templates/alert"));
    setup->partners = std::make_shared<const Partners>(Partners::Parse(kPartners, "p.toml"));

    ldis::test::TempDir dir;
    StoreOptions o;
    o.path = dir / "ldis.db";
    o.grading = setup;
    ReportStore lite(o);

    ldis::test::PostgresServer server;
    PostgresStore::Options po;
    po.url = server.CreateDatabase("ldis");
    po.grading = setup;
    auto opened = PostgresStore::Open(po);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    PostgresStore& pg = *opened.value();

    for (const auto& report : History()) {
        const auto a = lite.Insert(report, "mqtt");
        const auto b = pg.Insert(report, "mqtt");
        ASSERT_TRUE(a.ok() && b.ok());
        EXPECT_EQ(a.value().reference, b.value().reference);
        EXPECT_EQ(a.value().duplicate, b.value().duplicate);
        EXPECT_EQ(a.value().level, b.value().level);
        EXPECT_EQ(a.value().alert_reference, b.value().alert_reference);
    }
    const auto want = Read(lite);
    const auto got = Read(pg);
    EXPECT_EQ(got, want);
    EXPECT_GT(want.size(), 20u);
    // A coordinator reveals a report, and retention purges the free text, on both.
    ASSERT_TRUE(lite.Reveal("KM-R000001", "coordinator@kent.example", "cluster review").ok());
    ASSERT_TRUE(pg.Reveal("KM-R000001", "coordinator@kent.example", "cluster review").ok());
    EXPECT_FALSE(pg.Reveal("KM-R999999", "coordinator@kent.example", "why").ok());
    const std::int64_t later = 4102444800000;  // 2100
    EXPECT_EQ(pg.PurgeFreeText(later, later, "retention").value(),
              lite.PurgeFreeText(later, later, "retention").value());
    EXPECT_EQ(pg.Find("KM-R000001")->document, lite.Find("KM-R000001")->document);
    EXPECT_EQ(Read(pg), Read(lite));
    EXPECT_EQ(pg.ListIds(), lite.ListIds());

    // Coordinators' actions, the same on both: each outcome, then everything read back.
    const auto both = [&](const std::string& what, auto act) {
        const auto a = act(lite);
        const auto b = act(pg);
        EXPECT_EQ(a.ok(), b.ok()) << what;
        if (!a.ok() && !b.ok()) {
            EXPECT_EQ(b.error().message, a.error().message) << what;
        }
        EXPECT_EQ(Read(pg), Read(lite)) << what;
    };
    AlertWording words;
    words.sections["advice"] = "Carry naloxone; do not use alone.";
    both("approve the draft", [&](auto& s) {
        return s.Act("KM-2026-0002", AlertAction::kApprove, "coordinator@kent.example");
    });
    both("approve it again", [&](auto& s) {
        return s.Act("KM-2026-0002", AlertAction::kApprove, "coordinator@kent.example");
    });
    both("confirm the provisional red", [&](auto& s) {
        return s.Act("KM-2026-0001", AlertAction::kApprove, "coordinator@kent.example");
    });
    both("update with wording", [&](auto& s) {
        return s.Act("KM-2026-0001", AlertAction::kRevise, "coordinator@kent.example", words);
    });
    both("wording on a cancel", [&](auto& s) {
        return s.Act("KM-2026-0001", AlertAction::kCancel, "coordinator@kent.example", words);
    });
    both("an alert that is not there", [&](auto& s) {
        return s.Act("KM-2026-0099", AlertAction::kCancel, "coordinator@kent.example");
    });
    const auto dover = [&](auto& s) {
        for (const auto& signal : s.Signals())
            if (signal.district == "Dover") return signal.id;
        return std::int64_t{0};
    };
    ASSERT_EQ(dover(pg), dover(lite));
    both("override a signal to red", [&](auto& s) {
        return s.Override(dover(s), "red", "A death in custody linked to it", "lead@kent.example");
    });
    both("lift it", [&](auto& s) { return s.Override(dover(s), "", "", "lead@kent.example"); });
    both("lift it again",
         [&](auto& s) { return s.Override(dover(s), "", "", "lead@kent.example"); });
    both("cancel", [&](auto& s) {
        return s.Act("KM-2026-0001", AlertAction::kCancel, "coordinator@kent.example");
    });
    const auto expired_lite = lite.ExpireDue(later);
    const auto expired_pg = pg.ExpireDue(later);
    ASSERT_TRUE(expired_lite.ok() && expired_pg.ok());
    EXPECT_EQ(expired_pg.value(), expired_lite.value());
    EXPECT_FALSE(expired_pg.value().empty());
    EXPECT_EQ(Read(pg), Read(lite));
    ASSERT_EQ(pg.Signals().size(), lite.Signals().size());
    for (std::size_t i = 0; i < pg.Signals().size(); ++i) {
        EXPECT_EQ(pg.Signals()[i].documents, lite.Signals()[i].documents);
        EXPECT_EQ(pg.Signals()[i].alert_reference, lite.Signals()[i].alert_reference);
    }
}

}  // namespace
