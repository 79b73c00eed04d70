#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ldis::engine {

// One substance family of config/substances.toml.
struct Family {
    std::string id;     // "nitazene"
    std::string label;  // "nitazenes (high-potency synthetic opioids)"
    bool high_potency = false;
    bool adulterant = false;
    std::vector<std::string> names;
    std::vector<std::string> patterns;  // "*nitazene": ends with; "mdmb*": starts with
};

// Maps substance names to families, coping with case, spacing, punctuation and small
// misspellings of the configured names. Immutable after loading; thread-safe to read.
class Substances {
public:
    // Throws std::runtime_error "FILE:LINE: problem".
    static Substances LoadFile(const std::string& path);
    static Substances Parse(std::string_view toml_text, const std::string& origin);

    // The family of one name, or nullptr when none matches.
    const Family* FamilyOf(std::string_view name) const;
    // The configured spelling of a name this file lists (ignoring case, spaces and
    // punctuation; no misspellings), or "" when it lists none: what an automatic alert
    // may say of a name a reporter typed.
    std::string KnownName(std::string_view name) const;
    const Family* Find(std::string_view family_id) const;
    // The product a name stands for, as [street_names] maps it ("blues" -> "diazepam"), or
    // the name's own configured spelling; "" for a name this file does not list.
    std::string Product(std::string_view name) const;
    // True for a product some street name stands for (diazepam, heroin, MDMA): what people
    // believe they are buying, so a lab finding of something else is a mis-sold product.
    bool IsBoughtByName(std::string_view product) const;
    // Families in order of danger, most dangerous first.
    const std::vector<Family>& families() const { return families_; }
    // The more dangerous of two families (either may be nullptr).
    const Family* MoreDangerous(const Family* a, const Family* b) const;

private:
    // The names and patterns squashed once, when loaded (not at every lookup: FamilyOf runs
    // for every substance of every report), in the order of danger and of the file.
    void Reindex();
    struct IndexedName {
        std::string squashed;
        std::size_t family;
        std::size_t name;  // in families_[family].names
    };
    struct IndexedPattern {
        std::string squashed;                               // without its '*'
        enum class Kind { kSuffix, kPrefix, kWhole } kind;  // "*tail", "head*", or neither
        std::size_t family;
    };

    std::vector<Family> families_;
    std::vector<std::pair<std::string, std::string>> street_names_;  // configured spellings
    std::vector<IndexedName> names_;
    std::vector<IndexedPattern> patterns_;
};

}  // namespace ldis::engine
