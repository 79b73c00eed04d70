#include "daemon.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "ldis/broker/client.hpp"
#include "ldis/engine/cap.hpp"
#include "ldis/engine/dispatcher.hpp"
#include "ldis/engine/federated.hpp"
#include "ldis/engine/federation.hpp"
#include "ldis/engine/intake.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/postgres.hpp"
#include "ldis/engine/receipt.hpp"
#include "ldis/engine/report_store.hpp"
#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/stages.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"
#include "ldis/web/server.hpp"

namespace net = boost::asio;

namespace ldis::app {
namespace {

// Milliseconds since the epoch, by the wall clock (what the store and documents record).
std::int64_t WallMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string_view TopicSource(std::string_view topic) {
    return engine::wire::ReportSource(topic);
}

// Where a receipt goes: the submitter's response topic, unless it names one of LDIS's own
// topics (a receipt published on ldis/v1/alerts/... or ldis/v1/status/... would look like
// an alert or a status to their subscribers; one on another source's receipts would reach
// that source) or holds wildcards; then the source's receipts topic.
std::string ReceiptTopic(const std::string& response_topic, const std::string& source) {
    const std::string fallback = engine::wire::ReceiptTopic(source);
    if (response_topic.empty()) return fallback;
    if (response_topic.find_first_of("+#") != std::string::npos ||
        response_topic.find('\0') != std::string::npos || response_topic.size() > 256 ||
        response_topic.starts_with("$")) {
        spdlog::warn("receipt: response topic refused (wildcard, $ or too long); sent to {}",
                     fallback);
        return fallback;
    }
    if (response_topic.starts_with("ldis/") && response_topic != fallback &&
        !response_topic.starts_with(fallback + "/")) {
        spdlog::warn("receipt: response topic {} is LDIS's own; sent to {}", response_topic,
                     fallback);
        return fallback;
    }
    return response_topic;
}

}  // namespace

void ApplyLogLevel(const std::string& level) {
    spdlog::set_level(spdlog::level::from_str(level));
}

class Daemon::Impl {
public:
    Impl(const Config& config, engine::Store& store) : config_(config), store_(store) {}

    int Run(const std::string& config_path, const std::vector<std::string>& overrides) {
        std::shared_ptr<const Runtime> runtime;
        try {
            runtime = LoadRuntime(config_);  // every file, once
        } catch (const std::exception& e) {
            spdlog::critical("cannot start: {}", e.what());
            return 2;
        }
        runtime_.store(runtime);
        store_.SetGrading(runtime->grading);
        intake_ = std::make_unique<engine::Intake>(runtime->validator, store_);
        if (!config_.feeds.empty()) {
            // A feed the coordinators were told is silent stays so across a restart, until
            // it is seen; the others are judged from this start.
            std::vector<std::optional<engine::FeedState>> restored;
            for (const auto& feed : config_.feeds)
                restored.push_back(engine::ParseFeedState(store_.Setting(engine::FeedKey(feed))));
            feeds_ = std::make_unique<engine::FeedWatch>(config_.feeds, WallMs(), restored);
            intake_->SetOnReport(
                [this](const engine::Report& r) { FeedSeen(r.source_type, r.organisation); });
        }
        if (!config_.email_username.empty() && config_.email_smtp_url.starts_with("smtp://") &&
            !config_.email_starttls)
            spdlog::warn("email.allow_plaintext_auth: the SMTP password is sent without TLS to {}",
                         config_.email_smtp_url);
        if (auto federation = StartFederation(); !federation.ok()) {
            spdlog::critical("cannot start: federation: {}", federation.error().message);
            return 2;
        }
        try {
            dispatcher_ = std::make_unique<engine::Dispatcher>(io_, store_, DispatchOptions());
        } catch (const std::exception& e) {
            spdlog::critical("cannot start: {}", e.what());
            return 2;
        }

        net::signal_set signals(io_, SIGINT, SIGTERM, SIGHUP);
        WaitForSignal(signals, config_path, overrides);
        auto work = net::make_work_guard(io_);
        work_ = &work;

        // Handlers hold the address of their slot: no reallocation after this.
        clients_.reserve(static_cast<std::size_t>(config_.mqtt_intake_connections));
        for (int i = 0; i < config_.mqtt_intake_connections; ++i) {
            broker::ClientOptions options = IntakeOptions(IntakeClientId(i));
            options.subscriptions = {config_.ReportFilter()};
            // Feeds' heartbeats, on the first connection (not shared: each is one message).
            if (i == 0 && feeds_)
                options.subscriptions.emplace_back(engine::wire::kFeedHeartbeatFilter);
            // The peers' offers and their acknowledgement counts, likewise (issue 16 §1).
            if (i == 0 && verifier_) {
                options.subscriptions.emplace_back(engine::wire::kFederationFilter);
                options.subscriptions.emplace_back(engine::wire::kFederationAcksFilter);
            }
            options.status_topic = i == 0 ? std::string(engine::wire::kStatusTopic) : "";
            auto* slot = &clients_.emplace_back();
            // The first intake connection, once subscribed, makes ldisd ready for systemd.
            auto on_connection = [this, first = i == 0](bool up) {
                if (first && up)
                    net::post(io_, [this] {
                        NotifyReady();
                        PublishHeartbeat();
                    });
            };
            *slot = std::make_unique<broker::Client>(
                options, [this, slot](const broker::Message& m) { OnReport(**slot, m); },
                on_connection);
        }
        for (auto& client : clients_) client->Start();
        drain_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "ldis-drain");
            DrainOldSessions();
        });
        dispatcher_->Start();
        web::ServerOptions http_options;
        http_options.listen = config_.http_listen;
        http_options.metrics_listen = config_.http_metrics_listen;
        http_options.max_connections = static_cast<std::size_t>(config_.http_max_connections);
        http_options.timeout = std::chrono::seconds(config_.http_timeout_s);
        http_options.sign_in_failures = config_.http_sign_in_failures;
        http_options.open_reports_per_hour = config_.http_open_reports_per_hour;
        http_options.tls_cert_file = config_.http_tls_cert_file;
        http_options.tls_key_file = config_.http_tls_key_file;
        http_options.trust_forwarded = config_.http_trust_forwarded;
        http_options.trusted_proxies = config_.http_trusted_proxies;
        web::Services services;
        services.store = &store_;
        services.intake = intake_.get();
        services.dispatch = &dispatcher_->counters();
        services.broker_connected = [this] { return clients_.front()->connected(); };
        services.public_url = config_.http_public_url;
        services.schema_path = config_.path_schema;
        services.areas_path = config_.path_areas;
        services.templates_dir = config_.path_templates;
        services.partners = [this] { return runtime_.load()->grading->partners; };
        services.message_templates = [this] {
            auto now = runtime_.load();
            // Shares the snapshot's ownership: the templates live as long as a page uses them.
            return std::shared_ptr<const engine::MessageTemplates>(now, &now->email_templates);
        };
        services.assets_dir = config_.path_assets;
        if (feeds_) services.feeds = [this] { return feeds_->Status(); };
        services.sender = engine::EmailAddressOf(config_.email_from);
        try {
            http_ = std::make_unique<web::Server>(io_, http_options, services);
        } catch (const std::exception& e) {
            spdlog::critical("cannot start: {}", e.what());
            stopping_.store(true);
            if (drain_.joinable()) drain_.join();
            for (auto& client : clients_) client->Stop(std::chrono::seconds(2));
            return 2;
        }
        const auto port = http_->Start();
        if (!port.ok()) {
            spdlog::critical("cannot start: {}", port.error().message);
            stopping_.store(true);
            if (drain_.joinable()) drain_.join();
            for (auto& client : clients_) client->Stop(std::chrono::seconds(2));
            return 2;
        }
        spdlog::info("http listening on {}:{}{}",
                     config_.http_listen.substr(0, config_.http_listen.rfind(':')), port.value(),
                     config_.http_tls_cert_file.empty() ? "" : " (HTTPS, TLS 1.2 and later)");
        if (http_->metrics_port() > 0)
            spdlog::info(
                "metrics listening on {}:{}",
                config_.http_metrics_listen.substr(0, config_.http_metrics_listen.rfind(':')),
                http_->metrics_port());
        net::steady_timer expiry(io_);
        ScheduleExpiry(expiry);
        net::steady_timer watchdog(io_);
        ScheduleWatchdog(watchdog);
        net::steady_timer heartbeat(io_);
        Heartbeat(heartbeat);
        net::steady_timer feed_check(io_);
        CheckFeeds(feed_check);
        net::steady_timer acks_timer(io_);
        SendAcks(acks_timer);
        spdlog::info("ldisd started: store={} mqtt={} filter={} connections={}",
                     config_.store_url.empty() ? config_.store_path : config_.store_url,
                     config_.mqtt_uri, config_.ReportFilter(), clients_.size());

        io_.run();
        if (drain_.joinable()) drain_.join();
        spdlog::info("ldisd stopped: accepted={} duplicate={} rejected={}",
                     intake_->counters().accepted.load(), intake_->counters().duplicate.load(),
                     intake_->counters().rejected.load());
        return 0;
    }

private:
    void WaitForSignal(net::signal_set& signals, const std::string& config_path,
                       const std::vector<std::string>& overrides) {
        signals.async_wait([this, &signals, config_path, overrides](
                               const boost::system::error_code& ec, int signal) {
            if (ec) return;
            if (signal == SIGHUP) {
                sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
                Reload(config_path, overrides);
                sd_notify(0, ("READY=1\nSTATUS=" + StatusLine()).c_str());
                WaitForSignal(signals, config_path, overrides);
                return;
            }
            spdlog::info("ldisd stopping on signal {}", signal);
            sd_notify(0,
                      "STOPPING=1\nSTATUS=stopping: finishing the reports and deliveries in hand");
            stopping_.store(true);
            signals.cancel();
            if (expiry_) expiry_->cancel();
            if (watchdog_) watchdog_->cancel();
            if (heartbeat_) heartbeat_->cancel();
            if (feed_check_) feed_check_->cancel();
            if (acks_timer_) acks_timer_->cancel();
            if (http_) http_->Stop();
            // Outcomes already known are recorded; transfers cut short are sent again,
            // with the same idempotency key, at the next start.
            dispatcher_->Stop([this] {
                // Each Stop() lets the handler finish the report in hand, publishes
                // "offline" and disconnects; receipts posted before this have gone out.
                for (auto& client : clients_) {
                    if (!client->Stop(std::chrono::seconds(5)))
                        spdlog::warn("mqtt did not stop within 5 s");
                }
                work_->reset();
            });
        });
    }

    std::string IntakeClientId(int i) const {
        return i == 0 ? config_.mqtt_client_id : config_.mqtt_client_id + "-" + std::to_string(i);
    }

    broker::ClientOptions IntakeOptions(const std::string& client_id) const {
        broker::ClientOptions options;
        options.uri = config_.mqtt_uri;
        options.client_id = client_id;
        options.username = config_.mqtt_username;
        options.password = config_.mqtt_password;
        options.ca_file = config_.mqtt_ca_file;
        options.cert_file = config_.mqtt_cert_file;
        options.key_file = config_.mqtt_key_file;
        options.session_expiry = config_.mqtt_session_expiry;
        options.keepalive = config_.mqtt_keepalive;
        options.reconnect_min = config_.mqtt_reconnect_min;
        options.reconnect_max = config_.mqtt_reconnect_max;
        return options;
    }

    // The broker keeps the session of a client id ldisd no longer uses (intake_connections
    // lowered, client_id changed) for mqtt.session_expiry_s, and with it that session's
    // share of the shared subscription: reports would queue there unread and expire. So
    // the ids in use are kept in the database; at start, the sessions of ids used before
    // but not now are opened, whatever they queued is taken in like any report, and once
    // they are quiet they are ended (session expiry 0). Runs on its own thread: it waits.
    void DrainOldSessions() {
        // On PostgreSQL the settings are every instance's: each keeps its own ids, or one
        // would take the others' live sessions for old ones.
        const std::string key =
            "mqtt.client_ids " + config_.mqtt_uri +
            (config_.store_url.empty() ? std::string() : " " + config_.mqtt_client_id);
        std::string current;
        std::set<std::string> in_use;
        for (int i = 0; i < config_.mqtt_intake_connections; ++i) {
            in_use.insert(IntakeClientId(i));
            current += IntakeClientId(i) + "\n";
        }
        std::vector<std::string> old;
        std::istringstream saved(store_.Setting(key));
        for (std::string id; std::getline(saved, id);)
            if (!id.empty() && !in_use.count(id)) old.push_back(id);
        std::vector<std::unique_ptr<broker::Client>> drains;
        drains.reserve(old.size());
        const auto now_ms = [] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                .count();
        };
        for (const auto& id : old) {
            spdlog::warn("mqtt: taking in what the old session {} holds, then ending it", id);
            broker::ClientOptions options = IntakeOptions(id);  // no subscribe: the session
            options.end_session_on_stop = true;                 // keeps its own
            auto* slot = &drains.emplace_back();
            *slot = std::make_unique<broker::Client>(
                options,
                [this, slot](const broker::Message& m) {
                    OnReport(**slot, m);
                    drain_last_report_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now().time_since_epoch())
                                                .count();
                },
                [](bool) {});
            (*slot)->Start();
        }
        // Quiet for 3 s after every old session connected: the broker sends a session's
        // queue at once on connection, up to our receive maximum at a time.
        bool all_connected = drains.empty();
        std::int64_t quiet_since = 0;
        while (!stopping_.load() && !drains.empty()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            const bool connected = std::all_of(drains.begin(), drains.end(),
                                               [](const auto& c) { return c->connected(); });
            if (connected && !all_connected) quiet_since = now_ms();
            all_connected = connected;
            if (connected && now_ms() - std::max(quiet_since, drain_last_report_ms_.load()) >= 3000)
                break;
        }
        const bool done = !stopping_.load() && all_connected;
        for (auto& c : drains) c->Stop(std::chrono::seconds(5));
        if (!done) return;  // tried again at the next start
        if (auto saved_ids = store_.SetSetting(key, current); !saved_ids.ok())
            spdlog::error("cannot record the mqtt client ids: {}", saved_ids.error().message);
        else if (!old.empty())
            spdlog::info("mqtt: {} old session(s) taken in and ended", old.size());
    }

    // Expires alerts whose valid_until has passed, once a minute.
    void ScheduleExpiry(net::steady_timer& timer) {
        expiry_ = &timer;
        timer.expires_after(std::chrono::seconds(1));
        timer.async_wait([this, &timer](const boost::system::error_code& ec) {
            if (ec || stopping_.load()) return;
            const auto now = WallMs();
            auto expired = store_.ExpireDue(now);
            if (!expired.ok()) {
                spdlog::error("alert expiry: {}", expired.error().message);
            } else {
                for (const auto& reference : expired.value())
                    spdlog::info("alert expired reference={}", reference);
            }
            Retain(now);
            timer.expires_after(std::chrono::seconds(60));
            timer.async_wait([this, &timer](const boost::system::error_code& again) {
                if (!again) ScheduleExpiry(timer);
            });
        });
    }

    // Once a day (and at start): reports older than store.retention_days lose their free
    // text, contact and photos (docs/privacy.md); photos no report named within a day go
    // whatever the retention (with none, only they go).
    void Retain(std::int64_t now_ms) {
        constexpr std::int64_t kDay = 24LL * 3600 * 1000;
        if (now_ms - last_retention_ms_ < kDay) return;
        last_retention_ms_ = now_ms;
        const std::int64_t before =
            config_.store_retention_days > 0 ? now_ms - config_.store_retention_days * kDay : 0;
        auto purged = store_.PurgeFreeText(before, now_ms, "ldisd retention");
        if (!purged.ok())
            spdlog::error("retention: {}", purged.error().message);
        else if (purged.value() > 0)
            spdlog::info("retention: free text removed from {} report(s) older than {} days",
                         purged.value(), config_.store_retention_days);
    }

    // systemd (Type=notify): READY=1 once the database is open, HTTP listens and the
    // broker has granted the report subscription; not before, so that `systemctl start`
    // waits for a daemon that can take reports. Without NOTIFY_SOCKET these do nothing.
    void NotifyReady() {
        if (ready_notified_ || stopping_.load()) return;
        ready_notified_ = true;
        sd_notify(0, ("READY=1\nSTATUS=" + StatusLine()).c_str());
        spdlog::info("ready: database open, http listening, reports subscribed");
    }

    // What `systemctl status ldisd` shows.
    std::string StatusLine() {
        const auto counts = store_.CountAll();
        std::int64_t backlog = 0;
        for (const auto& [key, n] : counts.deliveries) {
            const auto status = key.substr(key.find('/') + 1);
            if (status == "queued" || status == "sending" || status == "retrying") backlog += n;
        }
        const bool broker = !clients_.empty() && clients_.front()->connected();
        return std::string("broker ") + (broker ? "connected" : "disconnected") +
               "; outbox backlog " + std::to_string(backlog) + "; reports accepted " +
               std::to_string(intake_->counters().accepted.load());
    }

    // ldisd's heartbeat for an outside monitor: the retained status says "online" as long as
    // the connection lives, even when ldisd hangs; this says it is still working. On the io
    // thread, at every connection and every mqtt.heartbeat_s. QoS 0: a broker whose access
    // list has not been given the topic drops it quietly, where a refused QoS 1 publish
    // would make Paho C drop the whole intake connection.
    void Heartbeat(net::steady_timer& timer) {
        if (config_.mqtt_heartbeat_s == 0) return;
        heartbeat_ = &timer;
        PublishHeartbeat();
        timer.expires_after(std::chrono::seconds(config_.mqtt_heartbeat_s));
        timer.async_wait([this, &timer](const boost::system::error_code& ec) {
            if (!ec && !stopping_.load()) Heartbeat(timer);
        });
    }

    void PublishHeartbeat() {
        if (config_.mqtt_heartbeat_s == 0 || stopping_.load()) return;
        if (clients_.front()->connected()) {
            broker::Message m;
            m.topic = std::string(engine::wire::kHeartbeatTopicPrefix) + config_.mqtt_client_id;
            m.payload = boost::json::serialize(
                boost::json::object{{"client_id", config_.mqtt_client_id},
                                    {"at", engine::IsoTimeMs(WallMs())},
                                    {"interval_s", config_.mqtt_heartbeat_s}});
            m.qos = 0;
            m.retained = true;
            clients_.front()->Publish(std::move(m));
        }
    }

    // WATCHDOG=1 from the event loop itself, at half the WatchdogSec= systemd set: a loop
    // that stops turning stops the keep-alives, and systemd restarts ldisd. STATUS= with it.
    void ScheduleWatchdog(net::steady_timer& timer) {
        std::uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
        watchdog_ = &timer;
        const auto every = std::chrono::microseconds(usec / 2);
        timer.expires_after(every);
        timer.async_wait([this, &timer](const boost::system::error_code& ec) {
            if (ec || stopping_.load()) return;
            sd_notify(0, ("WATCHDOG=1\nSTATUS=" + StatusLine()).c_str());
            ScheduleWatchdog(timer);
        });
    }

    void Reload(const std::string& config_path, const std::vector<std::string>& overrides) {
        auto load = LoadConfig(config_path, overrides);
        if (!load.ok()) {
            for (const auto& e : load.errors) spdlog::error("reload refused: {}", e.ToString());
            return;
        }
        std::shared_ptr<const Runtime> next;
        try {
            next = LoadRuntime(load.config);
        } catch (const std::exception& e) {
            spdlog::error("reload refused: {} (ldisd --check-config lists every problem)",
                          e.what());
            return;
        }
        // One snapshot, swapped in everywhere at once: what was loaded is what is used.
        intake_->SetValidator(next->validator);
        dispatcher_->SetPartners(next->grading->partners);
        store_.SetGrading(next->grading);
        runtime_.store(next);
        ApplyLogLevel(load.config.log_level);
        // A renewed certificate is read again: new connections use it, open ones keep theirs.
        if (!load.config.http_tls_cert_file.empty() && http_) {
            const auto tls =
                http_->ReloadTls(load.config.http_tls_cert_file, load.config.http_tls_key_file);
            if (tls.ok())
                spdlog::info("https: certificate reloaded from {}", load.config.http_tls_cert_file);
            else
                spdlog::error("https: kept the certificate in use: {}", tls.error().message);
        }
        if (load.config.mqtt_uri != config_.mqtt_uri ||
            load.config.store_path != config_.store_path ||
            load.config.mqtt_client_id != config_.mqtt_client_id ||
            load.config.mqtt_intake_connections != config_.mqtt_intake_connections ||
            load.config.reference_prefix != config_.reference_prefix ||
            load.config.mqtt_cert_file != config_.mqtt_cert_file) {
            spdlog::warn("reload: changes to mqtt.* and store.* take effect at the next restart");
        }
        spdlog::info("configuration reloaded from {}", config_path);
    }

    // Federation (issue 16 §1): this instance's key and its peers'. An Error names the file.
    engine::Result<bool> StartFederation() {
        if (config_.federation_instance.empty()) return true;
        auto key = engine::SigningKey::LoadFile(config_.federation_key_file);
        if (!key.ok()) return key.error();
        signing_key_ = std::make_unique<engine::SigningKey>(std::move(key).value());
        std::vector<engine::PeerKey> peers;
        for (const auto& peer : config_.federation_peers) {
            std::ifstream in(peer.public_key_file, std::ios::binary);
            if (!in)
                return engine::Error{peer.public_key_file + ": cannot read " + peer.instance +
                                     "'s public key"};
            std::ostringstream pem;
            pem << in.rdbuf();
            peers.push_back({peer.instance, pem.str()});
            peer_names_[peer.instance] = peer.name;
        }
        auto verifier = engine::PeerVerifier::Create(peers, config_.federation_instance);
        if (!verifier.ok()) return verifier.error();
        verifier_ = std::make_unique<engine::PeerVerifier>(std::move(verifier).value());
        // Strictly increasing across restarts: the send time in microseconds, or one more.
        last_sequence_ = static_cast<std::uint64_t>(WallMs()) * 1000;
        spdlog::info("federation: {} offers {} level(s) on {}; {} peer(s)",
                     config_.federation_instance, config_.federation_offer.size(),
                     engine::wire::FederationTopic(config_.federation_instance),
                     config_.federation_peers.size());
        return true;
    }

    // The signed CAP of a version offered to the peers; on the io thread.
    engine::Result<engine::FederationMessage> SignOffer(const engine::OutboxItem& item) {
        const auto record = store_.FindAlertRecord(item.reference);
        if (!record) return engine::Error{"no alert " + item.reference};
        const std::string cap =
            web::CapDocument(*record, item.version, engine::EmailAddressOf(config_.email_from),
                             config_.http_public_url);
        if (cap.empty())
            return engine::Error{"no version " + std::to_string(item.version) + " of " +
                                 item.reference};
        const std::uint64_t sequence =
            std::max(last_sequence_ + 1, static_cast<std::uint64_t>(WallMs()) * 1000);
        last_sequence_ = sequence;
        const auto envelope = signing_key_->Sign(config_.federation_instance, sequence, cap);
        return engine::FederationMessage{
            cap,
            {{std::string(engine::kFederationInstanceProperty), envelope.instance},
             {std::string(engine::kFederationSequenceProperty), std::to_string(sequence)},
             {std::string(engine::kFederationSignatureProperty), envelope.signature}}};
    }

    // A peer's message on ldis/v1/federation/{peer}/alerts; on Paho's callback thread, like a
    // report: it returns once the version is stored or refused.
    void OnFederation(const broker::Message& m, std::string_view topic_instance) {
        if (topic_instance == config_.federation_instance) return;  // our own, from the broker
        if (!verifier_) return;
        std::optional<engine::Envelope> envelope;
        if (const auto refused = CheckEnvelope(
                m, topic_instance, "federation:last:" + std::string(topic_instance), envelope);
            !refused.empty()) {
            spdlog::warn("federation: refused a message on {}: {}", m.topic, refused);
            return;
        }
        auto version = engine::ReadCap(m.payload);
        if (!version.ok()) {
            spdlog::warn("federation: refused {}'s message {}: {}", topic_instance,
                         envelope->sequence, version.error().message);
            return;
        }
        engine::FederatedVersion v = std::move(version).value();
        v.peer = std::string(topic_instance);
        v.sequence = envelope->sequence;
        const auto policy = config_.federation_policy[static_cast<int>(v.level)];
        for (auto delay = std::chrono::milliseconds(100);;
             delay = std::min(delay * 2, std::chrono::milliseconds(5000))) {
            const auto stored = store_.ReceiveFederated(v, policy, peer_names_[v.peer], WallMs());
            if (stored.ok()) {
                spdlog::info("federation: {} {} from {}: {}{} ({} delivery(ies))", v.identifier,
                             v.msg_type, v.peer, stored.value().stored ? "" : "already had it; ",
                             stored.value().decision, stored.value().deliveries);
                return;
            }
            if (stopping_.load()) {
                spdlog::critical(
                    "stopping with a federation message that cannot be stored ({}); "
                    "exiting unacknowledged",
                    stored.error().message);
                spdlog::default_logger()->flush();
                std::_Exit(75);
            }
            spdlog::error("federation: {} not stored ({}); trying again", v.identifier,
                          stored.error().message);
            std::this_thread::sleep_for(delay);
        }
    }

    // The envelope's check for a peer's message on `topic_instance`'s topics: "" when it
    // passes, else why not. `last_key` is the setting holding the last sequence accepted on
    // that topic (each topic's messages arrive in order; two topics' need not).
    std::string CheckEnvelope(const broker::Message& m, std::string_view topic_instance,
                              const std::string& last_key,
                              std::optional<engine::Envelope>& envelope) {
        envelope = engine::EnvelopeFrom(m.user_properties);
        if (envelope && envelope->instance != topic_instance)
            return "signed as " + envelope->instance.substr(0, 64) +
                   ", but the topic names another instance";
        std::uint64_t last = 0;
        const std::string kept = store_.Setting(last_key);
        std::from_chars(kept.data(), kept.data() + kept.size(), last);
        const auto verdict = verifier_->Check(envelope, m.payload, last);
        return verdict.accepted() ? std::string() : verdict.reason;
    }

    // Every 5 s: the acknowledgement counts of the peers' alerts forwarded here, sent back to
    // them when they changed (counts only), signed like an offer; on the io thread.
    void SendAcks(net::steady_timer& timer) {
        if (!signing_key_) return;
        acks_timer_ = &timer;
        for (const auto& acks : store_.ForwardedAcknowledgements(WallMs())) {
            const std::string key = acks.peer + "/" + acks.reference;
            if (acks_sent_[key] == acks || !clients_.front()->connected()) continue;
            const std::string payload = engine::AcksJson(acks);
            const std::uint64_t sequence =
                std::max(last_sequence_ + 1, static_cast<std::uint64_t>(WallMs()) * 1000);
            last_sequence_ = sequence;
            const auto envelope =
                signing_key_->Sign(config_.federation_instance, sequence, payload);
            broker::Message m;
            m.topic = engine::wire::FederationAcksTopic(config_.federation_instance);
            m.payload = payload;
            m.qos = 1;
            m.user_properties = {
                {std::string(engine::kFederationInstanceProperty), envelope.instance},
                {std::string(engine::kFederationSequenceProperty), std::to_string(sequence)},
                {std::string(engine::kFederationSignatureProperty), envelope.signature}};
            clients_.front()->Publish(std::move(m));
            acks_sent_[key] = acks;
        }
        timer.expires_after(std::chrono::seconds(5));
        timer.async_wait([this, &timer](const boost::system::error_code& ec) {
            if (!ec && !stopping_.load()) SendAcks(timer);
        });
    }

    // A peer's counts of this instance's alert; on Paho's callback thread. Kept as the setting
    // "federation:acks:{reference}": {peer: {"name", "partners", "acknowledged", "at_ms"}}.
    void OnFederationAcks(const broker::Message& m, std::string_view topic_instance) {
        if (topic_instance == config_.federation_instance || !verifier_) return;
        const std::string last_key = "federation:last-acks:" + std::string(topic_instance);
        std::optional<engine::Envelope> envelope;
        if (const auto refused = CheckEnvelope(m, topic_instance, last_key, envelope);
            !refused.empty()) {
            spdlog::warn("federation: refused counts on {}: {}", m.topic, refused);
            return;
        }
        auto acks = engine::ParseAcks(m.payload);
        if (!acks.ok() || acks.value().peer != config_.federation_instance) {
            spdlog::warn("federation: refused counts from {}: {}", topic_instance,
                         acks.ok() ? "they are for another instance" : acks.error().message);
            return;
        }
        const std::string key = "federation:acks:" + acks.value().reference;
        boost::json::error_code ec;
        auto kept = boost::json::parse(store_.Setting(key), ec);
        boost::json::object all =
            !ec && kept.is_object() ? kept.as_object() : boost::json::object{};
        all[std::string(topic_instance)] =
            boost::json::object{{"name", peer_names_[std::string(topic_instance)]},
                                {"partners", acks.value().partners},
                                {"acknowledged", acks.value().acknowledged},
                                {"at_ms", WallMs()}};
        if (!store_.SetSetting(key, boost::json::serialize(all)).ok() ||
            !store_.SetSetting(last_key, std::to_string(envelope->sequence)).ok())
            spdlog::error("federation: counts from {} not stored", topic_instance);
    }

    // Silent feeds (issue 16 §3): a report or heartbeat from a configured feed. Any thread;
    // never blocks: a feed back from silence is told on the io thread.
    void FeedSeen(std::string_view source, std::string_view organisation) {
        if (!feeds_) return;
        if (auto change = feeds_->Seen(source, organisation, WallMs()))
            net::post(io_, [this, change = *change] { TellFeedChange(change); });
    }

    // Every second: the feeds newly silent past their limit.
    void CheckFeeds(net::steady_timer& timer) {
        if (!feeds_) return;
        feed_check_ = &timer;
        for (const auto& change : feeds_->Check(WallMs())) TellFeedChange(change);
        timer.expires_after(std::chrono::seconds(1));
        timer.async_wait([this, &timer](const boost::system::error_code& ec) {
            if (!ec && !stopping_.load()) CheckFeeds(timer);
        });
    }

    // The coordinators' notice and the feed's state, in one transaction; on the io thread.
    void TellFeedChange(const engine::FeedChange& change) {
        const bool silent = change.kind == engine::FeedChange::Kind::kSilent;
        engine::Store::Notice notice;
        notice.kind = silent ? engine::kKindFeedSilent : engine::kKindFeedBack;
        notice.detail = engine::FeedNoticeDetail(change);
        notice.audit_action = silent ? "feed.silent" : "feed.back";
        notice.subject = engine::FeedKey(change.feed);
        notice.setting_key = engine::FeedKey(change.feed);
        notice.setting_value = engine::FeedStateJson({change.last_seen_ms, silent, change.now_ms});
        const auto queued = store_.QueueNotice(notice, change.now_ms);
        if (!queued.ok()) {
            spdlog::error(
                "feed {}/{}: the coordinators' notice could not be stored ({}); trying "
                "again",
                change.feed.source_type, change.feed.organisation, queued.error().message);
            feeds_->Revert(change);
            return;
        }
        if (silent)
            spdlog::warn("feed silent: {}/{} sent nothing for longer than {} s; {} notice(s)",
                         change.feed.source_type, change.feed.organisation,
                         change.feed.max_silence_ms / 1000, queued.value());
        else
            spdlog::info("feed back: {}/{} is sending again; {} notice(s)", change.feed.source_type,
                         change.feed.organisation, queued.value());
    }

    // Runs on Paho's callback thread. Returns only once the report is committed or
    // rejected: Paho acknowledges the message when this returns.
    void OnReport(broker::Client& client, const broker::Message& m) {
        if (const auto peer = engine::wire::FederationInstance(m.topic); !peer.empty())
            return OnFederation(m, peer);
        if (const auto peer = engine::wire::FederationAcksInstance(m.topic); !peer.empty())
            return OnFederationAcks(m, peer);
        std::string_view feed_source, feed_organisation;
        if (engine::wire::FeedHeartbeat(m.topic, feed_source, feed_organisation)) {
            FeedSeen(feed_source, feed_organisation);  // a heartbeat: nothing to store
            return;
        }
        const std::string_view source = TopicSource(m.topic);
        auto delay = std::chrono::milliseconds(100);
        for (;;) {
            auto outcome = intake_->Submit(m.payload, "mqtt", source);
            if (outcome) {
                const auto committed = std::chrono::steady_clock::now();
                PostReceipt(client, m, std::string(source), std::move(outcome.value()));
                engine::Observe(engine::Stage::kReceipt,
                                std::chrono::steady_clock::now() - committed);
                return;
            }
            if (stopping_.load()) {
                // Returning would acknowledge a report that is not stored. Exit without
                // acknowledging: the broker keeps it for the next start.
                spdlog::critical(
                    "stopping with a report that cannot be stored ({}); exiting unacknowledged",
                    outcome.error().message);
                spdlog::default_logger()->flush();
                std::_Exit(75);
            }
            std::this_thread::sleep_for(delay);
            delay = std::min(delay * 2, std::chrono::milliseconds(5000));
        }
    }

    void PostReceipt(broker::Client& client, const broker::Message& m, std::string source,
                     engine::IntakeOutcome outcome) {
        broker::Message receipt;
        receipt.topic = ReceiptTopic(m.response_topic, source);
        receipt.correlation_data = m.correlation_data;
        receipt.payload = outcome.receipt.ToJson();
        // QoS 0, not DESIGN's QoS 1: Paho C 1.3.12 can corrupt a queued publish when the
        // connection drops, and replays a corrupt QoS 1 publish on every reconnection,
        // which the broker refuses as malformed, for ever. The report is already committed;
        // a submitter that misses a receipt resends and gets "duplicate" with the reference.
        receipt.qos = 0;
        std::optional<broker::Message> rejected;
        if (outcome.rejected()) {
            rejected.emplace();
            rejected->topic = engine::wire::kRejectedTopic;
            rejected->qos = 0;
            // The id, the source and the errors: never the payload, which holds the
            // reporter's contact and free text, to every subscriber of the topic.
            rejected->payload =
                engine::RejectionJson(m.topic, outcome.receipt.report_id, outcome.receipt.errors);
        }
        // Handed to Paho here, on its callback thread (Publish never blocks): not through the
        // io thread, where it would wait behind the dispatcher's rendering and sending, and
        // reach the submitter after the first email (issue 14).
        client.Publish(std::move(receipt));
        if (rejected) client.Publish(std::move(*rejected));
    }

    engine::DispatcherOptions DispatchOptions() {
        engine::DispatcherOptions o;
        o.smtp_url = config_.email_smtp_url;
        o.smtp_username = config_.email_username;
        o.smtp_password = config_.email_password;
        o.smtp_starttls = config_.email_starttls;
        o.smtp_ca_file = config_.email_ca_file;
        o.smtp_connections = config_.email_connections;
        o.from = config_.email_from;
        o.public_url = config_.http_public_url;
        o.notify_base_url = config_.notify_base_url;
        o.notify_api_key = config_.notify_api_key;
        o.notify_sms_template = config_.notify_sms_template_id;
        o.notify_email_template = config_.notify_email_template_id;
        const auto runtime = runtime_.load();
        o.templates = runtime->email_templates;
        o.partners = runtime->grading->partners;
        o.max_in_flight = static_cast<std::size_t>(config_.dispatch_max_in_flight);
        o.timeout = std::chrono::milliseconds(config_.dispatch_timeout_ms);
        o.escalation_check = std::chrono::seconds(config_.escalation_check_s);
        o.mqtt_publish = [this](const std::string& topic, const std::string& payload,
                                const engine::UserProperties& properties,
                                std::function<void(bool, std::string)> done) {
            broker::Message m;
            m.topic = topic;
            m.payload = payload;
            m.qos = 1;
            m.user_properties = properties;
            m.on_done = std::move(done);
            clients_.front()->Publish(std::move(m));
        };
        if (signing_key_)
            o.federation_sign = [this](const engine::OutboxItem& item) { return SignOffer(item); };
        o.photo = [this](const std::string& id) -> std::optional<std::string> {
            auto found = store_.FindPhoto(id, true);
            if (!found) return std::nullopt;
            return std::move(found->second);
        };
        return o;
    }

    const Config& config_;
    engine::Store& store_;
    std::unique_ptr<engine::Intake> intake_;
    net::io_context io_{1};
    net::executor_work_guard<net::io_context::executor_type>* work_ = nullptr;
    std::vector<std::unique_ptr<broker::Client>> clients_;
    std::unique_ptr<engine::Dispatcher> dispatcher_;  // destroyed before io_ and clients_
    // What the files said at the last start or SIGHUP, swapped whole (Reload).
    std::atomic<std::shared_ptr<const Runtime>> runtime_;
    std::unique_ptr<web::Server> http_;  // destroyed first: its pool uses the rest
    std::atomic<bool> stopping_{false};
    std::thread drain_;                                  // DrainOldSessions
    std::atomic<std::int64_t> drain_last_report_ms_{0};  // steady clock
    net::steady_timer* expiry_ = nullptr;
    net::steady_timer* watchdog_ = nullptr;
    net::steady_timer* heartbeat_ = nullptr;
    net::steady_timer* feed_check_ = nullptr;
    std::unique_ptr<engine::FeedWatch> feeds_;  // [[feeds]]; null when none are configured
    // [federation]; null when this instance has no peers.
    std::unique_ptr<engine::SigningKey> signing_key_;
    std::unique_ptr<engine::PeerVerifier> verifier_;
    std::map<std::string, std::string> peer_names_;  // instance -> "Medway LDIS"
    std::uint64_t last_sequence_ = 0;                // io thread only
    net::steady_timer* acks_timer_ = nullptr;
    std::map<std::string, engine::ForwardedAcks> acks_sent_;  // io thread only
    bool ready_notified_ = false;                             // on the io thread only
    std::int64_t last_retention_ms_ = 0;                      // io thread only
};

Daemon::Daemon(Config config, std::string config_path, std::vector<std::string> overrides)
    : config_(std::move(config)),
      config_path_(std::move(config_path)),
      overrides_(std::move(overrides)) {}

Daemon::~Daemon() = default;

// The database holds reports about people and the keys of acknowledgement links: a file
// that others on the host can read is a leak waiting to happen. Returns the problem and
// its fix, or "".
static std::string ExposedFile(const std::string& path) {
    struct stat st {};
    for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
        if (::stat(file.c_str(), &st) != 0) continue;
        if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
            char mode[8];
            std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
            return file + " can be read by other users of this machine (mode " + mode +
                   "): it holds reports about people. Run: chmod 600 " + path + "*";
        }
    }
    return {};
}

int Daemon::Run() {
    // Everything ldisd creates (the database and its WAL, maildir emails, folders) is
    // for its own user alone: files 0600, folders 0700.
    ::umask(077);
    std::unique_ptr<engine::Store> store;
    if (!config_.store_url.empty()) {
        // Several ldisd may share this database: each its own mqtt.client_id, one
        // mqtt.shared_group (docs/postgresql.md).
        engine::PostgresStore::Options options;
        options.url = config_.store_url;
        options.reference_prefix = config_.reference_prefix;
        options.lease_ms = static_cast<std::int64_t>(config_.store_lease_s) * 1000;
        auto opened = engine::PostgresStore::Open(options);
        if (!opened.ok()) {
            spdlog::critical("cannot start: {}", opened.error().message);
            return 3;
        }
        Impl impl(config_, *opened.value());
        return impl.Run(config_path_, overrides_);
    }
    if (const std::string exposed = ExposedFile(config_.store_path); !exposed.empty()) {
        spdlog::critical("cannot start: {}", exposed);
        return 3;
    }
    try {
        engine::StoreOptions options;
        options.path = config_.store_path;
        options.synchronous = config_.store_synchronous;
        options.max_batch = static_cast<std::size_t>(config_.store_max_batch);
        options.reference_prefix = config_.reference_prefix;
        store = std::make_unique<engine::ReportStore>(options);
    } catch (const engine::StoreError& e) {
        spdlog::critical("cannot start: {}", e.what());
        return 3;
    }
    // Clients are destroyed before the store, which finishes queued writes as it closes.
    Impl impl(config_, *store);
    return impl.Run(config_path_, overrides_);
}

}  // namespace ldis::app
