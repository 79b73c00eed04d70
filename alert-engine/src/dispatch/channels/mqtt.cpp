// The MQTT channel: the alert document published at QoS 1 on its level's topic, delivered
// when the broker acknowledges it.
#include "../impl.hpp"

namespace ldis::engine {

void Dispatcher::Impl::SendMqtt(OutboxItem item) {
    if (!options_.mqtt_publish) {
        return Record({item.id, DeliveryOutcome::Kind::kRetry, "no MQTT connection", -1});
    }
    const std::int64_t id = item.id;
    // A publish the broker never answers is tried again.
    auto timer = std::make_shared<net::steady_timer>(io_, options_.timeout * 2);
    mqtt_pending_[id] = timer;
    std::string doc;
    UserProperties properties;
    if (item.kind == kKindFederation) {
        // Offered to the peers: the version's CAP, signed (issue 16 §1).
        if (!options_.federation_sign) {
            mqtt_pending_.erase(id);
            return Record({id, DeliveryOutcome::Kind::kFailed,
                           "federation is not configured at this instance", -1});
        }
        auto signed_cap = options_.federation_sign(item);
        if (!signed_cap.ok()) {
            mqtt_pending_.erase(id);
            return Record({id, DeliveryOutcome::Kind::kRetry,
                           "federation: " + signed_cap.error().message, -1});
        }
        doc = std::move(signed_cap.value().payload);
        properties = std::move(signed_cap.value().properties);
    } else {
        doc = AlertDocument(item, options_.public_url);
    }
    // Paho may answer after this dispatcher is gone (at shutdown it fails what is
    // pending): the callback holds only a weak handle and the io_context.
    std::weak_ptr<Impl*> weak = self_;
    net::io_context* io = &io_;
    options_.mqtt_publish(
        item.address, doc, properties, [weak, io, id](bool ok, std::string error) {
            if (weak.expired()) return;
            net::post(*io, [weak, id, ok, error = std::move(error)] {
                const auto alive = weak.lock();
                if (!alive) return;
                Impl* self = *alive;
                auto& pending = self->mqtt_pending_;
                auto it = pending.find(id);
                if (it == pending.end()) return;
                it->second->cancel();
                pending.erase(it);
                self->Record(
                    {id, ok ? DeliveryOutcome::Kind::kDelivered : DeliveryOutcome::Kind::kRetry,
                     ok ? "" : "MQTT: " + error, -1});
            });
        });
    timer->async_wait([this, id](const boost::system::error_code& ec) {
        if (ec || mqtt_pending_.erase(id) == 0) return;
        Record({id, DeliveryOutcome::Kind::kRetry, "MQTT: no acknowledgement from the broker", -1});
    });
}

}  // namespace ldis::engine
