#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ldis/engine/delivery.hpp"

namespace ldis::engine {

// The Mustache templates of messages, from the templates folder: email/ (alert.txt,
// alert.html, notice.txt, notice.html) and chat/ (teams.json, slack.json). Immutable once
// loaded; thread-safe to read.
class MessageTemplates {
public:
    // `folder` is the templates folder (the one holding email/ and chat/). Throws
    // std::runtime_error "FILE: problem" for a missing file, one that does not parse, or a
    // chat template that does not render JSON.
    static MessageTemplates LoadDir(const std::string& folder);
    std::string alert_text, alert_html, notice_text, notice_html;
    std::string teams, slack;
};

// What every rendering needs besides the outbox row.
struct MessageContext {
    std::string public_url;  // base of links
    std::string from;        // "LDIS Kent and Medway <ldis@example.org>"
    std::string ack_url;     // this delivery's signed acknowledgement link, or ""
    std::string unsubscribe_url;
    std::int64_t now_ms = 0;
};

// One email, rendered: the parts and the headers that identify it.
struct EmailMessage {
    std::string message_id;  // <...>, the same for every attempt of one delivery
    std::string subject;
    std::string text;
    std::string html;
    std::vector<std::pair<std::string, std::string>> headers;  // X-LDIS-*, List-Unsubscribe
    // The photos a coordinator chose for the version (issue 17 §3), shown by the HTML
    // through "cid:" after a content warning: RenderEmail names them, the channel puts in
    // each one's JPEG (the store's, never an upload) before ToMime.
    struct Image {
        std::string photo_id;    // ph-…
        std::string content_id;  // without <>, as the HTML's cid: says
        std::string jpeg;
    };
    std::vector<Image> images;
    // RFC 5322 with CRLF line ends: multipart/alternative, text/plain then text/html,
    // each base64 in UTF-8; the subject RFC 2047-encoded. With images, the HTML and the
    // images are a multipart/related inside the alternative (RFC 2387).
    std::string ToMime(const std::string& from, const std::string& to, std::int64_t now_ms) const;
};

// The photos an item's version carries (OutboxItem::photos), each with the Content-ID its
// email gives it; none when the version has none or its list cannot be read. Pure.
struct VersionPhoto {
    std::string id;
    std::string sha1;
    std::int64_t bytes = 0;
    int width = 0;
    int height = 0;
    std::string content_id;  // "<id>@ldis"
};
std::vector<VersionPhoto> VersionPhotos(std::string_view photos_json);
inline std::vector<VersionPhoto> PhotosOf(const OutboxItem& item) {
    return VersionPhotos(item.photos);
}

// The alert's sections in the order messages show them, with their headings. Pure.
const std::vector<std::pair<std::string, std::string>>& SectionHeadings();
// "ldis@example.org" from "LDIS Kent and Medway <ldis@example.org>". Pure.
std::string EmailAddressOf(const std::string& from);

// "[LDIS RED – Drug Alert] KM-2026-0007 v2: nitazenes in Medway". Pure.
std::string AlertSubject(const OutboxItem& item);
// The alert document (DESIGN §5 alert topic, webhook "json" format). Pure.
std::string AlertDocument(const OutboxItem& item, const std::string& public_url,
                          const std::string& ack_url = {});
// Renders an outbox row as an email. Pure; thread-safe.
EmailMessage RenderEmail(const MessageTemplates& templates, const OutboxItem& item,
                         const MessageContext& context);
// Text made inert in Slack mrkdwn (&, <, > escaped: no <!channel>, no <url|label>). Pure.
std::string SlackEscape(std::string_view text);
// Text shown as written in a Teams Adaptive Card TextBlock: Markdown characters escaped
// (no [label](url) links, no emphasis, no lists). Pure.
std::string TeamsPlainText(std::string_view text);
// Webhook bodies: a Microsoft Teams Workflows Adaptive Card and Slack Block Kit (section
// text under 3,000 characters) laid out by templates/chat/, each with any text made inert
// in the format's markup; or ("json") the alert document. Pure.
std::string WebhookBody(const MessageTemplates& templates, const std::string& format,
                        const OutboxItem& item, const MessageContext& context);
// The headline and one-paragraph text of any row (notices included), for SMS and chat.
std::pair<std::string, std::string> Headline(const OutboxItem& item);

// GOV.UK Notify: the API key is "{key name}-{service id}-{secret key}"; its clients take
// the service id and secret from the end (the last 73 and 36 characters).
struct NotifyKey {
    std::string service_id;
    std::string secret;
};
Result<NotifyKey> SplitNotifyKey(const std::string& api_key);
// A JWT signed HS256 over {"iss": service_id, "iat": now_s}. Pure.
std::string NotifyJwt(const NotifyKey& key, std::int64_t now_s);
// The JSON body of POST /v2/notifications/sms or /email. Pure.
std::string NotifyBody(const OutboxItem& item, const std::string& template_id,
                       const MessageContext& context, const std::string& reference);

// X-LDIS-Signature: "sha256=" + hex HMAC-SHA256 over "{timestamp}.{body}". Pure.
std::string WebhookSignature(const std::string& secret, std::int64_t timestamp_s,
                             const std::string& body);

// The idempotency key of a delivery: the same for every attempt, unique per delivery.
std::string IdempotencyKey(const OutboxItem& item);

}  // namespace ldis::engine
