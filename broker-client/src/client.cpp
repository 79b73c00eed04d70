#include "ldis/broker/client.hpp"

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>

#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace ldis::broker {

namespace {

// The port of a broker URI ("tcp://host:1883", "ssl://[::1]:8883"), or the scheme's default.
int BrokerPort(std::string_view uri) {
    const bool tls = uri.starts_with("ssl://") || uri.starts_with("mqtts://");
    const auto colon = uri.rfind(':');
    const auto bracket = uri.rfind(']');
    int port = 0;
    if (colon != std::string_view::npos && colon > uri.find("://") + 2 &&
        (bracket == std::string_view::npos || colon > bracket)) {
        const auto digits = uri.substr(colon + 1);
        std::from_chars(digits.data(), digits.data() + digits.size(), port);
    }
    return port > 0 ? port : (tls ? 8883 : 1883);
}

// Paho C never sets TCP_NODELAY on its socket, and offers no way to reach it. With Nagle's
// algorithm on, a small write waits while an earlier one is unacknowledged: a receipt
// published right after the report's PUBACK (or before it) sat in the kernel until the
// broker next sent something, i.e. until the next report: 20 ms at 50 reports/s, 40 ms at
// 25 (bench/run --only latency measured the receipt at p50 20.4 ms against 3.8 ms for the
// first email). So, once connected, every TCP socket of this process whose peer is the
// broker's port gets TCP_NODELAY. Another socket that happens to have that peer port (an
// HTTP client's, say) is only made to send small writes at once, which is harmless.
void DisableNagleTowards(int port) {
    DIR* fds = opendir("/proc/self/fd");
    if (fds == nullptr) return;
    while (const dirent* entry = readdir(fds)) {
        int fd = -1;
        const std::string_view name(entry->d_name);
        if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc() ||
            fd == dirfd(fds))
            continue;
        int type = 0;
        socklen_t length = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM)
            continue;
        sockaddr_storage peer{};
        length = sizeof peer;
        if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) continue;
        int peer_port = 0;
        if (peer.ss_family == AF_INET)
            peer_port = ntohs(reinterpret_cast<const sockaddr_in&>(peer).sin_port);
        else if (peer.ss_family == AF_INET6)
            peer_port = ntohs(reinterpret_cast<const sockaddr_in6&>(peer).sin6_port);
        if (peer_port != port) continue;
        const int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    closedir(fds);
}

}  // namespace

class Client::Impl {
public:
    Impl(ClientOptions options, MessageHandler on_message, ConnectionHandler on_connection)
        : options_(std::move(options)),
          on_message_(std::move(on_message)),
          on_connection_(std::move(on_connection)),
          client_(options_.uri, options_.client_id,
                  mqtt::create_options(MQTTVERSION_5, options_.max_buffered), nullptr) {
        // Every handler goes in before connect(), as Paho requires.
        client_.set_connected_handler([this](const std::string& cause) { OnConnected(cause); });
        client_.set_connection_lost_handler([this](const std::string& cause) { OnLost(cause); });
        client_.set_message_callback([this](mqtt::const_message_ptr msg) { OnMessage(msg); });
    }

    ~Impl() {
        {
            std::lock_guard lock(mutex_);
            stopped_ = true;
        }
        changed_.notify_all();
        if (retry_thread_.joinable()) retry_thread_.join();
        try {
            if (client_.is_connected()) client_.disconnect(0)->wait_for(std::chrono::seconds(1));
        } catch (...) {
            // Nothing can be done about a failed disconnect at destruction.
        }
    }

    void Start() {
        retry_thread_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "ldis-mqtt-retry");
            RetryLoop();
        });
        Connect();
    }

    bool WaitConnected(std::chrono::milliseconds timeout) const {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [this] { return ready_ && subscribed_; });
    }

    bool connected() const {
        std::lock_guard lock(mutex_);
        return ready_;
    }

    // While disconnected, publishes wait here rather than in Paho: Paho C 1.3.12 frees
    // its queued commands on connection loss while its send thread may still read them
    // (a heap-use-after-free under ASan, and a stalled reconnect without it).
    void Publish(Message message) {
        {
            std::lock_guard lock(mutex_);
            if (!ready_) {
                if (held_.size() >= static_cast<std::size_t>(options_.max_buffered)) {
                    spdlog::warn("mqtt publish to {} dropped: {} held while disconnected",
                                 message.topic, held_.size());
                    if (message.on_done) message.on_done(false, "dropped while disconnected");
                    return;
                }
                held_.push_back(std::move(message));
                return;
            }
        }
        Send(message);
    }

    void Send(const Message& message) {
        auto msg =
            mqtt::message::create(message.topic, message.payload, message.qos, message.retained);
        if (!message.response_topic.empty() || !message.correlation_data.empty() ||
            !message.user_properties.empty()) {
            mqtt::properties props;
            for (const auto& [name, value] : message.user_properties)
                props.add({mqtt::property::USER_PROPERTY, name, value});
            if (!message.response_topic.empty())
                props.add({mqtt::property::RESPONSE_TOPIC, message.response_topic});
            if (!message.correlation_data.empty()) {
                props.add(
                    {mqtt::property::CORRELATION_DATA, mqtt::binary(message.correlation_data)});
            }
            msg->set_properties(props);
        }
        if (!message.on_done) {
            try {
                client_.publish(msg);
            } catch (const mqtt::exception& e) {
                spdlog::warn("mqtt publish to {} not queued: {}", message.topic, e.what());
            }
            return;
        }
        // Deletes itself after the one callback Paho makes.
        struct Done : mqtt::iaction_listener {
            explicit Done(std::function<void(bool, std::string)> f) : fn(std::move(f)) {}
            void on_success(const mqtt::token&) override {
                fn(true, {});
                delete this;
            }
            void on_failure(const mqtt::token& token) override {
                fn(false, "publish failed (code " + std::to_string(token.get_return_code()) + ")");
                delete this;
            }
            std::function<void(bool, std::string)> fn;
        };
        auto* done = new Done(message.on_done);
        try {
            client_.publish(msg, nullptr, *done);
        } catch (const mqtt::exception& e) {
            spdlog::warn("mqtt publish to {} not queued: {}", message.topic, e.what());
            done->fn(false, e.what());
            delete done;
        }
    }

    bool Stop(std::chrono::milliseconds deadline) {
        {
            std::lock_guard lock(mutex_);
            if (stopped_) return true;
            stopped_ = true;
        }
        changed_.notify_all();
        const auto until = std::chrono::steady_clock::now() + deadline;
        const auto left = [&] {
            return std::max(std::chrono::milliseconds(0),
                            std::chrono::duration_cast<std::chrono::milliseconds>(
                                until - std::chrono::steady_clock::now()));
        };
        bool clean = true;
        try {
            if (client_.is_connected() && !options_.status_topic.empty()) {
                auto token = client_.publish(options_.status_topic, "offline", 7, 1, true);
                clean = token->wait_for(left()) && clean;
            }
            for (auto& token : client_.get_pending_delivery_tokens()) {
                if (!token->wait_for(left())) {
                    clean = false;
                    break;
                }
            }
            if (client_.is_connected()) {
                clean =
                    client_.disconnect(static_cast<int>(left().count()))->wait_for(left()) && clean;
                if (options_.end_session_on_stop) clean = EndSession(left()) && clean;
            } else {
                client_.stop_consuming();
            }
        } catch (const mqtt::exception& e) {
            spdlog::warn("mqtt disconnect: {}", e.what());
            clean = false;
        }
        return clean;
    }

private:
    // Connects once more under the same id with clean start and no session expiry, which
    // makes the broker discard the stored session (its subscriptions and anything queued),
    // and disconnects. (A session expiry of 0 in Paho C++ 1.2's DISCONNECT did not reach
    // the broker.)
    bool EndSession(std::chrono::milliseconds left) {
        mqtt::async_client eraser(options_.uri, options_.client_id,
                                  mqtt::create_options(MQTTVERSION_5, 1), nullptr);
        auto opts = BuildConnectOptions(true);
        const bool connected = eraser.connect(opts)->wait_for(left);
        if (!connected) return false;
        return eraser.disconnect(static_cast<int>(left.count()))->wait_for(left);
    }

    // Built anew for each connect: a copied mqtt::connect_options keeps pointers into the
    // object it was copied from (Paho C++ 1.2), so a stored copy must never be reused.
    mqtt::connect_options BuildConnectOptions(bool end_session = false) const {
        auto builder = mqtt::connect_options_builder()
                           .mqtt_version(MQTTVERSION_5)
                           .clean_start(end_session)
                           .keep_alive_interval(options_.keepalive)
                           .automatic_reconnect(options_.reconnect_min, options_.reconnect_max)
                           .connect_timeout(std::chrono::seconds(10));
        if (!options_.username.empty()) builder.user_name(options_.username);
        if (!options_.password.empty()) builder.password(options_.password);
        if (!options_.status_topic.empty() && !end_session) {
            builder.will(
                mqtt::will_options(options_.status_topic, std::string("offline"), 1, true));
        }
        if (options_.uri.rfind("ssl://", 0) == 0 || options_.uri.rfind("mqtts://", 0) == 0) {
            // enable_server_cert_auth checks the chain, not the name: without verify(true),
            // Paho (MQTTAsync_SSLOptions.verify defaults to 0) accepts any certificate a CA
            // in the trust store signed, for any host. Check the host name too.
            auto ssl = mqtt::ssl_options_builder().enable_server_cert_auth(true).verify(true);
            if (!options_.ca_file.empty()) ssl.trust_store(options_.ca_file);
            // Paho calls the client's certificate its "key store"; the key may be apart.
            if (!options_.cert_file.empty()) ssl.key_store(options_.cert_file);
            if (!options_.key_file.empty()) ssl.private_key(options_.key_file);
            builder.ssl(ssl.finalize());
        }
        // One named result, returned on every path: a copy would dangle (above), so NRVO
        // must apply. Ending a session: no expiry property, i.e. 0, ends at disconnect.
        auto opts = builder.finalize();
        if (!end_session) {
            // Paho C++ 1.2 drops properties set on the builder in finalize(): set them here.
            opts.set_properties(mqtt::properties{
                {mqtt::property::SESSION_EXPIRY_INTERVAL,
                 static_cast<int>(options_.session_expiry.count())},
                {mqtt::property::RECEIVE_MAXIMUM, static_cast<int16_t>(options_.receive_maximum)}});
        }
        return opts;
    }

    void Connect() {
        try {
            client_.connect(BuildConnectOptions(), nullptr, connect_listener_);
        } catch (const mqtt::exception& e) {
            spdlog::error("mqtt connect to {} refused at once: {}; retrying", options_.uri,
                          e.what());
            ScheduleRetry();
        }
    }

    // Before the first connection succeeds, Paho does not retry by itself: we do.
    // After it, Paho's automatic reconnect owns retrying, and we must not race it.
    void ScheduleRetry() {
        {
            std::lock_guard lock(mutex_);
            if (ever_connected_) return;
            retry_ = true;
        }
        changed_.notify_all();
    }

    // Paho reconnects by itself only after a first successful connection; until then a
    // failed connect is retried from this listener through the retry thread.
    class ConnectListener : public mqtt::iaction_listener {
    public:
        explicit ConnectListener(Impl& owner) : owner_(owner) {}
        void on_failure(const mqtt::token& token) override {
            // Paho says only "code -1" for a TLS handshake that failed: over ssl:// that is
            // most often the certificate, so say what to check.
            const bool tls = owner_.options_.uri.starts_with("ssl://") ||
                             owner_.options_.uri.starts_with("mqtts://");
            spdlog::warn("mqtt cannot reach {} (code {}){}; retrying", owner_.options_.uri,
                         token.get_return_code(),
                         tls ? "; if the broker is up, the TLS handshake failed: check "
                               "mqtt.ca_file and that the broker's certificate names this host"
                               ", and mqtt.cert_file if the broker asks for a client certificate"
                             : "");
            owner_.ScheduleRetry();
        }
        void on_success(const mqtt::token&) override {}

    private:
        Impl& owner_;
    };

    // The broker's answer to a SUBSCRIBE. A refusal (an ACL, a bad filter) arrives as a
    // failure with the SUBACK's reason code: reports on that filter would never come, so
    // the connection is not reported ready and the operator is told why.
    class SubscribeListener : public mqtt::iaction_listener {
    public:
        explicit SubscribeListener(Impl& owner) : owner_(owner) {}
        void on_failure(const mqtt::token& token) override { owner_.OnSubscribed(false, token); }
        void on_success(const mqtt::token& token) override { owner_.OnSubscribed(true, token); }

    private:
        Impl& owner_;
    };

    void OnSubscribed(bool granted, const mqtt::token& token) {
        bool all = false;
        {
            std::lock_guard lock(mutex_);
            if (!granted) {
                spdlog::error(
                    "mqtt subscription refused by {} (reason code {}): no report on it will "
                    "arrive; check the broker's ACL for {}",
                    options_.uri, static_cast<int>(token.get_reason_code()), options_.client_id);
                return;
            }
            if (pending_subscriptions_ > 0 && --pending_subscriptions_ == 0 && ready_) {
                subscribed_ = true;
                all = true;
            }
        }
        if (!all) return;
        changed_.notify_all();
        if (on_connection_) on_connection_(true);
    }

    // Retries a first connect that failed, and watches over Paho's automatic reconnect:
    // if the connection has been down much longer than its backoff allows, reconnect by
    // hand (Paho's own attempt has been seen to stall after a broker restart).
    void RetryLoop() {
        std::unique_lock lock(mutex_);
        const auto stall = options_.reconnect_max * 3 + std::chrono::seconds(5);
        for (;;) {
            changed_.wait_for(lock, std::chrono::seconds(1), [this] { return stopped_ || retry_; });
            if (stopped_) return;
            const auto now = std::chrono::steady_clock::now();
            if (retry_) {
                if (changed_.wait_for(lock, options_.reconnect_min, [this] { return stopped_; }))
                    return;
                retry_ = false;
            } else if (!(ever_connected_ && !ready_ && now - lost_at_ > stall)) {
                continue;
            } else {
                lost_at_ = now;
                spdlog::warn("mqtt still not reconnected to {} after {} s; reconnecting by hand",
                             options_.uri,
                             std::chrono::duration_cast<std::chrono::seconds>(stall).count());
            }
            lock.unlock();
            Connect();
            lock.lock();
        }
    }

    void OnConnected(const std::string& cause) {
        DisableNagleTowards(BrokerPort(options_.uri));
        std::deque<Message> held;
        {
            std::lock_guard lock(mutex_);
            pending_subscriptions_ = options_.subscriptions.size();
            subscribed_ = false;
        }
        // Re-subscribe on every connect: a broker that lost the session must not lose us.
        // The connection counts as ready for reports once the broker grants them all
        // (SubscribeListener); ready for publishing now.
        for (const auto& filter : options_.subscriptions) {
            try {
                client_.subscribe(filter, 1, nullptr, subscribe_listener_,
                                  mqtt::subscribe_options(), mqtt::properties());
            } catch (const mqtt::exception& e) {
                spdlog::error("mqtt subscribe {} failed: {}", filter, e.what());
            }
        }
        if (!options_.status_topic.empty()) {
            client_.publish(options_.status_topic, "online", 6, 1, true);
        }
        spdlog::info("mqtt connected to {} as {}{}", options_.uri, options_.client_id,
                     cause.empty() ? "" : " (" + cause + ")");
        bool subscribed = false;
        {
            std::lock_guard lock(mutex_);
            ready_ = true;
            ever_connected_ = true;
            retry_ = false;
            held.swap(held_);
            // Granted already (a fast broker), or nothing to subscribe to.
            subscribed = subscribed_ || pending_subscriptions_ == 0;
            subscribed_ = subscribed;
        }
        for (const auto& m : held) Send(m);
        changed_.notify_all();
        if (subscribed && on_connection_) on_connection_(true);
    }

    void OnLost(const std::string& cause) {
        {
            std::lock_guard lock(mutex_);
            ready_ = false;
            subscribed_ = false;
            lost_at_ = std::chrono::steady_clock::now();
        }
        changed_.notify_all();
        spdlog::warn("mqtt connection to {} lost{}; reconnecting", options_.uri,
                     cause.empty() ? "" : ": " + cause);
        if (on_connection_) on_connection_(false);
    }

    void OnMessage(const mqtt::const_message_ptr& msg) {
        // Nothing may escape a Paho callback.
        try {
            Message m;
            m.topic = msg->get_topic();
            m.payload = msg->to_string();
            m.qos = msg->get_qos();
            m.retained = msg->is_retained();
            const auto& props = msg->get_properties();
            if (props.contains(mqtt::property::RESPONSE_TOPIC)) {
                m.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
            }
            if (props.contains(mqtt::property::CORRELATION_DATA)) {
                m.correlation_data =
                    mqtt::get<std::string>(props, mqtt::property::CORRELATION_DATA);
            }
            const std::size_t users = props.count(mqtt::property::USER_PROPERTY);
            for (std::size_t i = 0; i < users; ++i) {
                const auto [name, value] =
                    mqtt::get<mqtt::string_pair>(props, mqtt::property::USER_PROPERTY, i);
                m.user_properties.emplace_back(name, value);
            }
            on_message_(m);
        } catch (const std::exception& e) {
            spdlog::error("mqtt message on {} not handled: {}", msg->get_topic(), e.what());
        }
    }

    ClientOptions options_;
    MessageHandler on_message_;
    ConnectionHandler on_connection_;
    mqtt::async_client client_;
    ConnectListener connect_listener_{*this};
    SubscribeListener subscribe_listener_{*this};
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    bool ready_ = false;       // connected: publishes go out
    bool subscribed_ = false;  // and every subscription granted: reports can arrive
    std::size_t pending_subscriptions_ = 0;
    bool stopped_ = false;
    bool retry_ = false;
    bool ever_connected_ = false;
    std::deque<Message> held_;  // publishes made while disconnected, sent on reconnection
    std::chrono::steady_clock::time_point lost_at_{};
    std::thread retry_thread_;
};

Client::Client(ClientOptions options, MessageHandler on_message, ConnectionHandler on_connection)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(on_message),
                                   std::move(on_connection))) {}
Client::~Client() = default;
void Client::Start() {
    impl_->Start();
}
bool Client::WaitConnected(std::chrono::milliseconds timeout) const {
    return impl_->WaitConnected(timeout);
}
bool Client::connected() const {
    return impl_->connected();
}
void Client::Publish(Message message) {
    impl_->Publish(std::move(message));
}
bool Client::Stop(std::chrono::milliseconds deadline) {
    return impl_->Stop(deadline);
}

}  // namespace ldis::broker
