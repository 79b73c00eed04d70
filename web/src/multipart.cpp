// multipart/form-data: boundaries, part headers, quoted parameters. See multipart.hpp.
#include "ldis/web/multipart.hpp"

#include <algorithm>
#include <cctype>

namespace ldis::web {
namespace {

bool SameWord(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view Trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// `type; a=b; c="d;e"` into the type and its parameters, names lower-cased. A quoted
// value's backslash escapes the next character (RFC 9110 §5.6.4); browsers send a quote in
// a name as %22, which stays as it is.
struct Parameters {
    std::string type;
    std::vector<std::pair<std::string, std::string>> values;
    const std::string* Find(std::string_view name) const {
        for (const auto& [k, v] : values)
            if (k == name) return &v;
        return nullptr;
    }
};

std::optional<Parameters> ParseParameters(std::string_view header) {
    Parameters out;
    std::size_t at = header.find(';');
    out.type = std::string(Trim(header.substr(0, at)));
    while (at != std::string_view::npos && at < header.size()) {
        ++at;  // past ';'
        while (at < header.size() && (header[at] == ' ' || header[at] == '\t')) ++at;
        if (at >= header.size()) break;
        const std::size_t eq = header.find('=', at);
        const std::size_t semi = header.find(';', at);
        if (eq == std::string_view::npos || (semi != std::string_view::npos && semi < eq)) {
            at = semi;  // a bare word: no value, ignored
            continue;
        }
        std::string name(Trim(header.substr(at, eq - at)));
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        at = eq + 1;
        while (at < header.size() && (header[at] == ' ' || header[at] == '\t')) ++at;
        std::string value;
        if (at < header.size() && header[at] == '"') {
            ++at;
            bool closed = false;
            for (; at < header.size(); ++at) {
                if (header[at] == '\\' && at + 1 < header.size()) {
                    value += header[++at];
                } else if (header[at] == '"') {
                    closed = true;
                    ++at;
                    break;
                } else {
                    value += header[at];
                }
            }
            if (!closed) return std::nullopt;
            at = header.find(';', at);
        } else {
            const std::size_t end = header.find(';', at);
            value = std::string(Trim(header.substr(
                at, end == std::string_view::npos ? std::string_view::npos : end - at)));
            at = end;
        }
        out.values.emplace_back(std::move(name), std::move(value));
    }
    return out;
}

// RFC 2046 §5.1.1: 1 to 70 of these, not ending in a space.
bool GoodBoundary(std::string_view b) {
    static constexpr std::string_view kOther = "'()+_,-./:=? ";
    return !b.empty() && b.size() <= 70 && b.back() != ' ' &&
           std::all_of(b.begin(), b.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) ||
                      kOther.find(c) != std::string_view::npos;
           });
}

}  // namespace

bool IsMultipartForm(std::string_view content_type) {
    return SameWord(Trim(content_type.substr(0, content_type.find(';'))), "multipart/form-data");
}

engine::Result<std::vector<FormPart>> ParseMultipart(std::string_view content_type,
                                                     std::string_view body,
                                                     const MultipartLimits& limits) {
    using engine::Error;
    const auto type = ParseParameters(content_type);
    if (!type) return Error{"the form's Content-Type cannot be read: a quote is not closed"};
    if (!SameWord(type->type, "multipart/form-data"))
        return Error{"the form is not multipart/form-data"};
    const std::string* boundary = type->Find("boundary");
    if (!boundary || !GoodBoundary(*boundary))
        return Error{"the form's Content-Type has no boundary, or one RFC 2046 does not allow"};
    const std::string delimiter = "\r\n--" + *boundary;
    // The first delimiter may open the body (no CRLF before it) or follow a preamble.
    std::size_t at;
    if (body.substr(0, delimiter.size() - 2) == std::string_view(delimiter).substr(2)) {
        at = delimiter.size() - 2;
    } else {
        const std::size_t found = body.find(delimiter);
        if (found == std::string_view::npos) return Error{"the form's body has no part"};
        at = found + delimiter.size();
    }
    std::vector<FormPart> parts;
    for (;;) {
        // After a delimiter: "--" ends the body; else padding, then CRLF and a part.
        if (body.substr(at, 2) == "--") return parts;
        while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
        if (body.substr(at, 2) != "\r\n")
            return Error{"the form's body is cut short or malformed after a boundary"};
        at += 2;
        if (parts.size() >= limits.max_parts)
            return Error{"the form has more than " + std::to_string(limits.max_parts) + " fields"};
        const std::size_t head_end = body.find("\r\n\r\n", at);
        const bool no_headers = body.substr(at, 2) == "\r\n";
        if (!no_headers && (head_end == std::string_view::npos))
            return Error{"the form's body is cut short in a part's header"};
        const std::size_t data_at = no_headers ? at + 2 : head_end + 4;
        if (data_at - at > limits.max_header)
            return Error{"a part of the form has a header over " +
                         std::to_string(limits.max_header) + " bytes"};
        FormPart part;
        bool disposition = false;
        std::string_view headers = no_headers ? std::string_view() : body.substr(at, head_end - at);
        while (!headers.empty()) {
            const std::size_t eol = headers.find("\r\n");
            const std::string_view line = headers.substr(0, eol);
            headers = eol == std::string_view::npos ? std::string_view() : headers.substr(eol + 2);
            const std::size_t colon = line.find(':');
            if (colon == std::string_view::npos)
                return Error{"a part of the form has a header line without a colon"};
            const std::string_view name = Trim(line.substr(0, colon));
            const std::string_view value = Trim(line.substr(colon + 1));
            if (SameWord(name, "Content-Disposition")) {
                const auto p = ParseParameters(value);
                if (!p || !SameWord(p->type, "form-data"))
                    return Error{"a part of the form is not form-data"};
                const std::string* field = p->Find("name");
                if (!field) return Error{"a part of the form has no name"};
                part.name = *field;
                if (const std::string* file = p->Find("filename")) part.filename = *file;
                disposition = true;
            } else if (SameWord(name, "Content-Type")) {
                part.content_type = std::string(value);
            }
        }
        if (!disposition) return Error{"a part of the form has no Content-Disposition"};
        const std::size_t end = body.find(delimiter, data_at);
        if (end == std::string_view::npos)
            return Error{"the form's body is cut short: its last boundary is missing"};
        part.data = std::string(body.substr(data_at, end - data_at));
        parts.push_back(std::move(part));
        at = end + delimiter.size();
    }
}

std::string FileNameForMessage(std::string_view filename) {
    // Browsers send the name alone; an old one sent C:\Users\...\name.jpg.
    const std::size_t slash = filename.find_last_of("/\\");
    if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
    std::string out;
    std::size_t chars = 0;
    for (std::size_t i = 0; i < filename.size(); ++i) {
        const auto c = static_cast<unsigned char>(filename[i]);
        if (c < 0x20 || c == 0x7f) continue;
        if ((c & 0xC0) != 0x80) ++chars;  // a character starts here
        if (chars > 60) break;
        out += static_cast<char>(c);
    }
    // Cut inside a character: drop its lead and continuation bytes.
    std::size_t lead = out.size();
    while (lead > 0 && (static_cast<unsigned char>(out[lead - 1]) & 0xC0) == 0x80) --lead;
    if (lead > 0 && static_cast<unsigned char>(out[lead - 1]) >= 0xC0) {
        const auto c = static_cast<unsigned char>(out[lead - 1]);
        const std::size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (out.size() - (lead - 1) < want) out.resize(lead - 1);
    }
    return out.empty() ? std::string("the file") : out;
}

}  // namespace ldis::web
