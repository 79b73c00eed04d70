// An email as MIME (RFC 2045-2047): the plain text and the HTML, each in base64, the photos
// beside the HTML, and headers in encoded words where they are not plain ASCII.
#include <algorithm>
#include <ctime>
#include <string>
#include <string_view>

#include "ldis/engine/codec.hpp"
#include "ldis/engine/messages.hpp"

namespace ldis::engine {
namespace {

// Base64 in lines of 76 characters, as MIME wants.
std::string WrappedBase64(std::string_view bytes) {
    const std::string b = Base64(bytes);
    std::string out;
    for (std::size_t i = 0; i < b.size(); i += 76) out += b.substr(i, 76) + "\r\n";
    return out;
}

// RFC 2047 encoded words, never splitting a UTF-8 sequence.
std::string EncodeHeader(std::string_view text) {
    const bool ascii = std::all_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 32 && static_cast<unsigned char>(c) < 127;
    });
    if (ascii && text.size() < 900) return std::string(text);
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t end = std::min(text.size(), i + 45);
        while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
        if (!out.empty()) out += "\r\n ";
        out += "=?UTF-8?B?" + Base64(text.substr(i, end - i)) + "?=";
        i = end;
    }
    return out;
}

std::string RfcDate(std::int64_t ms) {
    const std::time_t s = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char out[64];
    std::strftime(out, sizeof out, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return out;
}

}  // namespace

std::string EmailMessage::ToMime(const std::string& from, const std::string& to,
                                 std::int64_t now_ms) const {
    const std::string boundary = "ldis-" + Sha256Hex(message_id).substr(0, 24);
    std::string out;
    out += "From: " + EncodeHeader(from) + "\r\n";
    out += "To: " + to + "\r\n";
    out += "Subject: " + EncodeHeader(subject) + "\r\n";
    out += "Date: " + RfcDate(now_ms) + "\r\n";
    out += "Message-ID: " + message_id + "\r\n";
    out += "MIME-Version: 1.0\r\n";
    for (const auto& [name, value] : headers) out += name + ": " + EncodeHeader(value) + "\r\n";
    out += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n";
    out += "--" + boundary + "\r\n";
    out += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    out += WrappedBase64(text);
    out += "--" + boundary + "\r\n";
    // An image the channel could not put in (a photo purged since) is left out: the HTML's
    // alt text stands for it.
    const bool related =
        std::any_of(images.begin(), images.end(), [](const Image& i) { return !i.jpeg.empty(); });
    // Not the outer boundary with a suffix: a boundary must not begin another (RFC 2046).
    const std::string inner = "ldis-related-" + Sha256Hex(message_id + "related").substr(0, 24);
    if (related) {
        out += "Content-Type: multipart/related; type=\"text/html\"; boundary=\"" + inner +
               "\"\r\n\r\n";
        out += "--" + inner + "\r\n";
    }
    out += "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    out += WrappedBase64(html);
    if (related) {
        for (const auto& image : images) {
            if (image.jpeg.empty()) continue;
            out += "--" + inner + "\r\n";
            out += "Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n";
            out += "Content-ID: <" + image.content_id + ">\r\n";
            out += "Content-Disposition: inline; filename=\"" + image.photo_id + ".jpg\"\r\n\r\n";
            out += WrappedBase64(image.jpeg);
        }
        out += "--" + inner + "--\r\n";
    }
    out += "--" + boundary + "--\r\n";
    return out;
}

}  // namespace ldis::engine
