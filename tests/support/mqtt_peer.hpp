#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ldis::test {

// A message as a test peer saw it.
struct Seen {
    std::string topic;
    std::string payload;
    std::string correlation_data;
    bool retained = false;
    std::chrono::system_clock::time_point at = std::chrono::system_clock::now();  // arrival
};

// An independent MQTT 5 client for tests (Paho C++ directly, not ldis::broker), playing
// a partner's system: publishes reports, listens for receipts.
class MqttPeer {
public:
    // `username`/`password` for a broker with a password file; `ca_file` for ssl:// URIs.
    MqttPeer(const std::string& uri, const std::string& client_id, const std::string& username = {},
             const std::string& password = {}, const std::string& ca_file = {});
    ~MqttPeer();
    bool connected() const;
    void Subscribe(const std::string& filter);
    // Publishes at QoS 1 and waits for the broker's PUBACK; false if it did not come.
    bool Publish(const std::string& topic, const std::string& payload,
                 const std::string& response_topic = {}, const std::string& correlation = {});
    // Waits for a message matching `pred`; removes and returns it.
    std::optional<Seen> WaitFor(const std::function<bool(const Seen&)>& pred,
                                std::chrono::milliseconds timeout);
    std::optional<Seen> WaitForTopic(const std::string& topic, std::chrono::milliseconds timeout);
    std::vector<Seen> Drain();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ldis::test
