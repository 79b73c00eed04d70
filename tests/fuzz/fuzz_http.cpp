// libFuzzer: any bytes as an HTTP request, through Beast's parser (with ldisd's limits)
// and what ldisd does with the pieces: the target's query, the form body, the
// acknowledgement token and dates. Nothing may crash.
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "../../web/src/documents.hpp"
#include "../../web/src/pages.hpp"
#include "ldis/engine/delivery.hpp"

namespace http = boost::beast::http;

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
        }
    }
    (void)ldis::web::ParseForm(req.body());
    (void)ldis::engine::VerifyAckToken("key", target, 0);
    (void)ldis::web::EscapeMarkup(req.body());
    return 0;
}
