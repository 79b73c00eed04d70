#include "ldis/engine/report_validator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "support/reports.hpp"

namespace json = boost::json;
using ldis::engine::ReportValidator;
using ldis::test::SourcePath;
using ldis::test::ValidReport;

namespace {

const ReportValidator& Validator() {
    static const auto validator = ldis::engine::LoadReportValidator(
        SourcePath("config/schema/report.schema.json"), SourcePath("config/areas.toml"));
    return *validator;
}

struct Case {
    const char* name;
    std::function<void(json::object&)> change;
    std::vector<std::string> paths;  // exact error paths expected; empty = valid
    std::string topic_source = "hospital";
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name;
}

std::vector<std::string> Paths(const ldis::engine::Validation& v) {
    std::vector<std::string> paths;
    for (const auto& e : v.errors) paths.push_back(e.path);
    std::sort(paths.begin(), paths.end());
    return paths;
}

std::vector<Case> Cases() {
    const auto area = [](json::object& r) -> json::object& { return r["area"].as_object(); };
    return {
        // Valid reports.
        {"full report", [](json::object&) {}, {}},
        {"only required fields",
         [](json::object& r) {
             r = json::object{{"schema", "ldis.report/1"},
                              {"id", r["id"]},
                              {"submitted_at", "2026-11-23T09:30:00+01:00"},
                              {"source", {{"type", "hospital"}, {"organisation", "Medway NHS FT"}}},
                              {"area", {{"authority", "Medway"}, {"district", "Medway"}}},
                              {"substances", json::array{{{"name", "spice"}}}},
                              {"harms", {{"cases", 0}}},
                              {"evidence", "anecdotal"}};
         },
         {}},
        {"ward spelt loosely", [&](json::object& r) { area(r)["ward"] = "st marys island"; }, {}},
        {"ward with and for &",
         [&](json::object& r) { area(r)["ward"] = "Hempstead and Wigmore"; },
         {}},
        {"former ward name", [&](json::object& r) { area(r)["ward"] = "Rochester East"; }, {}},
        {"establishment by alias",
         [&](json::object& r) { area(r)["establishment"] = "medway maritime"; },
         {}},
        {"Kent district, prison",
         [&](json::object& r) {
             area(r) = json::object{
                 {"authority", "Kent"}, {"district", "Swale"}, {"establishment", "HMP Elmley"}};
         },
         {}},
        {"Kent district without a ward list",
         [&](json::object& r) {
             area(r) = json::object{
                 {"authority", "Kent"}, {"district", "Thanet"}, {"ward", "Cliftonville West"}};
         },
         {}},
        {"upper-case UUID",
         [](json::object& r) { r["id"] = "0B7F6C1E-4A8D-4C1E-9A55-3F1D2B8E7C60"; },
         {}},
        {"national alert source on its topic",
         [](json::object& r) {
             r["source"].as_object()["type"] = "national_alert";
             r["national_ref"] = "NPSA-2026-01";
         },
         {},
         "national_alert"},
        {"HTTP has no topic source", [](json::object&) {}, {}, ""},

        // Missing and malformed required fields.
        {"missing id", [](json::object& r) { r.erase("id"); }, {"/id"}},
        {"id not a UUID", [](json::object& r) { r["id"] = "report-1"; }, {"/id"}},
        {"id a number", [](json::object& r) { r["id"] = 12; }, {"/id"}},
        {"missing submitted_at",
         [](json::object& r) { r.erase("submitted_at"); },
         {"/submitted_at"}},
        {"submitted_at not a date",
         [](json::object& r) { r["submitted_at"] = "yesterday"; },
         {"/submitted_at"}},
        {"submitted_at 30 February",
         [](json::object& r) { r["submitted_at"] = "2026-02-30T10:00:00Z"; },
         {"/submitted_at"}},
        {"missing source organisation",
         [](json::object& r) { r["source"].as_object().erase("organisation"); },
         {"/source/organisation"}},
        {"unknown source type",
         [](json::object& r) { r["source"].as_object()["type"] = "doctor"; },
         {"/source/type"}},
        {"missing area", [](json::object& r) { r.erase("area"); }, {"/area"}},
        {"missing district",
         [&](json::object& r) { area(r).erase("district"); },
         {"/area/district"}},
        {"unknown district",
         [&](json::object& r) { area(r)["district"] = "Kent Downs"; },
         {"/area/district"}},
        {"district of the other authority",
         [&](json::object& r) {
             area(r) = json::object{{"authority", "Medway"}, {"district", "Swale"}};
         },
         {"/area/district"}},
        {"ward not in Medway",
         [&](json::object& r) { area(r)["ward"] = "Sheerness"; },
         {"/area/ward"}},
        {"unknown establishment",
         [&](json::object& r) { area(r)["establishment"] = "HMP Nowhere"; },
         {"/area/establishment"}},
        {"establishment in another district",
         [&](json::object& r) { area(r)["establishment"] = "HMP Elmley"; },
         {"/area/establishment"}},
        {"no substances",
         [](json::object& r) { r["substances"] = json::array{}; },
         {"/substances"}},
        {"substance without a name",
         [](json::object& r) {
             r["substances"] = json::array{{{"sold_as", "blues"}}};
         },
         {"/substances/0/name"}},
        {"unknown form",
         [](json::object& r) { r["substances"].as_array()[0].as_object()["form"] = "gel"; },
         {"/substances/0/form"}},
        {"missing harms.cases",
         [](json::object& r) { r["harms"].as_object().erase("cases"); },
         {"/harms/cases"}},
        {"cases as text",
         [](json::object& r) { r["harms"].as_object()["cases"] = "two"; },
         {"/harms/cases"}},
        {"negative deaths",
         [](json::object& r) { r["harms"].as_object()["deaths"] = -1; },
         {"/harms/deaths"}},
        {"fractional cases",
         [](json::object& r) { r["harms"].as_object()["cases"] = 1.5; },
         {"/harms/cases"}},
        {"missing evidence", [](json::object& r) { r.erase("evidence"); }, {"/evidence"}},
        {"unknown evidence", [](json::object& r) { r["evidence"] = "hearsay"; }, {"/evidence"}},
        {"unknown setting", [](json::object& r) { r["setting"] = "beach"; }, {"/setting"}},
        {"description too long",
         [](json::object& r) { r["description"] = std::string(4001, 'a'); },
         {"/description"}},
        {"symptom not text",
         [](json::object& r) {
             r["symptoms"] = json::array{"vomiting", 3};
         },
         {"/symptoms/1"}},
        {"related report not a UUID",
         [](json::object& r) {
             r["related_reports"] = json::array{"0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60", "earlier"};
         },
         {"/related_reports/1"}},
        {"observed_approximate as text",
         [](json::object& r) { r["observed_approximate"] = "yes"; },
         {"/observed_approximate"}},

        // Unknown fields are rejected, each one named.
        {"unknown top-level field",
         [](json::object& r) { r["patient_name"] = "J Smith"; },
         {"/patient_name"}},
        {"unknown nested fields",
         [](json::object& r) {
             r["source"].as_object()["phone"] = "07700900123";
             r["substances"].as_array()[0].as_object()["purity"] = 40;
         },
         {"/source/phone", "/substances/0/purity"}},

        // Schema versions.
        {"unknown schema version",
         [](json::object& r) { r["schema"] = "ldis.report/2"; },
         {"/schema"}},
        {"foreign schema", [](json::object& r) { r["schema"] = "radar.report/1"; }, {"/schema"}},
        {"missing schema", [](json::object& r) { r.erase("schema"); }, {"/schema"}},

        // Topic and source.
        {"source type differs from topic", [](json::object&) {}, {"/source/type"}, "custody"},
        {"topic source not a source type", [](json::object&) {}, {""}, "bananas"},

        // Several problems at once: every one is listed.
        {"many problems",
         [&](json::object& r) {
             r.erase("id");
             r["evidence"] = "hearsay";
             r["harms"].as_object()["cases"] = -3;
             area(r)["ward"] = "Nowhere";
             r["extra"] = true;
         },
         {"/area/ward", "/evidence", "/extra", "/harms/cases", "/id"}},
    };
}

class ReportValidationTable : public ::testing::TestWithParam<Case> {};

TEST_P(ReportValidationTable, ReportsExactlyTheExpectedErrors) {
    const Case& c = GetParam();
    auto report = ValidReport("0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60");
    c.change(report);
    const auto result = Validator().Validate(json::serialize(report), c.topic_source);
    auto expected = c.paths;
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(Paths(result), expected) << [&] {
        std::string all;
        for (const auto& e : result.errors) all += "  " + e.path + ": " + e.message + "\n";
        return all;
    }();
    EXPECT_EQ(result.ok(), c.paths.empty());
    for (const auto& e : result.errors) {
        EXPECT_FALSE(e.message.empty());
        EXPECT_EQ(e.message.find("valijson"), std::string::npos);
        // Only an unknown field's path ends in a key the sender chose (ShareablePath hides it).
        EXPECT_EQ(e.sent_key, e.message.starts_with("unknown field")) << e.path;
    }
}

INSTANTIATE_TEST_SUITE_P(Reports, ReportValidationTable, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                             std::string name = param_info.param.name;
                             for (auto& ch : name) {
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             }
                             return name;
                         });

ldis::engine::Validation ValidateText(std::string_view text, std::string_view source = "hospital") {
    return Validator().Validate(text, source);
}

TEST(ReportValidatorTest, MalformedJsonSaysWhere) {
    const auto v = ValidateText("{\"schema\": \"ldis.report/1\",\n \"id\": }");
    ASSERT_EQ(v.errors.size(), 1u);
    EXPECT_EQ(v.errors[0].path, "");
    EXPECT_NE(v.errors[0].message.find("malformed JSON at line 2"), std::string::npos)
        << v.errors[0].message;
}

TEST(ReportValidatorTest, TruncatedJsonRejected) {
    const auto text = ldis::test::ValidReportText("0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60");
    const auto v = ValidateText(text.substr(0, text.size() / 2));
    ASSERT_EQ(v.errors.size(), 1u);
    EXPECT_NE(v.errors[0].message.find("malformed JSON"), std::string::npos);
}

TEST(ReportValidatorTest, NotAnObjectRejected) {
    const auto v = ValidateText("[1, 2, 3]");
    ASSERT_EQ(v.errors.size(), 1u);
    EXPECT_NE(v.errors[0].message.find("must be a JSON object"), std::string::npos);
}

TEST(ReportValidatorTest, EmptyPayloadRejected) {
    const auto v = ValidateText("");
    ASSERT_EQ(v.errors.size(), 1u);
    EXPECT_EQ(v.errors[0].path, "");
}

TEST(ReportValidatorTest, OversizedPayloadRejectedBeforeParsing) {
    auto report = ValidReport("0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60");
    report["description"] = std::string(70 * 1024, 'x');
    const auto v = ValidateText(json::serialize(report));
    ASSERT_EQ(v.errors.size(), 1u);
    EXPECT_NE(v.errors[0].message.find("64 KiB"), std::string::npos) << v.errors[0].message;
}

TEST(ReportValidatorTest, PayloadAtTheLimitIsParsed) {
    std::string text(ReportValidator::kMaxPayloadBytes, ' ');
    const std::string report = ldis::test::ValidReportText("0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60");
    text.replace(0, report.size(), report);  // JSON allows trailing white space
    EXPECT_TRUE(ValidateText(text).ok());
}

TEST(ReportValidatorTest, InvalidUtf8Rejected) {
    auto text = ldis::test::ValidReportText("0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60");
    text.insert(text.find("Two people"), "\xC3\x28");
    const auto v = ValidateText(text);
    ASSERT_EQ(v.errors.size(), 1u);
    EXPECT_NE(v.errors[0].message.find("not valid UTF-8"), std::string::npos);
}

TEST(ReportValidatorTest, Utf8Checks) {
    using ldis::engine::IsValidUtf8;
    EXPECT_TRUE(IsValidUtf8("St Mary\xE2\x80\x99s Island"));
    EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x92\x8A"));
    EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
    EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
    EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
    std::size_t at = 0;
    EXPECT_FALSE(IsValidUtf8("abc\xE2\x80", &at));  // cut short
    EXPECT_EQ(at, 3u);
}

TEST(ReportValidatorTest, MessagesArePlainEnglish) {
    auto report = ValidReport("0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60");
    report["evidence"] = "hearsay";
    report["harms"].as_object()["cases"] = "two";
    report.erase("submitted_at");
    report["colour"] = "blue";
    const auto v = Validator().Validate(json::serialize(report));
    std::map<std::string, std::string> by_path;
    for (const auto& e : v.errors) by_path[e.path] = e.message;
    EXPECT_EQ(by_path["/evidence"],
              "must be one of: anecdotal, professional, corroborated, confirmed");
    EXPECT_EQ(by_path["/harms/cases"], "must be a whole number, not text");
    EXPECT_EQ(by_path["/submitted_at"], "is required");
    EXPECT_EQ(by_path["/colour"], "unknown field \"colour\": ldis.report/1 has no such field");
}

TEST(ReportValidatorTest, ExtractsIndexedFields) {
    auto report = ValidReport("0B7F6C1E-4A8D-4C1E-9A55-3F1D2B8E7C60");
    report["area"].as_object()["ward"] = "rochester east";
    const auto v = Validator().Validate(json::serialize(report));
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v.report->id, "0b7f6c1e-4a8d-4c1e-9a55-3f1d2b8e7c60");
    EXPECT_EQ(v.report->source_type, "hospital");
    EXPECT_EQ(v.report->authority, "Medway");
    EXPECT_EQ(v.report->district, "Medway");
    EXPECT_EQ(v.report->ward, "Rochester East");
    EXPECT_EQ(v.report->ward_current, "Rochester East & Warren Wood");
    EXPECT_EQ(v.report->establishment, "Medway Maritime Hospital");
    EXPECT_EQ(json::parse(v.report->document), json::value(report));
}

TEST(ReportValidatorTest, BrokenSchemaNamesTheFile) {
    try {
        ReportValidator bad("{not json", "schema.json",
                            ldis::engine::Areas::LoadFile(SourcePath("config/areas.toml")));
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("schema.json"), std::string::npos);
    }
}

}  // namespace
