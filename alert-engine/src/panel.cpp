#include "ldis/engine/panel.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <set>
#include <stdexcept>

#include "json_text.hpp"
#include "ldis/engine/text.hpp"
#include "toml_file.hpp"

namespace ldis::engine {
namespace json = boost::json;
namespace {

// A TOML value as JSON: the table's reports are written in TOML so that a coordinator can
// read and add to them, and graded as the JSON reports they stand for.
json::value ToJson(const toml::node& node) {
    if (const auto* t = node.as_table()) {
        json::object o;
        for (const auto& [k, v] : *t) o[std::string(k.str())] = ToJson(v);
        return o;
    }
    if (const auto* a = node.as_array()) {
        json::array out;
        for (const auto& v : *a) out.push_back(ToJson(v));
        return out;
    }
    if (const auto* s = node.as_string()) return json::value(s->get());
    if (const auto* i = node.as_integer()) return json::value(i->get());
    if (const auto* b = node.as_boolean()) return json::value(b->get());
    if (const auto* f = node.as_floating_point()) return json::value(f->get());
    throw std::runtime_error("unsupported value");
}

using detail::Text;

std::vector<std::string> StringList(const toml::node& node, const std::string& where,
                                    const std::string& what) {
    const auto* list = node.as_array();
    if (list == nullptr) throw std::runtime_error(where + ": " + what + " must be a list of words");
    std::vector<std::string> out;
    for (const auto& item : *list) {
        if (!item.is_string()) throw std::runtime_error(where + ": " + what + " must hold words");
        out.push_back(item.as_string()->get());
    }
    return out;
}

}  // namespace

PanelTable LoadPanelTable(const std::string& path) {
    return ParsePanelTable(detail::ReadTextFile(path, "grading table"), path);
}

PanelTable ParsePanelTable(std::string_view toml_text, const std::string& origin) {
    const toml::table root = detail::ParseToml(toml_text, origin);
    PanelTable table;
    json::object base;
    for (const auto& [key, node] : root) {
        const std::string k(key.str());
        const std::string where = detail::Where(origin, node);
        if (k == "window_days") {
            const auto days = node.value<std::int64_t>();
            if (!days || *days < 1 || *days > 90)
                throw std::runtime_error(where +
                                         ": window_days must be a whole number of days, 1 to 90");
            table.window_days = static_cast<int>(*days);
        } else if (k == "base") {
            if (!node.is_table()) throw std::runtime_error(where + ": [base] must be a table");
            base = ToJson(node).as_object();
        } else if (k != "incident") {
            throw std::runtime_error(where + ": unknown key \"" + k +
                                     "\" (expected window_days, [base], [[incident]])");
        }
    }
    const auto* list = root["incident"].as_array();
    if (list == nullptr || list->empty())
        throw std::runtime_error(origin + ":1: no [[incident]] entries");
    std::set<std::string> names;
    for (const auto& node : *list) {
        const std::string where = detail::Where(origin, node);
        const auto* t = node.as_table();
        if (t == nullptr) throw std::runtime_error(where + ": each [[incident]] must be a table");
        PanelIncident incident;
        incident.line = static_cast<int>(node.source().begin.line);
        for (const auto& [key, value] : *t) {
            const std::string k(key.str());
            const std::string at = detail::Where(origin, value);
            if (k == "name" || k == "level" || k == "reason" || k == "confidence") {
                if (!value.is_string()) throw std::runtime_error(at + ": " + k + " must be text");
                const std::string text = value.as_string()->get();
                (k == "name"     ? incident.name
                 : k == "level"  ? incident.level
                 : k == "reason" ? incident.reason
                                 : incident.confidence) = text;
            } else if (k == "rules") {
                incident.rules = StringList(value, at, "rules");
            } else if (k == "signals") {
                const auto n = value.value<std::int64_t>();
                if (!n || *n < 1 || *n > 100)
                    throw std::runtime_error(at + ": signals must be a number from 1 to 100");
                incident.signals = static_cast<int>(*n);
            } else if (k == "reports") {
                const auto* reports = value.as_array();
                if (reports == nullptr || reports->empty())
                    throw std::runtime_error(at + ": reports must be a list of one or more tables");
                int n = 0;
                for (const auto& report : *reports) {
                    if (!report.is_table())
                        throw std::runtime_error(detail::Where(origin, report) +
                                                 ": each report must be a table ({} for [base])");
                    json::object doc = base;
                    const json::value fields = ToJson(report);
                    for (const auto& [field, v] : fields.as_object()) doc[field] = v;
                    // Each report its own id, as a submitter would give it.
                    doc["id"] =
                        "00000000-0000-4000-8000-" +
                        std::string(12 - std::to_string(incident.line * 100 + n).size(), '0') +
                        std::to_string(incident.line * 100 + n);
                    ++n;
                    incident.reports.push_back(json::serialize(doc));
                }
            } else {
                throw std::runtime_error(at + ": unknown key \"" + k +
                                         "\" in an incident (expected name, level, reason, rules, "
                                         "confidence, signals, reports)");
            }
        }
        Level level;
        if (incident.name.empty()) throw std::runtime_error(where + ": an incident needs a name");
        if (!names.insert(incident.name).second)
            throw std::runtime_error(where + ": a second incident named \"" + incident.name + "\"");
        if (!ParseLevel(incident.level, level))
            throw std::runtime_error(where + ": level must be none, green, amber or red");
        if (incident.reason.empty())
            throw std::runtime_error(where + ": \"" + incident.name +
                                     "\" needs the panel's reason, in a sentence");
        if (incident.reports.empty())
            throw std::runtime_error(where + ": \"" + incident.name + "\" has no reports");
        table.incidents.push_back(std::move(incident));
    }
    return table;
}

std::string CorrelationFamily(std::string_view report_document, const Substances& substances) {
    const SignalFacts own = FactsOf({std::string(report_document)}, substances);
    if (!own.family.empty()) return own.family;
    // No known family: correlate on the first substance's name.
    json::error_code ec;
    const auto doc = json::parse(report_document, ec);
    std::string name;
    if (!ec && doc.is_object()) {
        const auto* list = doc.as_object().if_contains("substances");
        if (list && list->is_array() && !list->as_array().empty() &&
            list->as_array()[0].is_object())
            name = Text(list->as_array()[0].as_object(), "name");
    }
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return "other:" + name;
}

std::vector<PanelSignal> GradeReports(const std::vector<std::string>& reports,
                                      const Substances& substances, const Rules& rules,
                                      std::int64_t window_ms) {
    struct Open {
        std::int64_t first = 0, last = 0;
    };
    std::vector<PanelSignal> signals;
    std::vector<Open> seen;
    for (const auto& report : reports) {
        json::error_code ec;
        const auto doc = json::parse(report, ec);
        if (ec || !doc.is_object()) continue;
        const auto& r = doc.as_object();
        const std::string family = CorrelationFamily(report, substances);
        const auto* area = r.if_contains("area");
        const std::string district =
            area && area->is_object() ? Text(area->as_object(), "district") : std::string();
        const std::string observed = Text(r, "observed_at");
        const std::int64_t at = ParseTimeMs(observed.empty() ? Text(r, "submitted_at") : observed);
        // As the store: the newest signal of the family and district whose sightings are
        // within the window of this one.
        std::size_t found = signals.size();
        for (std::size_t i = signals.size(); i-- > 0;) {
            if (signals[i].family == family && signals[i].district == district &&
                seen[i].last >= at - window_ms && seen[i].first <= at + window_ms) {
                found = i;
                break;
            }
        }
        if (found == signals.size()) {
            signals.push_back({family, district, {}, {}});
            seen.push_back({at, at});
        }
        signals[found].reports.push_back(report);
        seen[found].first = std::min(seen[found].first, at);
        seen[found].last = std::max(seen[found].last, at);
    }
    for (auto& s : signals) s.grade = rules.Apply(FactsOf(s.reports, substances));
    return signals;
}

std::vector<PanelVerdict> RunPanel(const PanelTable& table, const Substances& substances,
                                   const Rules& rules) {
    std::vector<PanelVerdict> out;
    const std::int64_t window_ms = std::int64_t{table.window_days} * 24 * 3600 * 1000;
    for (const auto& incident : table.incidents) {
        PanelVerdict v;
        v.incident = &incident;
        const auto signals = GradeReports(incident.reports, substances, rules, window_ms);
        v.signals = static_cast<int>(signals.size());
        const PanelSignal* top = nullptr;
        std::set<std::string> fired;
        for (const auto& s : signals) {
            if (top == nullptr || s.grade.level > top->grade.level) top = &s;
            for (const auto& f : s.grade.fired) fired.insert(f.id);
        }
        v.fired.assign(fired.begin(), fired.end());
        v.level = std::string(ToString(top ? top->grade.level : Level::kNone));
        v.confidence = top ? top->grade.confidence : std::string();
        std::vector<std::string> differences;
        if (v.level != incident.level)
            differences.push_back("level " + v.level + ", the panel gave " + incident.level);
        if (incident.signals != 0 && incident.signals != v.signals)
            differences.push_back(std::to_string(v.signals) + " signals, the panel saw " +
                                  std::to_string(incident.signals));
        if (incident.rules) {
            auto expected = *incident.rules;
            std::sort(expected.begin(), expected.end());
            if (expected != v.fired) {
                std::string got, want;
                for (const auto& f : v.fired) got += (got.empty() ? "" : ", ") + f;
                for (const auto& f : expected) want += (want.empty() ? "" : ", ") + f;
                differences.push_back("rules fired [" + got + "], the table lists [" + want + "]");
            }
        }
        if (!incident.confidence.empty() && incident.confidence != v.confidence)
            differences.push_back("confidence " + v.confidence + ", the table says " +
                                  incident.confidence);
        for (const auto& d : differences) v.difference += (v.difference.empty() ? "" : "; ") + d;
        v.agrees = differences.empty();
        out.push_back(std::move(v));
    }
    return out;
}

ReplayResult Replay(const std::vector<StoredSignal>& signals, const Substances& substances,
                    const Rules& rules) {
    ReplayResult out;
    for (const char* level : {"none", "green", "amber", "red"}) {
        out.now_by_level[level] = 0;
        out.then_by_level[level] = 0;
    }
    for (const auto& s : signals) {
        ++out.signals;
        const Grade grade = rules.Apply(FactsOf(s.documents, substances));
        const std::string then(ToString(grade.level));
        ++out.now_by_level[s.level];
        ++out.then_by_level[then];
        if (then == s.level) continue;
        ReplayChange c;
        c.signal = s.id;
        c.family = s.family;
        c.district = s.district;
        c.now = s.level;
        c.then = then;
        for (const auto& f : grade.fired) c.fired.push_back(f.id);
        c.alert_reference = s.alert_reference;
        c.alert_status = s.alert_status;
        Level before = Level::kNone;
        ParseLevel(s.level, before);
        c.lowers_live_red = before == Level::kRed && grade.level < Level::kRed &&
                            (s.alert_status == "issued" || s.alert_status == "updated");
        if (c.lowers_live_red) ++out.lowered_live_reds;
        out.changes.push_back(std::move(c));
    }
    return out;
}

std::string ReplayToJson(const ReplayResult& result) {
    json::array changes;
    for (const auto& c : result.changes) {
        json::array fired;
        for (const auto& f : c.fired) fired.push_back(json::value(f));
        changes.push_back({{"signal", c.signal},
                           {"family", c.family},
                           {"district", c.district},
                           {"level_now", c.now},
                           {"level_then", c.then},
                           {"rules", fired},
                           {"alert", c.alert_reference},
                           {"alert_status", c.alert_status},
                           {"lowers_live_red", c.lowers_live_red}});
    }
    json::object now, then;
    for (const auto& [k, v] : result.now_by_level) now[k] = v;
    for (const auto& [k, v] : result.then_by_level) then[k] = v;
    return json::serialize(json::object{{"signals", result.signals},
                                        {"changed", result.changes.size()},
                                        {"lowered_live_reds", result.lowered_live_reds},
                                        {"by_level_now", now},
                                        {"by_level_then", then},
                                        {"changes", changes}});
}

std::string ReplayToText(const ReplayResult& result) {
    std::string out;
    for (const auto& c : result.changes) {
        std::string fired;
        for (const auto& f : c.fired) fired += (fired.empty() ? "" : ", ") + f;
        out += "signal " + std::to_string(c.signal) + "  " + c.district + "  " + c.family + "  " +
               c.now + " -> " + c.then + "  [" + (fired.empty() ? "no rule" : fired) + "]";
        if (!c.alert_reference.empty())
            out += "  alert " + c.alert_reference + " (" + c.alert_status + ")";
        out += "\n";
    }
    const auto levels = [](const std::map<std::string, int>& by) {
        std::string s;
        for (const char* level : {"red", "amber", "green", "none"})
            s += (s.empty() ? "" : ", ") + std::string(level) + " " + std::to_string(by.at(level));
        return s;
    };
    out += std::to_string(result.signals) + " signals, " + std::to_string(result.changes.size()) +
           " would change.\n  now:  " + levels(result.now_by_level) +
           "\n  then: " + levels(result.then_by_level) + "\n";
    for (const auto& c : result.changes) {
        if (!c.lowers_live_red) continue;
        out += "WARNING: the live red alert " + c.alert_reference + " (signal " +
               std::to_string(c.signal) + ", " + c.district + ", " + c.family +
               ") would come down to " + c.then +
               ": partners were told to act on it. Check this change with the panel.\n";
    }
    return out;
}

}  // namespace ldis::engine
