#pragma once
// How the insight tables and charts name a controlled value. Private to alert-engine.

#include <algorithm>
#include <cctype>
#include <string>

namespace ldis::engine::detail {

// "synthetic_cannabinoid" as a heading says it, "Synthetic cannabinoid"; "" is "Not known".
inline std::string Named(const std::string& word) {
    if (word.empty()) return "Not known";
    std::string out = word;
    std::replace(out.begin(), out.end(), '_', ' ');
    out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

}  // namespace ldis::engine::detail
