// What ldisd takes in from the broker: reports (committed before Paho acknowledges them),
// with their receipts; feeds' heartbeats and silences; the sessions of client ids no longer
// used, drained. Part of Daemon::Impl (daemon_impl.hpp).
#include "daemon_impl.hpp"

namespace ldis::app {
namespace {

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

std::string Daemon::Impl::IntakeClientId(int i) const {
    return i == 0 ? config_.mqtt_client_id : config_.mqtt_client_id + "-" + std::to_string(i);
}

broker::ClientOptions Daemon::Impl::IntakeOptions(const std::string& client_id) const {
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
void Daemon::Impl::DrainOldSessions() {
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
        const bool connected =
            std::all_of(drains.begin(), drains.end(), [](const auto& c) { return c->connected(); });
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

// Runs on Paho's callback thread. Returns only once the report is committed or
// rejected: Paho acknowledges the message when this returns.
void Daemon::Impl::OnReport(broker::Client& client, const broker::Message& m) {
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
            engine::Observe(engine::Stage::kReceipt, std::chrono::steady_clock::now() - committed);
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

void Daemon::Impl::PostReceipt(broker::Client& client, const broker::Message& m, std::string source,
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

// Silent feeds (issue 16 §3): a report or heartbeat from a configured feed. Any thread;
// never blocks: a feed back from silence is told on the io thread.
void Daemon::Impl::FeedSeen(std::string_view source, std::string_view organisation) {
    if (!feeds_) return;
    if (auto change = feeds_->Seen(source, organisation, WallMs()))
        net::post(io_, [this, change = *change] { TellFeedChange(change); });
}

// Every second: the feeds newly silent past their limit.
void Daemon::Impl::CheckFeeds(net::steady_timer& timer) {
    if (!feeds_) return;
    feed_check_ = &timer;
    for (const auto& change : feeds_->Check(WallMs())) TellFeedChange(change);
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([this, &timer](const boost::system::error_code& ec) {
        if (!ec && !stopping_.load()) CheckFeeds(timer);
    });
}

// The coordinators' notice and the feed's state, in one transaction; on the io thread.
void Daemon::Impl::TellFeedChange(const engine::FeedChange& change) {
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

}  // namespace ldis::app
