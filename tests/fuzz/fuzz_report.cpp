// libFuzzer: any bytes as a report, through the whole validator (size, UTF-8, JSON, schema
// version, unknown fields, JSON Schema, areas). It must answer, never crash or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ldis/engine/report_validator.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto validator = ldis::engine::LoadReportValidator(
        LDIS_SOURCE_DIR "/config/schema/report.schema.json", LDIS_SOURCE_DIR "/config/areas.toml");
    const std::string_view payload(reinterpret_cast<const char*>(data), size);
    const auto result = validator->Validate(payload);
    // A valid report has a document; a rejected one, at least one error.
    if (result.ok() == result.errors.empty()) return 0;
    __builtin_trap();
}
