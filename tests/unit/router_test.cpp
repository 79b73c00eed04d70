// The HTTP server's route table (web/include/ldis/web/router.hpp): pure, no sockets.
#include "ldis/web/router.hpp"

#include <gtest/gtest.h>

namespace {

using ldis::web::Router;

Router<std::string> Table() {
    Router<std::string> r;
    r.Add({"GET"}, "/healthz", "health")
        .Add({"POST"}, "/api/v1/reports", "submit")
        .Add({"POST"}, "/api/v1/grading/replay", "replay")
        .Add({"GET"}, "/api/v1/alerts/{ref}", "alert")
        .Add({"GET"}, "/api/v1/alerts/{ref}/cap", "cap")
        .Add({"POST"}, "/api/v1/alerts/{ref}/cancel", "cancel")
        .Add({"GET", "POST"}, "/ack/{token*}", "ack")
        .Add({"GET", "POST"}, "/", "home");
    return r;
}

// A found handler points into its table, which must outlive it: each test keeps one.
TEST(RouterTest, ALiteralPathFindsItsHandler) {
    const auto table = Table();
    const auto found = table.Find("GET", "/healthz");
    ASSERT_NE(found.handler, nullptr);
    EXPECT_EQ(*found.handler, "health");
    EXPECT_EQ(*table.Find("GET", "/").handler, "home");
    EXPECT_EQ(*table.Find("POST", "/api/v1/grading/replay").handler, "replay");
}

TEST(RouterTest, NamedSegmentsAreTheParameters) {
    const auto table = Table();
    const auto found = table.Find("GET", "/api/v1/alerts/KM-2026-0007/cap");
    ASSERT_NE(found.handler, nullptr);
    EXPECT_EQ(*found.handler, "cap");
    EXPECT_EQ(found.params["ref"], "KM-2026-0007");
    EXPECT_EQ(found.params["nothing"], "");
    EXPECT_EQ(*table.Find("GET", "/api/v1/alerts/KM-2026-0007").handler, "alert");
    // A named segment is never empty, and matches one segment only.
    EXPECT_EQ(table.Find("GET", "/api/v1/alerts/").handler, nullptr);
    EXPECT_EQ(table.Find("GET", "/api/v1/alerts/a/b/cap").handler, nullptr);
}

TEST(RouterTest, AStarSegmentTakesTheRestOfThePath) {
    const auto table = Table();
    auto found = table.Find("GET", "/ack/123.1700000000.abc");
    ASSERT_NE(found.handler, nullptr);
    EXPECT_EQ(found.params["token"], "123.1700000000.abc");
    found = table.Find("POST", "/ack/a/b");
    ASSERT_NE(found.handler, nullptr);
    EXPECT_EQ(found.params["token"], "a/b");
    EXPECT_EQ(table.Find("GET", "/ack/").params["token"], "");
    EXPECT_EQ(table.Find("GET", "/ack").handler, nullptr);  // not /ack/
}

TEST(RouterTest, AKnownPathWithAnotherMethodSaysWhichItTakes) {
    const auto table = Table();
    auto found = table.Find("GET", "/api/v1/reports");
    EXPECT_EQ(found.handler, nullptr);
    EXPECT_EQ(found.allow, "POST");
    found = table.Find("DELETE", "/ack/x");
    EXPECT_EQ(found.allow, "GET, POST");
    // An unknown path: no handler and nothing allowed (404, not 405).
    found = table.Find("GET", "/api/v1/nothing");
    EXPECT_EQ(found.handler, nullptr);
    EXPECT_EQ(found.allow, "");
    EXPECT_EQ(table.Find("GET", "/healthz/").allow, "");  // a trailing slash is another path
}

TEST(RouterTest, TheFirstRouteAddedWins) {
    Router<std::string> r;
    r.Add({"GET"}, "/api/v1/alerts/export", "export").Add({"GET"}, "/api/v1/alerts/{ref}", "one");
    EXPECT_EQ(*r.Find("GET", "/api/v1/alerts/export").handler, "export");
    EXPECT_EQ(*r.Find("GET", "/api/v1/alerts/KM-1").handler, "one");
}

}  // namespace
