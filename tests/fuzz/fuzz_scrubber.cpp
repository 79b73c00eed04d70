// libFuzzer: the scrubber on any text. It must not crash, and what it returns must not
// still hold a 10-digit NHS number that passes the modulus-11 check.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ldis/engine/scrubber.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 8192) return 0;  // descriptions are at most 4,000 characters
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto once = ldis::engine::Scrub(text);
    // Scrubbing what was scrubbed finds nothing more of the same kind to remove.
    const auto twice = ldis::engine::Scrub(once.text);
    if (twice.counts.nhs_numbers != 0) __builtin_trap();
    return 0;
}
