#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ldis::engine {

// Levenshtein distance: the number of single-character edits from a to b. Pure.
std::size_t EditDistance(std::string_view a, std::string_view b);

// " (did you mean \"x\"?)" for the nearest choice within two edits, else "". Pure.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& choices);

// "Drug Alert", "Drug Warning", "Drug Information" for red, amber, green; else "Logged".
// Pure.
std::string LevelLabel(std::string_view level);

// The one-line action of a level, the first thing a partner reads after the banner: red
// "Act now: ...", amber "Warn the people ...", green "For information: ...". Pure.
std::string LevelAction(std::string_view level);

// Where, said once: "Medway" when the district is the council itself (a unitary
// authority), else "Dartford, Kent"; whichever is given when the other is empty. Pure.
std::string Place(std::string_view district, std::string_view authority);

// Text made safe inside HTML, SVG or XML: & < > " ' escaped, control characters (which
// XML 1.0 has no place for) dropped, line breaks and tabs kept. Pure.
std::string EscapeHtml(std::string_view text);

// Milliseconds since the epoch as "2026-11-23T09:30:00+00:00"; "" for 0 or less. Pure.
std::string IsoTimeMs(std::int64_t ms);
// The same as "23 Nov 2026 09:30 UTC", for people; "" for 0 or less. Pure.
std::string HumanTimeMs(std::int64_t ms);
// The day alone, "23 November 2026"; "" for 0 or less. Pure.
std::string HumanDateMs(std::int64_t ms);

// Milliseconds since the epoch of an RFC 3339 date-time the report schema has accepted
// ("2026-11-23T09:30:00Z", "...+01:00", with or without fractions), or -1. Pure.
std::int64_t ParseTimeMs(std::string_view t);

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). Pure.
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d);

// The wall clock, in milliseconds since the epoch: what every stored time is counted in.
std::int64_t NowMs();

}  // namespace ldis::engine
