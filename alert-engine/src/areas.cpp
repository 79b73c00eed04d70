#include "ldis/engine/areas.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include "toml_file.hpp"

namespace ldis::engine {
namespace {

using detail::Where;

[[noreturn]] void Fail(const std::string& where, const std::string& problem) {
    throw std::runtime_error(where + ": " + problem);
}

std::vector<std::string> StringArray(const toml::node& node, const std::string& origin,
                                     const std::string& what) {
    const auto* array = node.as_array();
    if (array == nullptr) Fail(Where(origin, node), what + " must be a list of names");
    std::vector<std::string> out;
    for (const auto& item : *array) {
        const auto* text = item.as_string();
        if (text == nullptr) Fail(Where(origin, item), what + " must contain only names (strings)");
        out.push_back(text->get());
    }
    return out;
}

}  // namespace

std::string FoldName(std::string_view name) {
    std::string out;
    out.reserve(name.size());
    bool space = false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c == '&') {
            if (!out.empty()) out.push_back(' ');
            out += "and";
            space = true;
            continue;
        }
        if (c == '\'' || c == 0xE2) {  // ASCII apostrophe, or the lead byte of U+2019
            if (c == 0xE2 && i + 2 < name.size()) i += 2;
            continue;
        }
        if (std::isalnum(c) != 0 || c >= 0x80) {
            if (space && !out.empty()) out.push_back(' ');
            space = false;
            out.push_back(static_cast<char>(std::tolower(c)));
        } else {
            space = true;
        }
    }
    return out;
}

Areas Areas::LoadFile(const std::string& path) {
    return Parse(detail::ReadTextFile(path, "areas"), path);
}

Areas Areas::Parse(std::string_view toml_text, const std::string& origin) {
    const toml::table root = detail::ParseToml(toml_text, origin);
    Areas areas;
    for (const auto& [key, node] : root) {
        const std::string section(key.str());
        if (section != "authorities" && section != "wards" && section != "former_wards" &&
            section != "establishments") {
            Fail(Where(origin, node),
                 "unknown section \"" + section +
                     "\" (expected authorities, wards, former_wards, establishments)");
        }
    }
    const auto* authorities = root["authorities"].as_table();
    if (authorities == nullptr || authorities->empty()) {
        Fail(origin + ":1", "no [authorities] table: list each authority with its districts");
    }
    for (const auto& [authority, districts] : *authorities) {
        areas.authorities_[std::string(authority.str())] =
            StringArray(districts, origin, "authorities." + std::string(authority.str()));
    }
    if (const auto* wards = root["wards"].as_table()) {
        for (const auto& [district, list] : *wards) {
            const std::string name(district.str());
            if (!areas.AuthorityOf(name)) {
                Fail(Where(origin, list),
                     "wards given for \"" + name + "\", which is not a district of any authority");
            }
            areas.wards_[name] = StringArray(list, origin, "wards." + name);
        }
    }
    if (const auto* former = root["former_wards"].as_table()) {
        for (const auto& [district, table_node] : *former) {
            const std::string name(district.str());
            const auto* table = table_node.as_table();
            if (table == nullptr)
                Fail(Where(origin, table_node), "former_wards." + name + " must be a table");
            const auto& current = areas.wards_[name];
            for (const auto& [old_name, now] : *table) {
                const auto* now_text = now.as_string();
                if (now_text == nullptr)
                    Fail(Where(origin, now), "a former ward maps to a ward name or \"\"");
                const std::string target = now_text->get();
                if (!target.empty() &&
                    std::find(current.begin(), current.end(), target) == current.end()) {
                    Fail(Where(origin, now), "former ward \"" + std::string(old_name.str()) +
                                                 "\" maps to \"" + target +
                                                 "\", which is not a ward of " + name);
                }
                areas.former_[name][std::string(old_name.str())] = target;
            }
        }
    }
    if (const auto* list = root["establishments"].as_array()) {
        for (const auto& node : *list) {
            const auto* table = node.as_table();
            if (table == nullptr)
                Fail(Where(origin, node), "each [[establishments]] entry must be a table");
            Establishment e;
            e.name = (*table)["name"].value_or(std::string());
            e.kind = (*table)["kind"].value_or(std::string());
            e.district = (*table)["district"].value_or(std::string());
            if (e.name.empty()) Fail(Where(origin, node), "an establishment has no name");
            if (e.kind != "prison" && e.kind != "custody" && e.kind != "hospital") {
                Fail(Where(origin, node), "establishment \"" + e.name + "\" has kind \"" + e.kind +
                                              "\" (expected prison, custody or hospital)");
            }
            if (!areas.AuthorityOf(e.district)) {
                Fail(Where(origin, node), "establishment \"" + e.name +
                                              "\" names unknown district \"" + e.district + "\"");
            }
            if (const auto* aliases = (*table)["aliases"].node()) {
                e.aliases = StringArray(*aliases, origin, "aliases of " + e.name);
            }
            areas.establishments_.push_back(std::move(e));
        }
    }
    return areas;
}

bool Areas::HasAuthority(std::string_view authority) const {
    return authorities_.count(std::string(authority)) != 0;
}

std::optional<std::string> Areas::AuthorityOf(std::string_view district) const {
    for (const auto& [authority, districts] : authorities_) {
        if (std::find(districts.begin(), districts.end(), district) != districts.end())
            return authority;
    }
    return std::nullopt;
}

std::optional<WardMatch> Areas::FindWard(std::string_view district, std::string_view ward) const {
    const auto list = wards_.find(std::string(district));
    if (list == wards_.end()) {
        return WardMatch{std::string(ward), std::string(ward), false, false};
    }
    const std::string folded = FoldName(ward);
    for (const auto& name : list->second) {
        if (FoldName(name) == folded) return WardMatch{name, name, false, true};
    }
    if (const auto former = former_.find(std::string(district)); former != former_.end()) {
        for (const auto& [old_name, now] : former->second) {
            if (FoldName(old_name) == folded) return WardMatch{old_name, now, true, true};
        }
    }
    return std::nullopt;
}

const Establishment* Areas::FindEstablishment(std::string_view name) const {
    const std::string folded = FoldName(name);
    for (const auto& e : establishments_) {
        if (FoldName(e.name) == folded) return &e;
        for (const auto& alias : e.aliases) {
            if (FoldName(alias) == folded) return &e;
        }
    }
    return nullptr;
}

std::vector<std::pair<std::string, std::string>> Areas::Districts() const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [authority, districts] : authorities_)
        for (const auto& district : districts) out.emplace_back(authority, district);
    return out;
}

std::vector<std::string> Areas::WardsOf(std::string_view district) const {
    const auto it = wards_.find(std::string(district));
    return it == wards_.end() ? std::vector<std::string>{} : it->second;
}

}  // namespace ldis::engine
