#pragma once
// Server::Impl (private to web/, the one place Beast is): the listeners and connections
// (listener.cpp), routing (server.cpp), the JSON API, CAP and Atom (api.cpp), /healthz and
// /metrics (metrics.cpp). The people's pages are pages.cpp, the link pages links.cpp.

#include "ldis/web/router.hpp"
#include "ldis/web/server.hpp"

#include "documents.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"
#include "links.hpp"
#include "pages.hpp"
#include "safety.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <boost/asio/steady_timer.hpp>

#include <fcntl.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <fstream>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <tuple>
#include <variant>

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace ldis::web {
namespace detail {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using Reply = std::function<void(Response)>;

using engine::NowMs;

// The server's TLS context from PEM files: TLS 1.2 and later only, the key checked against
// the certificate. An Error names the file and what is wrong with it.
inline engine::Result<std::shared_ptr<ssl::context>> LoadTls(const std::string& cert_file,
                                                             const std::string& key_file) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec)
        return engine::Error{"http.tls_cert_file: cannot use " + cert_file +
                             " as a PEM certificate chain: " + ec.message()};
    ctx->use_private_key_file(key_file, ssl::context::pem, ec);
    // OpenSSL checks the pair as it reads the key ("key values mismatch"), or later.
    if ((ec && ec.message().find("mismatch") != std::string::npos) ||
        (!ec && SSL_CTX_check_private_key(ctx->native_handle()) != 1))
        return engine::Error{"http.tls_key_file: " + key_file +
                             " is not the key of the certificate in " + cert_file};
    if (ec)
        return engine::Error{"http.tls_key_file: cannot use " + key_file +
                             " as a PEM private key: " + ec.message()};
    return ctx;
}

// The last address in the X-Forwarded-For headers (the one the proxy itself saw: what comes
// before it, the client wrote), or "" when there is none that parses as an address.
inline std::string LastForwardedFor(const http::request<http::string_body>& req) {
    std::string last;
    const auto [first, end_of_range] = req.equal_range("X-Forwarded-For");
    for (auto field = first; field != end_of_range; ++field) {
        const std::string_view value(field->value().data(), field->value().size());
        const auto comma = value.rfind(',');
        last = std::string(comma == std::string_view::npos ? value : value.substr(comma + 1));
    }
    const auto begin = last.find_first_not_of(" \t");
    const auto end = last.find_last_not_of(" \t");
    if (begin == std::string::npos) return {};
    boost::system::error_code ec;
    const auto address = net::ip::make_address(last.substr(begin, end - begin + 1), ec);
    return ec ? std::string() : address.to_string();
}

inline Response Make(http::status status, std::string body, std::string_view content_type) {
    Response res{status, 11};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
}

inline Response JsonError(http::status status, std::string_view error, std::string_view detail) {
    return Make(status, json::serialize(json::object{{"error", error}, {"detail", detail}}),
                "application/json");
}

inline std::string Header(const Request& req, http::field field) {
    const auto it = req.find(field);
    return it == req.end() ? std::string() : std::string(it->value());
}

// What a caller holding `role` may read of an alert: a coordinator everything; anyone
// else only versions that were issued (a draft, and any version never issued, is for
// coordinators only). Nullopt when nothing of it was ever issued. The one rule for every
// endpoint, feed and export that a submitter can reach.
inline bool WasIssued(engine::AlertStatus status) {
    return status != engine::AlertStatus::kDraft;
}

inline std::optional<engine::AlertRecord> ReadableBy(const std::string& role,
                                                     engine::AlertRecord record) {
    if (role == "coordinator" || role == "admin") return record;
    std::erase_if(record.versions,
                  [](const engine::AlertVersion& v) { return !WasIssued(v.status); });
    if (record.versions.empty() || !WasIssued(record.alert.status)) return std::nullopt;
    record.deliveries.clear();
    record.audit.clear();
    // Why a coordinator set the level by hand, and who, is for coordinators.
    record.alert.override.reason.clear();
    record.alert.override.by.clear();
    return record;
}

inline std::string Bearer(const Request& req) {
    const auto it = req.find(http::field::authorization);
    if (it == req.end()) return {};
    const std::string_view value(it->value().data(), it->value().size());
    if (!value.starts_with("Bearer ")) return {};
    return std::string(value.substr(7));
}

}  // namespace detail

using namespace detail;  // NOLINT(google-build-using-namespace): private to web/

class Server::Impl : public std::enable_shared_from_this<Server::Impl> {
public:
    Impl(net::io_context& io, ServerOptions options, Services services)
        : options_(std::move(options)),
          services_(std::move(services)),
          acceptor_(io),
          metrics_acceptor_(io),
          accept_pause_(io),
          bad_keys_(options_.sign_in_failures, std::chrono::minutes(10)),
          pages_(services_, services_.templates_dir, services_.assets_dir, options_, bad_keys_),
          links_(services_, services_.templates_dir) {
        AddRoutes();
    }

    engine::Result<int> Start();

    int metrics_port() const { return metrics_port_; }

    void Stop();

    ~Impl();

    void JoinPool() { pool_.join(); }

    const ServerOptions& options() const { return options_; }

    engine::Result<bool> ReloadTls(const std::string& cert_file, const std::string& key_file);

    // The TLS context for a new connection, or null when the server speaks plain HTTP.
    std::shared_ptr<ssl::context> tls_context();

    // True if X-Forwarded-For and X-Forwarded-Proto from `peer` are believed.
    bool TrustsForwarding(const std::string& peer) const;

    // Connections open now, for the cap.
    std::atomic<std::size_t>& open_connections() { return open_connections_; }

    // Routes one request; `reply` may be called from any thread. `client` is the peer's
    // address; `metrics_only` for the metrics listener, which serves /metrics and /healthz.
    void Handle(Request req, Reply reply, const std::string& client, bool metrics_only);

private:
    static constexpr int kSubmitter = 1, kCoordinator = 2, kAdmin = 4;

    // A page's response as Beast sends it; a header with a line break in it is refused.
    static Response FromWeb(WebResponse page);
    static constexpr int kAnyRole = kSubmitter | kCoordinator | kAdmin;

    // The token's owner, or the 401/403/429 to send. Blocks on the store's reader.
    std::variant<engine::ApiToken, Response> Authorize(const std::string& bearer, int roles,
                                                       const std::string& client);

    // Runs `work` for a caller holding one of `roles`, on the pool.
    void Authorized(const std::string& bearer, int roles, const std::string& client,
                    std::function<Response(const engine::ApiToken&)> work, Reply reply);

    Response AlertList(const engine::AlertFilter& f);

    // Partners without their webhook secrets.
    Response PartnersResponse();

    Response AtomResponse();

    Response CapResponse(const std::string& ref, int version, const std::string& role);

    // `body` may carry {"wording": {"what"|"harms"|"advice": text}, "send_as_written": bool}
    // for an update: the coordinator's own words, checked by the scrubber first.
    Response ActOn(const std::string& ref, engine::AlertAction action, const engine::ApiToken& who,
                   const std::string& body);

    // {"level": "red", "reason": "..."} sets an override; {"lift": true, "reason": "..."}
    // lifts it. The reason (10 to 500 characters) is audited.
    Response OverrideResponse(const std::string& kind, const std::string& id,
                              const std::string& body, const engine::ApiToken& who);

    // {"rules": TOML text, "substances": TOML text (optional: the ones in use)}.
    Response ReplayResponse(const std::string& body);

    // Reads ?since, ?until, ?limit, ?offset and the word filters; or the 400 to send.
    std::variant<engine::AlertFilter, Response> FilterOf(std::map<std::string, std::string> query);

    // One request as a route's handler sees it.
    struct Call {
        Request& req;
        Reply& reply;
        const std::string& client;
        const std::string& path;
        bool metrics_only;
        RouteParams params;
        // The query string's parameters, decoded.
        std::map<std::string, std::string> Query() const;
    };
    using Handler = std::function<void(Call&)>;

    // Every path the server answers, with its methods and handler (server.cpp, api.cpp).
    void AddRoutes();
    // The API's routes: reports, alerts, signals, partners, grading, CAP and Atom (api.cpp).
    void AddApiRoutes();

    Response NotAllowed(const char* allow);

    // Runs `work` on the pool (it may block on the store), then replies.
    void Blocking(std::function<Response()> work, Reply reply);

    Response Health();

    // Built at most every 2 s, whoever asks how often: the counts scan whole tables.
    Response Metrics();

    std::string MetricsText();

    // GET shows what is being acknowledged and a button; POST records it. Link scanners
    // that fetch every link in a message only ever GET.

    Response SubmitReport(const std::string& body);
    // Photos of a batch (photos_api.cpp): an upload cleaned and kept; one served to a
    // coordinator; the 422 for a report that names a photo that was never uploaded or is
    // another's; a photo as the API lists it.
    Response UploadPhoto(const std::string& body, const engine::ApiToken& who);
    Response PhotoResponse(const std::string& id);
    std::optional<Response> PhotosProblem(const std::string& body);
    static json::object PhotoJson(const engine::PhotoRow& p);

    engine::Result<int> Listen(tcp::acceptor& acceptor, const std::string& listen,
                               const std::string& key);

    // One warning per 10 s for a trouble that repeats, with how often it happened.
    void WarnRepeated(const std::string& what);

    void Accept(tcp::acceptor& acceptor, bool metrics_only);

    static void StartSession(const std::shared_ptr<Impl>& server, tcp::socket socket,
                             bool metrics_only);

    ServerOptions options_;
    Services services_;
    tcp::acceptor acceptor_;
    tcp::acceptor metrics_acceptor_;
    net::steady_timer accept_pause_;
    int spare_fd_ = -1;
    int metrics_port_ = 0;
    std::atomic<std::size_t> open_connections_{0};
    std::atomic<std::uint64_t> refused_total_{0};
    int repeats_ = 0;                                     // io thread only
    std::chrono::steady_clock::time_point last_warning_;  // io thread only
    std::mutex metrics_mutex_;
    std::string metrics_text_;  // guarded by metrics_mutex_
    std::chrono::steady_clock::time_point metrics_at_;
    FailureLimit bad_keys_;
    Pages pages_;
    LinkPages links_;
    std::mutex tls_mutex_;
    std::shared_ptr<ssl::context> tls_;  // guarded by tls_mutex_; null for plain HTTP
    net::thread_pool pool_{2};
    Router<Handler> routes_;
};

}  // namespace ldis::web
