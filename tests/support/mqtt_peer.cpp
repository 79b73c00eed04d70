#include "support/mqtt_peer.hpp"

#include <mqtt/async_client.h>

namespace ldis::test {

struct MqttPeer::Impl {
    mqtt::async_client client;
    std::mutex mutex;
    std::condition_variable arrived;
    std::deque<Seen> seen;

    Impl(const std::string& uri, const std::string& id)
        : client(uri, id, mqtt::create_options(MQTTVERSION_5), nullptr) {}
};

MqttPeer::MqttPeer(const std::string& uri, const std::string& client_id,
                   const std::string& username, const std::string& password,
                   const std::string& ca_file)
    : impl_(std::make_unique<Impl>(uri, client_id)) {
    impl_->client.set_message_callback([this](mqtt::const_message_ptr msg) {
        Seen s{msg->get_topic(), msg->to_string(), {}, msg->is_retained()};
        const auto& props = msg->get_properties();
        if (props.contains(mqtt::property::CORRELATION_DATA)) {
            s.correlation_data = mqtt::get<std::string>(props, mqtt::property::CORRELATION_DATA);
        }
        {
            std::lock_guard lock(impl_->mutex);
            impl_->seen.push_back(std::move(s));
        }
        impl_->arrived.notify_all();
    });
    auto builder = mqtt::connect_options_builder().mqtt_version(MQTTVERSION_5).clean_start(true);
    if (!username.empty()) builder.user_name(username);
    if (!password.empty()) builder.password(password);
    if (!ca_file.empty())
        builder.ssl(mqtt::ssl_options_builder().trust_store(ca_file).verify(true).finalize());
    auto opts = builder.finalize();
    try {
        impl_->client.connect(opts)->wait_for(std::chrono::seconds(10));
    } catch (const mqtt::exception&) {
        // Refused (a test of the broker's access control): connected() says so.
    }
}

bool MqttPeer::connected() const {
    return impl_->client.is_connected();
}

MqttPeer::~MqttPeer() {
    try {
        if (impl_->client.is_connected())
            impl_->client.disconnect()->wait_for(std::chrono::seconds(2));
    } catch (...) {
    }
}

void MqttPeer::Subscribe(const std::string& filter) {
    impl_->client.subscribe(filter, 1, mqtt::subscribe_options(), mqtt::properties())
        ->wait_for(std::chrono::seconds(5));
}

bool MqttPeer::Publish(const std::string& topic, const std::string& payload,
                       const std::string& response_topic, const std::string& correlation) {
    auto msg = mqtt::message::create(topic, payload, 1, false);
    mqtt::properties props;
    if (!response_topic.empty()) props.add({mqtt::property::RESPONSE_TOPIC, response_topic});
    if (!correlation.empty())
        props.add({mqtt::property::CORRELATION_DATA, mqtt::binary(correlation)});
    msg->set_properties(props);
    try {
        return impl_->client.publish(msg)->wait_for(std::chrono::seconds(10));
    } catch (const mqtt::exception&) {
        return false;
    }
}

std::optional<Seen> MqttPeer::WaitFor(const std::function<bool(const Seen&)>& pred,
                                      std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mutex);
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (auto it = impl_->seen.begin(); it != impl_->seen.end(); ++it) {
            if (pred(*it)) {
                Seen s = std::move(*it);
                impl_->seen.erase(it);
                return s;
            }
        }
        if (impl_->arrived.wait_until(lock, until) == std::cv_status::timeout) return std::nullopt;
    }
}

std::optional<Seen> MqttPeer::WaitForTopic(const std::string& topic,
                                           std::chrono::milliseconds timeout) {
    return WaitFor([&](const Seen& s) { return s.topic == topic; }, timeout);
}

std::vector<Seen> MqttPeer::Drain() {
    std::lock_guard lock(impl_->mutex);
    std::vector<Seen> out(impl_->seen.begin(), impl_->seen.end());
    impl_->seen.clear();
    return out;
}

}  // namespace ldis::test
