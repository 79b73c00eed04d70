// The webhook channel: Teams, Slack (from templates/chat/) or the JSON document, signed
// with the contact's secret.
#include "../impl.hpp"

namespace ldis::engine {

void Dispatcher::Impl::SendWebhook(OutboxItem item) {
    const Partner* p = options_.partners ? options_.partners->Find(item.partner) : nullptr;
    const Contact* c = p ? p->FindContact(item.contact) : nullptr;
    if (c == nullptr) {
        return Record(
            {item.id, DeliveryOutcome::Kind::kFailed,
             "contact " + item.partner + "/" + item.contact + " is no longer in partners.toml",
             -1});
    }
    const MessageContext context = ContextFor(item);
    auto t = NewTransfer(std::move(item), Protocol::kWebhook);
    t->format = c->format;
    {
        StageTimer render(Stage::kRender);
        t->upload = WebhookBody(options_.templates, c->format, t->item, context);
    }
    const std::int64_t now_s = NowMs() / 1000;
    std::vector<std::string> headers = {
        "Idempotency-Key: " + IdempotencyKey(t->item),
        "X-LDIS-Alert: " + t->item.reference,
        "X-LDIS-Timestamp: " + std::to_string(now_s),
    };
    if (!c->secret.empty())
        headers.push_back("X-LDIS-Signature: " + WebhookSignature(c->secret, now_s, t->upload));
    Post(std::move(t), c->address, headers);
}

}  // namespace ldis::engine
