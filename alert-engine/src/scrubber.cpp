#include "ldis/engine/scrubber.hpp"

#include <cctype>
#include <functional>
#include <regex>

namespace ldis::engine {
namespace {

// Each rule replaces whole matches; `keep` decides, per match, whether it is personal
// data (and so removed) and what stands in its place.
struct Rule {
    std::regex pattern;
    std::function<bool(const std::smatch&, std::string&)> replace;  // false: leave as is
    int ScrubCounts::*counter;
};

std::string Digits(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (std::isdigit(static_cast<unsigned char>(c))) out.push_back(c);
    }
    return out;
}

std::string ApplyRule(const std::string& text, const Rule& rule, ScrubCounts& counts) {
    std::string out;
    auto begin = std::sregex_iterator(text.begin(), text.end(), rule.pattern);
    std::size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
        const std::smatch& m = *it;
        std::string replacement;
        if (!rule.replace(m, replacement)) continue;
        out.append(text, last, static_cast<std::size_t>(m.position(0)) - last);
        out += replacement;
        last = static_cast<std::size_t>(m.position(0) + m.length(0));
        ++(counts.*rule.counter);
    }
    out.append(text, last, std::string::npos);
    return out;
}

const std::vector<Rule>& Rules() {
    using std::regex_constants::ECMAScript;
    using std::regex_constants::icase;
    static const std::vector<Rule> rules = [] {
        std::vector<Rule> r;
        // Email addresses first: they may hold digits that look like other things.
        r.push_back(
            {std::regex(R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"),
             [](const std::smatch&, std::string& out) {
                 out = "[email removed]";
                 return true;
             },
             &ScrubCounts::emails});
        // Dates of birth named as such, in any common form.
        r.push_back(
            {std::regex(
                 R"(\b(d\.?\s?o\.?\s?b\.?|date of birth|born( on)?)(\s*(is|was|[:\-]))?\s*)"
                 R"((\d{1,2}(st|nd|rd|th)?[\s/.\-](\d{1,2}|jan\w*|feb\w*|mar\w*|apr\w*|may|jun\w*|jul\w*|aug\w*|sep\w*|oct\w*|nov\w*|dec\w*)[\s/.\-,]*\d{2,4}|\d{4}-\d{2}-\d{2}))",
                 ECMAScript | icase),
             [](const std::smatch& m, std::string& out) {
                 out = m.str(1) + " [date of birth removed]";
                 return true;
             },
             &ScrubCounts::dates_of_birth});
        // NHS numbers: ten digits, optionally 3-3-4 with spaces or hyphens, passing modulus 11.
        r.push_back({std::regex(R"((^|[^\d+])(\d{3})[ \-]?(\d{3})[ \-]?(\d{4})(?!\d))"),
                     [](const std::smatch& m, std::string& out) {
                         const std::string digits = m.str(2) + m.str(3) + m.str(4);
                         if (!IsValidNhsNumber(digits)) return false;
                         out = m.str(1) + "[NHS number removed]";
                         return true;
                     },
                     &ScrubCounts::nhs_numbers});
        // UK phone numbers: +44 or 0, then 9 or 10 more digits in groups.
        r.push_back(
            {std::regex(
                 R"((\+\s?44\s?(\(0\)\s?)?|\(?\b0)\d{2,4}\)?[\s\-]?\d{3,4}[\s\-]?\d{3,4}\b)"),
             [](const std::smatch& m, std::string& out) {
                 std::string d = Digits(m.str(0));
                 if (d.rfind("44", 0) == 0) d = "0" + d.substr(d[2] == '0' ? 3 : 2);
                 if (d.size() != 10 && d.size() != 11) return false;
                 out = "[phone number removed]";
                 return true;
             },
             &ScrubCounts::phone_numbers});
        // Full dates before 2010, with or without a label: almost always a date of birth
        // in a drug report, and an observation date is never that old.
        r.push_back({std::regex(R"(\b(\d{1,2})[/.\-](\d{1,2})[/.\-](19\d{2}|200\d)\b)"),
                     [](const std::smatch&, std::string& out) {
                         out = "[date of birth removed]";
                         return true;
                     },
                     &ScrubCounts::dates_of_birth});
        // Full UK postcodes: the outward code (postcode district) stays.
        r.push_back({std::regex(R"(\b([A-Z]{1,2}[0-9][A-Z0-9]?)\s*([0-9][ABD-HJLNP-UW-Z]{2})\b)",
                                ECMAScript | icase),
                     [](const std::smatch& m, std::string& out) {
                         std::string outward = m.str(1);
                         for (auto& c : outward)
                             c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                         out = outward;
                         return true;
                     },
                     &ScrubCounts::postcodes});
        // Prison numbers: one letter, four digits, two letters (A1234BC).
        r.push_back({std::regex(R"(\b[A-Z][0-9]{4}[A-Z]{2}\b)", ECMAScript | icase),
                     [](const std::smatch&, std::string& out) {
                         out = "[prison number removed]";
                         return true;
                     },
                     &ScrubCounts::prison_numbers});
        // Custody record numbers, named as such: "custody record 12/34567/26", "custody no.
        // KT-123".
        r.push_back(
            {std::regex(
                 R"(\b(custody\s+(record|ref(erence)?|number|no\.?)(\s+(number|no\.?))?\s*[:#]?\s*)([A-Z0-9][A-Z0-9/\-]{3,}))",
                 ECMAScript | icase),
             [](const std::smatch& m, std::string& out) {
                 if (Digits(m.str(6)).empty()) return false;
                 out = m.str(1) + "[custody number removed]";
                 return true;
             },
             &ScrubCounts::custody_numbers});
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

Scrubbed Scrub(std::string_view text) {
    Scrubbed out{std::string(text), {}};
    for (const auto& rule : Rules()) out.text = ApplyRule(out.text, rule, out.counts);
    return out;
}

std::string SmallCount(long long n) {
    return n > 0 && n < 3 ? std::string("fewer than 3") : std::to_string(n);
}

}  // namespace ldis::engine
