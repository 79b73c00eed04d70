#pragma once
// Reading the engine's TOML files (areas, substances, rules) with errors that name the
// file and line. Private to alert-engine.

#include <toml++/toml.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ldis::engine::detail {

// The whole file; throws std::runtime_error "PATH: cannot open the WHAT file".
inline std::string ReadTextFile(const std::string& path, std::string_view what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open the " + std::string(what) + " file");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Parses TOML; throws std::runtime_error "ORIGIN:LINE: problem".
inline toml::table ParseToml(std::string_view text, const std::string& origin) {
    try {
        return toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
        std::ostringstream out;
        out << origin << ':' << e.source().begin.line << ": " << e.description();
        throw std::runtime_error(out.str());
    }
}

// "ORIGIN:LINE" of a node, for error messages.
inline std::string Where(const std::string& origin, const toml::node& node) {
    return origin + ":" + std::to_string(node.source().begin.line);
}

}  // namespace ldis::engine::detail
