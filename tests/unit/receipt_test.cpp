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

TEST(ReceiptTest, RejectionNamesTheSourceAndErrorsButNeverThePayload) {
    const auto doc = ParseObject(ldis::engine::RejectionJson(
        "ldis/v1/reports/police", "3b8f2f64-58c5-4a61-9d6c-5e4f8f0a1b2c", {{"", "bad"}}));
    EXPECT_EQ(doc.at("topic"), "ldis/v1/reports/police");
    EXPECT_EQ(doc.at("source"), "police");
    EXPECT_EQ(doc.at("report_id"), "3b8f2f64-58c5-4a61-9d6c-5e4f8f0a1b2c");
    EXPECT_EQ(doc.at("error_paths").as_array().size(), 1u);
    for (const char* key : {"payload", "payload_base64", "size", "truncated"})
        EXPECT_FALSE(doc.contains(key)) << key;
    EXPECT_TRUE(ParseObject(ldis::engine::RejectionJson("t", "", {})).at("report_id").is_null());
}

// A submitter that put a patient's number in "id", or a name as a field's key: the rejected
// topic carried both to its subscribers (the submitter's own receipt still names them).
TEST(ReceiptTest, ARejectionCarriesNeitherAnIdThatIsNotAUuidNorAKeyTheSenderChose) {
    const std::vector<ldis::engine::FieldError> errors{
        {"/id", "not a UUID"},
        {"/source/Callum Whitehead", "unknown field", /*sent_key=*/true},
        {"/NHS 943 476 5919", "unknown field", /*sent_key=*/true},
        {"/substances/0/name", "too long"}};
    const std::string text =
        ldis::engine::RejectionJson("ldis/v1/reports/hospital", "NHS 943 476 5919", errors);
    for (const char* sent : {"943 476 5919", "Callum"})
        EXPECT_EQ(text.find(sent), std::string::npos) << sent << " in " << text;
    const auto doc = ParseObject(text);
    EXPECT_TRUE(doc.at("report_id").is_null());
    EXPECT_EQ(doc.at("error_paths"),
              (boost::json::array{"/id", "/source/*", "/*", "/substances/0/name"}));
    EXPECT_EQ(ldis::engine::ShareablePath({"", "bad"}), "");
    EXPECT_TRUE(ldis::engine::LooksLikeUuid("3B8F2F64-58C5-4A61-9D6C-5E4F8F0A1B2C"));
    EXPECT_FALSE(ldis::engine::LooksLikeUuid("3b8f2f64-58c5-4a61-9d6c-5e4f8f0a1b2"));
    EXPECT_FALSE(ldis::engine::LooksLikeUuid("3b8f2f64x58c5-4a61-9d6c-5e4f8f0a1b2c"));
    // The submitter is told everything, its own words included.
    Receipt r;
    r.errors = errors;
    EXPECT_NE(r.ToJson().find("Callum Whitehead"), std::string::npos);
}

}  // namespace
