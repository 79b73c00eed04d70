#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/areas.hpp"
#include "ldis/engine/report.hpp"
#include "ldis/engine/result.hpp"

namespace ldis::engine {

// The outcome of validating one payload: a report, or every error found in it.
struct Validation {
    std::optional<Report> report;
    std::vector<FieldError> errors;
    bool ok() const { return report.has_value(); }
};

// Decodes and validates a report payload against config/schema/report.schema.json
// (JSON Schema draft 7, via valijson over Boost.JSON) and against the configured areas.
// Rejects payloads over kMaxPayloadBytes, invalid UTF-8, syntax errors, unknown schema
// versions, unknown fields, schema violations, and wards or establishments that are not
// in areas.toml. Immutable after construction; Validate() is thread-safe.
class ReportValidator {
public:
    static constexpr std::size_t kMaxPayloadBytes = 64 * 1024;
    static constexpr std::string_view kSchemaId = "ldis.report/1";

    // Throws std::runtime_error naming `schema_origin` if the schema is not valid JSON Schema.
    ReportValidator(std::string_view schema_json, const std::string& schema_origin, Areas areas);
    ~ReportValidator();
    ReportValidator(const ReportValidator&) = delete;
    ReportValidator& operator=(const ReportValidator&) = delete;

    // Validates one payload. `topic_source` is the {source} of the MQTT topic it came on,
    // or "" when there is none (HTTP); when given it must be a source type and match
    // source.type.
    Validation Validate(std::string_view payload, std::string_view topic_source = {}) const;

    const Areas& areas() const { return areas_; }

private:
    struct Schema;
    std::unique_ptr<Schema> schema_;
    Areas areas_;
};

// Loads the schema file and areas file named and builds a validator.
// Throws std::runtime_error "FILE[:LINE]: problem".
std::shared_ptr<const ReportValidator> LoadReportValidator(const std::string& schema_path,
                                                           const std::string& areas_path);

// True if `text` is well-formed UTF-8. When false, `bad_offset` is the first bad byte.
bool IsValidUtf8(std::string_view text, std::size_t* bad_offset = nullptr);

}  // namespace ldis::engine
