// The GOV.UK Notify channel: SMS and email through the Notify API, with its JWT.
#include "../impl.hpp"

namespace ldis::engine {

void Dispatcher::Impl::SendNotify(OutboxItem item) {
    if (!notify_key_) {
        return Record({item.id, DeliveryOutcome::Kind::kFailed,
                       "GOV.UK Notify is not configured: set notify.api_key_file or "
                       "LDIS_NOTIFY_API_KEY",
                       -1});
    }
    const bool sms = item.channel == Channel::kNotifySms;
    const std::string& template_id =
        sms ? options_.notify_sms_template : options_.notify_email_template;
    const MessageContext context = ContextFor(item);
    auto t = NewTransfer(std::move(item), Protocol::kNotify);
    t->upload = NotifyBody(t->item, template_id, context, IdempotencyKey(t->item));
    // A fresh token for every request: Notify refuses one older than 30 seconds.
    const std::string jwt = NotifyJwt(*notify_key_, NowMs() / 1000);
    Post(std::move(t),
         options_.notify_base_url + (sms ? "/v2/notifications/sms" : "/v2/notifications/email"),
         {"Authorization: Bearer " + jwt});
}

}  // namespace ldis::engine
