// ldisctl's output: tables, and what an API answer means for the exit code.
#include "ldisctl_output.hpp"

#include <cctype>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace ldis::app::ctl {

std::string FormatTime(std::int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    std::ostringstream out;
    out << std::put_time(&utc, "%Y-%m-%d %H:%M:%SZ");
    return out.str();
}

// Prints what the API said and returns the exit code for it.
int Report(const ldis::app::ApiResponse& r) {
    if (r.status == 0) {
        std::cerr << "ldisctl: no answer from the server: " << r.error << '\n';
        return 6;
    }
    if (r.status >= 300) {
        boost::json::error_code ec;
        const auto v = boost::json::parse(r.body, ec);
        std::string detail = r.body;
        if (!ec && v.is_object() && v.as_object().contains("detail"))
            detail = std::string(v.at("detail").as_string());
        if (!ec && v.is_object() && v.as_object().contains("errors")) {
            std::cerr << "ldisctl: the report was rejected:\n";
            for (const auto& e : v.at("errors").as_array()) {
                std::cerr << "  " << e.at("path").as_string() << ": " << e.at("message").as_string()
                          << '\n';
            }
        } else {
            std::cerr << "ldisctl: HTTP " << r.status << ": " << detail << '\n';
        }
    }
    return ldis::app::ExitCodeFor(r);
}

std::string Str(const boost::json::value& v) {
    if (v.is_string()) return std::string(v.as_string());
    if (v.is_null()) return "";
    return boost::json::serialize(v);
}

void PrintAlerts(const boost::json::array& alerts) {
    std::cout << std::left << std::setw(14) << "REFERENCE" << std::setw(10) << "STATUS"
              << std::setw(7) << "LEVEL" << std::setw(5) << "VER" << std::setw(24) << "FAMILY"
              << std::setw(20) << "DISTRICT"
              << "UPDATED\n";
    for (const auto& a : alerts) {
        std::cout << std::setw(14) << Str(a.at("reference")) << std::setw(10)
                  << (Str(a.at("status")) + (a.at("provisional").as_bool() ? "*" : ""))
                  << std::setw(7) << Str(a.at("level")) << std::setw(5) << Str(a.at("version"))
                  << std::setw(24) << Str(a.at("family")) << std::setw(20) << Str(a.at("district"))
                  << Str(a.at("updated_at")) << '\n';
    }
}

std::string Encode(const std::string& text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
            out.push_back(static_cast<char>(c));
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

}  // namespace ldis::app::ctl
