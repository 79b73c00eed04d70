#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ldis::engine {

// Levenshtein distance: the number of single-character edits from a to b. Pure.
std::size_t EditDistance(std::string_view a, std::string_view b);

// " (did you mean \"x\"?)" for the nearest choice within two edits, else "". Pure.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& choices);

}  // namespace ldis::engine
