// ldisd's wiring, shared by the files that define it: daemon.cpp (start, signals, reload,
// systemd, the timers), daemon_intake.cpp (what comes in from the broker: reports,
// heartbeats of feeds, the old sessions' drain, receipts) and daemon_federation.cpp (signed
// versions to and from the peers, and their acknowledgement counts). Private to app/.
#pragma once

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

// Milliseconds since the epoch, by the wall clock (what the store and documents record).
inline std::int64_t WallMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class Daemon::Impl {
public:
    Impl(const Config& config, engine::Store& store) : config_(config), store_(store) {}

    int Run(const std::string& config_path, const std::vector<std::string>& overrides);

private:
    // daemon.cpp
    void WaitForSignal(net::signal_set& signals, const std::string& config_path,
                       const std::vector<std::string>& overrides);
    void Reload(const std::string& config_path, const std::vector<std::string>& overrides);
    void NotifyReady();
    std::string StatusLine();
    void ScheduleWatchdog(net::steady_timer& timer);
    void Heartbeat(net::steady_timer& timer);
    void PublishHeartbeat();
    void ScheduleExpiry(net::steady_timer& timer);
    void Retain(std::int64_t now_ms);
    engine::DispatcherOptions DispatchOptions();

    // daemon_intake.cpp
    std::string IntakeClientId(int i) const;
    broker::ClientOptions IntakeOptions(const std::string& client_id) const;
    void DrainOldSessions();
    void OnReport(broker::Client& client, const broker::Message& m);
    void PostReceipt(broker::Client& client, const broker::Message& m, std::string source,
                     engine::IntakeOutcome outcome);
    void FeedSeen(std::string_view source, std::string_view organisation);
    void CheckFeeds(net::steady_timer& timer);
    void TellFeedChange(const engine::FeedChange& change);

    // daemon_federation.cpp
    engine::Result<bool> StartFederation();
    engine::Result<engine::FederationMessage> SignOffer(const engine::OutboxItem& item);
    void OnFederation(const broker::Message& m, std::string_view topic_instance);
    std::string CheckEnvelope(const broker::Message& m, std::string_view topic_instance,
                              const std::string& last_key,
                              std::optional<engine::Envelope>& envelope);
    void SendAcks(net::steady_timer& timer);
    void OnFederationAcks(const broker::Message& m, std::string_view topic_instance);

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

}  // namespace ldis::app
