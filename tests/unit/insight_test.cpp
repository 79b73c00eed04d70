// What happened, counted (issue 17 §1, §2): weeks, quarters, the charts' series, time to
// alert, the quarterly tables and their CSV, and the pictures, all without a database.
#include "ldis/engine/insight.hpp"

#include <gtest/gtest.h>

#include "ldis/engine/charts.hpp"
#include "ldis/engine/text.hpp"

namespace {

using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file

std::int64_t Day(int y, unsigned m, unsigned d) {
    return DaysFromCivil(y, m, d) * 86400000;
}

TEST(InsightTest, WeeksStartOnMondayAndQuartersAreCalendarQuartersInUtc) {
    // Monday 23 November 2026; Sunday 29 November 23:59 is still its week.
    EXPECT_EQ(WeekOf(Day(2026, 11, 23)), Day(2026, 11, 23));
    EXPECT_EQ(WeekOf(Day(2026, 11, 30) - 1), Day(2026, 11, 23));
    EXPECT_EQ(WeekOf(Day(2026, 11, 25) + 3600000), Day(2026, 11, 23));
    const auto q4 = ParseQuarter("2026-Q4");
    ASSERT_TRUE(q4.ok());
    EXPECT_EQ(q4.value().from_ms, Day(2026, 10, 1));
    EXPECT_EQ(q4.value().to_ms, Day(2027, 1, 1));
    EXPECT_EQ(ParseQuarter("2027-q1").value().to_ms, Day(2027, 4, 1));
    for (const char* wrong : {"2026-Q5", "2026Q4", "26-Q4", "2026-Q", "", "2026-Q4x", "1999-Q1"}) {
        const auto q = ParseQuarter(wrong);
        ASSERT_FALSE(q.ok()) << wrong;
        EXPECT_NE(q.error().message.find("like 2026-Q4"), std::string::npos);
    }
    EXPECT_EQ(QuarterOf(Day(2026, 11, 30)).name, "2026-Q4");
    EXPECT_EQ(QuarterOf(Day(2026, 4, 1)).name, "2026-Q2");
    EXPECT_EQ(QuarterOf(Day(2026, 3, 31) + 86399999).name, "2026-Q1");
}

InsightData Sample() {
    InsightData d;
    d.from_ms = Day(2026, 11, 2);  // a Monday
    d.to_ms = Day(2026, 11, 23);   // three weeks
    const std::int64_t w1 = Day(2026, 11, 2), w2 = Day(2026, 11, 9), w3 = Day(2026, 11, 16);
    d.reports = {{w1, "nitazene", "Medway", "hospital", "confirmed", "community", 5},
                 {w2, "nitazene", "Swale", "custody", "professional", "custody", 2},
                 {w2, "synthetic_cannabinoid", "Swale", "prison", "professional", "prison", 4},
                 {w3, "cocaine", "Dover", "drug_checking", "confirmed", "community", 1},
                 {w3, "", "Thanet", "public", "anecdotal", "", 1}};
    d.versions = {{w1, "issued", "red", "nitazene", "Medway", 1},
                  {w2, "updated", "red", "nitazene", "Medway", 3},
                  {w2, "issued", "amber", "synthetic_cannabinoid", "Swale", 1},
                  {w3, "cancelled", "red", "nitazene", "Medway", 1}};
    d.timings = {{"KM-2026-0001", "red", "Medway", w1, w1 + 60000, w1 + 62000, w1 + 600000},
                 {"KM-2026-0002", "amber", "Swale", w2, w2 + 3600000, w2 + 3700000, 0},
                 {"KM-2026-0003", "amber", "Dover", w3, w3 + 1000, w3 + 2000, w3 + 120000}};
    d.partners = {{"police", 3, 3, 2}, {"ed", 2, 1, 0}};
    d.exercises = 2;
    return d;
}

TEST(InsightTest, ChartsCountEveryWeekAndTheLargestCategoriesWithTheRestAsOther) {
    const auto d = Sample();
    const auto by_family = ReportSeries(d, ReportBy::kFamily, 2);
    ASSERT_EQ(by_family.weeks.size(), 3u);
    EXPECT_EQ(by_family.totals, (std::vector<std::int64_t>{5, 6, 2}));
    ASSERT_EQ(by_family.categories.size(), 3u);
    EXPECT_EQ(by_family.categories[0].first, "nitazene");
    EXPECT_EQ(by_family.categories[0].second, (std::vector<std::int64_t>{5, 2, 0}));
    EXPECT_EQ(by_family.categories[1].first, "synthetic_cannabinoid");
    EXPECT_EQ(by_family.categories[2].first, "Other");
    EXPECT_EQ(by_family.categories[2].second, (std::vector<std::int64_t>{0, 0, 2}));
    const auto alerts = AlertSeries(d);
    ASSERT_EQ(alerts.categories.size(), 3u);
    EXPECT_EQ(alerts.categories[0].first, "red");
    EXPECT_EQ(alerts.categories[0].second, (std::vector<std::int64_t>{1, 0, 0}));  // issued only
    EXPECT_EQ(alerts.categories[1].second, (std::vector<std::int64_t>{0, 1, 0}));

    const auto svg = WeeklyChartSvg(by_family, "c", "Reports <by> family",
                                    [](const std::string& c, std::int64_t) { return "/?s=" + c; });
    EXPECT_NE(svg.find("Reports &lt;by&gt; family"), std::string::npos);
    EXPECT_NE(svg.find("<a href=\"/?s=nitazene\" aria-label=\"Nitazene, week of 2 November 2026: "
                       "5\"><rect"),
              std::string::npos);
    EXPECT_NE(svg.find("data-count=\"5\"/></a>"), std::string::npos);
    // Unlinked, each bar carries its title.
    const auto plain = WeeklyChartSvg(by_family, "p", "Plain", nullptr);
    EXPECT_NE(plain.find("<title>Nitazene, week of 2 November 2026: 5</title></rect>"),
              std::string::npos);
    const auto table = WeeklyTableHtml(by_family, "numbers");
    EXPECT_NE(table.find(">2 November 2026</th>"), std::string::npos);
    EXPECT_NE(table.find("Synthetic cannabinoid"), std::string::npos);
}

TEST(InsightTest, TimeToAlertIsMeasuredFromTheFirstReport) {
    const auto s = SummariseTimings(Sample().timings);
    EXPECT_EQ(s.alerts, 3);
    EXPECT_EQ(s.to_inbox_median_ms, 62000);  // 2 s, 62 s, 3,700 s: the middle one
    EXPECT_EQ(s.to_inbox_slowest_ms, 3700000);
    EXPECT_EQ(s.slowest_to_inbox, "KM-2026-0002");
    EXPECT_EQ(s.to_ack_median_ms, (600000 + 120000) / 2);  // the second had none
    EXPECT_EQ(s.to_ack_slowest_ms, 600000);
    EXPECT_EQ(SummariseTimings({}).to_inbox_median_ms, -1);
}

TEST(InsightTest, TheQuarterlyTablesBlurSmallNumbersAndTheCsvQuotesWhatItMust) {
    const auto tables = QuarterlyTables(Sample());
    std::map<std::string, ReportTable> by;
    for (const auto& t : tables) by[t.id] = t;
    ASSERT_TRUE(by.contains("reports-by-source"));
    const auto& source = by["reports-by-source"].rows;
    EXPECT_EQ(source.front(), (std::vector<std::string>{"Hospital", "5"}));
    EXPECT_EQ(source.back(), (std::vector<std::string>{"All", "13"}));
    bool custody_blurred = false;
    for (const auto& row : source)
        if (row[0] == "Custody") custody_blurred = row[1] == "fewer than 3";
    EXPECT_TRUE(custody_blurred);
    EXPECT_EQ(by["reports-by-family"].rows.back()[1], "13");
    const auto& levels = by["alerts-by-level"].rows;
    EXPECT_EQ(levels[0],
              (std::vector<std::string>{"Drug Alert (red)", "fewer than 3", "3", "fewer than 3"}));
    EXPECT_EQ(by["partners"].rows[0],
              (std::vector<std::string>{"ed", "fewer than 3", "fewer than 3", "-", "0"}));
    EXPECT_EQ(by["partners"].rows[1],
              (std::vector<std::string>{"police", "3", "3", "100%", "fewer than 3"}));
    EXPECT_EQ(by["confirmations"].rows[0][1], "fewer than 3");  // one drug-checking report
    EXPECT_EQ(by["confirmations"].rows[1][1], "6");
    EXPECT_EQ(by["exercises"].rows[0][1], "2");
    const auto csv = QuarterlyCsv(ParseQuarter("2026-Q4").value(), tables);
    EXPECT_EQ(csv.rfind("table,quarter,label,values\r\n", 0), 0u);
    EXPECT_NE(csv.find("reports-by-source,2026-Q4,Hospital,5\r\n"), std::string::npos);
    EXPECT_NE(csv.find("time-to-alert,2026-Q4,Median to the first partner's inbox,1 min 02 s\r\n"),
              std::string::npos)
        << csv;
    const auto html = QuarterlyHtml(ParseQuarter("2026-Q4").value(), tables, Sample(),
                                    "Medway <Public> Health", Day(2027, 1, 2));
    EXPECT_NE(html.find("@page{size:A4"), std::string::npos);
    EXPECT_NE(html.find("Medway &lt;Public&gt; Health"), std::string::npos);
    EXPECT_NE(html.find("<svg"), std::string::npos);
}

TEST(InsightTest, TheMapColoursEachDistrictByItsHighestLiveLevel) {
    ASSERT_EQ(DistrictTiles().size(), 13u);
    const auto svg =
        DistrictMapSvg({{"Medway", "red"}, {"Swale", "amber"}}, {{"Medway", 2}, {"Swale", 1}},
                       [](const std::string& d) { return "/?district=" + d; });
    EXPECT_NE(svg.find("data-district=\"Medway\" data-level=\"red\""), std::string::npos);
    EXPECT_NE(svg.find("Medway: 2 live alerts, highest red"), std::string::npos);
    EXPECT_NE(svg.find("Swale: 1 live alert, highest amber"), std::string::npos);
    EXPECT_NE(svg.find("data-district=\"Dover\" data-level=\"none\""), std::string::npos);
    EXPECT_NE(svg.find("Tonbridge &amp; Malling"), std::string::npos);
    EXPECT_NE(svg.find("<a href=\"/?district=Thanet\" aria-label=\"Thanet: no live alert\">"),
              std::string::npos);
}

}  // namespace
