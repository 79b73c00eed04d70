#pragma once
// multipart/form-data (RFC 7578 on RFC 2046's multipart): what a browser sends when a form
// carries a file, as the report form's photos do (issue 17 §3). Beast reads HTTP but not
// this, and Debian's MIME libraries (GMime, mimetic) would bring GLib or a second string
// world for forty lines of splitting; so it is here, pure, bounded and fuzzed
// (tests/fuzz/fuzz_multipart.cpp). No Beast, no I/O: tests/unit/multipart_test.cpp tests it
// alone.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/result.hpp"

namespace ldis::web {

struct FormPart {
    std::string name;  // the field's name
    // A file's name as the sender's browser gave it, or nullopt for a plain field. Hostile:
    // for messages to that sender only (FileNameForMessage), never a path.
    std::optional<std::string> filename;
    std::string content_type;  // as sent ("" if none): a claim, never trusted for a file
    std::string data;          // the field's value or the file's bytes
};

struct MultipartLimits {
    std::size_t max_parts = 200;    // the report form has about sixty fields at most
    std::size_t max_header = 2048;  // one part's header block, in bytes
};

// True for a Content-Type of multipart/form-data (whatever its case and parameters).
bool IsMultipartForm(std::string_view content_type);

// The parts of `body`, in order, or why they cannot be read: no boundary in the
// Content-Type, a part without a name, a body cut short before its closing delimiter, too
// many parts, a header block too long. Never throws.
engine::Result<std::vector<FormPart>> ParseMultipart(std::string_view content_type,
                                                     std::string_view body,
                                                     const MultipartLimits& limits = {});

// A file's name fit to repeat to its sender in a message: the last path segment, control
// characters gone, at most 60 characters (cut at a UTF-8 boundary). HTML escaping is the
// page's, as for any text.
std::string FileNameForMessage(std::string_view filename);

}  // namespace ldis::web
