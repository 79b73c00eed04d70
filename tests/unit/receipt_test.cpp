#include "ldis/engine/receipt.hpp"

#include <gtest/gtest.h>

#include "support/reports.hpp"

using ldis::engine::Receipt;
using ldis::engine::ReceiptStatus;
using ldis::test::ParseObject;

namespace {

TEST(ReceiptTest, AcceptedReceiptHasEveryField) {
    Receipt r;
    r.report_id = "0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60";
    r.reference = "KM-R000042";
    r.status = ReceiptStatus::kAccepted;
    const auto doc = ParseObject(r.ToJson());
    EXPECT_EQ(doc.at("report_id"), "0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60");
    EXPECT_EQ(doc.at("reference"), "KM-R000042");
    EXPECT_EQ(doc.at("status"), "accepted");
    EXPECT_TRUE(doc.at("errors").as_array().empty());
    EXPECT_TRUE(doc.at("level").is_null());
    EXPECT_TRUE(doc.at("alert_id").is_null());
}

TEST(ReceiptTest, RejectedReceiptListsErrors) {
    Receipt r;
    r.status = ReceiptStatus::kRejected;
    r.errors = {{"/id", "is required"}, {"", "bad"}};
    const auto doc = ParseObject(r.ToJson());
    EXPECT_EQ(doc.at("status"), "rejected");
    EXPECT_TRUE(doc.at("report_id").is_null());
    ASSERT_EQ(doc.at("errors").as_array().size(), 2u);
    EXPECT_EQ(doc.at("errors").as_array()[0].as_object().at("path"), "/id");
    EXPECT_EQ(doc.at("errors").as_array()[0].as_object().at("message"), "is required");
}

TEST(ReceiptTest, RejectionCopiesTextPayload) {
    const auto doc =
        ParseObject(ldis::engine::RejectionJson("ldis/v1/reports/police", "{oops", {{"", "bad"}}));
    EXPECT_EQ(doc.at("topic"), "ldis/v1/reports/police");
    EXPECT_EQ(doc.at("payload"), "{oops");
    EXPECT_EQ(doc.at("size").as_int64(), 5);
    EXPECT_FALSE(doc.at("truncated").as_bool());
}

TEST(ReceiptTest, RejectionEncodesBinaryAsBase64) {
    const auto doc =
        ParseObject(ldis::engine::RejectionJson("t", std::string("\xFF\x00\x01", 3), {}));
    EXPECT_FALSE(doc.contains("payload"));
    EXPECT_EQ(doc.at("payload_base64"), "/wAB");
}

TEST(ReceiptTest, RejectionCutsOversizedPayload) {
    const auto doc = ParseObject(ldis::engine::RejectionJson("t", std::string(100, 'a'), {}, 10));
    EXPECT_EQ(doc.at("payload"), "aaaaaaaaaa");
    EXPECT_EQ(doc.at("size").as_int64(), 100);
    EXPECT_TRUE(doc.at("truncated").as_bool());
}

}  // namespace
