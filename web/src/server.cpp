// The HTTP server (DESIGN §8): routing a request to the API, the pages or the link pages.
#include "server_impl.hpp"

namespace ldis::web {

std::map<std::string, std::string> Server::Impl::Call::Query() const {
    std::map<std::string, std::string> query;
    const std::string target(req.target());  // the url_view below points into it
    if (auto url = boost::urls::parse_origin_form(target); url) {
        for (const auto& p : url->params()) query[std::string(p.key)] = std::string(p.value);
    }
    return query;
}

// Every path the server answers. The API's own routes are in api.cpp (AddApiRoutes); the
// people's pages decide sign-in, CSRF and roles themselves (Pages::Handle).
void Server::Impl::AddRoutes() {
    routes_.Add({"GET"}, "/healthz",
                [this](Call& c) { Blocking([this] { return Health(); }, std::move(c.reply)); });
    routes_.Add({"GET"}, "/metrics", [this](Call& c) {
        // On its own listener when metrics.listen is set; on the main one only when not.
        if (!c.metrics_only && !options_.metrics_listen.empty())
            return c.reply(
                JsonError(http::status::not_found, "not_found", "no such endpoint: GET " + c.path));
        Blocking([this] { return Metrics(); }, std::move(c.reply));
    });
    // The links in messages: GET shows what the link does and a button; POST does it. Link
    // scanners that fetch every link in a message only ever GET.
    using LinkPage = WebResponse (LinkPages::*)(const std::string&, bool, const std::string&) const;
    // (Not a structured binding: clang 14, which builds the fuzzers, cannot capture one.)
    for (const auto& link :
         {std::pair<std::string_view, LinkPage>{engine::wire::kUnsubscribePath,
                                                &LinkPages::Unsubscribe},
          std::pair<std::string_view, LinkPage>{engine::wire::kAckPath, &LinkPages::Acknowledge}}) {
        const LinkPage page = link.second;
        routes_.Add({"GET", "POST"}, std::string(link.first) + "{token*}", [this, page](Call& c) {
            const bool record = c.req.method() == http::verb::post;
            Blocking(
                [this, page, token = c.params["token"], record,
                 body = record ? std::move(c.req.body()) : std::string()] {
                    return FromWeb((links_.*page)(token, record, body));
                },
                std::move(c.reply));
        });
    }
    routes_.Add({"GET"}, "/api/v1/schema/report", [this](Call& c) {
        std::ifstream in(services_.schema_path, std::ios::binary);
        std::string schema((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        c.reply(Make(http::status::ok, std::move(schema), "application/schema+json"));
    });
    AddApiRoutes();
    // The people's pages, and their assets.
    const Handler to_pages = [this](Call& c) {
        WebRequest web;
        web.method = std::string(c.req.method_string());
        web.path = c.path;
        web.query = c.Query();
        web.body = std::move(c.req.body());
        web.content_type = Header(c.req, http::field::content_type);
        web.cookie = Header(c.req, http::field::cookie);
        web.origin = Header(c.req, http::field::origin);
        web.sec_fetch_site = c.req["Sec-Fetch-Site"];
        web.client = c.client;
        Blocking(
            [this, web = std::move(web)]() -> Response {
                auto page = pages_.Handle(web);
                if (!page)
                    return JsonError(http::status::not_found, "not_found",
                                     "no such page: " + web.path);
                return FromWeb(std::move(*page));
            },
            std::move(c.reply));
    };
    for (const char* path :
         {"/", "/login", "/logout", "/report", "/grading", "/alerts/{path*}", "/assets/{path*}",
          "/federated/{path*}", "/public/{path*}", "/reports/quarterly"}) {
        routes_.Add({"GET", "POST"}, path, to_pages);
    }
}

// Routes one request by the table (AddRoutes); `reply` may be called from any thread.
// `client` is the peer's address; `metrics_only` for the metrics listener, which serves
// /metrics and /healthz.
void Server::Impl::Handle(Request req, Reply reply, const std::string& client, bool metrics_only) {
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    try {
        if (metrics_only && path != "/healthz" && path != "/metrics")
            return reply(JsonError(http::status::not_found, "not_found",
                                   "this listener serves /metrics and /healthz only"));
        const std::string method(req.method_string());
        auto found = routes_.Find(method, path);
        if (found.handler == nullptr) {
            if (!found.allow.empty()) return reply(NotAllowed(found.allow.c_str()));
            return reply(JsonError(http::status::not_found, "not_found",
                                   "no such endpoint: " + method + " " + path));
        }
        Call call{req, reply, client, path, metrics_only, std::move(found.params)};
        (*found.handler)(call);
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
