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

TEST(RouterTest, ALiteralPathFindsItsHandler) {
    const auto found = Table().Find("GET", "/healthz");
    ASSERT_NE(found.handler, nullptr);
    EXPECT_EQ(*found.handler, "health");
    EXPECT_EQ(*Table().Find("GET", "/").handler, "home");
    EXPECT_EQ(*Table().Find("POST", "/api/v1/grading/replay").handler, "replay");
}

TEST(RouterTest, NamedSegmentsAreTheParameters) {
    const auto found = Table().Find("GET", "/api/v1/alerts/KM-2026-0007/cap");
    ASSERT_NE(found.handler, nullptr);
    EXPECT_EQ(*found.handler, "cap");
    EXPECT_EQ(found.params["ref"], "KM-2026-0007");
    EXPECT_EQ(found.params["nothing"], "");
    EXPECT_EQ(*Table().Find("GET", "/api/v1/alerts/KM-2026-0007").handler, "alert");
    // A named segment is never empty, and matches one segment only.
    EXPECT_EQ(Table().Find("GET", "/api/v1/alerts/").handler, nullptr);
    EXPECT_EQ(Table().Find("GET", "/api/v1/alerts/a/b/cap").handler, nullptr);
}

TEST(RouterTest, AStarSegmentTakesTheRestOfThePath) {
    auto found = Table().Find("GET", "/ack/123.1700000000.abc");
    ASSERT_NE(found.handler, nullptr);
    EXPECT_EQ(found.params["token"], "123.1700000000.abc");
    found = Table().Find("POST", "/ack/a/b");
    ASSERT_NE(found.handler, nullptr);
    EXPECT_EQ(found.params["token"], "a/b");
    EXPECT_EQ(Table().Find("GET", "/ack/").params["token"], "");
    EXPECT_EQ(Table().Find("GET", "/ack").handler, nullptr);  // not /ack/
}

TEST(RouterTest, AKnownPathWithAnotherMethodSaysWhichItTakes) {
    auto found = Table().Find("GET", "/api/v1/reports");
    EXPECT_EQ(found.handler, nullptr);
    EXPECT_EQ(found.allow, "POST");
    found = Table().Find("DELETE", "/ack/x");
    EXPECT_EQ(found.allow, "GET, POST");
    // An unknown path: no handler and nothing allowed (404, not 405).
    found = Table().Find("GET", "/api/v1/nothing");
    EXPECT_EQ(found.handler, nullptr);
    EXPECT_EQ(found.allow, "");
    EXPECT_EQ(Table().Find("GET", "/healthz/").allow, "");  // a trailing slash is another path
}

TEST(RouterTest, TheFirstRouteAddedWins) {
    Router<std::string> r;
    r.Add({"GET"}, "/api/v1/alerts/export", "export").Add({"GET"}, "/api/v1/alerts/{ref}", "one");
    EXPECT_EQ(*r.Find("GET", "/api/v1/alerts/export").handler, "export");
    EXPECT_EQ(*r.Find("GET", "/api/v1/alerts/KM-1").handler, "one");
}

}  // namespace
