#include "support/reports.hpp"

#include <cstdio>
#include <random>

namespace ldis::test {

std::string NewUuid() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto a = rng();
    const auto b = rng();
    char out[37];
    std::snprintf(out, sizeof out, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFF),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3FFF)),
                  static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
    return out;
}

boost::json::object ValidReport(const std::string& id) {
    return boost::json::object{
        {"schema", "ldis.report/1"},
        {"id", id},
        {"submitted_at", "2026-11-23T09:30:00Z"},
        {"observed_at", "2026-11-22T23:15:00+00:00"},
        {"source",
         {{"type", "hospital"},
          {"organisation", "Medway NHS Foundation Trust"},
          {"role", "ED nurse"},
          {"contact", "ed.nurse@example.org"}}},
        {"area",
         {{"authority", "Medway"},
          {"district", "Medway"},
          {"ward", "Gillingham North"},
          {"establishment", "Medway Maritime Hospital"}}},
        {"setting", "community"},
        {"substances",
         boost::json::array{{{"name", "heroin"}, {"sold_as", "brown"}, {"form", "powder"}}}},
        {"route", "injected"},
        {"harms", {{"cases", 3}, {"hospitalisations", 2}, {"naloxone_doses", 3}}},
        {"symptoms", boost::json::array{"pinpoint pupils", "slow breathing"}},
        {"description", "Two people in the ED after using brown bought in Gillingham."},
        {"evidence", "professional"}};
}

std::string ValidReportText(const std::string& id) {
    return boost::json::serialize(ValidReport(id));
}

std::string SourcePath(const std::string& relative) {
    return std::string(LDIS_SOURCE_DIR) + "/" + relative;
}

boost::json::object ParseObject(const std::string& text) {
    return boost::json::parse(text).as_object();
}

std::string StringOf(const boost::json::value& v) {
    return v.is_string() ? std::string(v.as_string()) : std::string();
}

}  // namespace ldis::test
