#pragma once
// What both stores (SQLite and PostgreSQL) write the same way into their rows: the rules a
// version records, a report's reference, the year an alert is numbered in.
#include <boost/json.hpp>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include "ldis/engine/grading.hpp"

namespace ldis::engine {

// The rules that fired, as the alert_versions.rules column (and the audit log) holds them.
inline boost::json::array FiredJson(const Grade& grade) {
    boost::json::array fired;
    for (const auto& f : grade.fired) {
        fired.push_back(
            {{"id", f.id}, {"level", std::string(ToString(f.level))}, {"reason", f.reason}});
    }
    return fired;
}
inline std::string RulesJson(const Grade& grade) {
    return boost::json::serialize(FiredJson(grade));
}

inline int YearOf(std::int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    return utc.tm_year + 1900;
}

// A report's reference from its number: KM-R000042.
inline std::string ReportReference(std::string_view prefix, std::int64_t seq) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%06lld", static_cast<long long>(seq));
    return std::string(prefix) + "-R" + digits;
}

}  // namespace ldis::engine
