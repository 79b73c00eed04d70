#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ldis/engine/dispatcher.hpp"
#include "ldis/engine/feeds.hpp"
#include "ldis/engine/intake.hpp"
#include "ldis/engine/result.hpp"
#include "ldis/engine/store.hpp"

namespace boost::asio {
class io_context;
}

namespace ldis::web {

struct ServerOptions {
    std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one
    // /metrics on its own listener ("" for none): it tells anyone who can reach it how
    // busy LDIS is, so by default it is on loopback, and not on the public listener.
    std::string metrics_listen;
    std::size_t max_body = 256 * 1024;  // larger requests get 413
    // POST /api/v1/photos only: a photo of a batch (PhotoLimits::max_bytes); larger is 413.
    std::size_t max_photo_body = 5 * 1024 * 1024;
    std::chrono::seconds timeout{10};   // to read a request or write a response
    std::size_t max_connections = 512;  // open at once; beyond it, 503 and close
    int sign_in_failures = 10;          // wrong keys or bearer tokens per address per 10 min
    int open_reports_per_hour = 20;     // reports per address on the open form; 0 closes it
    // HTTPS on http.listen: the certificate chain and its key (PEM), both or neither. TLS 1.2
    // and later only; responses carry Strict-Transport-Security. /metrics stays plain.
    std::string tls_cert_file;
    std::string tls_key_file;
    // Behind a reverse proxy that terminates TLS (docs/operations.md): from a peer in
    // `trusted_proxies`, the client's address is the last in X-Forwarded-For (for the limits
    // per address and the logs) and "X-Forwarded-Proto: https" brings HSTS. From any other
    // peer, and when false, those headers are ignored: anyone can write them.
    bool trust_forwarded = false;
    std::vector<std::string> trusted_proxies{"127.0.0.1", "::1"};
};

// What the HTTP server serves from. Every member must outlive the server.
struct Services {
    engine::Store* store = nullptr;
    engine::Intake* intake = nullptr;
    const engine::DispatchCounters* dispatch = nullptr;  // may be null
    std::function<bool()> broker_connected;              // may be empty
    std::string public_url = "http://127.0.0.1:8080";    // the base of links
    std::string sender = "ldis@example.org";             // CAP <sender>
    std::string schema_path;  // served at /api/v1/schema/report; the form's lists come from it
    std::string areas_path;   // config/areas.toml: the form's districts
    std::function<std::shared_ptr<const engine::Partners>()> partners;  // the current ones
    // The current message templates (email/ and chat/), for the alert page's previews: the
    // same snapshot the dispatcher sends with, swapped whole on reload. May be empty.
    std::function<std::shared_ptr<const engine::MessageTemplates>()> message_templates;
    std::string templates_dir;  // holds web/ and email/ (pages and previews)
    std::string assets_dir;     // GOV.UK Frontend's dist/govuk, served under /assets/
    // The expected feeds and when each was last seen (issue 16 §3); empty when none.
    std::function<std::vector<engine::FeedStatus>()> feeds;
};

// The CAP 1.2 document of an alert version, as GET /api/v1/alerts/{id}/cap serves it: what
// federation signs and offers to the peers (issue 16 §1). "" when the version is not there.
std::string CapDocument(const engine::AlertRecord& record, int version, const std::string& sender,
                        const std::string& public_url);

// The HTTP server (DESIGN §8) on Boost.Beast, asynchronous, on the daemon's io_context:
// keep-alive, a body limit, timeouts, JSON errors {"error", "detail"}. Blocking work
// (intake, the store's writer) runs on a small pool, never on the io thread.
// Serves DESIGN §8: POST /api/v1/reports (any role), GET /api/v1/reports/{id},
// GET /api/v1/alerts, GET /api/v1/alerts/{id}, POST /api/v1/alerts/{id}/approve|update|cancel
// and GET /api/v1/partners (coordinator, admin), GET /api/v1/alerts/{id}/cap and /feeds/alerts.atom
// (any role), GET /api/v1/schema/report, GET|POST /ack/{token}, GET /healthz, GET /metrics (open).
// Start/Stop on the io thread (or before it runs).
class Server {
public:
    Server(boost::asio::io_context& io, ServerOptions options, Services services);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and starts accepting. An Error names the address and the reason.
    engine::Result<int> Start();  // the port bound
    // The port of the metrics listener once started, or 0 when there is none.
    int metrics_port() const;
    // Stops accepting; connections in hand finish their exchange.
    void Stop();
    // Reads the certificate and key again (SIGHUP): new connections use them, connections in
    // hand keep the ones they started with. An Error (the old pair stays) names the file and
    // the reason; also when the server was started without TLS.
    engine::Result<bool> ReloadTls(const std::string& cert_file, const std::string& key_file);

    class Impl;  // declared in web/src/server_impl.hpp, with the connections that share it

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace ldis::web
