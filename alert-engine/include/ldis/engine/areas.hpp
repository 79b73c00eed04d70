#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ldis::engine {

// A prison, custody suite or emergency department named in config/areas.toml.
struct Establishment {
    std::string name;
    std::string kind;  // "prison", "custody" or "hospital"
    std::string district;
    std::vector<std::string> aliases;
};

// The outcome of checking a ward name: the name as configured and, for a former
// ward, the ward of today ("" when the old ward was split).
struct WardMatch {
    std::string name;
    std::string current;
    bool former = false;
    bool verified = true;  // false where the district has no ward list
};

// Kent and Medway geography: authorities, districts, wards and establishments.
// Immutable after loading; thread-safe to read.
class Areas {
public:
    // Parses areas.toml. Throws std::runtime_error "FILE:LINE: problem" on any error.
    static Areas LoadFile(const std::string& path);
    // As LoadFile, from text; `origin` names it in errors.
    static Areas Parse(std::string_view toml_text, const std::string& origin);

    bool HasAuthority(std::string_view authority) const;
    // The authority that a district belongs to, if the district is known.
    std::optional<std::string> AuthorityOf(std::string_view district) const;
    // Checks a ward against the district's list (names compared loosely: case, spacing,
    // apostrophes and "&"/"and" are ignored). nullopt when it is not a ward of that district.
    std::optional<WardMatch> FindWard(std::string_view district, std::string_view ward) const;
    // Finds an establishment by its name or an alias, compared loosely.
    const Establishment* FindEstablishment(std::string_view name) const;
    const std::vector<Establishment>& establishments() const { return establishments_; }
    std::vector<std::string> WardsOf(std::string_view district) const;
    // Every district with its authority, authority by authority, each in the file's order:
    // the one list the pages offer (the form, the history's filters).
    std::vector<std::pair<std::string, std::string>> Districts() const;

private:
    std::map<std::string, std::vector<std::string>> authorities_;       // authority -> districts
    std::map<std::string, std::vector<std::string>> wards_;             // district -> wards
    std::map<std::string, std::map<std::string, std::string>> former_;  // district -> old -> new
    std::vector<Establishment> establishments_;
};

// Lower-cases, folds "&" to "and", drops apostrophes, punctuation and repeated spaces:
// the form in which place names are compared.
std::string FoldName(std::string_view name);

}  // namespace ldis::engine
