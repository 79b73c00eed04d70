// The grading suite: realistic Kent and Medway incidents, each with the level and the
// rules that must fire (config/rules.toml, DESIGN §6).
#include "ldis/engine/grading.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <functional>

#include "support/reports.hpp"

namespace json = boost::json;
using ldis::engine::Level;
using ldis::engine::Rules;
using ldis::engine::Substances;
using ldis::test::SourcePath;

namespace {

const Substances& Shipped() {
    static const Substances s = Substances::LoadFile(SourcePath("config/substances.toml"));
    return s;
}

const Rules& ShippedRules() {
    static const Rules r = Rules::LoadFile(SourcePath("config/rules.toml"), Shipped());
    return r;
}

// A professional report from Medway Maritime of one person harmed by heroin; each case
// changes what it needs.
json::object Base() {
    return json::object{
        {"schema", "ldis.report/1"},
        {"id", ldis::test::NewUuid()},
        {"submitted_at", "2026-11-23T09:30:00Z"},
        {"source", {{"type", "hospital"}, {"organisation", "Medway NHS Foundation Trust"}}},
        {"area", {{"authority", "Medway"}, {"district", "Medway"}}},
        {"setting", "community"},
        {"substances", json::array{{{"name", "heroin"}}}},
        {"harms", {{"cases", 1}}},
        {"evidence", "professional"}};
}

using Change = std::function<void(json::object&)>;

std::string Report(const std::vector<Change>& changes) {
    auto r = Base();
    for (const auto& c : changes) c(r);
    return json::serialize(r);
}

Change Harms(json::object harms) {
    return [harms](json::object& r) { r["harms"] = harms; };
}
Change Substance(json::object s) {
    return [s](json::object& r) { r["substances"] = json::array{s}; };
}
Change Source(const std::string& type, const std::string& organisation) {
    return [=](json::object& r) {
        r["source"] = json::object{{"type", type}, {"organisation", organisation}};
    };
}
Change Evidence(const std::string& e) {
    return [e](json::object& r) { r["evidence"] = e; };
}
Change Setting(const std::string& s) {
    return [s](json::object& r) { r["setting"] = s; };
}

struct Case {
    const char* name;
    std::vector<std::string> reports;
    Level level;
    std::vector<std::string> rules;
    std::string confidence = "";
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name;
}

std::vector<Case> Cases() {
    const auto nitazene_lab =
        Substance({{"name", "protonitazene"}, {"sold_as", "heroin"}, {"confirmed_by", "lab"}});
    const auto spice = Substance({{"name", "spice"}, {"form", "paper"}});
    const auto prison = [](json::object& r) {
        r["source"] = json::object{{"type", "prison"}, {"organisation", "HMP Elmley healthcare"}};
        r["area"] = json::object{
            {"authority", "Kent"}, {"district", "Swale"}, {"establishment", "HMP Elmley"}};
        r["setting"] = "prison";
    };
    return {
        {"one unconfirmed harm at Medway ED",
         {Report({})},
         Level::kGreen,
         {"single-harm"},
         "professional"},
        {"a death reported by the drug-related deaths panel",
         {Report({Source("panel", "Medway DRD Panel"), Harms({{"cases", 1}, {"deaths", 1}})})},
         Level::kRed,
         {"death", "single-harm"}},
        {"a death heard of as rumour only",
         {Report({Source("public", "member of the public"), Evidence("anecdotal"),
                  Harms({{"cases", 1}, {"deaths", 1}})})},
         Level::kNone,
         {"rumour"},
         "anecdotal"},
        {"two people in critical care from one batch",
         {Report({Harms({{"cases", 2}, {"critical_care", 2}})})},
         Level::kRed,
         {"life-threatening-cluster", "single-harm"}},
        // DESIGN's green is one unconfirmed harm event; red starts at two life-threatening
        // events. One is one harm event, unless something else makes it unusual.
        {"one person in critical care",
         {Report({Harms({{"cases", 1}, {"critical_care", 1}})})},
         Level::kGreen,
         {"single-harm"}},
        {"two naloxone doses for one person",
         {Report({Harms({{"cases", 1}, {"naloxone_doses", 2}})})},
         Level::kGreen,
         {"single-harm"}},
        {"one detainee needing two naloxone doses in Medway custody",
         {Report({Source("custody", "Kent Police"), Setting("custody"),
                  Harms({{"cases", 1}, {"naloxone_doses", 2}})})},
         Level::kAmber,
         {"life-threatening-closed-setting", "single-harm"}},
        {"one person in critical care after a nitazene named by the ED",
         {Report({Substance({{"name", "nitazene"}}), Harms({{"cases", 1}, {"critical_care", 1}})})},
         Level::kAmber,
         {"high-potency-presumptive", "single-harm"}},
        // A cluster seen by one service is still a cluster.
        {"fake diazepam: one ED admits three people",
         {Report({Substance({{"name", "diazepam"}, {"form", "tablet"}}),
                  Harms({{"cases", 3}, {"hospitalisations", 3}})})},
         Level::kAmber,
         {"harm-cluster", "single-harm"},
         "professional"},
        {"MDMA at a festival: one medical tent sends four to hospital",
         {Report({Source("event_medical", "Festival medical service"),
                  Substance({{"name", "MDMA"}, {"form", "crystal"}}),
                  Harms({{"cases", 4}, {"hospitalisations", 2}})})},
         Level::kAmber,
         {"harm-cluster", "single-harm"}},
        {"three unwell, one admitted, one service",
         {Report({Harms({{"cases", 3}, {"hospitalisations", 1}})})},
         Level::kGreen,
         {"single-harm"}},
        // Laboratory-confirmed strength with harm is amber, whatever the family.
        {"lab-confirmed very-high-strength MDMA with emergency attendances",
         {Report({Substance({{"name", "MDMA"}, {"confirmed_by", "lab"}, {"strength", "very_high"}}),
                  Harms({{"cases", 2}, {"hospitalisations", 1}})})},
         Level::kAmber,
         {"confirmed-strength-harm", "single-harm"}},
        {"high-strength MDMA at drug checking, nobody harmed",
         {Report(
             {Source("drug_checking", "Forward Trust"), Harms({{"cases", 0}}),
              Substance({{"name", "ecstasy"}, {"confirmed_by", "lab"}, {"strength", "high"}})})},
         Level::kNone,
         {}},
        {"strong MDMA said by a friend, not tested",
         {Report(
             {Substance({{"name", "MDMA"}, {"strength", "very_high"}}), Harms({{"cases", 1}})})},
         Level::kGreen,
         {"single-harm"}},
        // What the lab found is not what the product was.
        {"a THC vape in which the lab found MDMB-4en-PINACA, three children admitted",
         {Report({Source("hospital", "Maidstone and Tunbridge Wells NHS Trust"),
                  [](json::object& r) {
                      r["area"] = json::object{{"authority", "Kent"}, {"district", "Maidstone"}};
                      r["substances"] =
                          json::array{{{"name", "THC vape"}, {"form", "vape"}},
                                      {{"name", "MDMB-4en-PINACA"}, {"confirmed_by", "lab"}}};
                  },
                  Harms({{"cases", 3}, {"hospitalisations", 3}, {"under_18", 3}})})},
         Level::kRed,
         {"harm-cluster", "mis-sold-confirmed", "single-harm", "under-18"}},
        {"heroin in which the lab found xylazine, one person harmed",
         {Report({[](json::object& r) {
             r["substances"] =
                 json::array{{{"name", "heroin"}}, {{"name", "xylazine"}, {"confirmed_by", "lab"}}};
         }})},
         Level::kAmber,
         {"adulterant-confirmed", "mis-sold-confirmed", "single-harm"}},
        {"street valium that the lab found to be bromazolam, one harmed",
         {Report({Substance(
             {{"name", "bromazolam"}, {"sold_as", "street valium"}, {"confirmed_by", "lab"}})})},
         Level::kAmber,
         {"mis-sold-confirmed", "single-harm"}},
        {"heroin sold as brown, the lab found heroin",
         {Report({Substance({{"name", "heroin"}, {"sold_as", "brown"}, {"confirmed_by", "lab"}})})},
         Level::kGreen,
         {"single-harm"}},
        {"isotonitazene in a product sold as nitazene is not mis-sold",
         {Report(
             {Source("drug_checking", "Forward Trust"), Harms({{"cases", 0}}),
              Substance(
                  {{"name", "isotonitazene"}, {"sold_as", "nitazene"}, {"confirmed_by", "lab"}})})},
         Level::kAmber,
         {"high-potency-presumptive"}},
        {"one naloxone dose",
         {Report({Harms({{"cases", 1}, {"naloxone_doses", 1}})})},
         Level::kGreen,
         {"single-harm"}},
        {"poor naloxone response in Gillingham and critical care in Chatham",
         {Report({Harms({{"cases", 1}, {"naloxone_poor_response", 1}})}),
          Report({Source("ambulance", "South East Coast Ambulance Service"),
                  Harms({{"cases", 1}, {"critical_care", 1}})})},
         Level::kRed,
         {"life-threatening-cluster", "single-harm"},
         "corroborated"},
        {"lab-confirmed nitazene in heroin with harm",
         {Report({nitazene_lab})},
         Level::kRed,
         {"high-potency-confirmed-harm", "high-potency-presumptive", "mis-sold-confirmed",
          "single-harm"}},
        {"lab-confirmed nitazene at drug checking, nobody harmed",
         {Report({Source("drug_checking", "Forward Trust"), nitazene_lab, Harms({{"cases", 0}})})},
         Level::kAmber,
         {"high-potency-presumptive", "mis-sold-confirmed"}},
        {"nitazene on a test strip, two harmed",
         {Report({Substance({{"name", "nitazene"}, {"confirmed_by", "test_strip"}}),
                  Harms({{"cases", 2}})})},
         Level::kAmber,
         {"high-potency-presumptive", "single-harm"}},
        {"misspelt isotonitazine confirmed by toxicology",
         {Report({Substance({{"name", "isotonitazine"}, {"confirmed_by", "toxicology"}})})},
         Level::kRed,
         {"high-potency-confirmed-harm", "high-potency-presumptive", "single-harm"}},
        {"carfentanil at post mortem",
         {Report({Source("coroner", "HM Coroner for Kent"),
                  Substance({{"name", "carfentanil"}, {"confirmed_by", "post_mortem"}}),
                  Harms({{"cases", 1}, {"deaths", 1}})})},
         Level::kRed,
         {"death", "high-potency-confirmed-harm", "high-potency-presumptive", "single-harm"}},
        {"national alert cascaded, no local evidence",
         {Report({Source("national_alert", "OHID"), Substance({{"name", "metonitazene"}}),
                  Harms({{"cases", 0}})})},
         Level::kGreen,
         {"national-alert"}},
        {"national alert corroborated by Medway ED",
         {Report({Source("national_alert", "OHID"), Substance({{"name", "metonitazene"}}),
                  Harms({{"cases", 0}})}),
          Report({Substance({{"name", "metonitazene"}}), Harms({{"cases", 2}})})},
         Level::kRed,
         {"national-alert-corroborated", "high-potency-presumptive", "national-alert",
          "single-harm"},
         "corroborated"},
        {"national alert and a local rumour",
         {Report({Source("national_alert", "OHID"), Substance({{"name", "metonitazene"}}),
                  Harms({{"cases", 0}})}),
          Report({Source("public", "a friend"), Evidence("anecdotal"),
                  Substance({{"name", "metonitazene"}})})},
         Level::kGreen,
         {"national-alert", "single-harm"}},
        {"xylazine in heroin, lab-confirmed, nobody harmed",
         {Report(
             {Source("drug_checking", "Forward Trust"), Harms({{"cases", 0}}),
              Substance({{"name", "xylazine"}, {"sold_as", "heroin"}, {"confirmed_by", "lab"}})})},
         Level::kAmber,
         {"adulterant-confirmed", "mis-sold-confirmed"}},
        {"fake diazepam in North Kent custody, two detainees",
         {Report(
             {Source("custody", "Kent Police"), Setting("custody"), Harms({{"cases", 2}}),
              Substance({{"name", "bromazolam"}, {"sold_as", "blues"}, {"confirmed_by", "lab"}})})},
         Level::kAmber,
         {"closed-setting-cluster", "mis-sold-confirmed", "single-harm"}},
        {"spice cluster on a wing at HMP Elmley",
         {Report({prison, spice, Harms({{"cases", 4}})})},
         Level::kAmber,
         {"closed-setting-cluster", "single-harm"}},
        {"one man unwell after spice at HMP Elmley",
         {Report({prison, spice})},
         Level::kGreen,
         {"single-harm"}},
        {"spice cluster in prison with a death",
         {Report({prison, spice, Harms({{"cases", 3}, {"deaths", 1}})})},
         Level::kRed,
         {"death", "single-harm"}},
        {"under-18 harmed once",
         {Report({Source("youth", "Open Road"), Harms({{"cases", 1}, {"under_18", 1}})})},
         Level::kAmber,
         {"single-harm", "under-18"}},
        {"under-18 in critical care",
         {Report({Harms({{"cases", 1}, {"critical_care", 1}, {"under_18", 1}})})},
         Level::kAmber,
         {"single-harm", "under-18"}},
        {"under-18 death stays red",
         {Report({Harms({{"cases", 1}, {"deaths", 1}, {"under_18", 1}})})},
         Level::kRed,
         {"death", "single-harm"}},
        {"rumour of strong gear, nobody named",
         {Report({Source("public", "a caller"), Evidence("anecdotal"), Harms({{"cases", 0}})})},
         Level::kNone,
         {"rumour"}},
        {"rumour of three overdoses",
         {Report({Source("outreach", "Open Road"), Evidence("anecdotal"), Harms({{"cases", 3}})})},
         Level::kNone,
         {"rumour"}},
        {"rumour of a child harmed",
         {Report({Source("public", "a parent"), Evidence("anecdotal"),
                  Harms({{"cases", 1}, {"under_18", 1}})})},
         Level::kGreen,
         {"rumour", "under-18"}},
        {"new markings at drug checking",
         {Report({Source("drug_checking", "Forward Trust"), Harms({{"cases", 0}}),
                  Substance({{"name", "diazepam"},
                             {"markings", "TEM 20"},
                             {"appearance", "yellow tablet"}})})},
         Level::kGreen,
         {"new-appearance"}},
        {"police seizure of heroin, nobody harmed",
         {Report({Source("police", "Kent Police"), Harms({{"cases", 0}})})},
         Level::kNone,
         {}},
        {"three amber reports make a red signal",
         {Report({Harms({{"cases", 1}, {"critical_care", 1}, {"hospitalisations", 1}})}),
          Report({Source("ambulance", "South East Coast Ambulance Service"),
                  Harms({{"cases", 1}, {"naloxone_doses", 3}, {"hospitalisations", 1}})}),
          Report({Source("treatment", "Change Grow Live"),
                  Harms({{"cases", 1}, {"naloxone_poor_response", 1}, {"hospitalisations", 1}})})},
         Level::kRed,
         {"life-threatening-cluster", "corroborated-harm", "harm-cluster", "single-harm"},
         "corroborated"},
        {"two admissions reported by the same trust",
         {Report({Harms({{"cases", 1}, {"hospitalisations", 1}})}),
          Report({Harms({{"cases", 1}, {"hospitalisations", 1}})})},
         Level::kGreen,
         {"single-harm"},
         "professional"},
        {"two admissions reported by independent sources",
         {Report({Harms({{"cases", 1}, {"hospitalisations", 1}})}),
          Report({Source("treatment", "Forward Trust"),
                  Harms({{"cases", 1}, {"hospitalisations", 1}})})},
         Level::kAmber,
         {"corroborated-harm", "single-harm"},
         "corroborated"},
        {"confirmed evidence of nitazene with harm",
         {Report({Evidence("confirmed"), Substance({{"name", "N-desethyl isotonitazene"}})})},
         Level::kRed,
         {"high-potency-confirmed-harm", "high-potency-presumptive", "single-harm"},
         "confirmed"},
    };
}

class GradingTable : public ::testing::TestWithParam<Case> {};

TEST_P(GradingTable, LevelAndRulesAsExpected) {
    const Case& c = GetParam();
    const auto facts = ldis::engine::FactsOf(c.reports, Shipped());
    const auto grade = ShippedRules().Apply(facts);
    std::vector<std::string> fired;
    for (const auto& r : grade.fired) fired.push_back(r.id);
    auto expected = c.rules;
    std::sort(fired.begin(), fired.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(ldis::engine::ToString(grade.level), ldis::engine::ToString(c.level));
    EXPECT_EQ(fired, expected);
    if (!c.confidence.empty()) {
        EXPECT_EQ(grade.confidence, c.confidence);
    }
    for (const auto& r : grade.fired) EXPECT_FALSE(r.reason.empty());
}

INSTANTIATE_TEST_SUITE_P(KentAndMedway, GradingTable, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                             std::string name = param_info.param.name;
                             for (auto& ch : name) {
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             }
                             return name;
                         });

TEST(GradingTest, TableIsLargeEnough) {
    EXPECT_GE(Cases().size(), 45u);
}

// The store keeps a signal's facts and merges each new report's into them; that must
// give what FactsOf gives on all the reports at once.
TEST(GradingTest, MergingReportByReportEqualsFactsOfAll) {
    for (const auto& c : Cases()) {
        const auto all = ldis::engine::FactsOf(c.reports, Shipped());
        auto merged = ldis::engine::FactsOf({c.reports.front()}, Shipped());
        for (std::size_t i = 1; i < c.reports.size(); ++i) {
            merged = ldis::engine::Merge(merged, ldis::engine::FactsOf({c.reports[i]}, Shipped()),
                                         Shipped());
        }
        merged.numbers["sources"] =
            all.numbers.at("sources");  // the store counts distinct organisations
        const auto round_trip = ldis::engine::FactsFromJson(ldis::engine::FactsToJson(merged));
        EXPECT_EQ(round_trip.numbers, all.numbers) << c.name;
        EXPECT_EQ(round_trip.family, all.family) << c.name;
        EXPECT_EQ(round_trip.evidence, all.evidence) << c.name;
    }
}

TEST(SubstancesTest, FamiliesCopeWithCaseSpacingAndMisspellings) {
    const auto& s = Shipped();
    const auto family = [&](const char* name) {
        const auto* f = s.FamilyOf(name);
        return f ? f->id : std::string("-");
    };
    EXPECT_EQ(family("Isotonitazene"), "nitazene");
    EXPECT_EQ(family("isotonitazine"), "nitazene");
    EXPECT_EQ(family("iso-tonitazene"), "nitazene");
    EXPECT_EQ(family("N-pyrrolidino etonitazene"), "nitazene");
    EXPECT_EQ(family("ethyleneoxynitazene"), "nitazene");  // by pattern: any *nitazene
    EXPECT_EQ(family("nitazine"), "nitazene");
    EXPECT_EQ(family("Fentanil"), "fentanyl");
    EXPECT_EQ(family("SPICE"), "synthetic_cannabinoid");
    EXPECT_EQ(family("mdmb 4en pinaca"), "synthetic_cannabinoid");
    EXPECT_EQ(family("5F-MDMB-PICA-PINACA"), "synthetic_cannabinoid");
    EXPECT_EQ(family("Street Valium"), "benzodiazepine");
    EXPECT_EQ(family("bromazolam"), "benzodiazepine");
    EXPECT_EQ(family("xylazene"), "veterinary_sedative");
    EXPECT_EQ(family("tranq"), "veterinary_sedative");
    EXPECT_EQ(family("H"), "opioid");
    EXPECT_EQ(family("crack cocaine"), "stimulant");
    EXPECT_EQ(family("pregablin"), "gabapentinoid");
    EXPECT_EQ(family("laughing gas"), "nitrous_oxide");
    EXPECT_EQ(family("bread"), "-");
    EXPECT_EQ(family("Hx"), "-");  // no misspellings of short street names
    EXPECT_EQ(family(""), "-");
}

TEST(SubstancesTest, MoreDangerousFollowsTheFileOrder) {
    const auto& s = Shipped();
    EXPECT_EQ(s.MoreDangerous(s.Find("opioid"), s.Find("nitazene"))->id, "nitazene");
    EXPECT_EQ(s.MoreDangerous(nullptr, s.Find("ketamine"))->id, "ketamine");
    EXPECT_EQ(s.families().front().id, "nitazene");
}

TEST(SubstancesTest, ANameInTwoFamiliesIsAnError) {
    EXPECT_THROW(Substances::Parse(
                     "[families.a]\nnames = [\"x1\"]\n[families.b]\nnames = [\"X-1\"]\n", "s.toml"),
                 std::runtime_error);
}

std::string RuleError(const std::string& text) {
    try {
        Rules::Parse(text, "rules.toml", Shipped());
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "no error";
}

TEST(RulesTest, ShippedRulesLoad) {
    EXPECT_GE(ShippedRules().size(), 12u);
}

TEST(RulesTest, ErrorsNameFileLineAndProblem) {
    EXPECT_EQ(RuleError("[[rule]]\nid = \"nitazene-harm\"\nlevel = \"red\"\nreason = \"r\"\n"
                        "when = [\"family == nitazine\"]\n"),
              "rules.toml:5: rule \"nitazene-harm\" names unknown family \"nitazine\" (did you "
              "mean \"nitazene\"?)");
    EXPECT_EQ(
        RuleError(
            "[[rule]]\nid = \"d\"\nlevel = \"red\"\nreason = \"r\"\nwhen = [\"deths >= 1\"]\n"),
        "rules.toml:5: rule \"d\" names unknown field \"deths\" (did you mean \"deaths\"?)");
    EXPECT_EQ(
        RuleError("[[rule]]\nid = \"d\"\nlevel = \"crimson\"\nreason = \"r\"\nwhen = [\"deaths >= "
                  "1\"]\n"),
        "rules.toml:1: rule \"d\" has level \"crimson\" (expected red, amber, green or none)");
    EXPECT_EQ(
        RuleError(
            "[[rule]]\nid = \"d\"\nlevel = \"red\"\nreason = \"r\"\nwhen = [\"deaths => 1\"]\n"),
        "rules.toml:5: rule \"d\" uses operator \"=>\" (expected >=, >, <=, <, ==, !=)");
    EXPECT_EQ(
        RuleError(
            "[[rule]]\nid = \"d\"\nlevel = \"red\"\nreason = \"r\"\nwhen = [\"deaths >= one\"]\n"),
        "rules.toml:5: rule \"d\" compares deaths with \"one\", which is not a whole number");
    EXPECT_EQ(RuleError("[[rule\nid = 1\n").rfind("rules.toml:1: ", 0), 0u);
}

}  // namespace
