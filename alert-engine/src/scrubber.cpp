#include "ldis/engine/scrubber.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <cctype>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

namespace ldis::engine {

// config/names/forenames.txt, compiled in (alert-engine/CMakeLists.txt).
extern const char* const kForenamesText;

namespace {

// One rule: an RE2 pattern (linear time: no backtracking, so no input can make a scrub
// slow) and what stands in place of each match, or nullopt to leave that match alone.
// RE2 has no look-around: what a rule must not be followed or preceded by is checked in
// `replace`, which sees the text around the match.
// A match and its capturing groups; [0] is the whole match.
using Groups = std::span<const std::string_view>;

struct Rule {
    std::string source;  // the pattern's text, for the set that finds which rules apply
    std::unique_ptr<RE2> pattern;
    // What stands for a match (appended to `out`), or false to leave it alone; null for a
    // rule whose every match becomes `fixed`.
    using Replace = bool (*)(Groups groups, std::string_view before, std::string_view after,
                             std::string& out);
    Replace replace = nullptr;
    std::string fixed;
    int ScrubCounts::*counter;
    // A rule whose replacement does not depend on its groups asks RE2 for the whole match
    // only: finding submatches costs more than finding the match.
    bool needs_groups = true;
};

// The digits of a match, in order, kept on the stack: the rules that read them (NHS
// numbers, phones, dates) run on most matches, and the scrubber runs on every report.
// Matches are short (a phone number's pattern holds at most 27 digits); digits beyond the
// buffer are counted but not kept, so a number that long is never mistaken for a short one.
class Digits {
public:
    explicit Digits(std::string_view s) {
        for (const char c : s) {
            if (c < '0' || c > '9') continue;
            if (size_ < kCapacity) digits_[size_] = c;
            ++size_;
        }
    }
    std::string_view view() const { return {digits_.data(), std::min(size_, kCapacity)}; }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

private:
    static constexpr std::size_t kCapacity = 32;
    std::array<char, kCapacity> digits_{};
    std::size_t size_ = 0;
};

bool HasDigit(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The number the digits `s` spell (at most nine of them).
int Number(std::string_view s) {
    int n = 0;
    for (const char c : s) n = n * 10 + (c - '0');
    return n;
}

std::string Lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

const std::unordered_set<std::string>& Forenames() {
    static const std::unordered_set<std::string> names = [] {
        std::unordered_set<std::string> out;
        std::string_view text(kForenamesText);
        while (!text.empty()) {
            const auto end = text.find('\n');
            std::string_view line = text.substr(0, end);
            text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
            while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
                line.remove_suffix(1);
            if (!line.empty() && line[0] != '#') out.insert(Lower(line));
        }
        return out;
    }();
    return names;
}

// Appends each part to `out`; true, for a rule's last line.
template <typename... Parts>
bool Put(std::string& out, const Parts&... parts) {
    (out.append(std::string_view(parts)), ...);
    return true;
}

// Up to this many rules (ScrubRules() checks).
constexpr std::size_t kMaxRules = 32;

// Up to this many groups, so a search keeps its submatches on the stack.
constexpr int kMaxGroups = 4;

bool IsWordChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// Runs one rule over `text`, in place. Nothing is copied or allocated unless the rule
// replaces something: most rules the set picks find a match and leave it alone (a ten-digit
// number that fails the NHS check, a recent date), and the scrubber runs on every report.
//
// A replacement whose bracket ("[... removed]") lands next to a letter or digit makes a
// word boundary, or a character before a number, that was not there, and a rule may now
// match where it could not ("1988Born 2/9/20", "0770090078NHS no: 943..."). This rule then
// goes on searching the text as replaced, and the function returns true so that the rules
// before it look again (Scrub).
bool ApplyRule(std::string& text, const Rule& rule, ScrubCounts& counts) {
    const RE2& re = *rule.pattern;
    const int n = rule.needs_groups ? re.NumberOfCapturingGroups() + 1 : 1;
    std::array<re2::StringPiece, kMaxGroups + 1> pieces;
    std::array<std::string_view, kMaxGroups + 1> groups;
    // Kept per thread, so that their capacity is reused from one rule and report to the next.
    thread_local std::string out;  // text[0, last) with this rule's replacements, once it makes one
    thread_local std::string piece;  // what stands for the current match, if anything
    out.clear();
    bool replaced = false;  // out holds something
    bool new_boundary = false;
    std::size_t last = 0;  // copied up to here
    std::size_t at = 0;    // search from here
    while (at <= text.size() &&
           re.Match(re2::StringPiece(text), at, text.size(), RE2::UNANCHORED, pieces.data(), n)) {
        const std::string_view all(text);
        const std::size_t begin = static_cast<std::size_t>(pieces[0].data() - text.data());
        const std::size_t length = pieces[0].size();
        for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
            groups[i] = pieces[i].data() == nullptr
                            ? std::string_view()
                            : std::string_view(pieces[i].data(), pieces[i].size());
        piece.clear();
        if (rule.replace == nullptr) {
            piece = rule.fixed;
        } else if (!rule.replace(std::span(groups.data(), static_cast<std::size_t>(n)),
                                 all.substr(0, begin), all.substr(begin + length), piece)) {
            // A match left alone may hide one that starts inside it ("Kent Police Sarah
            // Jones", "22/11/202 9434765919"): look again from the space before its next
            // word, not from its end, so a rule that needs the character before a number
            // (the NHS rule) still sees it.
            const auto space = all.substr(begin, length).find(' ');
            at = begin + (space == std::string_view::npos || space == 0 ? 1 : space);
            continue;
        }
        ++(counts.*rule.counter);
        if (!replaced) out.reserve(text.size() + 32);
        replaced = true;
        out.append(all.substr(last, begin - last));
        out += piece;
        last = begin + length;
        at = begin + std::max<std::size_t>(length, 1);
        const bool glued = (begin > 0 && IsWordChar(text[begin - 1]) && piece.starts_with('[')) ||
                           (last < text.size() && IsWordChar(text[last]) && piece.ends_with(']'));
        if (glued) {
            // Search on in the text as replaced, from the end of the replacement.
            new_boundary = true;
            at = out.size();
            out.append(all.substr(last));
            text.swap(out);
            out.clear();
            last = 0;
            replaced = false;
        }
    }
    if (replaced) {
        out.append(std::string_view(text).substr(last));
        text.swap(out);  // out keeps the old text's buffer for the next rule
    }
    return new_boundary;
}

Rule Make(const std::string& pattern, Rule::Replace replace, int ScrubCounts::*counter) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(8 << 20);
    auto re = std::make_unique<RE2>(pattern, options);
    if (!re->ok()) throw std::logic_error("scrubber pattern: " + re->error() + ": " + pattern);
    if (re->NumberOfCapturingGroups() > kMaxGroups)
        throw std::logic_error("scrubber pattern: more than " + std::to_string(kMaxGroups) +
                               " groups: " + pattern);
    Rule rule{pattern, std::move(re), replace, {}, counter, true};
    return rule;
}

// A rule that reads only the whole match, groups[0]: RE2 then finds the match's bounds
// only, which costs about half a search for its groups too. The rules that match most
// often (numbers, dates, postcodes) are written this way.
Rule WholeMatch(const std::string& pattern, Rule::Replace replace, int ScrubCounts::*counter) {
    Rule rule = Make(pattern, replace, counter);
    rule.needs_groups = false;
    return rule;
}

// A rule whose every match becomes the same text.
Rule Fixed(const std::string& pattern, std::string replacement, int ScrubCounts::*counter) {
    Rule rule = WholeMatch(pattern, nullptr, counter);
    rule.fixed = std::move(replacement);
    return rule;
}

// Capitalised words of a person's name: "O'Connor", "Fairweather-Hughes", "D'Souza".
// One or more lower-case letters always follow the capital: "B wing" is not a name.
constexpr const char* kNameWord =
    R"((?:[A-Z][a-z]+(?:[A-Z][a-z]+)?|[A-Z]['’][A-Z][a-z]+)(?:['’][a-z]+)?(?:-[A-Z][a-z'’]+)?)";
// The label that starts a labelled date of birth ("DOB", "d.o.b", "D O B", "date of
// birth", "born", "born on"): the label stays and the date goes. Read by hand rather than as
// a group, so the rule's search finds the match only (see WholeMatch).
std::string_view BirthLabel(std::string_view match) {
    const auto starts = [&](std::string_view word) {
        return match.size() >= word.size() &&
               std::equal(word.begin(), word.end(), match.begin(), [](char a, char b) {
                   return a == std::tolower(static_cast<unsigned char>(b));
               });
    };
    if (starts("date of birth")) return match.substr(0, 13);
    if (starts("born on")) return match.substr(0, 7);
    if (starts("born")) return match.substr(0, 4);
    // d, an optional dot and space, o, an optional dot and space, b, an optional dot.
    std::size_t i = 0;
    for (const char letter : {'d', 'o', 'b'}) {
        if (i < match.size() && std::tolower(static_cast<unsigned char>(match[i])) == letter) ++i;
        if (letter == 'b') {
            if (i < match.size() && match[i] == '.') ++i;
            break;
        }
        if (i < match.size() && match[i] == '.') ++i;
        if (i < match.size() && std::isspace(static_cast<unsigned char>(match[i]))) ++i;
    }
    return match.substr(0, i);
}

// Months, for dates written in words.
constexpr const char* kMonth =
    R"((?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?))";

// A date with a year, in any common written form: 12/03/1988, 30.11.85, 1995-07-21,
// 3rd March 1990, 14 Feb 2001, March 3, 1990.
std::string DatePattern() {
    const std::string day = R"(\d{1,2}(?:st|nd|rd|th)?)";
    return R"((?:\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{2}-\d{2}|)" + day +
           R"([\s\-]+(?:of\s+)?)" + std::string(kMonth) + R"([\s,\-]+\d{2,4}|)" +
           std::string(kMonth) + R"(\s+)" + day + R"(,?\s+\d{4}))";
}

const std::vector<Rule>& ScrubRules() {
    static const std::vector<Rule> rules = [] {
        std::vector<Rule> r;
        // Email addresses first: they may hold digits that look like other things.
        r.push_back(Fixed(R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})",
                          "[email removed]", &ScrubCounts::emails));
        // Social media handles: "@kentboy99", "snap: lil_daz", "insta @x".
        r.push_back(Make(
            R"((?i:\b(?:snap(?:chat)?|insta(?:gram)?|tiktok|facebook|fb|twitter|telegram|whatsapp)\s*(?:[:\-]|is|name)?\s*)@?[A-Za-z0-9_.]{2,30}|(?:^|[\s(])@[A-Za-z0-9_]{2,30})",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                const bool space =
                    !g[0].empty() &&
                    (std::isspace(static_cast<unsigned char>(g[0][0])) != 0 || g[0][0] == '(');
                return Put(out, g[0].substr(0, space ? 1 : 0), "[handle removed]");
            },
            &ScrubCounts::handles));
        // Dates of birth named as such, in any common form.
        r.push_back(WholeMatch(
            R"((?i:\b(?:d\.?\s?o\.?\s?b\.?|date of birth|born(?: on)?)(?:\s*(?:is|was|[:\-]))?\s*))" +
                DatePattern(),
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                return Put(out, BirthLabel(g[0]), " [date of birth removed]");
            },
            &ScrubCounts::dates_of_birth));
        // NHS numbers: ten digits, optionally 3-3-4 with spaces or hyphens, passing modulus 11.
        r.push_back(
            WholeMatch(R"((?:^|[^\d+])\d{3}[ \-]?\d{3}[ \-]?\d{4})",
                       [](Groups g, std::string_view, std::string_view after, std::string& out) {
                           if (!after.empty() && std::isdigit(static_cast<unsigned char>(after[0])))
                               return false;
                           if (const Digits d(g[0]); d.size() != 10 || !IsValidNhsNumber(d.view()))
                               return false;
                           // The character before the number, when the match starts with one,
                           // stays.
                           const bool lead = !std::isdigit(static_cast<unsigned char>(g[0][0]));
                           return Put(out, g[0].substr(0, lead ? 1 : 0), "[NHS number removed]");
                       },
                       &ScrubCounts::nhs_numbers));
        // Ten digits named as an NHS number go whatever their check digit: a mistyped
        // number still points at someone.
        r.push_back(Make(
            R"((?i:\b(nhs\s*(?:number|no\.?|#)?\s*(?:is|[:#])?\s*))\d{3}[ \-]?\d{3}[ \-]?\d{4}\b)",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                return Put(out, g[1], "[NHS number removed]");
            },
            &ScrubCounts::nhs_numbers));
        // National Insurance numbers: QQ 12 34 56 C.
        r.push_back(Fixed(
            // (QQ is HMRC's own example prefix: people copy it into forms.)
            R"((?i)\b[A-CEGHJ-TW-Z][A-CEGHJ-NP-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b)",
            "[NI number removed]", &ScrubCounts::ni_numbers));
        // Phone numbers: UK (+44 or 0, then 9 or 10 digits in groups) and international.
        r.push_back(WholeMatch(
            R"((?:\+\s?\d{1,3}\s?(?:\(0\)\s?)?|\(?\b0)\d{1,5}\)?(?:[\s\-]?\d{2,4}){1,4}\b)",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                const Digits digits(g[0]);
                const std::string_view d = digits.view();
                const bool international = g[0][0] == '+';
                if (international && !d.starts_with("44"))
                    return digits.size() >= 8 && digits.size() <= 15 &&
                           Put(out, "[phone number removed]");
                // +44 (0)7700 ... is 07700 ...: the national number is what follows 44 (and
                // its optional 0), with a 0 in front.
                std::size_t national = digits.size();
                if (d.starts_with("44"))
                    national = digits.size() - (d.size() > 2 && d[2] == '0' ? 3 : 2) + 1;
                if (national != 10 && national != 11) return false;
                return Put(out, "[phone number removed]");
            },
            &ScrubCounts::phone_numbers));
        // Full dates before 2010, in any written form, with or without a label: almost
        // always a date of birth in a drug report, and an observation date is never that
        // old. Recent dates are the incident's own and stay.
        r.push_back(WholeMatch(
            R"(\b)" + DatePattern() + R"(\b)",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                const Digits digits(g[0]);
                const std::string_view d = digits.view();
                if (d.size() < 4 || digits.size() > d.size()) return false;
                const std::string_view text = g[0];
                int year = 0;
                if (text.size() >= 10 && std::isdigit(static_cast<unsigned char>(text[0])) &&
                    text[4] == '-') {
                    year = Number(text.substr(0, 4));  // 1995-07-21
                } else if (const auto last = text.find_last_not_of("0123456789");
                           last != std::string_view::npos && text.size() - last - 1 == 4) {
                    year = Number(d.substr(d.size() - 4));
                } else {
                    const int yy = Number(d.substr(d.size() - 2));  // 30.11.85
                    year = yy > 30 ? 1900 + yy : 2000 + yy;
                }
                if (year >= 2010) return false;
                return Put(out, "[date of birth removed]");
            },
            &ScrubCounts::dates_of_birth));
        // Hospital numbers and MRNs, PNC ids, named as such or in the PNC shape.
        r.push_back(Make(
            R"((?i:\b(hospital\s+(?:number|no\.?|id)|mrn|patient\s+(?:number|no\.?|id)|unit\s+(?:number|no\.?)|pas\s+(?:number|no\.?)|pnc(?:\s+(?:id|number|no\.?))?)\s*[:#]?\s*)([A-Za-z0-9][A-Za-z0-9/\-]{3,15}))",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                if (!HasDigit(g[2])) return false;
                return Put(out, g[1], " [number removed]");
            },
            &ScrubCounts::hospital_numbers));
        r.push_back(
            Fixed(R"(\b\d{2}/\d{5,7}[A-Z]\b)", "[PNC id removed]", &ScrubCounts::hospital_numbers));
        // Full UK postcodes: the outward code (postcode district) stays.
        r.push_back(WholeMatch(
            R"((?i)\b[A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][ABD-HJLNP-UW-Z]{2}\b)",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                // The inward code is the last three characters.
                std::string outward(g[0].substr(0, g[0].size() - 3));
                while (!outward.empty() && std::isspace(static_cast<unsigned char>(outward.back())))
                    outward.pop_back();
                for (auto& c : outward)
                    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                return Put(out, outward);
            },
            &ScrubCounts::postcodes));
        // Prison numbers: one letter, four digits, two letters (A1234BC).
        r.push_back(Fixed(R"((?i)\b[A-Z][0-9]{4}[A-Z]{2}\b)", "[prison number removed]",
                          &ScrubCounts::prison_numbers));
        // Custody record numbers, named as such.
        r.push_back(Make(
            R"((?i:\b(custody\s+(?:record|ref(?:erence)?|number|no\.?)(?:\s+(?:number|no\.?))?\s*[:#]?\s*))([A-Za-z0-9][A-Za-z0-9/\-]{3,}))",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                if (!HasDigit(g[2])) return false;
                return Put(out, g[1], "[custody number removed]");
            },
            &ScrubCounts::custody_numbers));
        // Vehicle registrations: current (AB12 CDE) and prefix (A123 BCD) formats.
        r.push_back(
            WholeMatch(R"(\b(?:[A-Za-z]{2}[0-9]{2} ?[A-Za-z]{3}|[A-Z][0-9]{1,3} ?[A-Z]{3})\b)",
                       [](Groups g, std::string_view, std::string_view, std::string& out) {
                           // "at14 abc" is rare; "ME14 5AB" is a postcode, gone already.
                           const std::string_view v = g[0];
                           const bool upper = std::none_of(v.begin(), v.end(), [](char c) {
                               return std::islower(static_cast<unsigned char>(c));
                           });
                           if (!upper && v.find(' ') == std::string_view::npos) return false;
                           return Put(out, "[registration removed]");
                       },
                       &ScrubCounts::vehicles));
        // Street addresses: a flat, a house number, then capitalised words and a street
        // word ("Flat 2, 12 Elm Road", "4 Oak Close", "110a Rochester Way").
        r.push_back(Fixed(
            std::string(
                R"((?i:\b(?:flat|apartment|apt|room|unit)\s*\d+[a-z]?,?\s*)?\b\d{1,4}[a-zA-Z]?,?\s+(?:)") +
                kNameWord +
                R"(\s+){1,3}(?i:road|rd|street|st|avenue|ave|close|lane|ln|drive|dr|way|crescent|cres|court|ct|place|pl|gardens|gdns|terrace|hill|parade|walk|square|sq|grove|rise|mews|row|park|green|view|approach|vale|wharf|yard|gate|estate|heights)\b)",
            "[address removed]", &ScrubCounts::addresses));
        r.push_back(Fixed(R"((?i:\b(?:flat|apartment|apt)\s*\d+[a-z]?\b))", "[address removed]",
                          &ScrubCounts::addresses));
        // People's names after a title or a word that introduces one.
        r.push_back(Make(
            std::string(R"(\b((?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Lady|Lord)\.?\s+))") +
                kNameWord + R"((?:\s+)" + kNameWord + R"()?)",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                return Put(out, g[1], "[name removed]");
            },
            &ScrubCounts::names));
        r.push_back(Make(
            std::string(
                R"(\b((?i:name(?:d| is)?|patient|found on|home of|friend|partner|girlfriend|boyfriend|husband|wife|brother|sister|son|daughter|mother|father|mum|dad|cousin|uncle|aunt|known as|aka|called|brought in by|sold by|dealer|supplier)\s*[:,]?\s+))") +
                kNameWord + R"((?:\s+)" + kNameWord + R"(){0,2})",
            [](Groups g, std::string_view, std::string_view, std::string& out) {
                return Put(out, g[1], "[name removed]");
            },
            &ScrubCounts::names));
        // A known forename and capitalised words after it: "Sarah Jones", "Mei Ling Chen".
        // The forenames are one alternation in the pattern itself, so the DFA finds them
        // in one pass instead of stopping at every capitalised word to look one up.
        std::string forenames;
        for (const auto& name : Forenames()) {
            if (name.empty() || !std::all_of(name.begin(), name.end(),
                                             [](unsigned char c) { return std::isalpha(c) != 0; }))
                continue;
            std::string capitalised = name;
            capitalised[0] =
                static_cast<char>(std::toupper(static_cast<unsigned char>(capitalised[0])));
            forenames += (forenames.empty() ? "" : "|") + capitalised;
        }
        r.push_back(
            Fixed(std::string(R"(\b(?:)") + forenames + R"()(?:\s+)" + kNameWord + R"(){1,2}\b)",
                  "[name removed]", &ScrubCounts::names));
        // An age next to a name that was removed: "[name removed], 34," or "aged 34".
        r.push_back(Make(R"((\[name removed\],?\s*)(?i:aged\s*)?\d{1,3}\b)",
                         [](Groups g, std::string_view, std::string_view, std::string& out) {
                             return Put(out, g[1], "[age removed]");
                         },
                         &ScrubCounts::ages));
        if (r.size() > kMaxRules) throw std::logic_error("scrubber: more than kMaxRules rules");
        return r;
    }();
    return rules;
}

}  // namespace

ScrubCounts& ScrubCounts::operator+=(const ScrubCounts& o) {
    nhs_numbers += o.nhs_numbers;
    dates_of_birth += o.dates_of_birth;
    postcodes += o.postcodes;
    phone_numbers += o.phone_numbers;
    emails += o.emails;
    prison_numbers += o.prison_numbers;
    custody_numbers += o.custody_numbers;
    names += o.names;
    addresses += o.addresses;
    vehicles += o.vehicles;
    ni_numbers += o.ni_numbers;
    hospital_numbers += o.hospital_numbers;
    handles += o.handles;
    ages += o.ages;
    return *this;
}

bool IsValidNhsNumber(std::string_view d) {
    if (d.size() != 10) return false;
    int sum = 0;
    for (std::size_t i = 0; i < 9; ++i) {
        if (!std::isdigit(static_cast<unsigned char>(d[i]))) return false;
        sum += (d[i] - '0') * static_cast<int>(10 - i);
    }
    if (!std::isdigit(static_cast<unsigned char>(d[9]))) return false;
    int check = 11 - (sum % 11);
    if (check == 11) check = 0;
    if (check == 10) return false;
    return check == d[9] - '0';
}

// Every rule's pattern in one RE2::Set: one pass over the text says which rules can match
// at all, and only those run (most texts hold two or three kinds of thing, or none).
const RE2::Set& AnyRule() {
    static const RE2::Set set = [] {
        RE2::Options options;
        options.set_log_errors(false);
        options.set_max_mem(64 << 20);
        RE2::Set s(options, RE2::UNANCHORED);
        for (const auto& rule : ScrubRules()) {
            std::string error;
            if (s.Add(rule.source, &error) < 0) throw std::logic_error("scrubber set: " + error);
        }
        if (!s.Compile()) throw std::logic_error("scrubber set: out of memory");
        return s;
    }();
    return set;
}

// The rules the set says can match `text`; every rule when the set's DFA ran out of memory
// on a hostile text (it then says "no match", which must never mean "nothing to scrub").
std::bitset<kMaxRules> RulesThatMayMatch(std::string_view text) {
    // Kept per thread so its capacity is reused: the scrubber runs on every report.
    thread_local std::vector<int> matched;
    matched.clear();
    RE2::Set::ErrorInfo error{};
    std::bitset<kMaxRules> may;
    if (!AnyRule().Match(re2::StringPiece(text.data(), text.size()), &matched, &error) &&
        error.kind != RE2::Set::kNoError)
        may.set();
    for (const int i : matched) may.set(static_cast<std::size_t>(i));
    return may;
}

Scrubbed Scrub(std::string_view text) {
    Scrubbed out{std::string(text), {}};
    const auto& rules = ScrubRules();
    // A replacement glued to a letter or digit can make a match that was not there (see
    // ApplyRule) for a rule that ran before it: then the set looks again at the new text and
    // every rule it picks runs again. Otherwise one round finds all (the fuzzer checks that
    // scrubbing again finds nothing).
    // Each further round needs a replacement glued to a letter or digit, and every
    // replacement consumes a match the text held, so rounds end; the cap is a backstop.
    for (int round = 0; round < 16; ++round) {
        const auto may = RulesThatMayMatch(out.text);
        if (may.none()) break;
        bool again = false;
        for (std::size_t i = 0; i < rules.size(); ++i) {
            // The age rule reads what the name rules wrote: it runs whenever they removed one.
            if (!may[i] && !(rules[i].counter == &ScrubCounts::ages && out.counts.names > 0))
                continue;
            again = ApplyRule(out.text, rules[i], out.counts) || again;
        }
        if (!again) break;
    }
    return out;
}

std::string SmallCount(long long n) {
    return n > 0 && n < 3 ? std::string("fewer than 3") : std::to_string(n);
}

}  // namespace ldis::engine
