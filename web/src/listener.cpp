// The listeners: binding, the accept loop with its connection cap and descriptor shedding, TLS
// (its context, reloads), trust in forwarded headers, and the connections themselves.
#include "ldis/web/multipart.hpp"
#include "server_impl.hpp"

#include <array>

namespace ldis::web {

engine::Result<int> Server::Impl::Start() {
    if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
        auto tls = LoadTls(options_.tls_cert_file, options_.tls_key_file);
        if (!tls.ok()) return tls.error();
        std::lock_guard lock(tls_mutex_);
        tls_ = std::move(tls.value());
    }
    auto port = Listen(acceptor_, options_.listen, "http.listen");
    if (!port.ok()) return port;
    if (!options_.metrics_listen.empty()) {
        auto metrics = Listen(metrics_acceptor_, options_.metrics_listen, "http.metrics_listen");
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

void Server::Impl::Stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    metrics_acceptor_.close(ec);
    accept_pause_.cancel();
}

Server::Impl::~Impl() {
    if (spare_fd_ >= 0) ::close(spare_fd_);
}

engine::Result<bool> Server::Impl::ReloadTls(const std::string& cert_file,
                                             const std::string& key_file) {
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
std::shared_ptr<ssl::context> Server::Impl::tls_context() {
    std::lock_guard lock(tls_mutex_);
    return tls_;
}

// True if X-Forwarded-For and X-Forwarded-Proto from `peer` are believed.
bool Server::Impl::TrustsForwarding(const std::string& peer) const {
    return options_.trust_forwarded &&
           std::find(options_.trusted_proxies.begin(), options_.trusted_proxies.end(), peer) !=
               options_.trusted_proxies.end();
}

engine::Result<int> Server::Impl::Listen(tcp::acceptor& acceptor, const std::string& listen,
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
void Server::Impl::WarnRepeated(const std::string& what) {
    ++repeats_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ < std::chrono::seconds(10)) return;
    spdlog::warn("http: {} ({} time(s) in the last interval)", what, repeats_);
    repeats_ = 0;
    last_warning_ = now;
}

void Server::Impl::Accept(tcp::acceptor& acceptor, bool metrics_only) {
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
                const int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
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
                               std::to_string(self->options_.max_connections) + "): answering 503");
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

    // The header first: its path says how large a body may be (a photo's upload, or the
    // report form with up to three photos, may be larger than any other request), then the
    // body within that. Beast compares a Content-Length with the limit as the header ends,
    // and never again: so the header is read under the largest limit, and each path's
    // Content-Length is checked here.
    void Read() {
        const auto& options = server_->options();
        parser_.emplace();
        parser_->body_limit(FormLimit(options));
        parser_->header_limit(16 * 1024);
        beast::get_lowest_layer(stream_).expires_after(options.timeout);
        http::async_read_header(
            stream_, buffer_, *parser_,
            [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                if (ec) return self->OnRead(ec);
                const std::size_t limit = self->BodyLimit();
                if (self->parser_->content_length().value_or(0) > limit)
                    return self->OnRead(http::error::body_limit);
                self->parser_->body_limit(limit);  // a chunked body's, chunk by chunk
                http::async_read(
                    self->stream_, self->buffer_, *self->parser_,
                    [self](beast::error_code read, std::size_t) { self->OnRead(read); });
            });
    }

    // The report form with its photos: the form's fields and three photos at most.
    static std::size_t FormLimit(const ServerOptions& options) {
        return options.max_body + 3 * options.max_photo_body;
    }
    enum class Upload { kNone, kPhoto, kForm };
    Upload UploadOf() const {
        const auto& head = parser_->get();
        if (head.method() != http::verb::post) return Upload::kNone;
        const std::string_view target(head.target().data(), head.target().size());
        const std::string_view path = target.substr(0, target.find('?'));
        if (path == "/api/v1/photos") return Upload::kPhoto;
        const auto type = head[http::field::content_type];
        if (path == "/report" && IsMultipartForm(std::string_view(type.data(), type.size())))
            return Upload::kForm;
        return Upload::kNone;
    }
    std::size_t BodyLimit() const {
        const auto& options = server_->options();
        switch (UploadOf()) {
            case Upload::kPhoto:
                return options.max_photo_body;
            case Upload::kForm:
                return FormLimit(options);
            case Upload::kNone:
                break;
        }
        return options.max_body;
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
            // (The header is read before any body limit can be passed.)
            const auto mb = [](std::size_t bytes) { return std::to_string(bytes / (1024 * 1024)); };
            const auto& options = server_->options();
            const Upload upload = UploadOf();
            return Send(
                JsonError(http::status::payload_too_large, "payload_too_large",
                          upload == Upload::kPhoto
                              ? "the photo is over " + mb(options.max_photo_body) +
                                    " MB: send a smaller one (a phone's photo at its usual size is "
                                    "well under it)"
                          : upload == Upload::kForm
                              ? "the report with its photos is over " + mb(FormLimit(options)) +
                                    " MB: attach at most 3 photos of " +
                                    mb(options.max_photo_body) + " MB each, and send it again"
                              : "the body is over " + std::to_string(options.max_body) + " bytes"));
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
            if (!ec) Linger();
        }
    }

    // A lingering close: after the answer and our FIN, read and drop what the client still
    // sends, until it closes, for 2 s at most and no more than the largest body. Closing a
    // socket with unread bytes in it, or with more on the way, makes the kernel answer them
    // with a reset, and a client still sending its body (a 413 is sent once the header is
    // read) then fails on its write and never reads the 413 that came before it.
    void Linger() {
        if (lingered_ == 0) beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(2));
        stream_.async_read_some(net::buffer(drain_), [self = this->shared_from_this()](
                                                         beast::error_code ec, std::size_t n) {
            self->lingered_ += n;
            if (ec || self->lingered_ > FormLimit(self->server_->options())) return;
            self->Linger();
        });
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
    std::array<char, 4096> drain_{};  // what a lingering close reads and drops
    std::size_t lingered_ = 0;
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

}  // namespace ldis::web
