#include "ldis/engine/messages.hpp"

#include "messages_internal.hpp"

#include <boost/json.hpp>
#include <kainjow/mustache.hpp>
#include <memory>
#include <unordered_map>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "ldis/engine/codec.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"

namespace json = boost::json;
namespace mus = kainjow::mustache;

namespace ldis::engine {
namespace messages_detail {

const std::vector<std::pair<std::string, std::string>> kHeadings = {
    {"summary", "One-minute summary"},
    {"what", "What is happening"},
    {"evidence", "Evidence and confidence"},
    {"harms", "Harms and warning signs"},
    {"actions", "Actions for professionals"},
    {"advice", "Advice for people who use drugs"},
    {"naloxone", "Naloxone and overdose response"},
    {"report", "How to report further cases"},
    {"contacts", "Contacts"},
    {"sharing", "Sharing"},
    {"acknowledgement", "Acknowledgement"},
    {"history", "Version history"},
};

std::string Upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

json::object Sections(const OutboxItem& item) {
    json::error_code ec;
    auto v = json::parse(item.body, ec);
    if (ec || !v.is_object()) return {};
    return std::move(v.as_object());
}

std::string Section(const json::object& sections, std::string_view name) {
    const auto* v = sections.if_contains(name);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string DetailText(const OutboxItem& item, std::string_view key) {
    json::error_code ec;
    const auto v = json::parse(item.detail.empty() ? "{}" : item.detail, ec);
    if (ec || !v.is_object()) return {};
    const auto* x = v.as_object().if_contains(key);
    if (x == nullptr) return {};
    return x->is_string() ? std::string(x->as_string()) : json::serialize(*x);
}

std::string ReadTemplate(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": missing: every message needs its template");
    std::ostringstream text;
    text << in.rdbuf();
    mus::mustache t{text.str()};
    if (!t.is_valid()) throw std::runtime_error(path + ": " + t.error_message());
    return text.str();
}

// Parsing a template costs more than rendering it, so each thread keeps the templates it
// has parsed (a reload brings new text, hence new entries; there are only ever a handful).
std::string Render(const std::string& text, const mus::data& data, bool html) {
    thread_local std::unordered_map<std::string, std::unique_ptr<mus::mustache>> compiled[2];
    auto& cache = compiled[html ? 1 : 0];
    auto it = cache.find(text);
    if (it == cache.end()) {
        if (cache.size() > 32) cache.clear();
        auto t = std::make_unique<mus::mustache>(text);
        if (!html) t->set_custom_escape([](const std::string& s) { return s; });
        it = cache.emplace(text, std::move(t)).first;
    }
    return it->second->render(data);
}

void ReplaceAll(std::string& in, std::string_view mark, std::string_view with) {
    for (auto at = in.find(mark); at != std::string::npos; at = in.find(mark, at + with.size()))
        in.replace(at, mark.size(), with);
}

// The page a message links to: its alert's, or the dashboard for a notice about no alert.
std::string AlertUrl(const OutboxItem& item, const std::string& public_url) {
    // A notice about no alert, or a peer's alert (not one of this instance's): the dashboard.
    return item.reference.empty() || item.kind == kKindFederated
               ? public_url + "/"
               : public_url + "/alerts/" + item.reference;
}

std::string Title(const OutboxItem& item) {
    const std::string label =
        item.family_label.empty() ? "an unidentified substance" : item.family_label;
    std::string title = label + " in " + item.district;
    if (!title.empty())
        title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
    return title;
}

// A section as stored ends with its template's line break; a message lays out its own.
std::string Trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

// At most one blank line in a row: a section of the template that is absent from this
// message (an escalation, a cancellation) leaves its line behind.
std::string OneBlankLine(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    int newlines = 0;
    for (const char c : text) {
        newlines = c == '\n' ? newlines + 1 : 0;
        if (newlines <= 2) out.push_back(c);
    }
    return out;
}

// The banner's colours (GOV.UK's red, orange and green; grey for a cancellation), each
// with a text colour of at least 4.5:1 contrast on it.
std::pair<std::string, std::string> BannerColours(const OutboxItem& item) {
    if (item.status == "cancelled") return {"#505a5f", "#ffffff"};
    if (item.level == "red") return {"#d4351c", "#ffffff"};
    if (item.level == "amber") return {"#f47738", "#0b0c0c"};
    if (item.level == "green") return {"#00703c", "#ffffff"};
    return {"#505a5f", "#ffffff"};
}

// An alert for partners (the alert, its escalation, a peer's, the MQTT document), as against
// a notice to the coordinators (an approval, a page, a failed delivery, a feed).
bool ForPartners(const OutboxItem& item) {
    return item.kind == kKindAlert || item.kind == kKindEscalation || item.kind == kKindFederated ||
           item.kind == kKindMqtt;
}

// The one line a partner must act on: the level's action, or to stop sharing a cancelled
// alert; "" for a notice to the coordinators (its own words say what to do).
std::string ActionOf(const OutboxItem& item) {
    if (!ForPartners(item)) return {};
    if (item.status == "cancelled") return "Stop sharing this alert: it is cancelled.";
    return LevelAction(item.level);
}

mus::data AlertData(const OutboxItem& item, const MessageContext& context) {
    const auto sections = Sections(item);
    mus::data d;
    d.set("reference", item.reference);
    d.set("version", std::to_string(item.version));
    d.set("level", Upper(item.level));
    d.set("level_label", LevelLabel(item.level));
    d.set("status", item.status);
    d.set("title", Title(item));
    d.set("authority", item.authority);
    d.set("district", item.district);
    d.set("confidence", item.confidence);
    d.set("audience", item.audience);
    if (item.provisional) d.set("provisional", true);
    if (item.status == "cancelled") d.set("cancelled", true);
    d.set("issued", HumanTimeMs(item.issued_at_ms));
    d.set("updated", HumanTimeMs(item.created_at_ms));
    d.set("valid_until", HumanTimeMs(item.valid_until_ms));
    d.set("alert_url", AlertUrl(item, context.public_url));
    if (!context.ack_url.empty()) d.set("ack_url", context.ack_url);
    if (!context.unsubscribe_url.empty()) d.set("unsubscribe_url", context.unsubscribe_url);
    // The sections a partner reads under the banner and the action (issue 17 §6): the
    // summary is what the banner and the action already say, the acknowledgement request
    // sits under its button, and the history with the record at the end.
    mus::data details{mus::data::type::list};
    for (const auto& [name, heading] : SectionHeadings()) {
        if (name == "summary" || name == "acknowledgement" || name == "history") continue;
        const std::string text = Trimmed(Section(sections, name));
        if (text.empty()) continue;
        mus::data s;
        s.set("heading", heading);
        s.set("heading_upper", Upper(heading));
        s.set("text", text);
        details << s;
    }
    d.set("details", details);
    if (const auto photos = PhotosOf(item); !photos.empty()) {
        // Photos of the batch, last of the sections and after their warning (issue 17 §3).
        mus::data list{mus::data::type::list};
        const std::string what =
            item.family_label.empty() ? std::string("the substance") : item.family_label;
        for (std::size_t i = 0; i < photos.size(); ++i) {
            mus::data p;
            p.set("cid", photos[i].content_id);
            p.set("alt", "Photo " + std::to_string(i + 1) + " of " + std::to_string(photos.size()) +
                             ": the batch reported (" + what + ") in " +
                             Place(item.district, item.authority) + ", as sent to " +
                             item.reference + ".");
            list << p;
        }
        d.set("photos", list);
        d.set("photos_text",
              photos.size() == 1
                  ? std::string("One photo of the batch comes with this email, in its formatted "
                                "version, after a warning.")
                  : std::to_string(photos.size()) +
                        " photos of the batch come with this email, in its formatted version, "
                        "after a warning.");
    }
    if (const std::string t = Trimmed(Section(sections, "acknowledgement")); !t.empty())
        d.set("acknowledge_text", t);
    if (const std::string t = Trimmed(Section(sections, "history")); !t.empty())
        d.set("history_text", t);
    d.set("place", Place(item.district, item.authority));
    d.set("action", ActionOf(item));
    const auto [background, foreground] = BannerColours(item);
    d.set("banner_bg", background);
    d.set("banner_fg", foreground);
    if (const std::string_view marking = MarkingOf(item); !marking.empty())
        d.set("marking", std::string(marking));
    // A peer's alert says whose it is in the banner, as its subject does (issue 16 §1).
    if (item.kind == kKindFederated) d.set("issuer", "Issued by " + DetailText(item, "peer_name"));
    if (item.kind == kKindEscalation) {
        d.set("escalation", true);
        d.set("escalated_partner", DetailText(item, "partner_name"));
        d.set("ack_within", DetailText(item, "ack_within"));
        // Acknowledged, but nothing said of what it did (issue 17 §4), or nothing at all.
        if (DetailText(item, "answer") == "received") d.set("escalation_received", true);
    }
    return d;
}

}  // namespace messages_detail

using namespace messages_detail;

std::vector<VersionPhoto> VersionPhotos(std::string_view photos_json) {
    std::vector<VersionPhoto> out;
    if (photos_json.empty()) return out;
    json::error_code ec;
    const auto doc = json::parse(photos_json, ec);
    if (ec || !doc.is_array()) return out;
    for (const auto& v : doc.as_array()) {
        const auto* o = v.if_object();
        if (!o) continue;
        VersionPhoto p;
        const auto text = [&](const char* key) {
            const auto* f = o->if_contains(key);
            return f && f->is_string() ? std::string(f->as_string()) : std::string();
        };
        const auto number = [&](const char* key) {
            const auto* f = o->if_contains(key);
            return f && f->is_int64() ? f->as_int64() : std::int64_t{0};
        };
        p.id = text("id");
        p.sha1 = text("sha1");
        p.bytes = number("bytes");
        p.width = static_cast<int>(number("width"));
        p.height = static_cast<int>(number("height"));
        // Only what the store writes: "ph-" and hex. Anything else is not a photo of ours.
        if (p.id.size() != 35 || !p.id.starts_with("ph-") ||
            p.id.find_first_not_of("0123456789abcdef", 3) != std::string::npos)
            continue;
        p.content_id = p.id + "@ldis";
        out.push_back(std::move(p));
    }
    return out;
}

const std::vector<std::pair<std::string, std::string>>& SectionHeadings() {
    return kHeadings;
}

std::string EmailAddressOf(const std::string& from) {
    const auto open = from.find('<');
    const auto close = from.find('>', open);
    return open != std::string::npos && close != std::string::npos
               ? from.substr(open + 1, close - open - 1)
               : from;
}

MessageTemplates MessageTemplates::LoadDir(const std::string& folder) {
    MessageTemplates t;
    t.alert_text = ReadTemplate(folder + "/email/alert.txt.mustache");
    t.alert_html = ReadTemplate(folder + "/email/alert.html.mustache");
    t.notice_text = ReadTemplate(folder + "/email/notice.txt.mustache");
    t.notice_html = ReadTemplate(folder + "/email/notice.html.mustache");
    t.teams = ReadTemplate(folder + "/chat/teams.json.mustache");
    t.slack = ReadTemplate(folder + "/chat/slack.json.mustache");
    CheckChatTemplate(folder + "/chat/teams.json.mustache", t.teams, true);
    CheckChatTemplate(folder + "/chat/slack.json.mustache", t.slack, false);
    return t;
}

std::string AlertSubject(const OutboxItem& item) {
    const auto [headline, text] = Headline(item);
    return headline;
}

namespace {

std::pair<std::string, std::string> HeadlineOf(const OutboxItem& item);

}  // namespace

// "EXERCISE – NOT A REAL ALERT" for a drill's row, else "".
std::string_view messages_detail::MarkingOf(const OutboxItem& item) {
    Drill drill = Drill::kNone;
    ParseDrill(item.drill, drill);
    return DrillMarking(drill);
}

// A drill's marking comes before anything else in every message (issue 16 §2): the subject,
// the first line of the text and of the HTML, the chat card's title, the SMS.
std::pair<std::string, std::string> Headline(const OutboxItem& item) {
    auto [headline, text] = HeadlineOf(item);
    if (const std::string_view marking = MarkingOf(item); !marking.empty()) {
        headline = std::string(marking) + ": " + headline;
        text = std::string(marking) + ". " + text;
    }
    return {std::move(headline), std::move(text)};
}

namespace {

std::pair<std::string, std::string> HeadlineOf(const OutboxItem& item) {
    const std::string tag = "[LDIS " + Upper(item.level) + " \xE2\x80\x93 " +
                            LevelLabel(item.level) + "] " + item.reference + " v" +
                            std::to_string(item.version);
    const auto sections = Sections(item);
    const std::string summary = Section(sections, "summary");
    if (item.kind == kKindApproval && item.level == "red")
        // A red draft (a report of unverified origin, or policy.red = "draft"): nobody
        // outside the coordinators knows yet, so this is a page, not a queue item.
        return {"[LDIS RED waits for you \xE2\x80\x93 approve or cancel now] " + item.reference +
                    " v" + std::to_string(item.version) + ": " + Title(item),
                "A red Drug Alert waits for a coordinator's approval: no partner has been told "
                "yet. " +
                    summary};
    if (item.kind == kKindApproval)
        return {"[LDIS approval needed] " + item.reference + " v" + std::to_string(item.version) +
                    " (" + Upper(item.level) + "): " + Title(item),
                "A draft " + LevelLabel(item.level) + " waits for a coordinator's approval. " +
                    summary};
    if (item.kind == kKindPage)
        return {"[LDIS RED issued \xE2\x80\x93 confirm] " + item.reference + " v" +
                    std::to_string(item.version) + ": " + Title(item),
                "A red alert went out at once and is provisional until a coordinator confirms "
                "it. " +
                    summary};
    if (item.kind == kKindUnsubscribe)
        return {"[LDIS unsubscribe request] " + DetailText(item, "partner") + " / " +
                    DetailText(item, "contact"),
                "The recipient " + DetailText(item, "address") + " (" +
                    DetailText(item, "partner") + ", contact " + DetailText(item, "contact") +
                    ") asked to stop receiving LDIS "
                    "messages, from " +
                    item.reference + " v" + std::to_string(item.version) +
                    ". Nothing has changed yet: edit config/partners.toml if the partner agrees."};
    if (item.kind == kKindFeedSilent)
        return {"[LDIS feed silent] " + DetailText(item, "organisation") + " (" +
                    DetailText(item, "source_type") + ")",
                "No report or heartbeat has come from " + DetailText(item, "organisation") + " (" +
                    DetailText(item, "source_type") + ") for " + DetailText(item, "silent_for") +
                    ", longer than its usual longest silence of " + DetailText(item, "limit") +
                    ". Its system or its connection to LDIS may be broken: reports it sends may "
                    "not be reaching LDIS. Check with the organisation. You will be told once "
                    "when it sends again."};
    if (item.kind == kKindFeedBack)
        return {"[LDIS feed back] " + DetailText(item, "organisation") + " (" +
                    DetailText(item, "source_type") + ")",
                DetailText(item, "organisation") + " (" + DetailText(item, "source_type") +
                    ") is sending to LDIS again, after " + DetailText(item, "silent_for") +
                    " of silence. Reports it held back may arrive now."};
    if (item.kind == kKindDeadLetter)
        return {"[LDIS delivery failed] " + item.reference + " v" + std::to_string(item.version) +
                    " to " + DetailText(item, "partner") + " by " + DetailText(item, "channel"),
                "The delivery of " + item.reference + " v" + std::to_string(item.version) + " to " +
                    DetailText(item, "partner") + " (" + DetailText(item, "contact") + ", " +
                    DetailText(item, "channel") + ") failed for good after " +
                    DetailText(item, "attempts") + " attempt(s): " + DetailText(item, "error") +
                    ". " + DetailText(item, "next")};
    std::string prefix;
    if (item.kind == kKindEscalation) prefix = "[NOT ACKNOWLEDGED] ";
    if (item.status == "cancelled") prefix += "CANCELLED: ";
    if (item.kind == kKindFederated)
        // A peer's alert, forwarded (issue 16 §1): whose it is, in its own reference.
        return {prefix + "[LDIS " + Upper(item.level) + " \xE2\x80\x93 " + LevelLabel(item.level) +
                    "] Issued by " + DetailText(item, "peer_name") + ", " + item.reference + " v" +
                    std::to_string(item.version) + ": " + Title(item),
                "Issued by " + DetailText(item, "peer_name") + ". " + summary};
    return {prefix + tag + ": " + Title(item), summary};
}

}  // namespace

std::string AlertDocument(const OutboxItem& item, const std::string& public_url,
                          const std::string& ack_url) {
    json::object o;
    o["schema"] = "ldis.alert/1";
    o["reference"] = item.reference;
    o["version"] = item.version;
    o["status"] = item.status;
    o["drill"] = item.drill;  // "" for a real alert; CAP's <status> Exercise or Test else
    o["level"] = item.level;
    o["level_label"] = LevelLabel(item.level);
    o["provisional"] = item.provisional;
    o["confidence"] = item.confidence;
    o["audience"] = item.audience;
    o["authority"] = item.authority;
    o["district"] = item.district;
    o["family"] = item.family;
    const std::string_view marking = MarkingOf(item);
    o["title"] = marking.empty() ? Title(item) : std::string(marking) + ": " + Title(item);
    o["issued_at"] = IsoTimeMs(item.issued_at_ms);
    o["updated_at"] = IsoTimeMs(item.created_at_ms);
    o["valid_until"] = IsoTimeMs(item.valid_until_ms);
    json::object sections = Sections(item);
    sections.erase("scrubbed");
    o["sections"] = std::move(sections);
    o["url"] = AlertUrl(item, public_url);
    if (!ack_url.empty()) o["ack_url"] = ack_url;
    return json::serialize(o);
}

namespace {

// Stand-ins for the links that differ between the recipients of one alert version; they
// are left unchanged by HTML escaping.
constexpr std::string_view kAckMark = "LDIS0ACK0URL0MARK";
constexpr std::string_view kUnsubscribeMark = "LDIS0UNSUBSCRIBE0URL0MARK";

EmailMessage RenderEmailOnce(const MessageTemplates& templates, const OutboxItem& item,
                             const MessageContext& context);

}  // namespace

// An alert version goes to many recipients with the same text but their own links, so the
// body is rendered once per version (with stand-ins for the links) and each recipient's
// links are put in. The result is byte for byte what rendering for the recipient gives.
EmailMessage RenderEmail(const MessageTemplates& templates, const OutboxItem& item,
                         const MessageContext& context) {
    if (item.kind != kKindAlert) return RenderEmailOnce(templates, item, context);
    // Everything the rendering reads besides the links; compared whole (a few KiB of
    // memcmp), never hashed or concatenated per recipient.
    struct Cached {
        std::string key;
        std::string body, alert_text, alert_html;
        EmailMessage message;
    };
    thread_local std::vector<Cached> cache;  // the latest few versions
    const std::string key = item.reference + '\n' + std::to_string(item.version) + '\n' +
                            item.status + '\n' + item.drill + '\n' + (item.provisional ? "p" : "") +
                            '\n' + item.level + '\n' + std::to_string(item.created_at_ms) + '\n' +
                            item.photos + '\n' + context.public_url + '\n' + context.from + '\n' +
                            (context.ack_url.empty() ? "" : "a") +
                            (context.unsubscribe_url.empty() ? "" : "u");
    auto found = std::find_if(cache.begin(), cache.end(), [&](const Cached& c) {
        return c.key == key && c.body == item.body && c.alert_text == templates.alert_text &&
               c.alert_html == templates.alert_html;
    });
    if (found == cache.end()) {
        MessageContext marked = context;
        if (!marked.ack_url.empty()) marked.ack_url = kAckMark;
        if (!marked.unsubscribe_url.empty()) marked.unsubscribe_url = kUnsubscribeMark;
        if (cache.size() >= 8) cache.erase(cache.begin());
        cache.push_back({key, item.body, templates.alert_text, templates.alert_html,
                         RenderEmailOnce(templates, item, marked)});
        found = cache.end() - 1;
    }
    EmailMessage m = found->message;
    ReplaceAll(m.text, kAckMark, context.ack_url);
    ReplaceAll(m.text, kUnsubscribeMark, context.unsubscribe_url);
    ReplaceAll(m.html, kAckMark, mus::html_escape(context.ack_url));
    ReplaceAll(m.html, kUnsubscribeMark, mus::html_escape(context.unsubscribe_url));
    for (auto& [name, value] : m.headers)
        ReplaceAll(value, kUnsubscribeMark, context.unsubscribe_url);
    const auto at = m.message_id.find('@');
    m.message_id = "<" + IdempotencyKey(item) + m.message_id.substr(at);
    return m;
}

namespace {

EmailMessage RenderEmailOnce(const MessageTemplates& templates, const OutboxItem& item,
                             const MessageContext& context) {
    EmailMessage m;
    const auto [headline, text] = Headline(item);
    m.subject = headline;
    const bool notice = item.kind == kKindApproval || item.kind == kKindPage ||
                        item.kind == kKindDeadLetter || item.kind == kKindUnsubscribe ||
                        item.kind == kKindFeedSilent || item.kind == kKindFeedBack;
    mus::data d = AlertData(item, context);
    d.set("headline", headline);
    d.set("notice_text", text);
    if (item.kind == kKindApproval) d.set("approval", true);
    if (item.kind == kKindPage) d.set("page", true);
    if (item.kind == kKindDeadLetter) d.set("dead_letter", true);
    if (item.reference.empty()) d.set("no_alert", true);  // a feed's notice
    m.text = OneBlankLine(Render(notice ? templates.notice_text : templates.alert_text, d, false));
    m.html = Render(notice ? templates.notice_html : templates.alert_html, d, true);
    const std::string from = EmailAddressOf(context.from);
    const auto at = from.find('@');
    const std::string domain = at == std::string::npos ? "ldis.invalid" : from.substr(at + 1);
    m.message_id = "<" + IdempotencyKey(item) + "@" + domain + ">";
    m.headers = {{"X-LDIS-Alert", item.reference},
                 {"X-LDIS-Version", std::to_string(item.version)},
                 {"X-LDIS-Level", item.level},
                 {"X-LDIS-Kind", item.kind}};
    if (!context.unsubscribe_url.empty()) {
        m.headers.emplace_back("List-Unsubscribe", "<" + context.unsubscribe_url + ">");
        m.headers.emplace_back("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
    }
    if (!notice) {
        for (const auto& photo : PhotosOf(item))
            m.images.push_back({photo.id, photo.content_id, {}});
    }
    return m;
}

}  // namespace

}  // namespace ldis::engine
