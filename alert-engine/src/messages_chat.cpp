// The messages for webhooks (Teams' and Slack's cards from templates/chat/, LDIS's own JSON),
// GOV.UK Notify's requests, and the signatures and keys that go with them. The email and
// what every message shares are in messages.cpp (messages_internal.hpp).
#include <boost/json.hpp>
#include <kainjow/mustache.hpp>

#include <stdexcept>

#include "ldis/engine/codec.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"
#include "messages_internal.hpp"

namespace json = boost::json;
namespace mus = kainjow::mustache;

namespace ldis::engine {
using namespace messages_detail;

std::string SlackEscape(std::string_view text) {
    // Slack's mrkdwn reads <...> as links and mentions (<!channel>, <url|label>): its own
    // rule is to escape exactly these three.
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '&')
            out += "&amp;";
        else if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else
            out.push_back(c);
    }
    return out;
}

std::string TeamsPlainText(std::string_view text) {
    // Adaptive Card TextBlocks read a subset of Markdown: [label](url) links, *, _ and
    // lists. Reporter text is shown as written: every such character is escaped, and a
    // line that would start a list or heading is escaped too.
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    bool line_start = true;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (std::string_view("\\*_[]()~`<>#|!").find(c) != std::string_view::npos ||
            (line_start && (c == '-' || c == '+'))) {
            out.push_back('\\');
        } else if (line_start && c >= '0' && c <= '9') {
            std::size_t j = i;
            while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
            if (j < text.size() && text[j] == '.') {
                out.append(text.substr(i, j - i));
                out += "\\.";
                i = j;
                line_start = false;
                continue;
            }
        }
        out.push_back(c);
        line_start = c == '\n' || (line_start && c == ' ');
    }
    return out;
}

namespace {

std::string JsonString(std::string_view text) {
    return json::serialize(json::string(text));
}

// Cut to at most `n` bytes on a character boundary, "..." marking the cut.
std::string Cut(std::string s, std::size_t n) {
    if (s.size() <= n) return s;
    std::size_t end = n - 3;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    return s.substr(0, end) + "...";
}

// What the chat templates (templates/chat/) see: each value a JSON string, made inert in the
// format's markup and cut to its limits here, so that the template only lays them out.
mus::data ChatData(bool teams, const OutboxItem& item, const MessageContext& context) {
    const auto [headline, text] = Headline(item);
    const auto sections = Sections(item);
    mus::data d;
    for (const auto& [name, heading] : kHeadings) {
        const std::string section = Section(sections, name);
        if (section.empty() || name == "history") continue;
        mus::data s;
        s.set("heading", JsonString(heading));
        const std::string trimmed = Trimmed(section);
        // Block Kit: a section's text is under 3,000 characters.
        s.set("text",
              JsonString(teams ? TeamsPlainText(trimmed) : Cut(SlackEscape(trimmed), 2900)));
        // Slack has no heading block inside a message: the heading in bold, then the text.
        if (!teams)
            s.set("titled", JsonString(Cut("*" + heading + "*\n" + SlackEscape(trimmed), 2900)));
        d.set(name, s);
    }
    const bool cancelled = item.status == "cancelled";
    if (const std::string action = ActionOf(item); !action.empty()) {
        d.set("action",
              JsonString(teams ? TeamsPlainText(action) : "*" + SlackEscape(action) + "*"));
        if (const std::string t = Trimmed(Section(sections, "acknowledgement")); !t.empty())
            d.set("acknowledge", JsonString(teams ? TeamsPlainText(t) : SlackEscape(t)));
    }
    const std::string facts = item.reference + " version " + std::to_string(item.version) +
                              (item.issued_at_ms > 0 ? ", " + HumanTimeMs(item.issued_at_ms) : "");
    d.set("facts", JsonString(teams ? TeamsPlainText(facts) : SlackEscape(facts)));
    if (teams) {
        d.set("headline", JsonString(TeamsPlainText(headline)));
        // The banner: the Container styles Teams draws in red, orange and green.
        d.set("style", JsonString(cancelled               ? "emphasis"
                                  : item.level == "red"   ? "attention"
                                  : item.level == "amber" ? "warning"
                                  : item.level == "green" ? "good"
                                                          : "emphasis"));
    } else {
        d.set("header", JsonString(Cut(headline, 150)));  // plain text, at most 150
        d.set("fallback", JsonString(Cut(SlackEscape(headline), 3000)));
    }
    if (!ForPartners(item))
        d.set("notice", JsonString(teams ? TeamsPlainText(text) : Cut(SlackEscape(text), 2900)));
    if (!context.ack_url.empty()) d.set("ack_url", JsonString(context.ack_url));
    d.set("alert_url", JsonString(AlertUrl(item, context.public_url)));
    // Photos of the batch (issue 17 §3): a link, never the photos, to the page the
    // delivery's own token opens, which shows them after a warning.
    if (const auto photos = PhotosOf(item); !photos.empty() && !context.ack_url.empty()) {
        const std::string said = std::string(photos.size() == 1 ? "One photo" : "Photos") +
                                 " of the batch reported, to help recognise it. Content "
                                 "warning: they show the drugs, not anyone.";
        d.set("photos_url", JsonString(context.ack_url + std::string(wire::kPhotosSuffix)));
        d.set("photos_text", JsonString(teams ? TeamsPlainText(said) : SlackEscape(said)));
    }
    return d;
}

// The template's JSON, compact; the raw rendering when it is not JSON (LoadDir refuses such a
// template, so only a template changed under a running ldisd gets here: the receiver then
// refuses it, and the delivery fails with its answer).
std::string RenderChat(const std::string& text, const mus::data& data) {
    const std::string rendered = Render(text, data, false);
    json::error_code ec;
    const auto v = json::parse(rendered, ec);
    return ec ? rendered : json::serialize(v);
}

}  // namespace

// A chat template must render JSON for every shape of message: with every section and
// without, with an acknowledgement link and without, an alert and a notice.
void messages_detail::CheckChatTemplate(const std::string& path, const std::string& text,
                                        bool teams) {
    OutboxItem item;
    item.reference = "KM-2026-0001";
    item.version = 2;
    item.level = "red";
    item.status = "issued";
    item.family_label = "Nitazenes";
    item.district = "Medway";
    json::object body;
    for (const auto& [name, heading] : kHeadings) body[name] = "A line with \"quotes\" and <b>";
    item.body = json::serialize(body);
    MessageContext context;
    context.public_url = "https://ldis.example.org";
    for (const bool full : {true, false}) {
        for (const std::string_view kind : {kKindAlert, kKindDeadLetter}) {
            item.kind = std::string(kind);
            item.body = full ? json::serialize(body) : "{}";
            context.ack_url = full ? "https://ldis.example.org/ack/t" : "";
            json::error_code ec;
            json::parse(Render(text, ChatData(teams, item, context), false), ec);
            if (ec) {
                throw std::runtime_error(path + ": does not render JSON (" + ec.message() +
                                         "): every value is a JSON string already, so use "
                                         "{{{name}}} with no quotes, and put the comma before "
                                         "an optional part");
            }
        }
    }
}

std::string WebhookBody(const MessageTemplates& templates, const std::string& format,
                        const OutboxItem& item, const MessageContext& context) {
    if (format == "teams") return RenderChat(templates.teams, ChatData(true, item, context));
    if (format == "slack") return RenderChat(templates.slack, ChatData(false, item, context));
    const auto [headline, text] = Headline(item);
    json::error_code ec;
    auto doc = json::parse(AlertDocument(item, context.public_url, context.ack_url), ec);
    auto& o = doc.as_object();
    o["kind"] = item.kind;
    if (item.kind != kKindAlert) o["notice"] = text;
    return json::serialize(o);
}

Result<NotifyKey> SplitNotifyKey(const std::string& api_key) {
    if (api_key.size() < 74) {
        return Error{
            "the GOV.UK Notify API key is too short: it should end with the service id "
            "and the secret key, two UUIDs"};
    }
    NotifyKey key;
    key.service_id = api_key.substr(api_key.size() - 73, 36);
    key.secret = api_key.substr(api_key.size() - 36);
    return key;
}

std::string NotifyJwt(const NotifyKey& key, std::int64_t now_s) {
    const std::string header = Base64Url(R"({"typ":"JWT","alg":"HS256"})");
    const std::string claims =
        Base64Url(json::serialize(json::object{{"iss", key.service_id}, {"iat", now_s}}));
    const std::string signing_input = header + "." + claims;
    return signing_input + "." + Base64Url(HmacSha256(key.secret, signing_input));
}

std::string NotifyBody(const OutboxItem& item, const std::string& template_id,
                       const MessageContext& context, const std::string& reference) {
    const auto [headline, text] = Headline(item);
    json::object personalisation{{"reference", item.reference},
                                 {"version", std::to_string(item.version)},
                                 {"level", Upper(item.level)},
                                 {"headline", headline},
                                 {"summary", text},
                                 // The SMS in the email's order: headline, action, link.
                                 {"action", ActionOf(item)},
                                 {"drill", std::string(MarkingOf(item))},
                                 {"alert_url", AlertUrl(item, context.public_url)},
                                 {"ack_url", context.ack_url}};
    json::object body{{"template_id", template_id},
                      {"personalisation", std::move(personalisation)},
                      {"reference", reference}};
    if (item.channel == Channel::kNotifySms)
        body["phone_number"] = item.address;
    else
        body["email_address"] = item.address;
    return json::serialize(body);
}

std::string WebhookSignature(const std::string& secret, std::int64_t timestamp_s,
                             const std::string& body) {
    return "sha256=" + Hex(HmacSha256(secret, std::to_string(timestamp_s) + "." + body));
}

std::string IdempotencyKey(const OutboxItem& item) {
    return "ldis-" + item.reference + "-v" + std::to_string(item.version) + "-" + item.kind + "-d" +
           std::to_string(item.id);
}

}  // namespace ldis::engine
