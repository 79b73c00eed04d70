// One sender per channel: email (SMTP or a maildir), webhooks (Teams, Slack, JSON), GOV.UK
// Notify, MQTT; each renders its message and hands it to the reactor or the broker.
#include "impl.hpp"

namespace ldis::engine {

MessageContext Dispatcher::Impl::ContextFor(const OutboxItem& item) const {
    MessageContext c;
    c.public_url = options_.public_url;
    c.from = options_.from;
    c.now_ms = NowMs();
    if (item.kind == kKindAlert || item.kind == kKindEscalation) {
        const std::int64_t expires =
            std::max(item.valid_until_ms, c.now_ms + options_.ack_valid_ms) / 1000;
        c.ack_url = options_.public_url + std::string(wire::kAckPath) +
                    MakeAckToken(store_.AckKey(), item.id, expires);
        c.unsubscribe_url = options_.public_url + std::string(wire::kUnsubscribePath) +
                            MakeAckToken(store_.AckKey() + ":unsubscribe", item.id, expires);
    }
    return c;
}

void Dispatcher::Impl::Send(OutboxItem item) {
    ++in_flight_;
    if (item.kind == kKindAlert) version_created_[item.id] = item.created_at_ms;
    switch (item.channel) {
        case Channel::kMqtt:
            return SendMqtt(std::move(item));
        case Channel::kEmail:
            if (!maildir_.empty()) return WriteMaildir(item);
            return SendSmtp(std::move(item));
        case Channel::kWebhook:
            return SendWebhook(std::move(item));
        case Channel::kNotifySms:
        case Channel::kNotifyEmail:
            return SendNotify(std::move(item));
    }
}

void Dispatcher::Impl::SendMqtt(OutboxItem item) {
    if (!options_.mqtt_publish) {
        return Record({item.id, DeliveryOutcome::Kind::kRetry, "no MQTT connection", -1});
    }
    const std::int64_t id = item.id;
    // A publish the broker never answers is tried again.
    auto timer = std::make_shared<net::steady_timer>(io_, options_.timeout * 2);
    mqtt_pending_[id] = timer;
    const std::string doc = AlertDocument(item, options_.public_url);
    // Paho may answer after this dispatcher is gone (at shutdown it fails what is
    // pending): the callback holds only a weak handle and the io_context.
    std::weak_ptr<Impl*> weak = self_;
    net::io_context* io = &io_;
    options_.mqtt_publish(item.address, doc, [weak, io, id](bool ok, std::string error) {
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
            self->Record({id,
                          ok ? DeliveryOutcome::Kind::kDelivered : DeliveryOutcome::Kind::kRetry,
                          ok ? "" : "MQTT: " + error, -1});
        });
    });
    timer->async_wait([this, id](const boost::system::error_code& ec) {
        if (ec || mqtt_pending_.erase(id) == 0) return;
        Record({id, DeliveryOutcome::Kind::kRetry, "MQTT: no acknowledgement from the broker", -1});
    });
}

void Dispatcher::Impl::WriteMaildir(const OutboxItem& item) {
    const EmailMessage m = RenderEmail(options_.templates, item, ContextFor(item));
    const std::string mime = m.ToMime(options_.from, item.address, NowMs());
    std::string name = IdempotencyKey(item);
    const fs::path tmp = fs::path(maildir_) / "tmp" / (name + ".eml");
    const fs::path done = fs::path(maildir_) / "new" / (name + ".eml");
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << mime;
        out.flush();
        if (!out) {
            return Record(
                {item.id, DeliveryOutcome::Kind::kRetry, "cannot write " + tmp.string(), -1});
        }
    }
    std::error_code ec;
    fs::rename(tmp, done, ec);
    if (ec) return Record({item.id, DeliveryOutcome::Kind::kRetry, ec.message(), -1});
    Record({item.id, DeliveryOutcome::Kind::kDelivered, "", -1});
}

// libcurl keeps transfers beyond CURLMOPT_MAX_HOST_CONNECTIONS in a pending list that it
// walks again and again: with 256 emails handed over at once, a 10,000-email fan-out ran
// at 3,600/s; with two per connection it runs at ~4,800/s. The rest wait here, claimed
// (rows `sending`, so sent again after a crash), and are rendered only when they go.
void Dispatcher::Impl::SendSmtp(OutboxItem item) {
    smtp_waiting_.push_back(std::move(item));
    LaunchWaitingSmtp();
}

void Dispatcher::Impl::LaunchWaitingSmtp() {
    const std::size_t limit = static_cast<std::size_t>(options_.smtp_connections) * 2;
    while (!stopping_ && !smtp_waiting_.empty() && smtp_active_ < limit) {
        OutboxItem item = std::move(smtp_waiting_.front());
        smtp_waiting_.pop_front();
        ++smtp_active_;
        LaunchSmtp(std::move(item));
    }
}

void Dispatcher::Impl::LaunchSmtp(OutboxItem item) {
    const auto rendering = std::chrono::steady_clock::now();
    const EmailMessage m = RenderEmail(options_.templates, item, ContextFor(item));
    auto t = NewTransfer(std::move(item), Protocol::kSmtp);
    t->upload = m.ToMime(options_.from, t->item.address, NowMs());
    Observe(Stage::kRender, std::chrono::steady_clock::now() - rendering);
    CURL* e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, options_.smtp_url.c_str());
    const std::string from = "<" + EmailAddressOf(options_.from) + ">";
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from.c_str());
    t->recipients = curl_slist_append(nullptr, ("<" + t->item.address + ">").c_str());
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->recipients);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &Impl::ReadUpload);
    curl_easy_setopt(e, CURLOPT_READDATA, t.get());
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t->upload.size()));
    if (options_.smtp_starttls)
        curl_easy_setopt(e, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    if (!options_.smtp_username.empty()) {
        curl_easy_setopt(e, CURLOPT_USERNAME, options_.smtp_username.c_str());
        curl_easy_setopt(e, CURLOPT_PASSWORD, options_.smtp_password.c_str());
    }
    if (!options_.smtp_ca_file.empty())
        curl_easy_setopt(e, CURLOPT_CAINFO, options_.smtp_ca_file.c_str());
    Launch(std::move(t));
}

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
