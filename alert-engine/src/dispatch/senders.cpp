// Sending a claimed delivery: the context every message needs, and the choice of channel.
// Each channel's sender is in channels/ (email, webhook, notify, mqtt); channels.cpp reads
// what each answer means.
#include "impl.hpp"

namespace ldis::engine {

MessageContext Dispatcher::Impl::ContextFor(const OutboxItem& item) const {
    MessageContext c;
    c.public_url = options_.public_url;
    c.from = options_.from;
    c.now_ms = NowMs();
    // A peer's alert forwarded here is acknowledged like one of this instance's (issue 16).
    if (item.kind == kKindAlert || item.kind == kKindEscalation || item.kind == kKindFederated) {
        const std::int64_t expires =
            std::max(item.valid_until_ms, c.now_ms + options_.ack_valid_ms) / 1000;
        c.ack_url = options_.public_url + std::string(wire::kAckPath) +
                    MakeAckToken(store_.AckKey(), item.id, expires);
        c.unsubscribe_url = options_.public_url + std::string(wire::kUnsubscribePath) +
                            MakeAckToken(store_.AckKey() + ":unsubscribe", item.id, expires);
    }
    return c;
}

void Dispatcher::Impl::Send(OutboxItem item, bool first) {
    ++in_flight_;
    if (item.kind == kKindAlert) version_created_[item.id] = item.created_at_ms;
    switch (item.channel) {
        case Channel::kMqtt:
            return SendMqtt(std::move(item));
        case Channel::kEmail:
            if (!maildir_.empty()) return WriteMaildir(item);
            return SendSmtp(std::move(item), first);
        case Channel::kWebhook:
            return SendWebhook(std::move(item));
        case Channel::kNotifySms:
        case Channel::kNotifyEmail:
            return SendNotify(std::move(item));
    }
}

}  // namespace ldis::engine
