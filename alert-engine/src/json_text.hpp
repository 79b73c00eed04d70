#pragma once
// Reading the fields of a stored report's JSON. Private to alert-engine.

#include <boost/json.hpp>
#include <string>
#include <string_view>

namespace ldis::engine::detail {

// The string at `key` in `o`, or "" when it is missing or not a string.
inline std::string Text(const boost::json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace ldis::engine::detail
