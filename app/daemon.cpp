// ldisd's start, signals, reload, systemd and timers; the rest of Daemon::Impl is in
// daemon_intake.cpp and daemon_federation.cpp (daemon_impl.hpp).
#include "daemon_impl.hpp"

namespace ldis::app {

void ApplyLogLevel(const std::string& level) {
    spdlog::set_level(spdlog::level::from_str(level));
}

int Daemon::Impl::Run(const std::string& config_path, const std::vector<std::string>& overrides) {
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
        spdlog::info("metrics listening on {}:{}",
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

void Daemon::Impl::WaitForSignal(net::signal_set& signals, const std::string& config_path,
                                 const std::vector<std::string>& overrides) {
    signals.async_wait([this, &signals, config_path, overrides](const boost::system::error_code& ec,
                                                                int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
            sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
            Reload(config_path, overrides);
            sd_notify(0, ("READY=1\nSTATUS=" + StatusLine()).c_str());
            WaitForSignal(signals, config_path, overrides);
            return;
        }
        spdlog::info("ldisd stopping on signal {}", signal);
        sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing the reports and deliveries in hand");
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

void Daemon::Impl::Reload(const std::string& config_path,
                          const std::vector<std::string>& overrides) {
    auto load = LoadConfig(config_path, overrides);
    if (!load.ok()) {
        for (const auto& e : load.errors) spdlog::error("reload refused: {}", e.ToString());
        return;
    }
    std::shared_ptr<const Runtime> next;
    try {
        next = LoadRuntime(load.config);
    } catch (const std::exception& e) {
        spdlog::error("reload refused: {} (ldisd --check-config lists every problem)", e.what());
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
    if (load.config.mqtt_uri != config_.mqtt_uri || load.config.store_path != config_.store_path ||
        load.config.mqtt_client_id != config_.mqtt_client_id ||
        load.config.mqtt_intake_connections != config_.mqtt_intake_connections ||
        load.config.reference_prefix != config_.reference_prefix ||
        load.config.mqtt_cert_file != config_.mqtt_cert_file) {
        spdlog::warn("reload: changes to mqtt.* and store.* take effect at the next restart");
    }
    spdlog::info("configuration reloaded from {}", config_path);
}

// systemd (Type=notify): READY=1 once the database is open, HTTP listens and the
// broker has granted the report subscription; not before, so that `systemctl start`
// waits for a daemon that can take reports. Without NOTIFY_SOCKET these do nothing.
void Daemon::Impl::NotifyReady() {
    if (ready_notified_ || stopping_.load()) return;
    ready_notified_ = true;
    sd_notify(0, ("READY=1\nSTATUS=" + StatusLine()).c_str());
    spdlog::info("ready: database open, http listening, reports subscribed");
}

// What `systemctl status ldisd` shows.
std::string Daemon::Impl::StatusLine() {
    const auto counts = store_.CountAll();
    std::int64_t backlog = 0;
    for (const auto& [key, n] : counts.deliveries) {
        const auto status = key.substr(key.find('/') + 1);
        if (status == "queued" || status == "sending" || status == "retrying") backlog += n;
    }
    const bool broker = !clients_.empty() && clients_.front()->connected();
    return std::string("broker ") + (broker ? "connected" : "disconnected") + "; outbox backlog " +
           std::to_string(backlog) + "; reports accepted " +
           std::to_string(intake_->counters().accepted.load());
}

// WATCHDOG=1 from the event loop itself, at half the WatchdogSec= systemd set: a loop
// that stops turning stops the keep-alives, and systemd restarts ldisd. STATUS= with it.
void Daemon::Impl::ScheduleWatchdog(net::steady_timer& timer) {
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

// ldisd's heartbeat for an outside monitor: the retained status says "online" as long as
// the connection lives, even when ldisd hangs; this says it is still working. On the io
// thread, at every connection and every mqtt.heartbeat_s. QoS 0: a broker whose access
// list has not been given the topic drops it quietly, where a refused QoS 1 publish
// would make Paho C drop the whole intake connection.
void Daemon::Impl::Heartbeat(net::steady_timer& timer) {
    if (config_.mqtt_heartbeat_s == 0) return;
    heartbeat_ = &timer;
    PublishHeartbeat();
    timer.expires_after(std::chrono::seconds(config_.mqtt_heartbeat_s));
    timer.async_wait([this, &timer](const boost::system::error_code& ec) {
        if (!ec && !stopping_.load()) Heartbeat(timer);
    });
}

void Daemon::Impl::PublishHeartbeat() {
    if (config_.mqtt_heartbeat_s == 0 || stopping_.load()) return;
    if (clients_.front()->connected()) {
        broker::Message m;
        m.topic = std::string(engine::wire::kHeartbeatTopicPrefix) + config_.mqtt_client_id;
        m.payload =
            boost::json::serialize(boost::json::object{{"client_id", config_.mqtt_client_id},
                                                       {"at", engine::IsoTimeMs(WallMs())},
                                                       {"interval_s", config_.mqtt_heartbeat_s}});
        m.qos = 0;
        m.retained = true;
        clients_.front()->Publish(std::move(m));
    }
}

// Expires alerts whose valid_until has passed, once a minute.
void Daemon::Impl::ScheduleExpiry(net::steady_timer& timer) {
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
void Daemon::Impl::Retain(std::int64_t now_ms) {
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

engine::DispatcherOptions Daemon::Impl::DispatchOptions() {
    engine::DispatcherOptions o;
    o.smtp_url = config_.email_smtp_url;
    o.smtp_username = config_.email_username;
    o.smtp_password = config_.email_password;
    o.smtp_starttls = config_.email_starttls;
    o.smtp_ca_file = config_.email_ca_file;
    o.smtp_connections = config_.email_connections;
    o.smtp_envelope_before_commit = config_.email_envelope_before_commit;
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
