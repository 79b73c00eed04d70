// What coordinators read of a stored report and a delivery (engine/views.hpp), without I/O.
#include "ldis/engine/views.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "support/reports.hpp"

namespace json = boost::json;
using ldis::engine::DeliveryForCoordinators;
using ldis::engine::DeliveryRow;
using ldis::engine::ReportForCoordinators;
using ldis::engine::StoredReportRow;

namespace {

StoredReportRow Stored(const json::object& report) {
    StoredReportRow row;
    row.id = std::string(report.at("id").as_string());
    row.reference = "KM-R000007";
    row.received_at_ms = 1'764'000'000'123;
    row.channel = "mqtt";
    row.document = json::serialize(report);
    return row;
}

TEST(ViewsTest, AReportLosesItsContactAndEveryTypedFieldIsScrubbed) {
    auto report = ldis::test::ValidReport("0b7e1f8c-5d5a-4c36-9a55-3f1c1d2e9a10");
    auto& source = report["source"].as_object();
    source["organisation"] = "Medway ED, ask Niamh Gallagher";
    source["role"] = "nurse on 07700 900123";
    report["description"] = "patient Callum Whitehead NHS 943 476 5919";
    report["symptoms"] = json::array{"slow breathing", "seen at ME7 5NY"};
    auto& substance = report["substances"].as_array()[0].as_object();
    substance["name"] = "heroin from callum@example.org";
    substance["sold_as"] = "brown, DOB 12/04/1987";
    substance["appearance"] = "bag marked A1234BC";
    substance["markings"] = "Mr Peter Brown";

    const auto view = ReportForCoordinators(Stored(report));
    EXPECT_EQ(view.at("reference"), "KM-R000007");
    EXPECT_EQ(view.at("received_at"), "2025-11-24T16:00:00+00:00");
    EXPECT_EQ(view.at("channel"), "mqtt");
    const std::string text = json::serialize(view);
    for (const char* typed :
         {"ed.nurse@example.org", "Niamh Gallagher", "07700 900123", "Callum Whitehead",
          "943 476 5919", "ME7 5NY", "callum@example.org", "12/04/1987", "A1234BC", "Peter Brown"})
        EXPECT_EQ(text.find(typed), std::string::npos) << typed << " in " << text;
    const auto& shown = view.at("report").as_object();
    EXPECT_FALSE(shown.at("source").as_object().contains("contact"));
    // What nobody typed is as it was.
    EXPECT_EQ(shown.at("harms"), report.at("harms"));
    EXPECT_EQ(shown.at("area"), report.at("area"));
    EXPECT_EQ(shown.at("symptoms").as_array()[0], "slow breathing");
    EXPECT_NE(text.find("ME7"), std::string::npos) << "the postcode district stays";
}

TEST(ViewsTest, AStoredDocumentThatIsNotJsonIsShownAsNull) {
    StoredReportRow row;
    row.id = "r1";
    row.document = "{not json";
    const auto view = ReportForCoordinators(row);
    EXPECT_TRUE(view.at("report").is_null());
    EXPECT_EQ(view.at("received_at"), "");
}

TEST(ViewsTest, ADeliveryNeverShowsItsAddressAndIsDeliveredOnlyOnceItWas) {
    DeliveryRow d;
    d.id = 42;
    d.version = 2;
    d.kind = "alert";
    d.partner = "ed";
    d.contact = "desk";
    d.channel = "email";
    d.address = "desk@example.org";
    d.status = "pending";
    d.attempts = 1;
    d.last_error = "421 try later";
    auto view = DeliveryForCoordinators(d);
    EXPECT_EQ(json::serialize(view).find("desk@example.org"), std::string::npos);
    EXPECT_EQ(view.at("delivered_at"), "");
    EXPECT_EQ(view.at("last_error"), "421 try later");
    d.status = "delivered";
    d.delivered_at_ms = 1'764'000'000'000;
    view = DeliveryForCoordinators(d);
    EXPECT_EQ(view.at("delivered_at"), "2025-11-24T16:00:00+00:00");
    EXPECT_EQ(view.at("id"), 42);
}

}  // namespace
