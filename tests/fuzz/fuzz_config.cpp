// libFuzzer: any bytes as each of the TOML files ldisd loads (substances, rules, areas,
// partners). Each must load or throw std::runtime_error naming the problem.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "ldis/engine/areas.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/partners.hpp"
#include "ldis/engine/substances.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    static const auto substances =
        ldis::engine::Substances::LoadFile(LDIS_SOURCE_DIR "/config/substances.toml");
    static const auto areas = ldis::engine::Areas::LoadFile(LDIS_SOURCE_DIR "/config/areas.toml");
    try {
        ldis::engine::Substances::Parse(text, "substances.toml");
    } catch (const std::runtime_error&) {
    }
    try {
        const auto rules = ldis::engine::Rules::Parse(text, "rules.toml", substances);
        rules.Apply(ldis::engine::SignalFacts{});
    } catch (const std::runtime_error&) {
    }
    try {
        ldis::engine::Areas::Parse(text, "areas.toml");
    } catch (const std::runtime_error&) {
    }
    try {
        ldis::engine::Partners::Parse(text, "partners.toml", "/nonexistent", &areas);
    } catch (const std::runtime_error&) {
    }
    return 0;
}
