#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>

#include "ldis/engine/delivery.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/store.hpp"

namespace boost::asio {
class io_context;
}

namespace ldis::engine {

// MQTT 5 user properties, in order.
using UserProperties = std::vector<std::pair<std::string, std::string>>;
// Publishes one MQTT message at QoS 1 with `properties`; `done(ok, error)` is called once, on
// any thread, when the broker has acknowledged it or it has failed.
using MqttPublish =
    std::function<void(const std::string& topic, const std::string& payload,
                       const UserProperties& properties, std::function<void(bool, std::string)>)>;
// Federation (issue 16 §1): the signed CAP of an outbox row of kind "federation", with the
// MQTT 5 user properties that carry its envelope; an Error (the row is retried) when it
// cannot be made.
struct FederationMessage {
    std::string payload;
    UserProperties properties;
};
using FederationSign = std::function<Result<FederationMessage>(const OutboxItem&)>;

struct DispatcherOptions {
    std::string smtp_url;  // smtp://host:port, smtps://host:port, or maildir:PATH
    std::string smtp_username;
    std::string smtp_password;   // a secret: never logged
    bool smtp_starttls = false;  // refuse to send over smtp:// unless STARTTLS succeeds
    std::string smtp_ca_file;    // "" uses the system store
    long smtp_connections = 4;   // connections per SMTP server, each reused for many messages
    // An email claimed at its commit opens its SMTP transaction (MAIL FROM, RCPT TO, DATA:
    // the partner's address, nothing of the report) while the commit syncs; its message
    // waits for the commit. false: nothing at all goes to the relay before the commit.
    bool smtp_envelope_before_commit = true;
    std::string from = "LDIS <ldis@example.org>";
    std::string public_url = "http://127.0.0.1:8080";
    std::string notify_base_url = "https://api.notifications.service.gov.uk";
    std::string notify_api_key;  // a secret; "" leaves Notify deliveries failing
    std::string notify_sms_template;
    std::string notify_email_template;
    MessageTemplates templates;
    std::shared_ptr<const Partners> partners;  // webhook formats and secrets
    std::size_t max_in_flight = 128;
    std::chrono::milliseconds timeout{15000};  // one attempt, connect to last byte
    std::chrono::milliseconds escalation_check{30000};
    std::int64_t ack_valid_ms = 30LL * 24 * 3600 * 1000;  // at least; else the alert's validity
    MqttPublish mqtt_publish;        // none: MQTT deliveries retry until it is set
    FederationSign federation_sign;  // none: this instance offers nothing to peers
    // A kept photo's JPEG by id (Store::FindPhoto), for the emails of versions with photos
    // (issue 17 §3); none, or nullopt for a photo purged since: the email goes without it.
    std::function<std::optional<std::string>(const std::string& id)> photo;
};

// Counts since start. Read with relaxed ordering.
struct DispatchCounters {
    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> retried{0};
    std::atomic<std::uint64_t> failed{0};
    // Seconds from an alert version's creation to each delivery of it being accepted,
    // as a Prometheus histogram: cumulative counts at each bound, then +Inf.
    static constexpr double kLatencyBounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                1,    2.5,   5,    10,  30,   60};
    std::atomic<std::uint64_t> latency_buckets[std::size(kLatencyBounds) + 1] = {};
    std::atomic<std::uint64_t> latency_count{0};
    std::atomic<std::uint64_t> latency_sum_ms{0};
    void ObserveLatency(std::int64_t ms);
};

// Drains the outbox: claims due deliveries from the store, sends them over SMTP, HTTP
// (webhooks and GOV.UK Notify) and MQTT with libcurl's multi-socket interface driven by
// the io_context (no thread per delivery), and records each outcome back in the store,
// which applies retries, dead-lettering and fallback. Also queues escalations of
// unacknowledged alerts on a timer. Everything runs on the io_context's thread except
// Wake(), which is thread-safe.
class Dispatcher {
public:
    Dispatcher(boost::asio::io_context& io, Outbox& store, DispatcherOptions options);
    ~Dispatcher();
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;

    // Resumes what a previous run left in flight, subscribes to the store's new
    // deliveries and starts sending. Call from the io thread or before it runs.
    void Start();
    // New rows in the outbox. Thread-safe.
    void Wake();
    // Stops claiming, abandons transfers in flight (they are resent, with the same
    // idempotency key, at the next start) and records the outcomes already known.
    // `done` runs on the io thread once they are committed.
    void Stop(std::function<void()> done);
    // Replaces the partners (configuration reload). io thread.
    void SetPartners(std::shared_ptr<const Partners> partners);

    const DispatchCounters& counters() const;
    std::size_t in_flight() const;

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ldis::engine
