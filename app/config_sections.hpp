// The sections of ldisd.toml read in a file of their own: [[feeds]] and [federation]
// (config_sections.cpp). Private to app/.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config.hpp"

namespace ldis::app {

// `value` resolved against the config file's folder when it is relative ("" stays "").
std::string Absolute(const std::filesystem::path& base, const std::string& value);

// [[feeds]] (issue 16 §3): the feeds LDIS expects to hear from, each at least once in its
// longest normal silence. Each problem is added to `errors` with its line.
void ReadFeeds(const toml::node& node, const std::string& path,
               std::vector<engine::FeedSpec>& feeds, std::vector<ConfigError>& errors);

// [federation] (issue 16 §1): instance, key_file, offer, [federation.policy] and
// [[federation.peers]], into `c`. Paths resolve against the config file's folder.
void ReadFederation(const toml::node& node, const std::string& path,
                    const std::filesystem::path& base, Config& c, std::vector<ConfigError>& errors);

}  // namespace ldis::app
