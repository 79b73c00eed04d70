#include "ldis/engine/grading.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include "json_text.hpp"
#include "ldis/engine/text.hpp"
#include "toml_file.hpp"

namespace json = boost::json;

namespace ldis::engine {
namespace {

constexpr std::string_view kEvidence[] = {"anecdotal", "professional", "corroborated", "confirmed"};

int EvidenceRank(std::string_view e) {
    for (std::size_t i = 0; i < std::size(kEvidence); ++i) {
        if (kEvidence[i] == e) return static_cast<int>(i);
    }
    return 0;
}

long long Count(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_int64() ? v->as_int64() : 0;
}

using detail::Text;

}  // namespace

std::string_view ToString(Level level) {
    switch (level) {
        case Level::kNone:
            return "none";
        case Level::kGreen:
            return "green";
        case Level::kAmber:
            return "amber";
        case Level::kRed:
            return "red";
    }
    return "none";
}

bool ParseLevel(std::string_view text, Level& out) {
    for (Level l : {Level::kNone, Level::kGreen, Level::kAmber, Level::kRed}) {
        if (ToString(l) == text) {
            out = l;
            return true;
        }
    }
    return false;
}

const std::map<std::string, std::string>& FactNames() {
    static const std::map<std::string, std::string> names = {
        {"reports", "reports in the signal"},
        {"sources", "independent sources (distinct organisations)"},
        {"cases", "people affected"},
        {"deaths", "deaths"},
        {"professional_deaths",
         "deaths in reports with evidence professional or stronger (a rumoured death is not "
         "one, even beside a professional report of something else)"},
        {"hospitalisations", "hospital admissions"},
        {"critical_care", "people in critical care"},
        {"naloxone_doses", "naloxone doses given"},
        {"naloxone_poor_response", "people who responded poorly to naloxone"},
        {"under_18", "people under 18 harmed"},
        {"life_threatening",
         "life-threatening events: per report the most of critical care, poor naloxone "
         "response, and 1 when 2+ naloxone doses were needed"},
        {"confirmed",
         "substances confirmed by a lab, toxicology or post mortem, or reports of confirmed "
         "evidence"},
        {"presumptive", "substances shown by a test strip or immunoassay"},
        {"high_potency", "1 when the family is high-potency (nitazenes, fentanyls)"},
        {"adulterant", "1 when the family is an adulterant (xylazine)"},
        {"mis_sold",
         "substances sold as something else: of another family, or a lab finding that is not "
         "the product a street name stands for (bromazolam in \"blues\"), or, in one report, "
         "a lab finding of another family than the first-named product, or an adulterant"},
        {"strong_confirmed",
         "substances a lab, toxicology or post mortem found stronger than usual (strength "
         "high or very_high)"},
        {"closed_setting", "1 when any report is from a prison or police custody"},
        {"national_alerts", "reports from a national alert"},
        {"local_reports", "reports from anyone but a national alert"},
        {"professional_reports", "reports with evidence professional or stronger"},
        {"local_professional_reports",
         "local reports (not national alerts) with evidence professional or stronger"},
        {"new_appearance", "substances with an appearance or markings described"},
        {"family", "the substance family (a word from substances.toml)"},
        {"evidence", "the strongest evidence: anecdotal, professional, corroborated, confirmed"},
    };
    return names;
}

SignalFacts FactsOf(const std::vector<std::string>& documents, const Substances& substances) {
    SignalFacts f;
    for (const auto& [name, _] : FactNames()) {
        if (name != "family" && name != "evidence") f.numbers[name] = 0;
    }
    auto& n = f.numbers;
    std::set<std::string> organisations;
    const Family* family = nullptr;
    int evidence = 0;
    for (const auto& text : documents) {
        json::error_code ec;
        const auto doc = json::parse(text, ec);
        if (ec || !doc.is_object()) continue;
        const auto& r = doc.as_object();
        ++n["reports"];
        const json::object empty;
        const auto& source = r.contains("source") ? r.at("source").as_object() : empty;
        const auto& harms = r.contains("harms") ? r.at("harms").as_object() : empty;
        organisations.insert(Text(source, "organisation"));
        const bool national = Text(source, "type") == "national_alert";
        ++n[national ? "national_alerts" : "local_reports"];
        const std::string report_evidence = Text(r, "evidence");
        evidence = std::max(evidence, EvidenceRank(report_evidence));
        if (EvidenceRank(report_evidence) >= 1) {
            ++n["professional_reports"];
            if (!national) ++n["local_professional_reports"];
        }
        if (report_evidence == "confirmed") ++n["confirmed"];
        if (EvidenceRank(report_evidence) >= 1) n["professional_deaths"] += Count(harms, "deaths");
        for (const char* key : {"cases", "deaths", "hospitalisations", "critical_care",
                                "naloxone_doses", "naloxone_poor_response", "under_18"}) {
            n[key] += Count(harms, key);
        }
        n["life_threatening"] +=
            std::max({Count(harms, "critical_care"), Count(harms, "naloxone_poor_response"),
                      Count(harms, "naloxone_doses") >= 2 ? 1LL : 0LL});
        const std::string setting = Text(r, "setting");
        if (setting == "prison" || setting == "custody" || Text(source, "type") == "prison" ||
            Text(source, "type") == "custody") {
            n["closed_setting"] = 1;
        }
        if (const auto* list = r.if_contains("substances"); list && list->is_array()) {
            // The product the report is about: the first-named, as it was sold.
            const Family* product_family = nullptr;
            std::string product;
            bool first = true;
            for (const auto& item : list->as_array()) {
                if (!item.is_object()) continue;
                const auto& s = item.as_object();
                const Family* named = substances.FamilyOf(Text(s, "name"));
                const Family* sold = substances.FamilyOf(Text(s, "sold_as"));
                family = substances.MoreDangerous(family, named ? named : sold);
                const std::string by = Text(s, "confirmed_by");
                const bool lab = by == "lab" || by == "toxicology" || by == "post_mortem";
                const std::string found = substances.Product(Text(s, "name"));
                if (named && sold && named != sold) {
                    ++n["mis_sold"];
                } else if (lab && named && sold && !found.empty() &&
                           substances.IsBoughtByName(substances.Product(Text(s, "sold_as"))) &&
                           found != substances.Product(Text(s, "sold_as"))) {
                    ++n["mis_sold"];  // bromazolam sold as "blues": fake diazepam
                } else if (lab && !first && named && product_family &&
                           (named != product_family || named->adulterant ||
                            (substances.IsBoughtByName(product) && !found.empty() &&
                             found != product))) {
                    ++n["mis_sold"];  // a THC vape in which the lab found MDMB-4en-PINACA
                }
                if (first) {
                    product_family = sold ? sold : named;
                    product = substances.Product(
                        Text(s, Text(s, "sold_as").empty() ? "name" : "sold_as"));
                    first = false;
                }
                const std::string strength = Text(s, "strength");
                if (lab && (strength == "high" || strength == "very_high")) ++n["strong_confirmed"];
                if (lab) {
                    ++n["confirmed"];
                    if (report_evidence == "confirmed")
                        --n["confirmed"];  // counted once per report
                }
                if (by == "test_strip" || by == "immunoassay") ++n["presumptive"];
                if (!Text(s, "appearance").empty() || !Text(s, "markings").empty())
                    ++n["new_appearance"];
            }
        }
    }
    n["sources"] = static_cast<long long>(organisations.size());
    if (family) {
        f.family = family->id;
        n["high_potency"] = family->high_potency ? 1 : 0;
        n["adulterant"] = family->adulterant ? 1 : 0;
    }
    f.evidence = std::string(kEvidence[evidence]);
    return f;
}

SignalFacts Merge(const SignalFacts& a, const SignalFacts& b, const Substances& substances) {
    SignalFacts out = a;
    for (const auto& [name, value] : b.numbers) {
        auto& mine = out.numbers[name];
        if (name == "closed_setting" || name == "high_potency" || name == "adulterant") {
            mine = std::max(mine, value);
        } else {
            mine += value;
        }
    }
    const Family* family =
        substances.MoreDangerous(a.family.empty() ? nullptr : substances.Find(a.family),
                                 b.family.empty() ? nullptr : substances.Find(b.family));
    out.family = family ? family->id : (a.family.empty() ? b.family : a.family);
    if (family) {
        out.numbers["high_potency"] = family->high_potency ? 1 : 0;
        out.numbers["adulterant"] = family->adulterant ? 1 : 0;
    }
    out.evidence = EvidenceRank(b.evidence) > EvidenceRank(a.evidence) ? b.evidence : a.evidence;
    if (out.evidence.empty()) out.evidence = "anecdotal";
    return out;
}

std::string FactsToJson(const SignalFacts& facts) {
    json::object o;
    for (const auto& [k, v] : facts.numbers) o[k] = v;
    o["family"] = facts.family;
    o["evidence"] = facts.evidence;
    return json::serialize(o);
}

SignalFacts FactsFromJson(std::string_view text) {
    SignalFacts f;
    json::error_code ec;
    const auto doc = json::parse(text, ec);
    if (ec || !doc.is_object()) return f;
    for (const auto& [k, v] : doc.as_object()) {
        if (k == "family" && v.is_string())
            f.family = std::string(v.as_string());
        else if (k == "evidence" && v.is_string())
            f.evidence = std::string(v.as_string());
        else if (v.is_int64() && FactNames().count(std::string(k)))
            f.numbers[std::string(k)] = v.as_int64();
    }
    // Facts stored before professional_deaths existed counted every death: keep them, so
    // that a live signal with a death is not lowered when its next report comes.
    if (!f.numbers.count("professional_deaths") && f.numbers.count("deaths"))
        f.numbers["professional_deaths"] = f.numbers["deaths"];
    return f;
}

Rules Rules::LoadFile(const std::string& path, const Substances& substances) {
    return Parse(detail::ReadTextFile(path, "rules"), path, substances);
}

Rules Rules::Parse(std::string_view toml_text, const std::string& origin,
                   const Substances& substances) {
    const toml::table root = detail::ParseToml(toml_text, origin);
    const auto where = [&](const toml::node& node) {
        return origin + ":" + std::to_string(node.source().begin.line);
    };
    std::vector<std::string> fields;
    for (const auto& [name, _] : FactNames()) fields.push_back(name);
    std::vector<std::string> families;
    for (const auto& f : substances.families()) families.push_back(f.id);
    std::vector<std::string> evidence(std::begin(kEvidence), std::end(kEvidence));

    for (const auto& [key, node] : root) {
        if (key.str() != "rule") {
            throw std::runtime_error(where(node) + ": unknown section \"" + std::string(key.str()) +
                                     "\" (each rule is a [[rule]])");
        }
    }
    const auto* list = root["rule"].as_array();
    if (list == nullptr || list->empty())
        throw std::runtime_error(origin + ":1: no [[rule]] entries");
    Rules rules;
    std::set<std::string> ids;
    for (const auto& node : *list) {
        const auto* t = node.as_table();
        if (t == nullptr) throw std::runtime_error(where(node) + ": each [[rule]] must be a table");
        Rule rule;
        for (const auto& [key, value] : *t) {
            const std::string k(key.str());
            if (k != "id" && k != "level" && k != "reason" && k != "when") {
                throw std::runtime_error(where(value) + ": unknown key \"" + k +
                                         "\" in a rule (expected id, level, reason, when)");
            }
        }
        rule.id = (*t)["id"].value_or(std::string());
        if (rule.id.empty()) throw std::runtime_error(where(node) + ": a rule has no id");
        if (!ids.insert(rule.id).second)
            throw std::runtime_error(where(node) + ": rule id \"" + rule.id + "\" is used twice");
        const std::string level = (*t)["level"].value_or(std::string());
        if (!ParseLevel(level, rule.level)) {
            throw std::runtime_error(where(node) + ": rule \"" + rule.id + "\" has level \"" +
                                     level + "\" (expected red, amber, green or none)");
        }
        rule.reason = (*t)["reason"].value_or(std::string());
        if (rule.reason.empty())
            throw std::runtime_error(where(node) + ": rule \"" + rule.id + "\" has no reason");
        const auto* when = (*t)["when"].as_array();
        if (when == nullptr || when->empty()) {
            throw std::runtime_error(where(node) + ": rule \"" + rule.id +
                                     "\" has no conditions: when = [\"deaths >= 1\", ...]");
        }
        for (const auto& c : *when) {
            const std::string text = c.value_or(std::string());
            std::istringstream words(text);
            Condition cond;
            std::string value;
            words >> cond.field >> cond.op >> value;
            std::string rest;
            words >> rest;
            const std::string at = where(c) + ": rule \"" + rule.id + "\" ";
            if (cond.field.empty() || cond.op.empty() || value.empty() || !rest.empty()) {
                throw std::runtime_error(at + "has condition \"" + text +
                                         "\"; write it as FIELD OP VALUE, "
                                         "such as \"deaths >= 1\"");
            }
            if (!FactNames().count(cond.field)) {
                throw std::runtime_error(at + "names unknown field \"" + cond.field + "\"" +
                                         DidYouMean(cond.field, fields));
            }
            static const std::set<std::string> kOps = {">=", ">", "<=", "<", "==", "!="};
            if (!kOps.count(cond.op)) {
                throw std::runtime_error(at + "uses operator \"" + cond.op +
                                         "\" (expected >=, >, <=, <, ==, !=)");
            }
            if (cond.field == "family" || cond.field == "evidence") {
                const auto& known = cond.field == "family" ? families : evidence;
                if (std::find(known.begin(), known.end(), value) == known.end()) {
                    throw std::runtime_error(at + "names unknown " + cond.field + " \"" + value +
                                             "\"" + DidYouMean(value, known));
                }
                if (cond.field == "family" && cond.op != "==" && cond.op != "!=") {
                    throw std::runtime_error(at + "compares family with \"" + cond.op +
                                             "\" (use == or !=)");
                }
                cond.word = value;
            } else {
                try {
                    std::size_t used = 0;
                    cond.number = std::stoll(value, &used);
                    if (used != value.size()) throw std::invalid_argument(value);
                } catch (const std::exception&) {
                    throw std::runtime_error(at + "compares " + cond.field + " with \"" + value +
                                             "\", which is not a whole number");
                }
            }
            rule.when.push_back(std::move(cond));
        }
        rules.rules_.push_back(std::move(rule));
    }
    return rules;
}

Grade Rules::Apply(const SignalFacts& facts) const {
    Grade grade;
    const auto compare = [](long long a, const std::string& op, long long b) {
        if (op == ">=") return a >= b;
        if (op == ">") return a > b;
        if (op == "<=") return a <= b;
        if (op == "<") return a < b;
        if (op == "==") return a == b;
        return a != b;
    };
    for (const auto& rule : rules_) {
        bool all = true;
        for (const auto& c : rule.when) {
            if (c.field == "family") {
                all = (facts.family == c.word) == (c.op == "==");
            } else if (c.field == "evidence") {
                all = compare(EvidenceRank(facts.evidence), c.op, EvidenceRank(c.word));
            } else {
                const auto it = facts.numbers.find(c.field);
                all = compare(it == facts.numbers.end() ? 0 : it->second, c.op, c.number);
            }
            if (!all) break;
        }
        if (!all) continue;
        grade.fired.push_back({rule.id, rule.level, rule.reason});
        grade.level = std::max(grade.level, rule.level);
    }
    const auto number = [&](const char* name) {
        const auto it = facts.numbers.find(name);
        return it == facts.numbers.end() ? 0LL : it->second;
    };
    if (number("under_18") > 0 && grade.level != Level::kRed) {
        grade.level = static_cast<Level>(static_cast<int>(grade.level) + 1);
        grade.fired.push_back(
            {"under-18", grade.level, "Someone under 18 was harmed: the level is raised by one."});
    }
    grade.confidence = facts.evidence;
    if (number("sources") >= 2 && EvidenceRank(grade.confidence) < EvidenceRank("corroborated")) {
        grade.confidence = "corroborated";
    }
    return grade;
}

std::string StrongestReason(const Grade& grade) {
    const FiredRule* strongest = nullptr;
    const FiredRule* raise = nullptr;
    for (const auto& f : grade.fired) {
        if (f.id == "under-18") {
            raise = &f;
        } else if (strongest == nullptr || f.level > strongest->level) {
            strongest = &f;
        }
    }
    if (strongest == nullptr) return raise ? raise->reason : std::string();
    return raise ? strongest->reason + " " + raise->reason : strongest->reason;
}

}  // namespace ldis::engine
