#include "ldis/engine/alert_text.hpp"
#include "json_text.hpp"
#include "ldis/engine/text.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <fstream>
#include <kainjow/mustache.hpp>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "ldis/engine/scrubber.hpp"

namespace json = boost::json;
namespace mus = kainjow::mustache;

namespace ldis::engine {
namespace {

using detail::Text;

std::string LevelLabel(Level level) {
    switch (level) {
        case Level::kRed:
            return "Drug Alert";
        case Level::kAmber:
            return "Drug Warning";
        case Level::kGreen:
            return "Drug Information";
        case Level::kNone:
            return "Logged";
    }
    return "Logged";
}

// "1 report", "3 reports".
std::string Counted(long long n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Parsing costs more than rendering, and every report that joins a live alert renders a
// new version, so each thread keeps the templates it has parsed (a reload brings new text,
// hence new entries; there are only a dozen).
mus::mustache& Compile(const std::string& text) {
    thread_local std::unordered_map<std::string, std::unique_ptr<mus::mustache>> compiled;
    auto it = compiled.find(text);
    if (it == compiled.end()) {
        if (compiled.size() > 64) compiled.clear();
        auto t = std::make_unique<mus::mustache>(text);
        // Alerts are plain text here; HTML escaping belongs to the HTML channel.
        t->set_custom_escape([](const std::string& s) { return s; });
        it = compiled.emplace(text, std::move(t)).first;
    }
    return *it->second;
}

// Every version of a live alert scrubs the free text of its latest reports again, and the
// scrubber's regular expressions are slow (ldis_micro: 0.17 ms for 200 characters), so
// each thread remembers what it scrubbed. Scrub is pure, so this changes no result.
const Scrubbed& ScrubRemembered(const std::string& text) {
    thread_local std::unordered_map<std::string, Scrubbed> remembered;
    if (auto it = remembered.find(text); it != remembered.end()) return it->second;
    if (remembered.size() >= 4096) remembered.clear();
    return remembered.emplace(text, Scrub(text)).first->second;
}

// "off_white" -> "off-white": the schema's words as a person reads them.
std::string Spoken(std::string word) {
    std::replace(word.begin(), word.end(), '_', '-');
    return word;
}

std::string Lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// A name of one token of letters, digits and hyphens ("bromazolam", "MDMB-4en-PINACA"):
// a chemical, not a sentence about someone.
bool OneToken(std::string_view name) {
    return !name.empty() && name.size() <= 40 &&
           std::all_of(name.begin(), name.end(),
                       [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

// A tablet imprint as the schema allows it (letters, digits, spaces, ".", "-", "/"; at
// most 20): anything else is not shown.
bool ImprintText(std::string_view s) {
    if (s.empty() || s.size() > 20) return false;
    return std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || c == ' ' || c == '.' || c == '-' || c == '/';
    });
}

}  // namespace

const std::vector<std::string>& ControlledSymptoms() {
    static const std::vector<std::string> kSigns = {
        "pinpoint pupils",   "slow breathing",
        "stopped breathing", "blue lips",
        "unresponsive",      "prolonged sedation",
        "drowsiness",        "confusion",
        "collapse",          "seizures",
        "agitation",         "aggression",
        "paranoia",          "hallucinations",
        "psychosis",         "chest pain",
        "fast heart rate",   "high temperature",
        "sweating",          "vomiting",
        "skin wounds",       "poor response to naloxone",
        "memory loss",       "low blood pressure"};
    return kSigns;
}

std::string SubstanceNameForAlert(std::string_view name, const Substances& substances) {
    if (std::string known = substances.KnownName(name); !known.empty()) return known;
    return OneToken(name) ? std::string(name) : std::string();
}

const std::vector<std::string>& WordingSections() {
    static const std::vector<std::string> kSections = {"what", "harms", "advice"};
    return kSections;
}

std::string WithWording(std::string_view body_json, std::string_view wording_json) {
    json::error_code ec;
    auto body = json::parse(body_json, ec);
    if (ec || !body.is_object()) return std::string(body_json);
    const auto wording = json::parse(wording_json, ec);
    if (ec || !wording.is_object()) return std::string(body_json);
    for (const auto& name : WordingSections()) {
        const auto* text = wording.as_object().if_contains(name);
        if (text && text->is_string() && !text->as_string().empty()) body.as_object()[name] = *text;
    }
    return json::serialize(body);
}

std::string WithoutFreeText(std::string_view document, std::string_view marker) {
    json::error_code ec;
    auto doc = json::parse(document, ec);
    if (ec || !doc.is_object()) return std::string(document);
    auto& r = doc.as_object();
    const auto replace = [&](json::object& o, std::string_view key) {
        if (auto* v = o.if_contains(key); v && v->is_string() && !v->as_string().empty())
            *v = marker;
    };
    if (auto* source = r.if_contains("source"); source && source->is_object()) {
        replace(source->as_object(), "contact");
        replace(source->as_object(), "role");
    }
    replace(r, "description");
    if (auto* list = r.if_contains("symptoms"); list && list->is_array()) {
        for (auto& s : list->as_array()) {
            const auto& known = ControlledSymptoms();
            if (s.is_string() &&
                std::find(known.begin(), known.end(), Lower(s.as_string())) == known.end())
                s = marker;
        }
    }
    if (auto* list = r.if_contains("substances"); list && list->is_array()) {
        for (auto& item : list->as_array()) {
            if (!item.is_object()) continue;
            auto& s = item.as_object();
            replace(s, "appearance");
            replace(s, "markings");
            for (const char* key : {"name", "sold_as"}) {
                if (!OneToken(Text(s, key))) replace(s, key);
            }
        }
    }
    return json::serialize(doc);
}

const std::vector<std::string>& AlertTemplates::SectionNames() {
    static const std::vector<std::string> names = {
        "summary",  "what",   "evidence", "harms",   "actions",         "advice",
        "naloxone", "report", "contacts", "sharing", "acknowledgement", "history"};
    return names;
}

AlertTemplates AlertTemplates::LoadDir(const std::string& folder) {
    AlertTemplates out;
    for (const auto& name : SectionNames()) {
        const std::string path = folder + "/" + name + ".mustache";
        std::ifstream in(path, std::ios::binary);
        if (!in)
            throw std::runtime_error(path + ": missing: every alert section needs its template");
        std::ostringstream text;
        text << in.rdbuf();
        mus::mustache t{text.str()};
        if (!t.is_valid()) throw std::runtime_error(path + ": " + t.error_message());
        out.parts_.emplace_back(name, text.str());
    }
    return out;
}

std::string RenderedAlert::ToJson() const {
    json::object o;
    for (const auto& [name, text] : sections) o[name] = text;
    o["scrubbed"] = scrubbed;
    return json::serialize(o);
}

RenderedAlert RenderAlert(const AlertTemplates& templates, const AlertMeta& meta,
                          const std::vector<std::string>& documents, const SignalFacts& facts,
                          const Grade& grade, const Substances& substances) {
    RenderedAlert out;
    const auto clean = [&](const std::string& text) {
        const auto& s = ScrubRemembered(text);
        out.scrubbed += s.counts.total();
        return s.text;
    };
    bool small_area = false;
    std::set<std::string> source_types, settings, symptoms, seen_substances;
    std::string first_seen, last_seen;
    mus::data substance_list{mus::data::type::list};
    for (const auto& text : documents) {
        json::error_code ec;
        const auto doc = json::parse(text, ec);
        if (ec || !doc.is_object()) continue;
        const auto& r = doc.as_object();
        if (const auto* area = r.if_contains("area"); area && area->is_object()) {
            small_area = small_area || !Text(area->as_object(), "ward").empty() ||
                         !Text(area->as_object(), "establishment").empty();
        }
        if (const auto* source = r.if_contains("source"); source && source->is_object()) {
            source_types.insert(
                Text(source->as_object(), "type"));  // never the organisation or contact
        }
        if (!Text(r, "setting").empty()) settings.insert(Text(r, "setting"));
        std::string when = Text(r, "observed_at");
        if (when.empty()) when = Text(r, "submitted_at");
        when = when.substr(0, 10);
        if (first_seen.empty() || when < first_seen) first_seen = when;
        if (when > last_seen) last_seen = when;
        // Only controlled values from here on: a sign from the list, the names the
        // substances file knows, the schema's enums and a checked imprint.
        if (const auto* list = r.if_contains("symptoms"); list && list->is_array()) {
            for (const auto& s : list->as_array()) {
                if (!s.is_string()) continue;
                const std::string sign = Lower(s.as_string());
                const auto& known = ControlledSymptoms();
                if (std::find(known.begin(), known.end(), sign) != known.end())
                    symptoms.insert(sign);
            }
        }
        if (const auto* list = r.if_contains("substances"); list && list->is_array()) {
            for (const auto& item : list->as_array()) {
                const auto& s = item.as_object();
                std::string name = SubstanceNameForAlert(Text(s, "name"), substances);
                const std::string sold_as = SubstanceNameForAlert(Text(s, "sold_as"), substances);
                const std::string imprint =
                    ImprintText(Text(s, "imprint")) ? Text(s, "imprint") : std::string();
                std::string looks;
                for (const char* key : {"colour", "shape"}) {
                    if (!Text(s, key).empty())
                        looks += (looks.empty() ? "" : " ") + Spoken(Text(s, key));
                }
                const std::string key =
                    name + "|" + sold_as + "|" + Text(s, "form") + "|" + looks + "|" + imprint;
                if (!seen_substances.insert(key).second) continue;
                mus::data entry;
                entry.set("name", name.empty() ? "an unidentified substance" : clean(name));
                if (!sold_as.empty()) entry.set("sold_as", clean(sold_as));
                if (!Text(s, "form").empty()) entry.set("form", Text(s, "form"));
                if (!looks.empty()) entry.set("looks", looks);
                if (!imprint.empty()) entry.set("imprint", clean(imprint));
                substance_list << entry;
            }
        }
    }
    const auto number = [&](const char* name) {
        const auto it = facts.numbers.find(name);
        return it == facts.numbers.end() ? 0LL : it->second;
    };
    const auto count_text = [&](const char* name) {
        const long long n = number(name);
        return small_area ? SmallCount(n) : std::to_string(n);
    };
    const Family* family = substances.Find(facts.family);

    mus::data d;
    d.set("reference", meta.reference);
    d.set("version", std::to_string(meta.version));
    d.set("level_label", LevelLabel(grade.level));
    d.set("level", std::string(ToString(grade.level)));
    if (meta.provisional) d.set("provisional", true);
    d.set("family_label", family ? family->label : std::string("an unidentified substance"));
    d.set("district", meta.district);
    d.set("authority", meta.authority);
    d.set("action", LevelAction(ToString(grade.level)));
    d.set("place", Place(meta.district, meta.authority));
    d.set("cases_text", count_text("cases"));
    d.set("deaths_text", count_text("deaths"));
    if (number("deaths") > 0) d.set("deaths", true);
    d.set("hospitalisations_text", count_text("hospitalisations"));
    d.set("critical_care_text", count_text("critical_care"));
    if (number("naloxone_doses") > 0)
        d.set("naloxone_doses", std::to_string(number("naloxone_doses")));
    d.set("reports", std::to_string(number("reports")));
    d.set("sources", std::to_string(number("sources")));
    d.set("reports_text", Counted(number("reports"), "report", "reports"));
    d.set("sources_text", Counted(number("sources"), "independent source", "independent sources"));
    std::string types;
    for (const auto& t : source_types) types += (types.empty() ? "" : ", ") + t;
    d.set("source_types", types);
    d.set("confidence", grade.confidence);
    if (number("confirmed") > 0) d.set("confirmed", true);
    if (number("closed_setting") > 0) d.set("closed_setting", true);
    mus::data reasons{mus::data::type::list};
    for (const auto& f : grade.fired) reasons << mus::data(f.reason);
    d.set("reasons", reasons);
    const std::string strongest = StrongestReason(grade);
    if (!strongest.empty()) d.set("strongest_reason", strongest);
    mus::data symptom_list{mus::data::type::list};
    for (const auto& s : symptoms) symptom_list << mus::data(s);
    if (!symptoms.empty()) d.set("symptoms", symptom_list);
    mus::data setting_list{mus::data::type::list};
    for (const auto& s : settings) setting_list << mus::data(s);
    d.set("settings", setting_list);
    d.set("substances", substance_list);
    d.set("first_seen", first_seen);
    d.set("last_seen", last_seen);
    d.set("public_url", meta.public_url);
    if (grade.level == Level::kRed) d.set("acknowledge_within", "4 hours");
    if (grade.level == Level::kAmber) d.set("acknowledge_within", "24 hours");
    mus::data history{mus::data::type::list};
    for (const auto& h : meta.history) {
        mus::data line;
        line.set("version", std::to_string(h.version));
        line.set("status", h.status);
        line.set("level", h.level);
        history << line;
    }
    mus::data current;
    current.set("version", std::to_string(meta.version));
    current.set("status", meta.status);
    current.set("level", std::string(ToString(grade.level)));
    current.set("last", true);
    history << current;
    d.set("history", history);

    for (const auto& [name, text] : templates.parts()) {
        out.sections.emplace_back(name, Compile(text).render(d));
    }
    return out;
}

}  // namespace ldis::engine
