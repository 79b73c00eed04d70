// The HTTP server (DESIGN §8): routing a request to the API, the pages or the link pages.
#include "server_impl.hpp"

namespace ldis::web {

// Routes one request; `reply` may be called from any thread. `client` is the peer's
// address; `metrics_only` for the metrics listener, which serves /metrics and /healthz.
void Server::Impl::Handle(Request req, Reply reply, const std::string& client, bool metrics_only) {
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const auto method = req.method();
    try {
        if (path == "/healthz") {
            if (method != http::verb::get) return reply(NotAllowed("GET"));
            return Blocking([this] { return Health(); }, std::move(reply));
        }
        if (path == "/metrics" && (metrics_only || options_.metrics_listen.empty())) {
            if (method != http::verb::get) return reply(NotAllowed("GET"));
            return Blocking([this] { return Metrics(); }, std::move(reply));
        }
        if (metrics_only)
            return reply(JsonError(http::status::not_found, "not_found",
                                   "this listener serves /metrics and /healthz only"));
        if (path.starts_with(engine::wire::kUnsubscribePath)) {
            const std::string token = path.substr(engine::wire::kUnsubscribePath.size());
            if (method == http::verb::get || method == http::verb::post)
                return Blocking(
                    [this, token, record = method == http::verb::post] {
                        return FromWeb(links_.Unsubscribe(token, record));
                    },
                    std::move(reply));
            return reply(NotAllowed("GET, POST"));
        }
        if (path.starts_with(engine::wire::kAckPath)) {
            const std::string token = path.substr(engine::wire::kAckPath.size());
            if (method == http::verb::get || method == http::verb::post)
                return Blocking(
                    [this, token, record = method == http::verb::post] {
                        return FromWeb(links_.Acknowledge(token, record));
                    },
                    std::move(reply));
            return reply(NotAllowed("GET, POST"));
        }
        if (path == "/api/v1/schema/report") {
            if (method != http::verb::get) return reply(NotAllowed("GET"));
            std::ifstream in(services_.schema_path, std::ios::binary);
            std::string schema((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
            return reply(Make(http::status::ok, std::move(schema), "application/schema+json"));
        }
        if ((path.starts_with("/api/v1/") && path != "/api/v1/reports") ||
            path == "/feeds/alerts.atom") {
            if (Api(req, path, reply, client)) return;
        }
        if (path == "/api/v1/reports") {
            if (method != http::verb::post) return reply(NotAllowed("POST"));
            auto body = std::make_shared<std::string>(std::move(req.body()));
            const std::string token = Bearer(req);
            return Authorized(
                token, kAnyRole, client,
                [this, body](const engine::ApiToken&) { return SubmitReport(*body); },
                std::move(reply));
        }
        if (method == http::verb::get || method == http::verb::post) {
            WebRequest web;
            web.method = std::string(req.method_string());
            web.path = path;
            const std::string target_text(req.target());
            if (auto url = boost::urls::parse_origin_form(target_text); url) {
                for (const auto& p : url->params())
                    web.query[std::string(p.key)] = std::string(p.value);
            }
            web.body = std::move(req.body());
            web.cookie = Header(req, http::field::cookie);
            web.origin = Header(req, http::field::origin);
            web.sec_fetch_site = req["Sec-Fetch-Site"];
            web.client = client;
            if (Pages::IsPage(path)) {
                return Blocking(
                    [this, web = std::move(web)]() -> Response {
                        auto page = pages_.Handle(web);
                        if (!page)
                            return JsonError(http::status::not_found, "not_found",
                                             "no such page: " + web.path);
                        return FromWeb(std::move(*page));
                    },
                    std::move(reply));
            }
        }
        reply(JsonError(http::status::not_found, "not_found",
                        "no such endpoint: " + std::string(req.method_string()) + " " + path));
    } catch (const std::exception& e) {
        spdlog::error("http {} {}: {}", std::string(req.method_string()), path, e.what());
        reply(JsonError(http::status::internal_server_error, "internal", "the request failed"));
    }
}

// A page's response as Beast sends it; a header with a line break in it is refused.
Response Server::Impl::FromWeb(WebResponse page) {
    Response res =
        Make(static_cast<http::status>(page.status), std::move(page.body), page.content_type);
    for (const auto& [name, value] : page.headers) {
        if (!SafeHeaderValue(value))
            return JsonError(http::status::bad_request, "bad_request",
                             "the request holds a line break where none may be");
        res.set(name, value);
    }
    return res;
}

Response Server::Impl::NotAllowed(const char* allow) {
    Response res = JsonError(http::status::method_not_allowed, "method_not_allowed",
                             std::string("this endpoint takes ") + allow);
    res.set(http::field::allow, allow);
    return res;
}

// Runs `work` on the pool (it may block on the store), then replies.
void Server::Impl::Blocking(std::function<Response()> work, Reply reply) {
    net::post(pool_, [work = std::move(work), reply = std::move(reply)] {
        Response res;
        try {
            res = work();
        } catch (const std::exception& e) {
            spdlog::error("http: {}", e.what());
            res = JsonError(http::status::internal_server_error, "internal", "the request failed");
        }
        reply(std::move(res));
    });
}

Server::Server(net::io_context& io, ServerOptions options, Services services)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(services))) {}

Server::~Server() {
    impl_->Stop();
    impl_->JoinPool();  // blocking work finishes while the store is still there
}

engine::Result<int> Server::Start() {
    return impl_->Start();
}

int Server::metrics_port() const {
    return impl_->metrics_port();
}

void Server::Stop() {
    impl_->Stop();
}

engine::Result<bool> Server::ReloadTls(const std::string& cert_file, const std::string& key_file) {
    return impl_->ReloadTls(cert_file, key_file);
}

}  // namespace ldis::web
