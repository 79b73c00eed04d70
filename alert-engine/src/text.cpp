#include "ldis/engine/text.hpp"

#include <algorithm>

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

}  // namespace ldis::engine
