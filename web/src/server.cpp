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
namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using Reply = std::function<void(Response)>;

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The server's TLS context from PEM files: TLS 1.2 and later only, the key checked against
// the certificate. An Error names the file and what is wrong with it.
engine::Result<std::shared_ptr<ssl::context>> LoadTls(const std::string& cert_file,
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
std::string LastForwardedFor(const http::request<http::string_body>& req) {
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

Response Make(http::status status, std::string body, std::string_view content_type) {
    Response res{status, 11};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
}

Response JsonError(http::status status, std::string_view error, std::string_view detail) {
    return Make(status, json::serialize(json::object{{"error", error}, {"detail", detail}}),
                "application/json");
}

std::string Header(const Request& req, http::field field) {
    const auto it = req.find(field);
    return it == req.end() ? std::string() : std::string(it->value());
}

// What a caller holding `role` may read of an alert: a coordinator everything; anyone
// else only versions that were issued (a draft, and any version never issued, is for
// coordinators only). Nullopt when nothing of it was ever issued. The one rule for every
// endpoint, feed and export that a submitter can reach.
bool WasIssued(std::string_view status) {
    return status != "draft";
}

std::optional<engine::AlertRecord> ReadableBy(const std::string& role, engine::AlertRecord record) {
    if (role == "coordinator" || role == "admin") return record;
    std::erase_if(record.versions,
                  [](const engine::AlertVersionRow& v) { return !WasIssued(v.status); });
    if (record.versions.empty() || !WasIssued(record.alert.status)) return std::nullopt;
    record.deliveries.clear();
    record.audit.clear();
    // Why a coordinator set the level by hand, and who, is for coordinators.
    record.alert.override.reason.clear();
    record.alert.override.by.clear();
    return record;
}

std::string Bearer(const Request& req) {
    const auto it = req.find(http::field::authorization);
    if (it == req.end()) return {};
    const std::string_view value(it->value().data(), it->value().size());
    if (!value.starts_with("Bearer ")) return {};
    return std::string(value.substr(7));
}

}  // namespace

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
          links_(services_, services_.templates_dir) {}

    engine::Result<int> Start() {
        if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
            auto tls = LoadTls(options_.tls_cert_file, options_.tls_key_file);
            if (!tls.ok()) return tls.error();
            std::lock_guard lock(tls_mutex_);
            tls_ = std::move(tls.value());
        }
        auto port = Listen(acceptor_, options_.listen, "http.listen");
        if (!port.ok()) return port;
        if (!options_.metrics_listen.empty()) {
            auto metrics =
                Listen(metrics_acceptor_, options_.metrics_listen, "http.metrics_listen");
            if (!metrics.ok()) return metrics;
            metrics_port_ = metrics.value();
        }
        // A descriptor in reserve: when accept() fails for want of descriptors, this one is
        // closed to accept the waiting connection and close it at once, instead of leaving
        // it in the backlog where it makes accept() fail again at once, for ever.
        spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        Accept(acceptor_, false);
        if (metrics_acceptor_.is_open()) Accept(metrics_acceptor_, true);
        return port;
    }

    int metrics_port() const { return metrics_port_; }

    void Stop() {
        boost::system::error_code ec;
        acceptor_.close(ec);
        metrics_acceptor_.close(ec);
        accept_pause_.cancel();
    }

    ~Impl() {
        if (spare_fd_ >= 0) ::close(spare_fd_);
    }

    void JoinPool() { pool_.join(); }

    const ServerOptions& options() const { return options_; }

    engine::Result<bool> ReloadTls(const std::string& cert_file, const std::string& key_file) {
        if (!tls_context())
            return engine::Error{
                "ldisd was started without http.tls_cert_file: HTTPS starts at the next restart"};
        auto tls = LoadTls(cert_file, key_file);
        if (!tls.ok()) return tls.error();
        std::lock_guard lock(tls_mutex_);
        tls_ = std::move(tls.value());
        return true;
    }

    // The TLS context for a new connection, or null when the server speaks plain HTTP.
    std::shared_ptr<ssl::context> tls_context() {
        std::lock_guard lock(tls_mutex_);
        return tls_;
    }

    // True if X-Forwarded-For and X-Forwarded-Proto from `peer` are believed.
    bool TrustsForwarding(const std::string& peer) const {
        return options_.trust_forwarded &&
               std::find(options_.trusted_proxies.begin(), options_.trusted_proxies.end(), peer) !=
                   options_.trusted_proxies.end();
    }

    // Connections open now, for the cap.
    std::atomic<std::size_t>& open_connections() { return open_connections_; }

    // Routes one request; `reply` may be called from any thread. `client` is the peer's
    // address; `metrics_only` for the metrics listener, which serves /metrics and /healthz.
    void Handle(Request req, Reply reply, const std::string& client, bool metrics_only) {
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

private:
    static constexpr int kSubmitter = 1, kCoordinator = 2, kAdmin = 4;

    // A page's response as Beast sends it; a header with a line break in it is refused.
    static Response FromWeb(WebResponse page) {
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
    static constexpr int kAnyRole = kSubmitter | kCoordinator | kAdmin;

    // The token's owner, or the 401/403/429 to send. Blocks on the store's reader.
    std::variant<engine::ApiToken, Response> Authorize(const std::string& bearer, int roles,
                                                       const std::string& client) {
        if (const int wait = bad_keys_.Refused(client); wait > 0 && !bearer.empty()) {
            Response res = JsonError(http::status::too_many_requests, "too_many_requests",
                                     "too many unknown tokens from your address: try again in " +
                                         std::to_string(wait) + " s");
            res.set(http::field::retry_after, std::to_string(wait));
            return res;
        }
        if (bearer.empty()) {
            Response res = JsonError(http::status::unauthorized, "unauthorized",
                                     "send a bearer token: Authorization: Bearer <token>");
            res.set(http::field::www_authenticate, "Bearer realm=\"ldis\"");
            return res;
        }
        auto who = services_.store->FindToken(bearer);
        if (!who) {
            bad_keys_.Count(client);
            Response res = JsonError(http::status::unauthorized, "unauthorized",
                                     "the bearer token is not known or was revoked");
            res.set(http::field::www_authenticate,
                    "Bearer realm=\"ldis\", error=\"invalid_token\"");
            return res;
        }
        const int role = who->role == "submitter"     ? kSubmitter
                         : who->role == "coordinator" ? kCoordinator
                         : who->role == "admin"       ? kAdmin
                                                      : 0;
        if ((role & roles) == 0)
            return JsonError(http::status::forbidden, "forbidden",
                             "the role " + who->role + " may not do this");
        return *who;
    }

    // Runs `work` for a caller holding one of `roles`, on the pool.
    void Authorized(const std::string& bearer, int roles, const std::string& client,
                    std::function<Response(const engine::ApiToken&)> work, Reply reply) {
        Blocking(
            [this, bearer, roles, client, work = std::move(work)]() -> Response {
                auto who = Authorize(bearer, roles, client);
                if (auto* refused = std::get_if<Response>(&who)) return std::move(*refused);
                return work(std::get<engine::ApiToken>(who));
            },
            std::move(reply));
    }

    Response AlertList(const engine::AlertFilter& f) {
        const auto page = services_.store->FindAlerts(f);
        json::array items;
        for (const auto& a : page.alerts) items.push_back(AlertJson(a, services_.public_url));
        json::object o{{"total", page.total},
                       {"limit", f.limit},
                       {"offset", f.offset},
                       {"alerts", std::move(items)}};
        return Make(http::status::ok, json::serialize(o), "application/json");
    }

    // Partners without their webhook secrets.
    Response PartnersResponse() {
        const auto partners = services_.partners ? services_.partners() : nullptr;
        json::array list;
        if (partners) {
            for (const auto& p : partners->partners()) {
                json::array contacts, subscriptions;
                for (const auto& c : p.contacts) {
                    contacts.push_back({{"name", c.name},
                                        {"channel", std::string(engine::ToString(c.channel))},
                                        {"address", c.address},
                                        {"format", c.format}});
                }
                for (const auto& sub : p.subscriptions) {
                    const auto words = [](const auto& set) {
                        json::array out;
                        for (const auto& w : set) out.emplace_back(w);
                        return out;
                    };
                    json::array levels;
                    for (const auto l : sub.levels)
                        levels.emplace_back(std::string(engine::ToString(l)));
                    subscriptions.push_back({{"levels", levels},
                                             {"authorities", words(sub.authorities)},
                                             {"districts", words(sub.districts)},
                                             {"audiences", words(sub.audiences)},
                                             {"contacts", words(sub.contacts)}});
                }
                json::array fallback;
                for (const auto& f : p.fallback) fallback.emplace_back(f);
                list.push_back({{"id", p.id},
                                {"name", p.name},
                                {"sector", p.sector},
                                {"contacts", std::move(contacts)},
                                {"subscriptions", std::move(subscriptions)},
                                {"escalation", p.escalation},
                                {"fallback", std::move(fallback)}});
            }
        }
        const auto* coordinators = partners ? partners->coordinators() : nullptr;
        return Make(http::status::ok,
                    json::serialize(json::object{
                        {"coordinators", coordinators ? coordinators->id : std::string()},
                        {"partners", std::move(list)}}),
                    "application/json");
    }

    Response AtomResponse() {
        engine::AlertFilter f;
        f.limit = 100;
        auto page = services_.store->FindAlerts(f);
        std::vector<engine::StoredAlert> issued;
        for (auto& a : page.alerts) {
            if (WasIssued(a.status)) issued.push_back(std::move(a));  // a feed is for everyone
        }
        return Make(http::status::ok, AtomFeed(issued, services_.public_url, NowMs()),
                    "application/atom+xml; charset=utf-8");
    }

    Response CapResponse(const std::string& ref, int version, const std::string& role) {
        auto stored = services_.store->FindAlertRecord(ref);
        const auto record = stored ? ReadableBy(role, std::move(*stored)) : std::nullopt;
        if (!record) return JsonError(http::status::not_found, "not_found", "no alert " + ref);
        std::string xml = CapXml(*record, version, services_.sender, services_.public_url);
        if (xml.empty())
            return JsonError(http::status::not_found, "not_found",
                             ref + " has no version " + std::to_string(version));
        return Make(http::status::ok, std::move(xml), "application/cap+xml; charset=utf-8");
    }

    // `body` may carry {"wording": {"what"|"harms"|"advice": text}, "send_as_written": bool}
    // for an update: the coordinator's own words, checked by the scrubber first.
    Response ActOn(const std::string& ref, engine::AlertAction action, const engine::ApiToken& who,
                   const std::string& body) {
        if (!services_.store->FindAlert(ref))
            return JsonError(http::status::not_found, "not_found", "no alert " + ref);
        engine::AlertWording wording;
        if (!body.empty() && body.find_first_not_of(" \t\r\n") != std::string::npos) {
            json::error_code ec;
            const auto doc = json::parse(body, ec);
            if (ec || !doc.is_object())
                return JsonError(http::status::bad_request, "bad_request",
                                 "the body must be a JSON object, as {\"wording\": {\"what\": "
                                 "\"...\"}}");
            if (const auto* w = doc.as_object().if_contains("wording")) {
                if (!w->is_object())
                    return JsonError(http::status::bad_request, "bad_request",
                                     "wording must be an object of section names and texts");
                for (const auto& [k, v] : w->as_object()) {
                    if (!v.is_string())
                        return JsonError(http::status::bad_request, "bad_request",
                                         "wording." + std::string(k) + " must be text");
                    wording.sections[std::string(k)] = std::string(v.as_string());
                }
            }
            const auto* send = doc.as_object().if_contains("send_as_written");
            const bool as_written = send && send->is_bool() && send->as_bool();
            const auto check = CheckWording(wording.sections);
            if (!check.findings.empty() && !as_written) {
                json::object found;
                for (const auto& [section, what] : check.findings) found[section] = what;
                Response res =
                    Make(http::status::unprocessable_entity,
                         json::serialize(json::object{
                             {"error", "personal_data"},
                             {"detail",
                              "the wording may identify someone; edit it, or send it as written "
                              "with \"send_as_written\": true"},
                             {"findings", std::move(found)}}),
                         "application/json");
                return res;
            }
            wording.confirmed_findings = check.count;
        }
        auto done = services_.store->Act(ref, action, who.name, wording);
        if (!done.ok()) return JsonError(http::status::conflict, "conflict", done.error().message);
        spdlog::info("alert {} by {}: {} v{}", std::string(engine::ToString(action)), who.name, ref,
                     done.value().version);
        return Make(http::status::ok,
                    json::serialize(AlertJson(done.value(), services_.public_url)),
                    "application/json");
    }

    // {"level": "red", "reason": "..."} sets an override; {"lift": true, "reason": "..."}
    // lifts it. The reason (10 to 500 characters) is audited.
    Response OverrideResponse(const std::string& kind, const std::string& id,
                              const std::string& body, const engine::ApiToken& who) {
        std::int64_t signal = 0;
        if (kind == "alerts") {
            const auto alert = services_.store->FindAlert(id);
            if (!alert) return JsonError(http::status::not_found, "not_found", "no alert " + id);
            signal = alert->signal_id;
        } else {
            const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), signal);
            if (ec != std::errc() || end != id.data() + id.size() || signal <= 0)
                return JsonError(http::status::not_found, "not_found", "no signal " + id);
        }
        json::error_code ec;
        const auto doc = json::parse(body, ec);
        if (ec || !doc.is_object())
            return JsonError(http::status::bad_request, "bad_request",
                             "the body must be a JSON object: {\"level\": \"red\", \"reason\": "
                             "\"...\"}, or {\"lift\": true, \"reason\": \"...\"}");
        const auto& o = doc.as_object();
        const auto* reason = o.if_contains("reason");
        if (!reason || !reason->is_string() || !IsAuditReason(reason->as_string()))
            return JsonError(http::status::bad_request, "bad_request",
                             "say why, in a sentence: \"reason\", 10 to 500 characters; it is "
                             "kept in the audit log and shown on the alert");
        const auto* lift = o.if_contains("lift");
        const bool lifting = lift && lift->is_bool() && lift->as_bool();
        std::string level;
        if (!lifting) {
            const auto* l = o.if_contains("level");
            engine::Level parsed;
            if (!l || !l->is_string() || !engine::ParseLevel(l->as_string(), parsed))
                return JsonError(http::status::bad_request, "bad_request",
                                 "level must be none, green, amber or red (or send \"lift\": "
                                 "true to give the level back to the rules)");
            level = std::string(l->as_string());
        }
        auto done =
            services_.store->Override(signal, level, std::string(reason->as_string()), who.name);
        if (!done.ok()) {
            const bool missing = done.error().message.starts_with("there is no signal");
            return JsonError(missing ? http::status::not_found : http::status::conflict,
                             missing ? "not_found" : "conflict", done.error().message);
        }
        const auto& held = done.value();
        spdlog::info("signal {} override {} by {}", signal, lifting ? "lifted" : level, who.name);
        json::value alert = nullptr;
        if (!held.alert_reference.empty()) {
            if (const auto a = services_.store->FindAlert(held.alert_reference))
                alert = AlertJson(*a, services_.public_url);
        }
        return Make(http::status::ok,
                    json::serialize(
                        json::object{{"signal", signal},
                                     {"level", held.level.empty() ? held.rules_level : held.level},
                                     {"rules_level", held.rules_level},
                                     {"override", OverrideJson(held)},
                                     {"alert", alert}}),
                    "application/json");
    }

    // {"rules": TOML text, "substances": TOML text (optional: the ones in use)}.
    Response ReplayResponse(const std::string& body) {
        json::error_code ec;
        const auto doc = json::parse(body, ec);
        const auto* rules = !ec && doc.is_object() ? doc.as_object().if_contains("rules") : nullptr;
        if (!rules || !rules->is_string())
            return JsonError(http::status::bad_request, "bad_request",
                             "send the proposed rules file as text: {\"rules\": \"[[rule]]...\", "
                             "\"substances\": \"...\" (optional)}");
        const auto current = services_.store->Grading();
        if (!current) return JsonError(http::status::conflict, "conflict", "grading is not set up");
        try {
            const auto* given = doc.as_object().if_contains("substances");
            std::optional<engine::Substances> substances;
            if (given && given->is_string())
                substances = engine::Substances::Parse(given->as_string(), "substances");
            const auto& use = substances ? *substances : current->substances;
            const auto proposed = engine::Rules::Parse(rules->as_string(), "rules", use);
            return Make(
                http::status::ok,
                engine::ReplayToJson(engine::Replay(services_.store->Signals(), use, proposed)),
                "application/json");
        } catch (const engine::StoreError&) {
            throw;
        } catch (const std::exception& e) {
            return JsonError(http::status::unprocessable_entity, "invalid_rules", e.what());
        }
    }

    // Reads ?since, ?until, ?limit, ?offset and the word filters; or the 400 to send.
    std::variant<engine::AlertFilter, Response> FilterOf(std::map<std::string, std::string> query) {
        engine::AlertFilter f;
        f.level = query["level"];
        f.status = query["status"];
        f.authority = query["authority"];
        f.district = query["district"];
        f.family = query["substance"];
        f.q = query["q"];
        for (const auto& [key, field] : {std::pair{"since", &f.since_ms}, {"until", &f.until_ms}}) {
            if (query[key].empty()) continue;
            const auto t = ParseTime(query[key]);
            if (!t)
                return JsonError(
                    http::status::bad_request, "bad_request",
                    std::string(key) + " must be a date (2026-11-23) or an RFC 3339 date-time");
            *field = *t;
        }
        for (const auto& [key, field, most] :
             {std::tuple{"limit", &f.limit, std::size_t{500}},
              std::tuple{"offset", &f.offset, std::size_t{1000000000}}}) {
            const std::string& text = query[key];
            if (text.empty()) continue;
            std::size_t n = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec != std::errc() || end != text.data() + text.size() || n > most)
                return JsonError(
                    http::status::bad_request, "bad_request",
                    std::string(key) + " must be a whole number up to " + std::to_string(most));
            *field = n;
        }
        return f;
    }

    // The API's read endpoints, feeds and coordinator actions. False when `path` is none.
    bool Api(const Request& req, const std::string& path, Reply& reply, const std::string& client) {
        const std::string bearer = Bearer(req);
        const auto method = req.method();
        std::vector<std::string> parts;  // "api", "v1", "alerts", id, action
        for (std::size_t at = 1; at <= path.size();) {
            const auto next = path.find('/', at);
            parts.push_back(
                path.substr(at, next == std::string::npos ? std::string::npos : next - at));
            if (next == std::string::npos) break;
            at = next + 1;
        }
        std::map<std::string, std::string> query;
        const std::string target(req.target());  // the url_view below points into it
        if (auto url = boost::urls::parse_origin_form(target); url) {
            for (const auto& p : url->params()) query[std::string(p.key)] = std::string(p.value);
        }
        const bool get = method == http::verb::get;
        if (path == "/feeds/alerts.atom") {
            if (!get) return reply(NotAllowed("GET")), true;
            Authorized(
                bearer, kAnyRole, client,
                [this](const engine::ApiToken&) { return AtomResponse(); }, std::move(reply));
            return true;
        }
        if (path == "/api/v1/partners") {
            if (!get) return reply(NotAllowed("GET")), true;
            Authorized(
                bearer, kCoordinator | kAdmin, client,
                [this](const engine::ApiToken&) { return PartnersResponse(); }, std::move(reply));
            return true;
        }
        if (parts.size() == 5 && parts[2] == "reports" && parts[4] == "reveal") {
            // The original text of one report, for a coordinator who says why; audited.
            if (method != http::verb::post) return reply(NotAllowed("POST")), true;
            const std::string id = parts[3];
            auto body = std::make_shared<std::string>(req.body());
            Authorized(
                bearer, kCoordinator | kAdmin, client,
                [this, id, body](const engine::ApiToken& who) {
                    json::error_code ec;
                    const auto doc = json::parse(*body, ec);
                    const auto* reason =
                        !ec && doc.is_object() ? doc.as_object().if_contains("reason") : nullptr;
                    if (!reason || !reason->is_string() || !IsAuditReason(reason->as_string()))
                        return JsonError(http::status::bad_request, "bad_request",
                                         "say why you need the original text: {\"reason\": "
                                         "\"...\"}, 10 to 500 characters; it is audited");
                    auto row =
                        services_.store->Reveal(id, who.name, std::string(reason->as_string()));
                    if (!row.ok())
                        return JsonError(http::status::not_found, "not_found", row.error().message);
                    spdlog::info("report revealed reference={} by {}", row.value().reference,
                                 who.name);
                    json::error_code parse;
                    return Make(http::status::ok,
                                json::serialize(json::object{
                                    {"id", row.value().id},
                                    {"reference", row.value().reference},
                                    {"report", json::parse(row.value().document, parse)}}),
                                "application/json");
                },
                std::move(reply));
            return true;
        }
        if (parts.size() == 4 && parts[2] == "reports") {
            if (!get) return reply(NotAllowed("GET")), true;
            const std::string id = parts[3];
            Authorized(
                bearer, kCoordinator | kAdmin, client,
                [this, id](const engine::ApiToken&) {
                    const auto row = services_.store->Find(id);
                    if (!row)
                        return JsonError(http::status::not_found, "not_found", "no report " + id);
                    return Make(http::status::ok, json::serialize(ReportJson(*row)),
                                "application/json");
                },
                std::move(reply));
            return true;
        }
        if (parts.size() == 3 && parts[2] == "alerts") {
            if (!get) return reply(NotAllowed("GET")), true;
            auto filter = FilterOf(query);
            if (auto* bad = std::get_if<Response>(&filter)) return reply(std::move(*bad)), true;
            Authorized(
                bearer, kCoordinator | kAdmin, client,
                [this, f = std::get<engine::AlertFilter>(filter)](const engine::ApiToken&) {
                    return AlertList(f);
                },
                std::move(reply));
            return true;
        }
        if (parts.size() == 4 && parts[2] == "alerts") {
            if (!get) return reply(NotAllowed("GET")), true;
            const std::string ref = parts[3];
            Authorized(
                bearer, kCoordinator | kAdmin, client,
                [this, ref](const engine::ApiToken&) {
                    const auto record = services_.store->FindAlertRecord(ref);
                    if (!record)
                        return JsonError(http::status::not_found, "not_found", "no alert " + ref);
                    return Make(http::status::ok,
                                json::serialize(AlertRecordJson(*record, services_.public_url)),
                                "application/json");
                },
                std::move(reply));
            return true;
        }
        if (parts.size() == 5 && parts[2] == "alerts" && parts[4] == "cap") {
            if (!get) return reply(NotAllowed("GET")), true;
            const std::string ref = parts[3];
            const int version = query["version"].empty() ? 0 : std::atoi(query["version"].c_str());
            Authorized(
                bearer, kAnyRole, client,
                [this, ref, version](const engine::ApiToken& who) {
                    return CapResponse(ref, version, who.role);
                },
                std::move(reply));
            return true;
        }
        if (parts.size() == 5 && parts[4] == "override" &&
            (parts[2] == "signals" || parts[2] == "alerts")) {
            // A coordinator sets a signal's level by hand, or lifts that: by the signal's id,
            // or by its alert's reference.
            if (method != http::verb::post) return reply(NotAllowed("POST")), true;
            const std::string kind = parts[2], id = parts[3];
            auto body = std::make_shared<std::string>(req.body());
            Authorized(
                bearer, kCoordinator | kAdmin, client,
                [this, kind, id, body](const engine::ApiToken& who) {
                    return OverrideResponse(kind, id, *body, who);
                },
                std::move(reply));
            return true;
        }
        if (path == "/api/v1/grading/replay") {
            // Admins: every stored signal graded again with proposed rules; nothing written.
            if (method != http::verb::post) return reply(NotAllowed("POST")), true;
            auto body = std::make_shared<std::string>(req.body());
            Authorized(
                bearer, kAdmin, client,
                [this, body](const engine::ApiToken&) { return ReplayResponse(*body); },
                std::move(reply));
            return true;
        }
        if (parts.size() == 5 && parts[2] == "alerts" &&
            (parts[4] == "approve" || parts[4] == "update" || parts[4] == "cancel")) {
            if (method != http::verb::post) return reply(NotAllowed("POST")), true;
            const std::string ref = parts[3];
            const auto action = parts[4] == "approve"  ? engine::AlertAction::kApprove
                                : parts[4] == "cancel" ? engine::AlertAction::kCancel
                                                       : engine::AlertAction::kRevise;
            auto body = std::make_shared<std::string>(req.body());
            Authorized(
                bearer, kCoordinator | kAdmin, client,
                [this, ref, action, body](const engine::ApiToken& who) {
                    return ActOn(ref, action, who, *body);
                },
                std::move(reply));
            return true;
        }
        return false;
    }

    Response NotAllowed(const char* allow) {
        Response res = JsonError(http::status::method_not_allowed, "method_not_allowed",
                                 std::string("this endpoint takes ") + allow);
        res.set(http::field::allow, allow);
        return res;
    }

    // Runs `work` on the pool (it may block on the store), then replies.
    void Blocking(std::function<Response()> work, Reply reply) {
        net::post(pool_, [work = std::move(work), reply = std::move(reply)] {
            Response res;
            try {
                res = work();
            } catch (const std::exception& e) {
                spdlog::error("http: {}", e.what());
                res = JsonError(http::status::internal_server_error, "internal",
                                "the request failed");
            }
            reply(std::move(res));
        });
    }

    Response Health() {
        const bool broker = !services_.broker_connected || services_.broker_connected();
        const std::int64_t reports = services_.store->CountReports();
        const auto counts = services_.store->DeliveryCounts();
        std::int64_t backlog = 0;
        for (const char* s : {"queued", "retrying", "sending"}) {
            if (auto it = counts.find(s); it != counts.end()) backlog += it->second;
        }
        const bool ok = broker && reports >= 0;
        json::object o{{"status", ok ? "ok" : "degraded"},
                       {"broker", broker ? "connected" : "disconnected"},
                       {"database", reports >= 0 ? "ok" : "unreadable"},
                       {"outbox_backlog", backlog}};
        return Make(ok ? http::status::ok : http::status::service_unavailable, json::serialize(o),
                    "application/json");
    }

    // Built at most every 2 s, whoever asks how often: the counts scan whole tables.
    Response Metrics() {
        std::lock_guard lock(metrics_mutex_);
        const auto now = std::chrono::steady_clock::now();
        if (metrics_text_.empty() || now - metrics_at_ >= std::chrono::seconds(2)) {
            metrics_text_ = MetricsText();
            metrics_at_ = now;
        }
        return Make(http::status::ok, metrics_text_, "text/plain; version=0.0.4; charset=utf-8");
    }

    std::string MetricsText() {
        std::ostringstream out;
        out << "# HELP ldis_reports_total Reports taken in since start, by outcome.\n"
               "# TYPE ldis_reports_total counter\n";
        const auto& c = services_.intake->counters();
        out << "ldis_reports_total{status=\"accepted\"} " << c.accepted.load() << "\n"
            << "ldis_reports_total{status=\"duplicate\"} " << c.duplicate.load() << "\n"
            << "ldis_reports_total{status=\"rejected\"} " << c.rejected.load() << "\n"
            << "ldis_reports_total{status=\"store_failure\"} " << c.store_failures.load() << "\n";
        const auto counts = services_.store->CountAll();
        out << "# HELP ldis_reports_stored Reports in the database.\n"
               "# TYPE ldis_reports_stored gauge\n"
            << "ldis_reports_stored " << counts.reports << "\n"
            << "# HELP ldis_last_report_received_timestamp_seconds When the newest report was "
               "received (0: none yet).\n"
               "# TYPE ldis_last_report_received_timestamp_seconds gauge\n"
            << "ldis_last_report_received_timestamp_seconds " << counts.last_report_ms / 1000
            << "\n"
            << "# HELP ldis_red_alerts_unacknowledged_overdue Live red alerts that a partner "
               "has not acknowledged by its deadline.\n"
               "# TYPE ldis_red_alerts_unacknowledged_overdue gauge\n"
            << "ldis_red_alerts_unacknowledged_overdue " << counts.red_unacknowledged_overdue
            << "\n";
        if (counts.disk_size_bytes > 0) {
            out << "# HELP ldis_store_disk_free_bytes Free space on the database's file system.\n"
                   "# TYPE ldis_store_disk_free_bytes gauge\n"
                << "ldis_store_disk_free_bytes " << counts.disk_free_bytes << "\n"
                << "# HELP ldis_store_disk_size_bytes Size of the database's file system.\n"
                   "# TYPE ldis_store_disk_size_bytes gauge\n"
                << "ldis_store_disk_size_bytes " << counts.disk_size_bytes << "\n";
        }
        out << "# HELP ldis_alerts Alerts in the database, by level and status.\n"
               "# TYPE ldis_alerts gauge\n";
        for (const auto& [key, n] : counts.alerts) {
            const auto slash = key.find('/');
            out << "ldis_alerts{level=\"" << key.substr(0, slash) << "\",status=\""
                << key.substr(slash + 1) << "\"} " << n << "\n";
        }
        out << "# HELP ldis_deliveries Deliveries in the outbox, by channel and status.\n"
               "# TYPE ldis_deliveries gauge\n";
        std::map<std::string, std::int64_t> by_status;
        for (const auto& [key, n] : counts.deliveries) {
            const auto slash = key.find('/');
            by_status[key.substr(slash + 1)] += n;
            out << "ldis_deliveries{channel=\"" << key.substr(0, slash) << "\",status=\""
                << key.substr(slash + 1) << "\"} " << n << "\n";
        }
        out << "# HELP ldis_deliveries_by_status Deliveries in the outbox, by status.\n"
               "# TYPE ldis_deliveries_by_status gauge\n";
        for (const char* st : {"queued", "sending", "delivered", "retrying", "failed"}) {
            out << "ldis_deliveries_by_status{status=\"" << st << "\"} " << by_status[st] << "\n";
        }
        if (services_.dispatch) {
            out << "# HELP ldis_dispatch_attempts_total Delivery attempts since start, by "
                   "outcome.\n"
                   "# TYPE ldis_dispatch_attempts_total counter\n"
                << "ldis_dispatch_attempts_total{outcome=\"delivered\"} "
                << services_.dispatch->delivered.load() << "\n"
                << "ldis_dispatch_attempts_total{outcome=\"retry\"} "
                << services_.dispatch->retried.load() << "\n"
                << "ldis_dispatch_attempts_total{outcome=\"failed\"} "
                << services_.dispatch->failed.load() << "\n";
            const auto& d = *services_.dispatch;
            out << "# HELP ldis_dispatch_latency_seconds From an alert version's creation to "
                   "each delivery of it being accepted.\n"
                   "# TYPE ldis_dispatch_latency_seconds histogram\n";
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < std::size(engine::DispatchCounters::kLatencyBounds); ++i) {
                cumulative += d.latency_buckets[i].load();
                out << "ldis_dispatch_latency_seconds_bucket{le=\""
                    << engine::DispatchCounters::kLatencyBounds[i] << "\"} " << cumulative << "\n";
            }
            cumulative +=
                d.latency_buckets[std::size(engine::DispatchCounters::kLatencyBounds)].load();
            out << "ldis_dispatch_latency_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
                << "ldis_dispatch_latency_seconds_sum "
                << static_cast<double>(d.latency_sum_ms.load()) / 1000.0 << "\n"
                << "ldis_dispatch_latency_seconds_count " << d.latency_count.load() << "\n";
        }
        const bool broker = !services_.broker_connected || services_.broker_connected();
        out << "# HELP ldis_mqtt_connected 1 while the MQTT connection is up.\n"
               "# TYPE ldis_mqtt_connected gauge\n"
            << "ldis_mqtt_connected " << (broker ? 1 : 0) << "\n";
        out << "# HELP ldis_http_connections HTTP connections open now.\n"
               "# TYPE ldis_http_connections gauge\n"
            << "ldis_http_connections " << open_connections_.load() << "\n"
            << "# HELP ldis_http_refused_total Connections refused since start: over "
               "http.max_connections, or no descriptor left.\n"
               "# TYPE ldis_http_refused_total counter\n"
            << "ldis_http_refused_total " << refused_total_.load() << "\n";
        return out.str();
    }

    // GET shows what is being acknowledged and a button; POST records it. Link scanners
    // that fetch every link in a message only ever GET.

    Response SubmitReport(const std::string& body) {
        auto outcome = services_.intake->Submit(body, "http");
        if (!outcome.ok()) {
            Response res = JsonError(
                http::status::service_unavailable, "unavailable",
                "the report could not be stored; send it again: " + outcome.error().message);
            res.set(http::field::retry_after, "5");
            return res;
        }
        const auto& receipt = outcome.value().receipt;
        const auto status =
            receipt.status == engine::ReceiptStatus::kRejected ? http::status::unprocessable_entity
            : receipt.status == engine::ReceiptStatus::kDuplicate ? http::status::ok
                                                                  : http::status::accepted;
        return Make(status, receipt.ToJson(), "application/json");
    }

    engine::Result<int> Listen(tcp::acceptor& acceptor, const std::string& listen,
                               const std::string& key) {
        const auto colon = listen.rfind(':');
        if (colon == std::string::npos)
            return engine::Error{key + " \"" + listen + "\" must be host:port"};
        boost::system::error_code ec;
        const auto address = net::ip::make_address(listen.substr(0, colon), ec);
        if (ec) return engine::Error{key + " \"" + listen + "\": " + ec.message()};
        int port = 0;
        try {
            port = std::stoi(listen.substr(colon + 1));
        } catch (const std::exception&) {
            return engine::Error{key + " \"" + listen + "\": the port is not a number"};
        }
        const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (!ec) acceptor.bind(endpoint, ec);
        if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
        if (ec) return engine::Error{"cannot listen on " + listen + ": " + ec.message()};
        return static_cast<int>(acceptor.local_endpoint().port());
    }

    // One warning per 10 s for a trouble that repeats, with how often it happened.
    void WarnRepeated(const std::string& what) {
        ++repeats_;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_warning_ < std::chrono::seconds(10)) return;
        spdlog::warn("http: {} ({} time(s) in the last interval)", what, repeats_);
        repeats_ = 0;
        last_warning_ = now;
    }

    void Accept(tcp::acceptor& acceptor, bool metrics_only) {
        acceptor.async_accept([self = shared_from_this(), &acceptor, metrics_only](
                                  boost::system::error_code ec, tcp::socket socket) {
            if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
            if (ec == net::error::no_descriptors || ec == net::error::no_buffer_space ||
                ec.value() == ENFILE || ec == net::error::no_memory) {
                self->refused_total_.fetch_add(1);
                self->WarnRepeated("accept: " + ec.message() + "; shedding the connection");
                // Take the waiting connection with the spare descriptor and close it, then
                // pause accepting for a moment: a tight loop of failing accepts helps nobody.
                if (self->spare_fd_ >= 0) {
                    ::close(self->spare_fd_);
                    const int fd =
                        ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
                    if (fd >= 0) ::close(fd);
                    self->spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
                }
                self->accept_pause_.expires_after(std::chrono::milliseconds(100));
                self->accept_pause_.async_wait(
                    [self, &acceptor, metrics_only](boost::system::error_code wait) {
                        if (!wait && acceptor.is_open()) self->Accept(acceptor, metrics_only);
                    });
                return;
            }
            if (ec) {
                self->WarnRepeated("accept: " + ec.message());
            } else if (self->open_connections_.load() >= self->options_.max_connections) {
                // Over the cap: say so in one write, without reading, and close.
                self->refused_total_.fetch_add(1);
                self->WarnRepeated("over http.max_connections (" +
                                   std::to_string(self->options_.max_connections) +
                                   "): answering 503");
                static constexpr std::string_view kBusy =
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    "Retry-After: 5\r\nConnection: close\r\nContent-Length: 67\r\n\r\n"
                    "{\"error\":\"unavailable\",\"detail\":\"too many connections: try again\"}\n";
                boost::system::error_code ignored;
                socket.non_blocking(true, ignored);
                // A TLS client cannot read a plain answer: it only sees the connection close.
                if (metrics_only || !self->tls_context())
                    socket.write_some(net::buffer(kBusy.data(), kBusy.size()), ignored);
                socket.shutdown(tcp::socket::shutdown_both, ignored);
                socket.close(ignored);
            } else {
                StartSession(self, std::move(socket), metrics_only);
            }
            self->Accept(acceptor, metrics_only);
        });
    }

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
};

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection: read a request, route it, write the response; again while kept alive.
// `Stream` is beast::tcp_stream for plain HTTP, TlsStream for HTTPS (handshake first).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
    static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

public:
    Session(tcp::socket socket, std::shared_ptr<Server::Impl> server, bool metrics_only,
            std::shared_ptr<ssl::context> tls)
        : tls_(std::move(tls)),
          stream_(Open(std::move(socket), tls_.get())),
          server_(std::move(server)),
          metrics_only_(metrics_only) {
        server_->open_connections().fetch_add(1);
        boost::system::error_code ec;
        const auto peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
        peer_ = ec ? "unknown" : peer.address().to_string();
    }
    ~Session() { server_->open_connections().fetch_sub(1); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Begins the exchange: the TLS handshake first on HTTPS, within the request timeout.
    void Start() {
        if constexpr (kTls) {
            beast::get_lowest_layer(stream_).expires_after(server_->options().timeout);
            stream_.async_handshake(
                ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
                    if (ec) {
                        spdlog::debug("https: no handshake with {}: {}", self->peer_, ec.message());
                        return;  // the socket closes with the session
                    }
                    self->Read();
                });
        } else {
            Read();
        }
    }

private:
    static Stream Open(tcp::socket socket, ssl::context* tls) {
        if constexpr (kTls)
            return Stream(std::move(socket), *tls);
        else
            return Stream(std::move(socket));
    }

    void Read() {
        parser_.emplace();
        parser_->body_limit(server_->options().max_body);
        parser_->header_limit(16 * 1024);
        beast::get_lowest_layer(stream_).expires_after(server_->options().timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                             self->OnRead(ec);
                         });
    }

    void OnRead(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == net::error::operation_aborted || ec == net::error::connection_reset) {
            return Close();
        }
        if (ec == ssl::error::stream_truncated) {  // a TLS client left without close_notify
            beast::get_lowest_layer(stream_).socket().close(ec);
            return;
        }
        if (ec == http::error::body_limit) {
            keep_alive_ = false;
            return Send(JsonError(
                http::status::payload_too_large, "payload_too_large",
                "the body is over " + std::to_string(server_->options().max_body) + " bytes"));
        }
        if (ec) {
            keep_alive_ = false;
            return Send(JsonError(http::status::bad_request, "bad_request",
                                  "the request is not valid HTTP: " + ec.message()));
        }
        Request req = parser_->release();
        version_ = req.version();
        keep_alive_ = req.keep_alive();
        // Behind a trusted proxy, the client is the one the proxy saw.
        std::string client = peer_;
        forwarded_https_ = false;
        if (server_->TrustsForwarding(peer_)) {
            if (auto forwarded = LastForwardedFor(req); !forwarded.empty())
                client = std::move(forwarded);
            const auto proto = req["X-Forwarded-Proto"];
            forwarded_https_ = beast::iequals(proto, "https");
        }
        auto self = this->shared_from_this();
        server_->Handle(
            std::move(req),
            [self](Response res) {
                auto executor = self->stream_.get_executor();
                net::post(executor,
                          [self, res = std::move(res)]() mutable { self->Send(std::move(res)); });
            },
            client, metrics_only_);
    }

    void Send(Response res) {
        // The last gate: no header leaves with a line break in it, whoever set it.
        for (const auto& field : res) {
            if (!SafeHeaderValue(std::string_view(field.value().data(), field.value().size()))) {
                spdlog::warn("http: refused to send a header with a line break ({})",
                             std::string(field.name_string()));
                res = JsonError(http::status::bad_request, "bad_request",
                                "the request holds a line break where none may be");
                keep_alive_ = false;
                break;
            }
        }
        // On every response: never guess a type, never tell another site where the
        // reader came from (links in LDIS carry acknowledgement tokens).
        res.set("X-Content-Type-Options", "nosniff");
        res.set("Referrer-Policy", "no-referrer");
        // Browsers that have been here over HTTPS never come back over plain HTTP.
        if (kTls || forwarded_https_)
            res.set(http::field::strict_transport_security, "max-age=31536000");
        res.version(version_);
        res.keep_alive(keep_alive_);
        res.prepare_payload();
        auto shared = std::make_shared<Response>(std::move(res));
        beast::get_lowest_layer(stream_).expires_after(server_->options().timeout);
        http::async_write(
            stream_, *shared,
            [self = this->shared_from_this(), shared](beast::error_code ec, std::size_t) {
                if (ec || shared->need_eof()) return self->Close();
                self->Read();
            });
    }

    void Close() {
        if constexpr (kTls) {
            // close_notify, then the socket closes with the session.
            beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
            stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
        } else {
            beast::error_code ec;
            stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        }
    }

    std::shared_ptr<ssl::context> tls_;  // kept: a reload must not pull it from under us
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<Server::Impl> server_;
    bool metrics_only_ = false;
    std::string peer_;  // the address the connection comes from
    bool forwarded_https_ = false;
    unsigned version_ = 11;
    bool keep_alive_ = true;
};

}  // namespace

void Server::Impl::StartSession(const std::shared_ptr<Impl>& server, tcp::socket socket,
                                bool metrics_only) {
    if (auto tls = metrics_only ? nullptr : server->tls_context())
        std::make_shared<Session<TlsStream>>(std::move(socket), server, false, std::move(tls))
            ->Start();
    else
        std::make_shared<Session<beast::tcp_stream>>(std::move(socket), server, metrics_only,
                                                     nullptr)
            ->Start();
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
