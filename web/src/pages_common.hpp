#pragma once
// What the people's pages share (private to web/): the form's labels, form decoding,
// cookies, the small helpers every page uses.

#include "pages.hpp"

#include "ldis/engine/areas.hpp"
#include "ldis/engine/wire.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <kainjow/mustache.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "documents.hpp"
#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/codec.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/scrubber.hpp"
#include "ldis/engine/text.hpp"

namespace json = boost::json;
namespace mus = kainjow::mustache;
namespace fs = std::filesystem;

namespace ldis::web {
namespace page_detail {

inline constexpr auto kSessionLife = std::chrono::hours(12);
inline constexpr std::size_t kSessionsPerKey = 20;
inline constexpr std::size_t kSessionsInAll = 5000;

using engine::NowMs;

inline std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

inline int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

inline std::string Decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out.push_back(' ');
        } else if (text[i] == '%' && i + 2 < text.size() && Hex(text[i + 1]) >= 0 &&
                   Hex(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(Hex(text[i + 1]) * 16 + Hex(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

inline std::string Cookie(const std::string& header, const std::string& name) {
    std::size_t at = 0;
    while (at < header.size()) {
        const auto end = header.find(';', at);
        std::string part =
            header.substr(at, end == std::string::npos ? std::string::npos : end - at);
        part.erase(0, part.find_first_not_of(' '));
        if (part.starts_with(name + "=")) return part.substr(name.size() + 1);
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return {};
}

inline std::string Tag(std::string_view level) {
    if (level == "red") return "govuk-tag--red";
    if (level == "amber") return "govuk-tag--orange";
    if (level == "green") return "govuk-tag--green";
    return "govuk-tag--grey";
}

inline std::string Tag(engine::Level level) {
    return Tag(engine::ToString(level));
}

// "Drug Alert (red)": the label and the colour, as the pages show a level.
inline std::string LevelLabel(std::string_view level) {
    if (level != "red" && level != "amber" && level != "green") return "Logged, no alert";
    return engine::LevelLabel(level) + " (" + std::string(level) + ")";
}

inline std::string LevelLabel(engine::Level level) {
    return LevelLabel(engine::ToString(level));
}

// The wire's word for a status or level, for a page or a document.
inline std::string Word(engine::AlertStatus status) {
    return std::string(engine::ToString(status));
}

inline std::string Word(engine::Level level) {
    return std::string(engine::ToString(level));
}

inline WebResponse Redirect(const std::string& to) {
    WebResponse r;
    r.status = 303;
    r.body = "";
    r.headers.emplace_back("Location", to);
    return r;
}

// How the form names the schema's values; a value without a label here is shown as it is
// written, tidied (Pretty). The values themselves come from the schema (Pages::Pages).
inline const std::map<std::string, std::string, std::less<>> kLabels = {
    {"hospital", "Hospital or emergency department"},
    {"custody", "Police custody"},
    {"police", "Police"},
    {"prison", "Prison"},
    {"ambulance", "Ambulance service"},
    {"treatment", "Drug and alcohol treatment service"},
    {"outreach", "Outreach or harm reduction"},
    {"drug_checking", "Drug checking service"},
    {"pharmacy", "Pharmacy"},
    {"gp", "GP practice"},
    {"housing", "Housing or hostel"},
    {"youth", "Youth service"},
    {"panel", "Drug-related deaths panel"},
    {"coroner", "Coroner"},
    {"national_alert", "National alert"},
    {"public", "Member of the public"},
    {"other", "Other"},
    {"anecdotal", "Heard about it (anecdotal)"},
    {"professional", "I or a colleague saw it (professional)"},
    {"corroborated", "More than one service has seen it (corroborated)"},
    {"confirmed", "Confirmed by a test or laboratory"},
    {"usual", "As usual for the product"},
    {"high", "Stronger than usual"},
    {"very_high", "Much stronger than usual"}};
inline const std::vector<std::string> kNumbers = {
    "cases",         "deaths",         "hospitalisations",
    "critical_care", "naloxone_doses", "naloxone_poor_response",
    "under_18"};
inline const std::vector<std::string> kTextFields = {
    "organisation",  "role",        "contact", "ward",       "establishment",
    "observed_date", "substance",   "sold_as", "appearance", "markings",
    "symptoms",      "description", "imprint"};

inline std::string Pretty(std::string_view word) {
    std::string out(word);
    for (char& c : out) {
        if (c == '_') c = ' ';
    }
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

inline mus::data Options(const std::vector<std::pair<std::string, std::string>>& choices,
                         const std::string& chosen, const std::string& name, bool blank) {
    mus::data list{mus::data::type::list};
    if (blank) {
        mus::data o;
        o.set("value", "");
        o.set("label", "Choose");
        if (chosen.empty()) o.set("selected", true);
        list << o;
    }
    int n = 0;
    for (const auto& [value, label] : choices) {
        mus::data o;
        o.set("value", value);
        o.set("label", label);
        o.set("id", n == 0 ? name : name + "-" + std::to_string(n + 1));
        if (value == chosen) o.set("selected", true);
        list << o;
        ++n;
    }
    return list;
}

// The schema's values with the form's labels for them.
inline std::vector<std::pair<std::string, std::string>> Labelled(
    const std::vector<std::string>& words) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& w : words) {
        const auto label = kLabels.find(w);
        out.emplace_back(w, label != kLabels.end() ? label->second : Pretty(w));
    }
    return out;
}

// The form field a JSON pointer of the report names.
inline std::string FieldOf(const std::string& pointer) {
    static const std::vector<std::pair<std::string, std::string>> kMap = {
        {"/source/type", "source_type"},
        {"/source/organisation", "organisation"},
        {"/source/role", "role"},
        {"/source/contact", "contact"},
        {"/area/authority", "authority"},
        {"/area/district", "district"},
        {"/area/ward", "ward"},
        {"/area/establishment", "establishment"},
        {"/setting", "setting"},
        {"/observed_at", "observed_date"},
        {"/substances/0/name", "substance"},
        {"/substances/0/sold_as", "sold_as"},
        {"/substances/0/form", "form"},
        {"/substances/0/appearance", "appearance"},
        {"/substances/0/markings", "markings"},
        {"/substances/0/colour", "colour"},
        {"/substances/0/shape", "shape"},
        {"/substances/0/imprint", "imprint"},
        {"/substances/0/confirmed_by", "confirmed_by"},
        {"/substances/0/strength", "strength"},
        {"/route", "route"},
        {"/symptoms", "symptoms"},
        {"/description", "description"},
        {"/photos", "photos"},
        {"/evidence", "evidence"}};
    for (const auto& [path, field] : kMap) {
        if (pointer == path || pointer.starts_with(path + "/")) return field;
    }
    if (pointer.starts_with("/harms/")) return pointer.substr(7);
    return "substance";
}

// Partners reached by an alert's deliveries, and those who acknowledged.
inline std::pair<int, int> AckProgress(const std::vector<engine::DeliveryRow>& deliveries) {
    std::set<std::string> reached, acked;
    for (const auto& d : deliveries) {
        if (d.kind != "alert" || d.partner.empty()) continue;
        reached.insert(d.partner);
        if (d.acknowledged_at_ms > 0) acked.insert(d.partner);
    }
    return {static_cast<int>(acked.size()), static_cast<int>(reached.size())};
}

inline mus::data AlertRow(const engine::Alert& a) {
    mus::data row;
    row.set("reference", a.reference);
    row.set("level", Word(a.level));
    row.set("tag", Tag(a.level));
    row.set("status", Word(a.status));
    row.set("family", Pretty(a.family));
    row.set("district", a.district);
    row.set("version", std::to_string(a.version));
    row.set("reports", std::to_string(a.reports));
    row.set("updated", engine::HumanTimeMs(a.updated_at_ms));
    if (a.provisional) row.set("provisional", true);
    if (a.drill != engine::Drill::kNone) {
        // "EXERCISE – NOT A REAL ALERT", shown before the reference wherever the row is.
        row.set("drill", std::string(engine::DrillMarking(a.drill)));
        row.set("drill_word", a.drill == engine::Drill::kTest ? "Test" : "Exercise");
    }
    return row;
}

}  // namespace page_detail

using namespace page_detail;  // NOLINT(google-build-using-namespace): private to web/

}  // namespace ldis::web
