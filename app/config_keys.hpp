// The keys ldisd.toml may hold (config_keys.cpp), and reading one: its kind, its default,
// a suggestion for a misspelt one, a secret file. Private to app/.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ldis::app {

enum class Kind { kString, kInt, kBool };
enum class Flag { kNone, kPath, kSecretFile };

struct KeySpec {
    const char* name;  // "section.key"
    Kind kind;
    const char* fallback;
    Flag flag = Flag::kNone;
};

// The key called `name` ("section.key"), or nullptr when ldisd.toml has no such key.
const KeySpec* FindKey(std::string_view name);

// " (did you mean mqtt.uri?)" for a key a few letters from a known one, else "".
std::string Suggest(std::string_view name);

// Whether `key` looks as if it holds a secret itself (password, token...) rather than the
// name of a file that does: such a key is refused and its value never repeated.
bool LooksSecret(std::string_view key);

// "a string", "a whole number", "true or false".
std::string KindName(Kind k);

// A value as read, with where it came from.
struct Setting {
    std::string text;
    std::int64_t number = 0;
    bool flag = false;
    bool from_command_line = false;
};

// Whether a TOML value is of the kind a key wants, and the value as a Setting.
bool Matches(const toml::node& node, Kind kind);
Setting FromNode(const toml::node& node);

// A secret file's contents without its trailing line end; nullopt, with `problem` set,
// when it cannot be read.
std::optional<std::string> ReadSecretFile(const std::string& path, std::string& problem);

}  // namespace ldis::app
