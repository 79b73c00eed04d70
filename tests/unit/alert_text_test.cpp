// The text of an alert as partners read it (issue 17 §6): sections that do not repeat
// their headings as labels, a place said once, and only the strongest reason for the level
// (the record keeps the rest). Pure: templates/alert/ and the shipped rules, no store.
#include "ldis/engine/alert_text.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>

#include "ldis/engine/grading.hpp"
#include "ldis/engine/text.hpp"
#include "support/shipped.hpp"

namespace json = boost::json;
using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file
using ldis::test::ShippedSubstances;
using ldis::test::SourcePath;

namespace {

std::string ReportDocument(const std::string& authority, const std::string& district, int cases,
                           int deaths) {
    return json::serialize(json::object{
        {"schema", "ldis.report/1"},
        {"id", ldis::test::NewUuid()},
        {"submitted_at", "2026-11-23T09:30:00Z"},
        {"source", {{"type", "hospital"}, {"organisation", "Medway NHS Foundation Trust"}}},
        {"area", {{"authority", authority}, {"district", district}}},
        {"setting", "community"},
        {"substances", json::array{{{"name", "nitazene"}}}},
        {"harms", {{"cases", cases}, {"deaths", deaths}, {"hospitalisations", cases}}},
        {"evidence", "professional"}});
}

std::map<std::string, std::string> Render(const std::string& authority, const std::string& district,
                                          int cases, int deaths, Grade* grade_out = nullptr) {
    const auto rules = Rules::LoadFile(SourcePath("config/rules.toml"), ShippedSubstances());
    const auto templates = AlertTemplates::LoadDir(SourcePath("templates/alert"));
    const std::vector<std::string> docs = {ReportDocument(authority, district, cases, deaths)};
    const auto facts = FactsOf(docs, ShippedSubstances());
    const auto grade = rules.Apply(facts);
    if (grade_out) *grade_out = grade;
    AlertMeta meta;
    meta.reference = "KM-2026-0007";
    meta.version = 1;
    meta.status = "issued";
    meta.authority = authority;
    meta.district = district;
    meta.public_url = "https://ldis.example.org";
    const auto rendered = RenderAlert(templates, meta, docs, facts, grade, ShippedSubstances());
    return {rendered.sections.begin(), rendered.sections.end()};
}

}  // namespace

TEST(AlertTextTest, TheStrongestReasonIsTheFirstOfTheHighestLevelAndARaiseFollowsIt) {
    Grade g;
    EXPECT_EQ(StrongestReason(g), "");
    g.fired = {{"a", Level::kAmber, "Amber first."},
               {"r1", Level::kRed, "Two deaths."},
               {"r2", Level::kRed, "A nitazene."},
               {"g", Level::kGreen, "New appearance."}};
    EXPECT_EQ(StrongestReason(g), "Two deaths.");
    g.fired.push_back({"under-18", Level::kRed, "Someone under 18 was harmed."});
    EXPECT_EQ(StrongestReason(g), "Two deaths. Someone under 18 was harmed.");
    g.fired = {{"under-18", Level::kAmber, "Someone under 18 was harmed."}};
    EXPECT_EQ(StrongestReason(g), "Someone under 18 was harmed.");
}

TEST(AlertTextTest, SectionsDoNotRepeatTheirHeadingsAndGiveOnlyTheStrongestReason) {
    Grade grade;
    const auto sections = Render("Medway", "Medway", 3, 2, &grade);
    ASSERT_EQ(grade.level, Level::kRed);
    ASSERT_GE(grade.fired.size(), 2u) << "the case must fire more than one rule";
    // No section opens with a label that repeats its heading ("Harms: ..." under "Harms and
    // warning signs"): each starts with what it says.
    const std::map<std::string, std::string> labels = {{"what", "What:"},
                                                       {"evidence", "Evidence:"},
                                                       {"harms", "Harms:"},
                                                       {"actions", "Actions for professionals:"},
                                                       {"advice", "Advice for"},
                                                       {"naloxone", "Overdose response:"},
                                                       {"contacts", "Contacts:"},
                                                       {"sharing", "Sharing:"},
                                                       {"history", "Version history:"}};
    for (const auto& [name, label] : labels) {
        ASSERT_TRUE(sections.contains(name)) << name;
        EXPECT_NE(sections.at(name).rfind(label, 0), 0u) << name << ": " << sections.at(name);
    }
    EXPECT_EQ(sections.at("harms").rfind("3 affected; 3 admitted to hospital", 0), 0u)
        << sections.at("harms");
    EXPECT_EQ(sections.at("advice").rfind("Do not use alone", 0), 0u);
    EXPECT_EQ(sections.at("history"), "v1 issued (red)\n");
    // One reason, the strongest; the others are not in the text partners read.
    const std::string& evidence = sections.at("evidence");
    EXPECT_NE(evidence.find("Why this level: " + StrongestReason(grade)), std::string::npos)
        << evidence;
    EXPECT_EQ(evidence.rfind("1 report from 1 independent source (hospital)", 0), 0u) << evidence;
    for (const auto& f : grade.fired) {
        if (f.reason == StrongestReason(grade)) continue;
        EXPECT_EQ(evidence.find(f.reason), std::string::npos) << f.id << " is in " << evidence;
    }
    // Medway is its own district: said once.
    EXPECT_NE(sections.at("what").find("Where: Medway (community)\n"), std::string::npos)
        << sections.at("what");
    EXPECT_EQ(sections.at("what").find("Medway, Medway"), std::string::npos);
    // A district of Kent keeps its council.
    EXPECT_NE(Render("Kent", "Dartford", 1, 0).at("what").find("Where: Dartford, Kent"),
              std::string::npos);
}

TEST(AlertTextTest, APlaceIsSaidOnce) {
    EXPECT_EQ(Place("Medway", "Medway"), "Medway");
    EXPECT_EQ(Place("Dartford", "Kent"), "Dartford, Kent");
    EXPECT_EQ(Place("", "Kent"), "Kent");
    EXPECT_EQ(Place("Dartford", ""), "Dartford");
}
