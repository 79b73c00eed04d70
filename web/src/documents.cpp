#include "documents.hpp"
#include "ldis/web/server.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "ldis/engine/messages.hpp"
#include "ldis/engine/scrubber.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/views.hpp"

namespace json = boost::json;

namespace ldis::web {
namespace {

json::object Sections(const std::string& body) {
    json::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object()) return {};
    auto o = std::move(v.as_object());
    o.erase("scrubbed");
    return o;
}

std::string Section(const json::object& sections, std::string_view name) {
    const auto* v = sections.if_contains(name);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// "EXERCISE – NOT A REAL ALERT: " before a drill's titles and headlines, else "".
std::string MarkingPrefix(const engine::Alert& a) {
    const std::string_view marking = engine::DrillMarking(a.drill);
    return marking.empty() ? std::string() : std::string(marking) + ": ";
}

std::string Title(const engine::Alert& a) {
    return MarkingPrefix(a) + engine::LevelLabel(engine::ToString(a.level)) + " " + a.reference +
           ": " + a.family + " in " + a.district;
}

}  // namespace

std::string EscapeMarkup(std::string_view text) {
    return engine::EscapeHtml(text);
}

std::string IsoTime(std::int64_t ms) {
    return engine::IsoTimeMs(ms);
}

std::optional<std::int64_t> ParseTime(std::string_view t) {
    const auto digits = [&](std::size_t at, std::size_t n) -> long {
        if (t.size() < at + n) return -1;
        long v = 0;
        for (std::size_t i = at; i < at + n; ++i) {
            if (t[i] < '0' || t[i] > '9') return -1;
            v = v * 10 + (t[i] - '0');
        }
        return v;
    };
    const long y = digits(0, 4), m = digits(5, 2), d = digits(8, 2);
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31 || t[4] != '-' || t[7] != '-')
        return std::nullopt;
    std::int64_t ms =
        engine::DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d)) * 86400000;
    if (t.size() == 10) return ms;
    const long hh = digits(11, 2), mm = digits(14, 2), ss = digits(17, 2);
    if (hh < 0 || mm < 0 || ss < 0 || (t[10] != 'T' && t[10] != ' ')) return std::nullopt;
    ms += ((hh * 60 + mm) * 60 + ss) * 1000LL;
    std::size_t i = 19;
    while (i < t.size() && (t[i] == '.' || (t[i] >= '0' && t[i] <= '9'))) ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
        const long oh = digits(i + 1, 2), om = digits(i + 4, 2);
        if (oh < 0 || om < 0) return std::nullopt;
        ms -= (t[i] == '+' ? 1 : -1) * (oh * 60 + om) * 60000LL;
    }
    return ms;
}

json::object AlertJson(const engine::Alert& a, const std::string& public_url) {
    json::array rules;
    for (const auto& r : a.rules) rules.emplace_back(r);
    return {
        {"reference", a.reference},
        {"version", a.version},
        {"status", engine::ToString(a.status)},
        {"drill", engine::ToString(a.drill)},
        {"level", engine::ToString(a.level)},
        {"level_label", engine::LevelLabel(engine::ToString(a.level))},
        {"provisional", a.provisional},
        {"confidence", a.confidence},
        {"audience", a.audience},
        {"family", a.family},
        {"authority", a.authority},
        {"district", a.district},
        {"reports", a.reports},
        {"rules", std::move(rules)},
        {"created_at", IsoTime(a.created_at_ms)},
        {"updated_at", IsoTime(a.updated_at_ms)},
        {"issued_at", a.issued_at_ms ? json::value(IsoTime(a.issued_at_ms)) : json::value(nullptr)},
        {"valid_until",
         a.valid_until_ms ? json::value(IsoTime(a.valid_until_ms)) : json::value(nullptr)},
        {"sections", Sections(a.body)},
        {"signal", a.signal_id},
        {"rules_level", a.override.rules_level},
        {"override", OverrideJson(a.override)},
        {"url", public_url + "/alerts/" + a.reference}};
}

json::value OverrideJson(const engine::SignalOverride& o) {
    if (o.level.empty()) return nullptr;
    return json::object{{"level", o.level},
                        {"reason", o.reason},
                        {"by", o.by},
                        {"at", IsoTime(o.at_ms)},
                        {"rules_level", o.rules_level}};
}

WordingCheck CheckWording(const std::map<std::string, std::string>& sections) {
    WordingCheck out;
    for (const auto& [name, text] : sections) {
        const auto c = engine::Scrub(text).counts;
        out.count += c.total();
        std::string said;
        const auto say = [&](int n, const char* one, const char* many) {
            if (n == 0) return;
            said += (said.empty() ? "" : ", ") + std::to_string(n) + " " + (n == 1 ? one : many);
        };
        say(c.names, "name", "names");
        say(c.addresses, "street address", "street addresses");
        say(c.nhs_numbers, "NHS number", "NHS numbers");
        say(c.dates_of_birth, "date of birth", "dates of birth");
        say(c.postcodes, "full postcode", "full postcodes");
        say(c.phone_numbers, "phone number", "phone numbers");
        say(c.emails, "email address", "email addresses");
        say(c.vehicles, "vehicle registration", "vehicle registrations");
        say(c.ni_numbers, "National Insurance number", "National Insurance numbers");
        say(c.hospital_numbers, "hospital or police number", "hospital or police numbers");
        say(c.prison_numbers + c.custody_numbers, "prison or custody number",
            "prison or custody numbers");
        say(c.handles, "social media handle", "social media handles");
        say(c.ages, "age next to a name", "ages next to names");
        if (!said.empty()) out.findings.emplace_back(name, said);
    }
    return out;
}

json::object AlertRecordJson(const engine::AlertRecord& record, const std::string& public_url) {
    json::object o = AlertJson(record.alert, public_url);
    json::array versions;
    for (const auto& v : record.versions) {
        json::error_code ec;
        auto rules = json::parse(v.rules, ec);
        json::array photos;  // the ids a coordinator chose to go out with this version
        for (const auto& p : engine::VersionPhotos(v.photos)) photos.emplace_back(p.id);
        versions.push_back({{"version", v.version},
                            {"status", engine::ToString(v.status)},
                            {"level", engine::ToString(v.level)},
                            {"confidence", v.confidence},
                            {"rules", ec ? json::value(json::array{}) : std::move(rules)},
                            {"created_at", IsoTime(v.created_at_ms)},
                            {"sections", Sections(v.body)},
                            {"photos", std::move(photos)}});
    }
    o["versions"] = std::move(versions);
    json::array reports;
    for (const auto& r : record.reports) reports.push_back(engine::ReportForCoordinators(r));
    o["linked_reports"] = std::move(reports);
    json::array deliveries, acknowledgements;
    for (const auto& d : record.deliveries) {
        deliveries.push_back(engine::DeliveryForCoordinators(d));
        if (d.acknowledged_at_ms > 0) {
            acknowledgements.push_back({{"delivery", d.id},
                                        {"partner", d.partner},
                                        {"contact", d.contact},
                                        {"version", d.version},
                                        {"at", IsoTime(d.acknowledged_at_ms)},
                                        // What the partner said it did (issue 17 §4).
                                        {"answer", d.answer},
                                        {"note", d.answer_note},
                                        {"answered_at", IsoTime(d.answered_at_ms)}});
        }
    }
    o["deliveries"] = std::move(deliveries);
    o["acknowledgements"] = std::move(acknowledgements);
    json::array audit;
    for (const auto& e : record.audit) {
        json::error_code ec;
        auto detail = json::parse(e.detail, ec);
        audit.push_back({{"seq", e.seq},
                         {"at", IsoTime(e.at_ms)},
                         {"actor", e.actor},
                         {"action", e.action},
                         {"subject", e.subject},
                         {"detail", ec ? json::value(e.detail) : std::move(detail)}});
    }
    o["audit"] = std::move(audit);
    return o;
}

std::string CapXml(const engine::AlertRecord& record, int version, const std::string& sender,
                   const std::string& public_url) {
    const auto& a = record.alert;
    const engine::AlertVersion* v = nullptr;
    for (const auto& candidate : record.versions) {
        if (candidate.version == (version > 0 ? version : a.version)) v = &candidate;
    }
    if (v == nullptr) return {};
    const auto identifier = [&](int n) { return a.reference + "-v" + std::to_string(n); };
    std::string references;
    std::int64_t first_issued = 0;
    for (const auto& earlier : record.versions) {
        if (earlier.version >= v->version || earlier.status == engine::AlertStatus::kDraft)
            continue;
        if (first_issued == 0) first_issued = earlier.created_at_ms;
        if (!references.empty()) references += " ";
        references +=
            sender + "," + identifier(earlier.version) + "," + IsoTime(earlier.created_at_ms);
    }
    const std::string msg_type = v->status == engine::AlertStatus::kCancelled ? "Cancel"
                                 : references.empty()                         ? "Alert"
                                                                              : "Update";
    const bool red = v->level == engine::Level::kRed, amber = v->level == engine::Level::kAmber;
    const char* urgency = red ? "Immediate" : amber ? "Expected" : "Future";
    const char* severity = red ? "Extreme" : amber ? "Severe" : "Moderate";
    const char* certainty = v->confidence == "confirmed"      ? "Observed"
                            : v->confidence == "corroborated" ? "Likely"
                            : v->confidence == "professional" ? "Possible"
                                                              : "Unknown";
    const auto sections = Sections(v->body);
    // A drill says so first in every part a reader may see alone (issue 16 §2).
    std::string description = MarkingPrefix(a) + Section(sections, "summary");
    for (const char* part : {"what", "harms"}) {
        const std::string text = Section(sections, part);
        if (!text.empty()) description += "\n\n" + text;
    }
    std::string instruction = Section(sections, "actions");
    const std::string naloxone = Section(sections, "naloxone");
    if (!naloxone.empty()) instruction += "\n\n" + naloxone;
    std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    x += "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\n";
    x += "  <identifier>" + EscapeMarkup(identifier(v->version)) + "</identifier>\n";
    x += "  <sender>" + EscapeMarkup(sender) + "</sender>\n";
    x += "  <sent>" + IsoTime(v->created_at_ms) + "</sent>\n";
    x += std::string("  <status>") +
         std::string(v->status == engine::AlertStatus::kDraft ? "Draft"
                                                              : engine::CapStatus(a.drill)) +
         "</status>\n";
    x += "  <msgType>" + msg_type + "</msgType>\n";
    x += "  <scope>Restricted</scope>\n";
    x += "  <restriction>For " + EscapeMarkup(a.audience) +
         " in Kent and Medway. Share only this official version.</restriction>\n";
    if (!references.empty()) x += "  <references>" + EscapeMarkup(references) + "</references>\n";
    x += "  <info>\n";
    x += "    <language>en-GB</language>\n";
    x += "    <category>Health</category>\n";
    x += "    <event>" + EscapeMarkup(engine::LevelLabel(engine::ToString(v->level))) + ": " +
         EscapeMarkup(a.family) + "</event>\n";
    x += std::string("    <responseType>") + (msg_type == "Cancel" ? "AllClear" : "Prepare") +
         "</responseType>\n";
    x += std::string("    <urgency>") + urgency + "</urgency>\n";
    x += std::string("    <severity>") + severity + "</severity>\n";
    x += std::string("    <certainty>") + certainty + "</certainty>\n";
    x += "    <audience>" + EscapeMarkup(a.audience) + "</audience>\n";
    if (a.valid_until_ms > 0) x += "    <expires>" + IsoTime(a.valid_until_ms) + "</expires>\n";
    x += "    <senderName>LDIS Kent and Medway</senderName>\n";
    x += "    <headline>" +
         EscapeMarkup(MarkingPrefix(a) + engine::LevelLabel(engine::ToString(v->level)) + " " +
                      a.reference + " v" + std::to_string(v->version) + ": " + a.family + " in " +
                      a.district) +
         "</headline>\n";
    x += "    <description>" + EscapeMarkup(description) + "</description>\n";
    if (!instruction.empty())
        x += "    <instruction>" + EscapeMarkup(instruction) + "</instruction>\n";
    x += "    <web>" + EscapeMarkup(public_url + "/alerts/" + a.reference) + "</web>\n";
    // What a peer LDIS routes by (issue 16 §1), in CAP's own place for system-specific values.
    for (const auto& [name, value] : std::initializer_list<std::pair<const char*, std::string>>{
             {"LDIS-reference", a.reference},
             {"LDIS-version", std::to_string(v->version)},
             {"LDIS-level", std::string(engine::ToString(v->level))},
             {"LDIS-authority", a.authority},
             {"LDIS-district", a.district},
             {"LDIS-family", a.family}})
        x += std::string("    <parameter><valueName>") + name + "</valueName><value>" +
             EscapeMarkup(value) + "</value></parameter>\n";
    // The photos a coordinator chose for this version (issue 17 §3): CAP 1.2 gives each its
    // size in bytes and its SHA-1 digest; the uri is the API's, for coordinators' tokens.
    for (const auto& photo : engine::VersionPhotos(v->photos)) {
        x += "    <resource>\n      <resourceDesc>Photo of the batch</resourceDesc>\n";
        x += "      <mimeType>image/jpeg</mimeType>\n";
        x += "      <size>" + std::to_string(photo.bytes) + "</size>\n";
        x += "      <uri>" + EscapeMarkup(public_url + "/api/v1/photos/" + photo.id) + "</uri>\n";
        x += "      <digest>" + photo.sha1 + "</digest>\n    </resource>\n";
    }
    x += "    <area>\n      <areaDesc>" + EscapeMarkup(a.district + ", " + a.authority) +
         "</areaDesc>\n    </area>\n";
    x += "  </info>\n</alert>\n";
    return x;
}

std::string AtomFeed(const std::vector<engine::Alert>& alerts, const std::string& public_url,
                     std::int64_t now_ms) {
    std::int64_t updated = 0;
    for (const auto& a : alerts) updated = std::max(updated, a.updated_at_ms);
    if (updated == 0) updated = now_ms;
    std::string x = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
    x += "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n";
    x += "  <id>" + EscapeMarkup(public_url) + "/feeds/alerts.atom</id>\n";
    x += "  <title>LDIS Kent and Medway: drug alerts</title>\n";
    x += "  <updated>" + IsoTime(updated) + "</updated>\n";
    x += "  <link rel=\"self\" href=\"" + EscapeMarkup(public_url) + "/feeds/alerts.atom\"/>\n";
    x += "  <author><name>LDIS Kent and Medway</name></author>\n";
    for (const auto& a : alerts) {
        const auto sections = Sections(a.body);
        x += "  <entry>\n";
        x += "    <id>" + EscapeMarkup(public_url) + "/alerts/" + EscapeMarkup(a.reference) +
             "</id>\n";
        x += "    <title>" +
             EscapeMarkup(Title(a) + " (v" + std::to_string(a.version) + ", " +
                          std::string(engine::ToString(a.status)) + ")") +
             "</title>\n";
        x += "    <updated>" + IsoTime(a.updated_at_ms) + "</updated>\n";
        if (a.issued_at_ms > 0) x += "    <published>" + IsoTime(a.issued_at_ms) + "</published>\n";
        x += "    <link rel=\"alternate\" href=\"" + EscapeMarkup(public_url) + "/alerts/" +
             EscapeMarkup(a.reference) + "\"/>\n";
        x += "    <category term=\"" + EscapeMarkup(engine::ToString(a.level)) + "\"/>\n";
        x += "    <summary>" + EscapeMarkup(Section(sections, "summary")) + "</summary>\n";
        x += "  </entry>\n";
    }
    x += "</feed>\n";
    return x;
}

PublicAlert PublicView(const engine::Alert& a) {
    PublicAlert p;
    p.reference = a.reference;
    p.version = a.version;
    p.level = std::string(engine::ToString(a.level));
    p.level_label = engine::LevelLabel(p.level);
    std::string family = a.family.empty() ? std::string("an unidentified substance") : a.family;
    std::replace(family.begin(), family.end(), '_', ' ');
    family[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(family[0])));
    p.title = p.level_label + ": " + family + " in " + a.district;
    p.cancelled = a.status == engine::AlertStatus::kCancelled;
    p.in_force =
        a.status == engine::AlertStatus::kIssued || a.status == engine::AlertStatus::kUpdated;
    p.status = p.cancelled ? "Cancelled" : p.in_force ? "In force" : "Expired";
    const auto sections = Sections(a.body);
    p.advice = Section(sections, "advice");
    p.overdose = Section(sections, "naloxone");
    p.issued = a.issued_at_ms > 0 ? engine::HumanDateMs(a.issued_at_ms) : std::string();
    p.updated = engine::HumanTimeMs(a.updated_at_ms);
    return p;
}

std::string PublicAtomFeed(const std::vector<engine::Alert>& alerts, const std::string& public_url,
                           const std::string& issuer, std::int64_t now_ms) {
    std::int64_t updated = 0;
    for (const auto& a : alerts) updated = std::max(updated, a.updated_at_ms);
    if (updated == 0) updated = now_ms;
    const std::string base = EscapeMarkup(public_url) + "/public/alerts";
    std::string x = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
    x += "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n";
    x += "  <id>" + base + ".atom</id>\n";
    x += "  <title>Drug alerts for the public in Kent and Medway</title>\n";
    x += "  <updated>" + IsoTime(updated) + "</updated>\n";
    x += "  <link rel=\"self\" href=\"" + base + ".atom\"/>\n";
    x += "  <link rel=\"alternate\" href=\"" + base + "\"/>\n";
    x += "  <author><name>" + EscapeMarkup(issuer) + "</name></author>\n";
    for (const auto& a : alerts) {
        const PublicAlert p = PublicView(a);
        x += "  <entry>\n";
        x += "    <id>" + base + "/" + EscapeMarkup(p.reference) + "</id>\n";
        x += "    <title>" +
             EscapeMarkup((p.cancelled ? "Cancelled: " : "") + p.title + " (" + p.reference + ")") +
             "</title>\n";
        x += "    <updated>" + IsoTime(a.updated_at_ms) + "</updated>\n";
        if (a.issued_at_ms > 0) x += "    <published>" + IsoTime(a.issued_at_ms) + "</published>\n";
        x += "    <link rel=\"alternate\" href=\"" + base + "/" + EscapeMarkup(p.reference) +
             "\"/>\n";
        x += "    <category term=\"" + EscapeMarkup(p.level) + "\"/>\n";
        x += "    <summary>" +
             EscapeMarkup(p.cancelled ? "This alert has been cancelled." : p.advice) +
             "</summary>\n";
        x += "  </entry>\n";
    }
    x += "</feed>\n";
    return x;
}

std::string CapDocument(const engine::AlertRecord& record, int version, const std::string& sender,
                        const std::string& public_url) {
    return CapXml(record, version, sender, public_url);
}

}  // namespace ldis::web
