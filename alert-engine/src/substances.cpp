#include "ldis/engine/substances.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include "ldis/engine/text.hpp"
#include "toml_file.hpp"

namespace ldis::engine {
namespace {

// Lower case letters and digits only: "MDMB-4en-PINACA" and "mdmb 4en pinaca" agree.
std::string Squash(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c)) out.push_back(static_cast<char>(std::tolower(c)));
    }
    return out;
}

// Misspellings allowed for a configured name of this length: none for short street
// names ("H", "ket", "MSJ"), where one wrong letter makes another word.
std::size_t Tolerance(std::size_t length) {
    if (length >= 9) return 2;
    if (length >= 6) return 1;
    return 0;
}

}  // namespace

Substances Substances::LoadFile(const std::string& path) {
    return Parse(detail::ReadTextFile(path, "substances"), path);
}

Substances Substances::Parse(std::string_view toml_text, const std::string& origin) {
    const toml::table root = detail::ParseToml(toml_text, origin);
    const auto where = [&](const toml::node& n) {
        return origin + ":" + std::to_string(n.source().begin.line);
    };
    for (const auto& [key, node] : root) {
        if (key.str() != "families" && key.str() != "street_names") {
            throw std::runtime_error(where(node) + ": unknown section \"" + std::string(key.str()) +
                                     "\" (expected [families.NAME] or [street_names])");
        }
    }
    const auto* families = root["families"].as_table();
    if (families == nullptr || families->empty()) {
        throw std::runtime_error(origin + ":1: no [families.NAME] tables");
    }
    Substances out;
    // toml++ keeps a table's keys sorted; the file's order is the order of danger.
    std::vector<std::pair<std::uint32_t, std::string>> order;
    for (const auto& [id, node] : *families)
        order.emplace_back(node.source().begin.line, std::string(id.str()));
    std::sort(order.begin(), order.end());
    for (const auto& [line, id] : order) {
        const auto& node = *families->get(id);
        const auto* table = node.as_table();
        if (table == nullptr)
            throw std::runtime_error(where(node) + ": families." + id + " must be a table");
        Family f;
        f.id = id;
        for (const auto& [key, value] : *table) {
            const std::string k(key.str());
            if (k == "label") {
                f.label = value.value_or(std::string());
            } else if (k == "high_potency" || k == "adulterant") {
                if (!value.is_boolean())
                    throw std::runtime_error(where(value) + ": " + k + " must be true or false");
                (k == "high_potency" ? f.high_potency : f.adulterant) = value.as_boolean()->get();
            } else if (k == "names" || k == "patterns") {
                const auto* list = value.as_array();
                if (list == nullptr)
                    throw std::runtime_error(where(value) + ": " + k +
                                             " must be a list of strings");
                for (const auto& item : *list) {
                    if (!item.is_string())
                        throw std::runtime_error(where(item) + ": " + k + " must hold strings");
                    (k == "names" ? f.names : f.patterns).push_back(item.as_string()->get());
                }
            } else {
                throw std::runtime_error(
                    where(value) + ": unknown key families." + id + "." + k +
                    " (expected label, high_potency, adulterant, names, patterns)");
            }
        }
        if (f.names.empty())
            throw std::runtime_error(where(node) + ": families." + id + " lists no names");
        if (f.label.empty()) f.label = id;
        out.families_.push_back(std::move(f));
        out.Reindex();
    }
    // A name in two families would make correlation depend on the order of this file.
    for (std::size_t i = 0; i < out.families_.size(); ++i) {
        for (std::size_t j = i + 1; j < out.families_.size(); ++j) {
            for (const auto& a : out.families_[i].names) {
                for (const auto& b : out.families_[j].names) {
                    if (Squash(a) == Squash(b)) {
                        throw std::runtime_error(origin + ": \"" + a + "\" is in both " +
                                                 out.families_[i].id + " and " +
                                                 out.families_[j].id);
                    }
                }
            }
        }
    }
    if (const auto* streets = root["street_names"].as_table()) {
        for (const auto& [street, node] : *streets) {
            const std::string name(street.str());
            if (!node.is_string())
                throw std::runtime_error(where(node) + ": street_names.\"" + name +
                                         "\" must be the name of a product, in quotes");
            const std::string product = node.as_string()->get();
            const std::string known_street = out.KnownName(name);
            const std::string known_product = out.KnownName(product);
            if (known_street.empty() || known_product.empty())
                throw std::runtime_error(where(node) + ": street_names.\"" + name + "\" = \"" +
                                         product + "\": both must be names a family lists (" +
                                         (known_street.empty() ? name : product) + " is not)");
            if (out.FamilyOf(known_street) != out.FamilyOf(known_product))
                throw std::runtime_error(where(node) + ": street_names.\"" + name + "\" = \"" +
                                         product + "\": the two are in different families");
            out.street_names_.emplace_back(known_street, known_product);
        }
    }
    return out;
}

std::string Substances::Product(std::string_view name) const {
    const std::string known = KnownName(name);
    if (known.empty()) return {};
    for (const auto& [street, product] : street_names_) {
        if (street == known) return product;
    }
    return known;
}

bool Substances::IsBoughtByName(std::string_view product) const {
    return std::any_of(street_names_.begin(), street_names_.end(),
                       [&](const auto& entry) { return entry.second == product; });
}

void Substances::Reindex() {
    names_.clear();
    patterns_.clear();
    for (std::size_t f = 0; f < families_.size(); ++f) {
        for (std::size_t n = 0; n < families_[f].names.size(); ++n)
            names_.push_back({Squash(families_[f].names[n]), f, n});
        for (const auto& p : families_[f].patterns) {
            using Kind = IndexedPattern::Kind;
            if (p.size() > 1 && p.front() == '*')
                patterns_.push_back({Squash(p.substr(1)), Kind::kSuffix, f});
            else if (p.size() > 1 && p.back() == '*')
                patterns_.push_back({Squash(p.substr(0, p.size() - 1)), Kind::kPrefix, f});
            else
                patterns_.push_back({Squash(p), Kind::kWhole, f});
        }
    }
}

const Family* Substances::FamilyOf(std::string_view name) const {
    const std::string s = Squash(name);
    if (s.empty()) return nullptr;
    for (const auto& n : names_) {
        if (n.squashed == s) return &families_[n.family];
    }
    using Kind = IndexedPattern::Kind;
    for (const auto& p : patterns_) {
        const bool matches = p.kind == Kind::kWhole
                                 ? s == p.squashed
                                 : s.size() > p.squashed.size() &&
                                       (p.kind == Kind::kSuffix ? s.ends_with(p.squashed)
                                                                : s.starts_with(p.squashed));
        if (matches) return &families_[p.family];
    }
    // Misspellings: the nearest name within its tolerance, most dangerous family first.
    const Family* best = nullptr;
    std::size_t best_distance = 3;
    for (const auto& n : names_) {
        // Cheap bounds first: lengths further apart than the tolerance cannot match.
        const std::size_t tolerance = Tolerance(n.squashed.size());
        const std::size_t gap = s.size() > n.squashed.size() ? s.size() - n.squashed.size()
                                                             : n.squashed.size() - s.size();
        if (gap > tolerance || gap >= best_distance) continue;
        const std::size_t d = EditDistance(s, n.squashed);
        if (d <= tolerance && d < best_distance) {
            best = &families_[n.family];
            best_distance = d;
        }
    }
    return best;
}

std::string Substances::KnownName(std::string_view name) const {
    const std::string s = Squash(name);
    if (s.empty()) return {};
    for (const auto& n : names_) {
        if (n.squashed == s) return families_[n.family].names[n.name];
    }
    return {};
}

const Family* Substances::Find(std::string_view family_id) const {
    for (const auto& f : families_) {
        if (f.id == family_id) return &f;
    }
    return nullptr;
}

const Family* Substances::MoreDangerous(const Family* a, const Family* b) const {
    if (a == nullptr) return b;
    if (b == nullptr) return a;
    return a < b ? a : b;  // families_ is in order of danger
}

}  // namespace ldis::engine
