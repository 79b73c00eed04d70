#include "ldis/engine/text.hpp"

#include <algorithm>
#include <chrono>
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

std::string LevelAction(std::string_view level) {
    if (level == "red")
        return "Act now: warn the people you work with today and have naloxone ready.";
    if (level == "amber") return "Warn the people you work with and watch for these harms.";
    if (level == "green") return "For information: be aware, and report any cases.";
    return "Logged for correlation; no action needed.";
}

std::string Place(std::string_view district, std::string_view authority) {
    if (district.empty() || district == authority) return std::string(authority);
    if (authority.empty()) return std::string(district);
    return std::string(district) + ", " + std::string(authority);
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

std::string HumanDateMs(std::int64_t ms) {
    std::string day = FormatUtc(ms, "%d %B %Y");
    if (day.starts_with('0')) day.erase(0, 1);
    return day;
}

std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Milliseconds since the epoch of an RFC 3339 date-time the schema has accepted, or -1.
std::int64_t ParseTimeMs(std::string_view t) {
    if (t.size() < 19) return -1;
    const auto num = [&](std::size_t at, std::size_t len) {
        std::int64_t n = 0;
        for (std::size_t i = at; i < at + len; ++i) {
            if (t[i] < '0' || t[i] > '9') return std::int64_t{-1};
            n = n * 10 + (t[i] - '0');
        }
        return n;
    };
    const auto year = num(0, 4), month = num(5, 2), day = num(8, 2);
    const auto hour = num(11, 2), minute = num(14, 2), second = num(17, 2);
    if (year < 0 || month < 1 || day < 1 || hour < 0 || minute < 0 || second < 0) return -1;
    std::size_t i = 19;
    std::int64_t millis = 0;
    if (i < t.size() && t[i] == '.') {
        std::int64_t scale = 100;
        for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i, scale /= 10)
            millis += (t[i] - '0') * scale;
    }
    std::int64_t offset_min = 0;
    if (i < t.size() && (t[i] == '+' || t[i] == '-') && i + 6 <= t.size()) {
        offset_min = num(i + 1, 2) * 60 + num(i + 4, 2);
        if (t[i] == '-') offset_min = -offset_min;
    }
    const auto days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    return ((days * 24 + hour) * 60 + minute - offset_min) * 60000 + second * 1000 + millis;
}

std::string EscapeHtml(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                if (static_cast<unsigned char>(c) >= 0x20 || c == '\n' || c == '\t') out += c;
        }
    }
    return out;
}

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace ldis::engine
