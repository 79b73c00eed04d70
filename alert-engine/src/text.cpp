#include "ldis/engine/text.hpp"

#include <algorithm>
#include <ctime>

namespace ldis::engine {

std::size_t EditDistance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            cur[j] = std::min(
                {prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& choices) {
    std::string best;
    std::size_t best_distance = 3;
    for (const auto& c : choices) {
        const auto d = EditDistance(word, c);
        if (d < best_distance) {
            best = c;
            best_distance = d;
        }
    }
    return best.empty() ? std::string() : " (did you mean \"" + best + "\"?)";
}

std::string LevelLabel(std::string_view level) {
    if (level == "red") return "Drug Alert";
    if (level == "amber") return "Drug Warning";
    if (level == "green") return "Drug Information";
    return "Logged";
}

namespace {

std::string FormatUtc(std::int64_t ms, const char* format) {
    if (ms <= 0) return {};
    const std::time_t s = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char out[40];
    std::strftime(out, sizeof out, format, &tm);
    return out;
}

}  // namespace

std::string IsoTimeMs(std::int64_t ms) {
    return FormatUtc(ms, "%Y-%m-%dT%H:%M:%S+00:00");
}

std::string HumanTimeMs(std::int64_t ms) {
    return FormatUtc(ms, "%d %b %Y %H:%M UTC");
}

std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace ldis::engine
