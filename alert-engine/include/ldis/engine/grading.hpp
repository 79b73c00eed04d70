#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/substances.hpp"

namespace ldis::engine {

// Levels in order: none < green < amber < red.
enum class Level { kNone = 0, kGreen = 1, kAmber = 2, kRed = 3 };
std::string_view ToString(Level level);
bool ParseLevel(std::string_view text, Level& out);

// What the rules may test, summed over a signal's reports (a lone report is a signal of
// one). Counts are numbers; flags are 0 or 1; `family` and `evidence` are words.
struct SignalFacts {
    std::map<std::string, long long> numbers;
    std::string family;    // "" when no substance matched a family
    std::string evidence;  // the strongest: anecdotal < professional < corroborated < confirmed
};

// The facts rules.toml may name, with what each means (for --check-config and docs).
const std::map<std::string, std::string>& FactNames();

// Computes the facts of a set of reports (each the JSON text of a validated report).
// Independent sources are distinct source organisations.
SignalFacts FactsOf(const std::vector<std::string>& report_documents, const Substances& substances);

// The facts of two sets of reports together: counts add up; flags, family and evidence
// take the stronger. `sources` adds up too, so the caller must set it from the distinct
// organisations when the two sets may share one.
SignalFacts Merge(const SignalFacts& a, const SignalFacts& b, const Substances& substances);

// Facts as JSON, and back (unknown names are ignored).
std::string FactsToJson(const SignalFacts& facts);
SignalFacts FactsFromJson(std::string_view text);

// One rule that fired, and why.
struct FiredRule {
    std::string id;
    Level level;
    std::string reason;
};

struct Grade {
    Level level = Level::kNone;
    std::string confidence;  // the signal's evidence, raised to corroborated by 2+ sources
    std::vector<FiredRule> fired;
};

// Why a grade is what it is, in the one sentence a partner reads: the reason of the first
// rule of the highest level that fired (config/rules.toml puts the strongest first), and
// the raise for someone under 18 after it when that fired too; "" when no rule fired. The
// other reasons stay on the alert's record. Pure.
std::string StrongestReason(const Grade& grade);

// The rules of config/rules.toml. Immutable after loading; Apply() is thread-safe.
class Rules {
public:
    // Throws std::runtime_error "FILE:LINE: problem" for a file that does not parse, an
    // unknown field, an unknown family, a bad operator or level.
    static Rules LoadFile(const std::string& path, const Substances& substances);
    static Rules Parse(std::string_view toml_text, const std::string& origin,
                       const Substances& substances);

    // The level is the highest any rule grants; harm to anyone under 18 raises it by one.
    Grade Apply(const SignalFacts& facts) const;
    std::size_t size() const { return rules_.size(); }
    // The rules' ids, in the file's order.
    std::vector<std::string> Ids() const {
        std::vector<std::string> out;
        for (const auto& r : rules_) out.push_back(r.id);
        return out;
    }

private:
    struct Condition {
        std::string field;
        std::string op;
        long long number = 0;
        std::string word;
    };
    struct Rule {
        std::string id;
        Level level;
        std::string reason;
        std::vector<Condition> when;
    };
    std::vector<Rule> rules_;
};

}  // namespace ldis::engine
