#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/lifecycle.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace json = boost::json;

namespace ldis::engine {

struct ReportValidator::Schema {
    json::value document;
    valijson::Schema compiled;
};

namespace {

constexpr std::string_view kSourceTypes[] = {
    "panel",     "coroner",  "custody",        "police", "hospital", "ambulance",
    "treatment", "outreach", "drug_checking",  "prison", "pharmacy", "gp",
    "housing",   "youth",    "national_alert", "public", "other"};

std::string EscapePointerToken(std::string_view token) {
    std::string out;
    for (char c : token) {
        if (c == '~')
            out += "~0";
        else if (c == '/')
            out += "~1";
        else
            out.push_back(c);
    }
    return out;
}

// valijson's context is {"<root>", "[area]", "[district]"}; a JSON pointer is "/area/district".
std::vector<std::string> ContextTokens(const std::vector<std::string>& context) {
    std::vector<std::string> tokens;
    for (const auto& part : context) {
        if (part == "<root>") continue;
        if (part.size() >= 2 && part.front() == '[' && part.back() == ']') {
            tokens.push_back(part.substr(1, part.size() - 2));
        } else {
            tokens.push_back(part);
        }
    }
    return tokens;
}

std::string Pointer(const std::vector<std::string>& tokens) {
    std::string out;
    for (const auto& t : tokens) out += "/" + EscapePointerToken(t);
    return out;
}

// The schema node that describes the instance at `tokens`, or nullptr.
const json::object* SchemaAt(const json::value& schema, const std::vector<std::string>& tokens) {
    const json::object* node = schema.if_object();
    for (const auto& token : tokens) {
        if (node == nullptr) return nullptr;
        if (const auto* props = node->if_contains("properties");
            props && props->is_object() && props->as_object().contains(token)) {
            node = props->as_object().at(token).if_object();
        } else if (const auto* items = node->if_contains("items"); items && items->is_object()) {
            node = &items->as_object();
        } else {
            return nullptr;
        }
    }
    return node;
}

const json::value* InstanceAt(const json::value& doc, const std::vector<std::string>& tokens) {
    const json::value* node = &doc;
    for (const auto& token : tokens) {
        if (const auto* obj = node->if_object()) {
            node = obj->if_contains(token);
        } else if (const auto* arr = node->if_array()) {
            std::size_t index = 0;
            try {
                index = std::stoul(token);
            } catch (...) {
                return nullptr;
            }
            node = index < arr->size() ? &(*arr)[index] : nullptr;
        } else {
            return nullptr;
        }
        if (node == nullptr) return nullptr;
    }
    return node;
}

std::string KindOf(const json::value& v) {
    switch (v.kind()) {
        case json::kind::null:
            return "null";
        case json::kind::bool_:
            return "true/false";
        case json::kind::int64:
        case json::kind::uint64:
            return "a whole number";
        case json::kind::double_:
            return "a number";
        case json::kind::string:
            return "text";
        case json::kind::array:
            return "a list";
        case json::kind::object:
            return "an object";
    }
    return "a value";
}

std::string TypeWanted(std::string_view type) {
    if (type == "string") return "text (a JSON string)";
    if (type == "integer") return "a whole number";
    if (type == "number") return "a number";
    if (type == "boolean") return "true or false";
    if (type == "array") return "a list";
    if (type == "object") return "an object";
    return std::string(type);
}

std::string Quoted(const json::value& v) {
    std::string s = json::serialize(v);
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}

std::string EnumList(const json::array& values) {
    std::string out;
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i != 0) out += ", ";
        out +=
            values[i].is_string() ? std::string(values[i].as_string()) : json::serialize(values[i]);
    }
    return out;
}

std::string NumberText(const json::value* v) {
    return v == nullptr ? std::string("?") : json::serialize(*v);
}

// Turns one valijson error into a FieldError a person can act on, or nullopt for the
// wrapper errors that valijson adds above each real one.
std::optional<FieldError> Explain(const valijson::ValidationResults::Error& error,
                                  const json::value& schema, const json::value& doc) {
    const std::string& d = error.description;
    for (std::string_view wrapper :
         {"Failed to validate against schema associated with property name",
          "Failed to validate item #", "Failed to validate against additional properties",
          "Object contains a property that could not be validated",
          "Failed to validate against child schema", "Cannot validate item #",
          "Failed to validate against any schemas allowed by anyOf"}) {
        if (d.rfind(wrapper, 0) == 0) return std::nullopt;
    }
    auto tokens = ContextTokens(error.context);
    const json::object* node = SchemaAt(schema, tokens);
    const json::value* value = InstanceAt(doc, tokens);
    const auto at = [&](std::string_view key) -> const json::value* {
        return node == nullptr ? nullptr : node->if_contains(key);
    };

    if (d.rfind("Missing required property '", 0) == 0) {
        const auto start = d.find('\'') + 1;
        const auto name = d.substr(start, d.find('\'', start) - start);
        tokens.push_back(name);
        return FieldError{Pointer(tokens), "is required"};
    }
    const std::string path = Pointer(tokens);
    // A receipt never repeats what was sent: the value could be free text about a person,
    // and a source's receipts topic is read by every organisation of that source type.
    // Numbers and booleans are no one's words: they are named, to help the fix.
    const std::string got = value != nullptr && (value->is_number() || value->is_bool())
                                ? " (got " + Quoted(*value) + ")"
                                : "";
    if (d.rfind("Failed to match against any enum values", 0) == 0) {
        const auto* values = at("enum");
        return FieldError{path,
                          "must be one of: " +
                              (values && values->is_array() ? EnumList(values->as_array())
                                                            : std::string("the listed values")) +
                              got};
    }
    if (d.rfind("Failed to match expected value set by 'const'", 0) == 0) {
        const auto* expected = at("const");
        return FieldError{
            path, "must be " +
                      (expected ? json::serialize(*expected) : std::string("the fixed value")) +
                      got};
    }
    if (d.rfind("Value type not permitted", 0) == 0) {
        const auto* type = at("type");
        const std::string wanted =
            type && type->is_string() ? TypeWanted(type->as_string()) : "another type";
        return FieldError{
            path, "must be " + wanted + (value ? ", not " + KindOf(*value) : std::string())};
    }
    if (d.rfind("Failed to match regex", 0) == 0 || d.rfind("String should be a valid", 0) == 0) {
        const auto* description = at("description");
        std::string hint = description && description->is_string()
                               ? std::string(description->as_string())
                               : std::string("the documented form");
        return FieldError{path, "must be " + hint + got};
    }
    if (d.rfind("Expected number greater than", 0) == 0) {
        return FieldError{path, "must be at least " + NumberText(at("minimum")) + got};
    }
    if (d.rfind("Expected number less than", 0) == 0) {
        return FieldError{path, "must be at most " + NumberText(at("maximum")) + got};
    }
    if (d.rfind("String should be no more than", 0) == 0) {
        return FieldError{path,
                          "must be at most " + NumberText(at("maxLength")) + " characters long"};
    }
    if (d.rfind("String should be no fewer than", 0) == 0) {
        return FieldError{path, "must not be empty"};
    }
    if (d.rfind("Array should contain no fewer than", 0) == 0) {
        return FieldError{path, "must list at least " + NumberText(at("minItems")) + " item(s)"};
    }
    if (d.rfind("Array should contain no more than", 0) == 0) {
        return FieldError{path, "must list at most " + NumberText(at("maxItems")) + " items"};
    }
    return FieldError{path, d};
}

// Lists every field that the schema does not know, which valijson reports only once per object.
void FindUnknownFields(const json::value& doc, const json::object* schema,
                       std::vector<std::string>& tokens, std::vector<FieldError>& errors) {
    if (schema == nullptr) return;
    if (const auto* obj = doc.if_object()) {
        const auto* props = schema->if_contains("properties");
        const json::object* known = props ? props->if_object() : nullptr;
        const auto* additional = schema->if_contains("additionalProperties");
        const bool closed = additional && additional->is_bool() && !additional->as_bool();
        for (const auto& [key, child] : *obj) {
            tokens.emplace_back(key);
            const json::value* child_schema = known ? known->if_contains(key) : nullptr;
            if (child_schema == nullptr) {
                if (closed) {
                    errors.push_back({Pointer(tokens),
                                      "unknown field \"" + std::string(key) +
                                          "\": ldis.report/1 has no such field",
                                      /*sent_key=*/true});
                }
            } else {
                FindUnknownFields(child, child_schema->if_object(), tokens, errors);
            }
            tokens.pop_back();
        }
    } else if (const auto* arr = doc.if_array()) {
        const auto* items = schema->if_contains("items");
        if (items == nullptr || !items->is_object()) return;
        for (std::size_t i = 0; i < arr->size(); ++i) {
            tokens.push_back(std::to_string(i));
            FindUnknownFields((*arr)[i], &items->as_object(), tokens, errors);
            tokens.pop_back();
        }
    }
}

std::string LineColumn(std::string_view text, std::size_t offset) {
    std::size_t line = 1;
    std::size_t column = 1;
    for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return "line " + std::to_string(line) + " column " + std::to_string(column);
}

std::string StringAt(const json::object& obj, std::string_view key) {
    const auto* v = obj.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The schema's pattern checks the form of an RFC 3339 date; this checks that the day
// exists (no 30 February), which a regular expression cannot do well.
std::optional<FieldError> CheckCalendarDate(const json::object& obj, std::string_view key) {
    const auto* v = obj.if_contains(key);
    if (v == nullptr || !v->is_string() || v->as_string().size() < 10) return std::nullopt;
    const std::string_view text = v->as_string();
    const auto number = [&](std::size_t at, std::size_t len) {
        int n = 0;
        for (std::size_t i = at; i < at + len; ++i) {
            if (text[i] < '0' || text[i] > '9') return -1;
            n = n * 10 + (text[i] - '0');
        }
        return n;
    };
    const int year = number(0, 4);
    const int month = number(5, 2);
    const int day = number(8, 2);
    if (year < 0 || month < 1 || month > 12 || day < 1)
        return std::nullopt;  // the pattern reports these
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const int last = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
    if (day <= last) return std::nullopt;
    return FieldError{"/" + std::string(key), "must be a date that exists (" +
                                                  std::string(text.substr(0, 10)) + " does not)"};
}

std::string Lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

bool IsValidUtf8(std::string_view text, std::size_t* bad_offset) {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07u;
        } else {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        if (i + len > n) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        for (std::size_t k = 1; k < len; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) {
                if (bad_offset) *bad_offset = i;
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        const bool overlong =
            (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
        if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            if (bad_offset) *bad_offset = i;
            return false;
        }
        i += len;
    }
    return true;
}

ReportValidator::ReportValidator(std::string_view schema_json, const std::string& schema_origin,
                                 Areas areas)
    : schema_(std::make_unique<Schema>()), areas_(std::move(areas)) {
    json::error_code ec;
    schema_->document = json::parse(schema_json, ec);
    if (ec) throw std::runtime_error(schema_origin + ": not valid JSON: " + ec.message());
    try {
        valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
        valijson::adapters::BoostJsonAdapter adapter(schema_->document);
        parser.populateSchema(adapter, schema_->compiled);
    } catch (const std::exception& e) {
        throw std::runtime_error(schema_origin + ": not a usable JSON Schema: " + e.what());
    }
}

ReportValidator::~ReportValidator() = default;

Validation ReportValidator::Validate(std::string_view payload,
                                     std::string_view topic_source) const {
    Validation out;
    auto& errors = out.errors;
    if (payload.size() > kMaxPayloadBytes) {
        errors.push_back({"", "payload is " + std::to_string(payload.size()) +
                                  " bytes; the limit is " + std::to_string(kMaxPayloadBytes) +
                                  " bytes (64 KiB)"});
        return out;
    }
    std::size_t bad = 0;
    if (!IsValidUtf8(payload, &bad)) {
        errors.push_back({"", "payload is not valid UTF-8 (first bad byte at offset " +
                                  std::to_string(bad) + ")"});
        return out;
    }
    json::stream_parser parser;
    json::error_code ec;
    const std::size_t used = parser.write(payload.data(), payload.size(), ec);
    if (!ec) parser.finish(ec);
    if (ec) {
        errors.push_back(
            {"", "malformed JSON at " + LineColumn(payload, used) + ": " + ec.message()});
        return out;
    }
    const json::value doc = parser.release();
    if (!doc.is_object()) {
        errors.push_back({"", "a report must be a JSON object, not " + KindOf(doc)});
        return out;
    }
    const auto& obj = doc.as_object();
    if (const auto* schema = obj.if_contains("schema");
        schema && schema->is_string() && schema->as_string() != kSchemaId &&
        schema->as_string().starts_with("ldis.report/")) {
        errors.push_back(
            {"/schema", "unknown schema version \"" + std::string(schema->as_string()) +
                            "\"; this server accepts \"" + std::string(kSchemaId) + "\""});
        return out;
    }

    std::vector<std::string> tokens;
    FindUnknownFields(doc, schema_->document.if_object(), tokens, errors);
    thread_local valijson::Validator validator;  // caches compiled regexes per thread
    valijson::ValidationResults results;
    valijson::adapters::BoostJsonAdapter target(doc);
    if (!validator.validate(schema_->compiled, target, &results)) {
        valijson::ValidationResults::Error error;
        while (results.popError(error)) {
            if (auto explained = Explain(error, schema_->document, doc)) {
                if (std::find(errors.begin(), errors.end(), *explained) == errors.end()) {
                    errors.push_back(std::move(*explained));
                }
            }
        }
    }

    for (std::string_view key : {"submitted_at", "observed_at"}) {
        if (auto error = CheckCalendarDate(obj, key)) errors.push_back(std::move(*error));
    }

    const std::string source_type = obj.contains("source") && obj.at("source").is_object()
                                        ? StringAt(obj.at("source").as_object(), "type")
                                        : std::string();
    if (!topic_source.empty()) {
        const bool known = std::find(std::begin(kSourceTypes), std::end(kSourceTypes),
                                     topic_source) != std::end(kSourceTypes);
        if (!known) {
            errors.push_back(
                {"", "published to ldis/v1/reports/" + std::string(topic_source) + ", but \"" +
                         std::string(topic_source) +
                         "\" is not a source type; publish to ldis/v1/reports/{source.type}"});
        } else if (std::find(std::begin(kSourceTypes), std::end(kSourceTypes), source_type) !=
                       std::end(kSourceTypes) &&
                   source_type != topic_source) {
            errors.push_back(
                {"/source/type", "is \"" + source_type +
                                     "\" but the report was published to ldis/v1/reports/" +
                                     std::string(topic_source)});
        }
    }

    Report report;
    if (const auto* area_value = obj.if_contains("area"); area_value && area_value->is_object()) {
        const auto& area = area_value->as_object();
        const std::string authority = StringAt(area, "authority");
        const std::string district = StringAt(area, "district");
        const auto owner = areas_.AuthorityOf(district);
        if (!authority.empty() && owner && *owner != authority) {
            errors.push_back(
                {"/area/district", "\"" + district + "\" is in " + *owner + ", not " + authority});
        }
        if (const auto* ward = area.if_contains("ward"); ward && ward->is_string() && owner) {
            if (auto match = areas_.FindWard(district, ward->as_string())) {
                report.ward = match->name;
                report.ward_current = match->current;
            } else {
                errors.push_back({"/area/ward", "is not a ward of " + district +
                                                    " in config/areas.toml (check the "
                                                    "spelling, or leave it out)"});
            }
        }
        if (const auto* est = area.if_contains("establishment"); est && est->is_string()) {
            if (const auto* found = areas_.FindEstablishment(est->as_string())) {
                if (owner && found->district != district) {
                    errors.push_back(
                        {"/area/establishment",
                         found->name + " is in " + found->district + ", not " + district});
                }
                report.establishment = found->name;
            } else {
                errors.push_back({"/area/establishment",
                                  "is not a prison, custody suite or hospital in "
                                  "config/areas.toml (check the spelling, or leave it out)"});
            }
        }
        report.authority = authority;
        report.district = district;
    }
    if (!errors.empty()) return out;

    report.id = Lower(StringAt(obj, "id"));
    report.submitted_at = StringAt(obj, "submitted_at");
    report.observed_at = StringAt(obj, "observed_at");
    report.source_type = source_type;
    report.organisation = StringAt(obj.at("source").as_object(), "organisation");
    report.evidence = StringAt(obj, "evidence");
    ParseDrill(StringAt(obj, "drill"), report.drill);  // the schema allows only its words
    if (const auto* photos = obj.if_contains("photos"); photos && photos->is_array()) {
        for (const auto& id : photos->as_array())
            report.photos.emplace_back(id.as_string());  // the schema allows only ids
    }
    report.document = json::serialize(doc);
    out.report = std::move(report);
    return out;
}

std::shared_ptr<const ReportValidator> LoadReportValidator(const std::string& schema_path,
                                                           const std::string& areas_path) {
    std::ifstream in(schema_path, std::ios::binary);
    if (!in) throw std::runtime_error(schema_path + ": cannot open the report schema");
    std::ostringstream text;
    text << in.rdbuf();
    return std::make_shared<const ReportValidator>(text.str(), schema_path,
                                                   Areas::LoadFile(areas_path));
}

}  // namespace ldis::engine
