// libFuzzer: the multipart/form-data reader (the report form's photos) on any boundary and
// body. It must not
// crash, hang or leak, and what it reads must read the same when written out again. The
// input's first line is the boundary (in a Content-Type of multipart/form-data), the rest
// the body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ldis/web/multipart.hpp"

namespace {

std::string Quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::size_t eol = input.find('\n');
    if (eol == std::string_view::npos) return 0;
    std::string_view boundary = input.substr(0, eol);
    const std::string_view body = input.substr(eol + 1);
    const std::string type = "multipart/form-data; boundary=" + std::string(boundary);
    const auto parts = ldis::web::ParseMultipart(type, body);
    (void)ldis::web::FileNameForMessage(body.substr(0, 200));
    if (!parts.ok()) return 0;
    // Written out again with the same boundary, the parts read back the same.
    if (boundary.find_first_of(";\"") != std::string_view::npos) return 0;
    while (!boundary.empty() && (boundary.front() == ' ' || boundary.front() == '\t'))
        boundary.remove_prefix(1);
    while (!boundary.empty() && (boundary.back() == ' ' || boundary.back() == '\t'))
        boundary.remove_suffix(1);
    std::string again;
    for (const auto& p : parts.value()) {
        again += "--" + std::string(boundary) +
                 "\r\nContent-Disposition: form-data; name=" + Quoted(p.name);
        if (p.filename) again += "; filename=" + Quoted(*p.filename);
        again += "\r\n";
        if (!p.content_type.empty()) again += "Content-Type: " + p.content_type + "\r\n";
        again += "\r\n" + p.data + "\r\n";
    }
    again += "--" + std::string(boundary) + "--\r\n";
    ldis::web::MultipartLimits roomy;
    roomy.max_header = 1 << 20;
    const auto read = ldis::web::ParseMultipart(type, again, roomy);
    if (!read.ok() || read.value().size() != parts.value().size()) __builtin_trap();
    for (std::size_t i = 0; i < parts.value().size(); ++i) {
        const auto& x = parts.value()[i];
        const auto& y = read.value()[i];
        if (x.name != y.name || x.filename != y.filename || x.data != y.data ||
            x.content_type != y.content_type)
            __builtin_trap();
    }
    return 0;
}
