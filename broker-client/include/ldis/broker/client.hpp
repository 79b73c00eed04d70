#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ldis::broker {

// One MQTT application message, as bytes and the MQTT 5 properties LDIS uses.
struct Message {
    std::string topic;
    std::string payload;
    std::string response_topic;    // MQTT 5 Response Topic, or ""
    std::string correlation_data;  // MQTT 5 Correlation Data (binary), or ""
    int qos = 1;
    bool retained = false;
    // Called once, on a Paho thread, when the broker acknowledged the publish (QoS 1) or
    // it failed or was dropped. Optional; must not block.
    std::function<void(bool ok, std::string error)> on_done;
    // MQTT 5 User Properties, in order (a name may repeat): federation's signature travels here.
    std::vector<std::pair<std::string, std::string>> user_properties;
};

struct ClientOptions {
    std::string uri = "tcp://127.0.0.1:1883";  // tcp:// or ssl://
    std::string client_id = "ldisd";
    std::string username;
    std::string password;                    // a secret: never logged
    std::string ca_file;                     // for ssl://; "" uses the system store
    std::string cert_file;                   // a client certificate (PEM) for ssl://, or ""
    std::string key_file;                    // its private key (PEM), with cert_file
    std::vector<std::string> subscriptions;  // topic filters, subscribed at QoS 1 on every connect
    std::string status_topic;                // retained "online"; last will "offline"; "" for none
    std::chrono::seconds session_expiry{7 * 24 * 3600};
    std::chrono::seconds keepalive{30};
    std::chrono::seconds reconnect_min{1};
    std::chrono::seconds reconnect_max{30};
    int max_buffered = 10000;          // publishes kept while disconnected
    int receive_maximum = 256;         // unacknowledged messages the broker may send us:
                                       // a backlog waits at the broker, not in our memory
    bool end_session_on_stop = false;  // Stop() tells the broker to delete the session
};

// An MQTT 5 client on Paho C++ with a persistent session (clean start off, session
// expiry set), automatic reconnect with backoff, re-subscription on every connect, a
// retained online/offline status and a last will.
//
// Acknowledgement: the message handler runs on Paho's callback thread, one message at a
// time, and Paho sends the PUBACK only after the handler returns (Paho C++ 1.2 on Paho C
// 1.3.12; tests/integration/broker_client_test.cpp proves it). So a handler that returns
// only once the message is durably stored never acknowledges what it has not stored.
// A handler must not make blocking calls on this client.
//
// Latency after a quiet second: Paho C has one receive thread for every client in the
// process. It waits up to 1 s for a socket to be readable and, when the wait ends with
// nothing to read, sleeps 100 ms before waiting again (MQTTAsync_cycle in 1.3.12 and
// upstream today; paho.mqtt.c issue 32). A message that arrives during that sleep waits
// for its end: after a second or more without traffic, a report waits 0-100 ms more about
// one time in eleven. No option of Paho's changes it. bench/run measures a steady load after
// a warm-up second and reports the first alert after a start apart (35-73 ms on the
// machine of issue 14, where a steady report takes 4-5 ms).
class Client {
public:
    using MessageHandler = std::function<void(const Message&)>;
    // Called with true once connected and every subscription granted (SUBACK), with false
    // when the connection is lost.
    using ConnectionHandler = std::function<void(bool connected)>;

    // Handlers are installed before connecting. Throws std::invalid_argument on a bad URI.
    Client(ClientOptions options, MessageHandler on_message, ConnectionHandler on_connection = {});
    // Disconnects at once if still connected (prefer Stop()).
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Starts connecting in the background and returns at once. Thread-safe.
    void Start();
    // Waits until connected and subscribed, or the timeout passes.
    bool WaitConnected(std::chrono::milliseconds timeout) const;
    bool connected() const;

    // Queues a publish and returns at once; buffered while disconnected. Thread-safe.
    // Never blocks, so it may be called from the message handler.
    void Publish(Message message);

    // Publishes the offline status, waits for outstanding publishes and disconnects, all
    // within `deadline`. Returns false if the deadline passed first. Thread-safe; idempotent.
    bool Stop(std::chrono::milliseconds deadline);

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ldis::broker
