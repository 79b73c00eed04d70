// libFuzzer: any bytes as an HTTP request, through Beast's parser (with ldisd's limits)
// and what ldisd does with the pieces: the target's query, the form body, the
// acknowledgement token and dates, and the rules of web/src/safety (the local path of a
// redirect, the header check, asset paths, URL encoding). Nothing may crash, and each rule
// must hold: a redirect stays on the site, no header carries a line break, no asset lies
// outside its folder.
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../../web/src/documents.hpp"
#include "../../web/src/pages.hpp"
#include "../../web/src/safety.hpp"
#include "ldis/engine/delivery.hpp"

namespace http = boost::beast::http;
namespace fs = std::filesystem;

namespace {

// An assets folder with one file, and a planted link that points out of it.
const fs::path& Assets() {
    static const fs::path root = [] {
        fs::path dir = fs::temp_directory_path() / ("ldis-fuzz-assets-" + std::to_string(getpid()));
        fs::create_directories(dir / "assets");
        std::ofstream(dir / "a.css") << "a{}";
        std::error_code ec;
        fs::create_symlink("/etc/passwd", dir / "leak.css", ec);
        return fs::canonical(dir);
    }();
    return root;
}

void CheckLocal(const std::string& next) {
    const std::string local = ldis::web::LocalPath(next);
    if (local.empty() || local[0] != '/' || local.starts_with("//") ||
        local.find('\\') != std::string::npos || !ldis::web::SafeHeaderValue(local))
        __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(256 * 1024);
    parser.header_limit(16 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (ec || !parser.is_header_done()) return 0;
    const auto& req = parser.get();
    const std::string target(req.target());
    if (auto url = boost::urls::parse_origin_form(target); url) {
        for (const auto& p : url->params()) {
            (void)ldis::web::ParseTime(std::string(p.value));
            CheckLocal(std::string(p.value));
            const std::string encoded = ldis::web::UrlEncode(p.value);
            if (encoded.find_first_of("&=?#/ \r\n") != std::string::npos) __builtin_trap();
        }
    }
    CheckLocal(target);
    for (const auto& [name, value] : ldis::web::ParseForm(req.body())) CheckLocal(value);
    if (target.starts_with("/assets/")) {
        if (auto file = ldis::web::AssetFile(Assets(), target.substr(8))) {
            const std::string inside = file->string();
            if (!inside.starts_with(Assets().string() + "/") || !fs::is_regular_file(*file))
                __builtin_trap();
        }
    }
    for (const auto& field : req) {
        const std::string value(field.value());
        if (ldis::web::SafeHeaderValue(value) &&
            value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
            __builtin_trap();
    }
    (void)ldis::engine::VerifyAckToken("key", target, 0);
    (void)ldis::web::EscapeMarkup(req.body());
    return 0;
}
