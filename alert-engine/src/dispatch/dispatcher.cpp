#include "ldis/engine/dispatcher.hpp"

#include "ldis/engine/channels.hpp"
#include "ldis/engine/wire.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

namespace net = boost::asio;
namespace fs = std::filesystem;

namespace ldis::engine {
namespace {

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// libcurl's global state, set up once for the process.
struct CurlGlobal {
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~CurlGlobal() { curl_global_cleanup(); }
};

}  // namespace

void DispatchCounters::ObserveLatency(std::int64_t ms) {
    const double seconds = static_cast<double>(std::max<std::int64_t>(ms, 0)) / 1000.0;
    for (std::size_t i = 0; i < std::size(kLatencyBounds); ++i) {
        if (seconds <= kLatencyBounds[i]) {
            latency_buckets[i].fetch_add(1, std::memory_order_relaxed);
            break;
        }
        if (i + 1 == std::size(kLatencyBounds))
            latency_buckets[i + 1].fetch_add(1, std::memory_order_relaxed);
    }
    latency_count.fetch_add(1, std::memory_order_relaxed);
    latency_sum_ms.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(ms, 0)),
                             std::memory_order_relaxed);
}

class Dispatcher::Impl {
public:
    Impl(net::io_context& io, ReportStore& store, DispatcherOptions options)
        : io_(io),
          store_(store),
          options_(std::move(options)),
          curl_timer_(io),
          due_timer_(io),
          flush_timer_(io),
          escalation_timer_(io) {
        static CurlGlobal global;
        multi_ = curl_multi_init();
        curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Impl::OnSocket);
        curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Impl::OnTimer);
        curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
        // SMTP cannot multiplex: a few connections per server, each carrying message after
        // message, and the rest of the transfers wait inside curl for one to be free.
        curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, options_.smtp_connections);
        curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, options_.smtp_connections * 8);
        if (options_.smtp_url.starts_with("maildir:")) {
            maildir_ = options_.smtp_url.substr(8);
            std::error_code ec;
            fs::create_directories(fs::path(maildir_) / "tmp", ec);
            fs::create_directories(fs::path(maildir_) / "new", ec);
        }
        if (!options_.notify_api_key.empty()) {
            auto key = SplitNotifyKey(options_.notify_api_key);
            if (key.ok())
                notify_key_ = key.value();
            else
                spdlog::error("notify: {}", key.error().message);
        }
    }

    ~Impl() {
        for (auto& [easy, t] : transfers_) {
            curl_multi_remove_handle(multi_, easy);
            Release(*t);
        }
        transfers_.clear();
        curl_multi_cleanup(multi_);
        for (auto& [fd, w] : watches_) {
            w->closed = true;
            w->descriptor.release();
        }
    }

    void Start() {
        const auto recovered = store_.RecoverInFlight(NowMs());
        if (recovered.ok() && recovered.value() > 0)
            spdlog::info("dispatch: {} deliveries in flight at the last stop will be sent again",
                         recovered.value());
        store_.SetOutboxListener([this] { Wake(); });
        net::post(io_, [this] { Pump(); });
        ScheduleEscalation();
    }

    void Wake() {
        net::post(io_, [this] {
            wake_pending_ = true;
            Pump();
        });
    }

    void Stop(std::function<void()> done) {
        stopping_ = true;
        store_.SetOutboxListener({});
        due_timer_.cancel();
        escalation_timer_.cancel();
        curl_timer_.cancel();
        flush_timer_.cancel();
        for (auto& [easy, t] : transfers_) {
            curl_multi_remove_handle(multi_, easy);
            Release(*t);
        }
        transfers_.clear();
        // Nothing may keep the io_context running: idle connections' waits, MQTT timers.
        for (auto& [fd, watch] : watches_) {
            boost::system::error_code ec;
            watch->descriptor.cancel(ec);
        }
        for (auto& [id, timer] : mqtt_pending_) timer->cancel();
        mqtt_pending_.clear();
        version_created_.clear();
        in_flight_ = 0;
        on_flushed_ = std::move(done);
        Flush();
    }

    void SetPartners(std::shared_ptr<const Partners> partners) {
        options_.partners = std::move(partners);
    }

    const DispatchCounters& counters() const { return counters_; }
    std::size_t in_flight() const { return in_flight_; }

private:
    enum class Protocol { kSmtp, kWebhook, kNotify };

    // One attempt in flight on curl.
    struct Transfer {
        OutboxItem item;
        Protocol protocol = Protocol::kSmtp;
        CURL* easy = nullptr;
        curl_slist* headers = nullptr;
        curl_slist* recipients = nullptr;
        std::string upload;  // the message (SMTP) or the request body (HTTP)
        std::size_t sent = 0;
        std::string response;
        std::string retry_after;
        std::string format;  // webhook format
        char error[CURL_ERROR_SIZE] = {0};
    };

    // A socket curl asked us to watch. Handlers hold it by shared_ptr, so it outlives
    // curl's CURL_POLL_REMOVE until the cancelled waits have run.
    struct Watch {
        Watch(net::io_context& io, curl_socket_t fd) : descriptor(io, fd) {}
        net::posix::stream_descriptor descriptor;
        int what = 0;
        bool reading = false;
        bool writing = false;
        bool closed = false;
    };

    static int OnSocket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
        auto* self = static_cast<Impl*>(userp);
        if (what == CURL_POLL_REMOVE) {
            if (auto it = self->watches_.find(fd); it != self->watches_.end()) {
                auto watch = it->second;
                watch->closed = true;
                boost::system::error_code ec;
                watch->descriptor.cancel(ec);
                // Give the descriptor back: curl closes the socket itself.
                watch->descriptor.release();
                self->watches_.erase(it);
            }
            return 0;
        }
        auto& watch = self->watches_[fd];
        if (!watch) watch = std::make_shared<Watch>(self->io_, fd);
        watch->what = what;
        self->Arm(watch, fd);
        return 0;
    }

    void Arm(const std::shared_ptr<Watch>& watch, curl_socket_t fd) {
        if ((watch->what & CURL_POLL_IN) && !watch->reading) {
            watch->reading = true;
            watch->descriptor.async_wait(net::posix::stream_descriptor::wait_read,
                                         [this, watch, fd](const boost::system::error_code& ec) {
                                             watch->reading = false;
                                             if (ec || watch->closed) return;
                                             Action(fd, CURL_CSELECT_IN);
                                             if (!watch->closed) Arm(watch, fd);
                                         });
        }
        if ((watch->what & CURL_POLL_OUT) && !watch->writing) {
            watch->writing = true;
            watch->descriptor.async_wait(net::posix::stream_descriptor::wait_write,
                                         [this, watch, fd](const boost::system::error_code& ec) {
                                             watch->writing = false;
                                             if (ec || watch->closed) return;
                                             Action(fd, CURL_CSELECT_OUT);
                                             if (!watch->closed) Arm(watch, fd);
                                         });
        }
    }

    // curl's timer: never act from inside this callback, even for a timeout of 0.
    // curl moves its deadline on with almost every step of every transfer; re-arming the
    // Asio timer each time costs a timerfd_settime() system call (8% of the io thread in a
    // 5,000-email fan-out), so a timer already due earlier is left alone and re-armed for
    // the latest deadline when it fires.
    static int OnTimer(CURLM*, long timeout_ms, void* userp) {
        auto* self = static_cast<Impl*>(userp);
        if (timeout_ms < 0) {
            self->curl_deadline_.reset();
            self->curl_timer_armed_ = false;
            self->curl_timer_.cancel();
            return 0;
        }
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        self->curl_deadline_ = deadline;
        if (self->curl_timer_armed_ && self->curl_timer_.expiry() <= deadline) return 0;
        self->ArmCurlTimer(deadline);
        return 0;
    }

    void ArmCurlTimer(std::chrono::steady_clock::time_point at) {
        curl_timer_armed_ = true;
        curl_timer_.expires_at(at);
        curl_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;  // cancelled or re-armed: whoever did it owns the flag
            curl_timer_armed_ = false;
            if (!curl_deadline_) return;
            if (std::chrono::steady_clock::now() < *curl_deadline_) {
                ArmCurlTimer(*curl_deadline_);
                return;
            }
            curl_deadline_.reset();
            Action(CURL_SOCKET_TIMEOUT, 0);
        });
    }

    void Action(curl_socket_t fd, int events) {
        int running = 0;
        curl_multi_socket_action(multi_, fd, events, &running);
        int left = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL* easy = msg->easy_handle;
            const CURLcode result = msg->data.result;
            curl_multi_remove_handle(multi_, easy);
            auto it = transfers_.find(easy);
            if (it == transfers_.end()) continue;
            std::unique_ptr<Transfer> t = std::move(it->second);
            transfers_.erase(it);
            Finished(*t, result);
            Release(*t);
        }
    }

    static void Release(Transfer& t) {
        if (t.headers) curl_slist_free_all(t.headers);
        if (t.recipients) curl_slist_free_all(t.recipients);
        if (t.easy) curl_easy_cleanup(t.easy);
        t.headers = t.recipients = nullptr;
        t.easy = nullptr;
    }

    // Takes what is due from the outbox, in batches, while there is room.
    void Pump() {
        if (stopping_ || claiming_) return;
        const std::size_t room =
            options_.max_in_flight - std::min(in_flight_, options_.max_in_flight);
        // Refill in batches: one claim (one commit) for many deliveries.
        if (room == 0 || (in_flight_ > 0 && room < options_.max_in_flight / 4)) return;
        claiming_ = true;
        wake_pending_ = false;
        store_.ClaimDue(NowMs(), room, [this, room](Result<std::vector<OutboxItem>> claimed) {
            net::post(io_, [this, room, claimed = std::move(claimed)]() mutable {
                OnClaimed(std::move(claimed), room);
            });
        });
    }

    void OnClaimed(Result<std::vector<OutboxItem>> claimed, std::size_t asked) {
        claiming_ = false;
        if (stopping_) return;
        if (!claimed.ok()) {
            spdlog::error("dispatch: cannot claim deliveries: {}", claimed.error().message);
            ArmDue(NowMs() + 1000);
            return;
        }
        auto& items = claimed.value();
        for (auto& item : items) Send(std::move(item));
        if (items.size() == asked || wake_pending_) {
            Pump();
        } else {
            const auto next = store_.NextDueMs();
            if (next) ArmDue(*next);
        }
    }

    void ArmDue(std::int64_t at_ms) {
        const auto wait = std::max<std::int64_t>(0, at_ms - NowMs());
        due_timer_.expires_after(std::chrono::milliseconds(wait));
        due_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) Pump();
        });
    }

    void ScheduleEscalation() {
        escalation_timer_.expires_after(options_.escalation_check);
        escalation_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || stopping_) return;
            store_.EscalateDue(NowMs(), [](Result<int> queued) {
                if (!queued.ok())
                    spdlog::error("dispatch: escalation: {}", queued.error().message);
                else if (queued.value() > 0)
                    spdlog::warn("dispatch: {} unacknowledged alert(s) escalated", queued.value());
            });
            ScheduleEscalation();
        });
    }

    MessageContext ContextFor(const OutboxItem& item) const {
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

    void Send(OutboxItem item) {
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

    void SendMqtt(OutboxItem item) {
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
                self->Record(
                    {id, ok ? DeliveryOutcome::Kind::kDelivered : DeliveryOutcome::Kind::kRetry,
                     ok ? "" : "MQTT: " + error, -1});
            });
        });
        timer->async_wait([this, id](const boost::system::error_code& ec) {
            if (ec || mqtt_pending_.erase(id) == 0) return;
            Record({id, DeliveryOutcome::Kind::kRetry, "MQTT: no acknowledgement from the broker",
                    -1});
        });
    }

    void WriteMaildir(const OutboxItem& item) {
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

    static std::size_t ReadUpload(char* buffer, std::size_t size, std::size_t n, void* userp) {
        auto* t = static_cast<Transfer*>(userp);
        const std::size_t room = size * n;
        const std::size_t take = std::min(room, t->upload.size() - t->sent);
        std::memcpy(buffer, t->upload.data() + t->sent, take);
        t->sent += take;
        return take;
    }

    static std::size_t WriteResponse(char* data, std::size_t size, std::size_t n, void* userp) {
        auto* t = static_cast<Transfer*>(userp);
        if (t->response.size() < 65536)
            t->response.append(data, std::min(size * n, 65536 - t->response.size()));
        return size * n;
    }

    static std::size_t ReadHeader(char* data, std::size_t size, std::size_t n, void* userp) {
        auto* t = static_cast<Transfer*>(userp);
        const std::string_view line(data, size * n);
        constexpr std::string_view kName = "retry-after:";
        if (line.size() > kName.size()) {
            std::string head(line.substr(0, kName.size()));
            for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (head == kName) t->retry_after = std::string(line.substr(kName.size()));
        }
        return size * n;
    }

    std::unique_ptr<Transfer> NewTransfer(OutboxItem item, Protocol protocol) {
        auto t = std::make_unique<Transfer>();
        t->item = std::move(item);
        t->protocol = protocol;
        t->easy = curl_easy_init();
        CURL* e = t->easy;
        curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(std::min<long>(5000, options_.timeout.count())));
        return t;
    }

    void Launch(std::unique_ptr<Transfer> t) {
        CURL* e = t->easy;
        transfers_[e] = std::move(t);
        const CURLMcode rc = curl_multi_add_handle(multi_, e);
        if (rc != CURLM_OK) {
            auto node = transfers_.extract(e);
            if (node.mapped()->protocol == Protocol::kSmtp && smtp_active_ > 0) --smtp_active_;
            Record({node.mapped()->item.id, DeliveryOutcome::Kind::kRetry,
                    std::string("curl: ") + curl_multi_strerror(rc), -1});
            Release(*node.mapped());
        }
    }

    // libcurl keeps transfers beyond CURLMOPT_MAX_HOST_CONNECTIONS in a pending list that it
    // walks again and again: with 256 emails handed over at once, a 10,000-email fan-out ran
    // at 3,600/s; with two per connection it runs at ~4,800/s. The rest wait here, claimed
    // (rows `sending`, so sent again after a crash), and are rendered only when they go.
    void SendSmtp(OutboxItem item) {
        smtp_waiting_.push_back(std::move(item));
        LaunchWaitingSmtp();
    }

    void LaunchWaitingSmtp() {
        const std::size_t limit = static_cast<std::size_t>(options_.smtp_connections) * 2;
        while (!stopping_ && !smtp_waiting_.empty() && smtp_active_ < limit) {
            OutboxItem item = std::move(smtp_waiting_.front());
            smtp_waiting_.pop_front();
            ++smtp_active_;
            LaunchSmtp(std::move(item));
        }
    }

    void LaunchSmtp(OutboxItem item) {
        const EmailMessage m = RenderEmail(options_.templates, item, ContextFor(item));
        auto t = NewTransfer(std::move(item), Protocol::kSmtp);
        t->upload = m.ToMime(options_.from, t->item.address, NowMs());
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

    void Post(std::unique_ptr<Transfer> t, const std::string& url,
              const std::vector<std::string>& headers) {
        CURL* e = t->easy;
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->upload.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->upload.size()));
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::WriteResponse);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::ReadHeader);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
        t->headers = curl_slist_append(t->headers, "User-Agent: ldisd/0.1");
        t->headers = curl_slist_append(t->headers, "Expect:");
        for (const auto& h : headers) t->headers = curl_slist_append(t->headers, h.c_str());
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
        Launch(std::move(t));
    }

    void SendWebhook(OutboxItem item) {
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
        t->upload = WebhookBody(c->format, t->item, context);
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

    void SendNotify(OutboxItem item) {
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

    void Finished(Transfer& t, CURLcode result) {
        long code = 0;
        curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
        const std::int64_t id = t.item.id;
        const std::string curl_error =
            t.error[0] != '\0' ? std::string(t.error) : std::string(curl_easy_strerror(result));
        if (t.protocol == Protocol::kSmtp) {
            if (smtp_active_ > 0) --smtp_active_;
            if (!smtp_waiting_.empty()) net::post(io_, [this] { LaunchWaitingSmtp(); });
        }
        // What the answer means is the channel's to say (channels.hpp); here it is done.
        ChannelAnswer answer;
        answer.transport_ok = result == CURLE_OK;
        answer.transport_error = curl_error;
        answer.status = code;
        answer.body = std::move(t.response);
        answer.retry_after = std::move(t.retry_after);
        DeliveryOutcome outcome = t.protocol == Protocol::kSmtp ? ClassifySmtp(answer)
                                  : t.protocol == Protocol::kNotify
                                      ? ClassifyNotify(answer, NowMs())
                                      : ClassifyWebhook(t.format, answer, NowMs());
        outcome.id = id;
        Record(std::move(outcome));
    }

    void Record(DeliveryOutcome outcome) {
        if (in_flight_ > 0) --in_flight_;
        if (auto it = version_created_.find(outcome.id); it != version_created_.end()) {
            if (outcome.kind == DeliveryOutcome::Kind::kDelivered)
                counters_.ObserveLatency(NowMs() - it->second);
            version_created_.erase(it);
        }
        switch (outcome.kind) {
            case DeliveryOutcome::Kind::kDelivered:
                counters_.delivered.fetch_add(1, std::memory_order_relaxed);
                break;
            case DeliveryOutcome::Kind::kRetry:
                counters_.retried.fetch_add(1, std::memory_order_relaxed);
                spdlog::warn("delivery {} will be retried: {}", outcome.id, outcome.error);
                break;
            case DeliveryOutcome::Kind::kFailed:
                counters_.failed.fetch_add(1, std::memory_order_relaxed);
                spdlog::error("delivery {} failed: {}", outcome.id, outcome.error);
                break;
        }
        outcomes_.push_back(std::move(outcome));
        if (outcomes_.size() >= 128) {
            Flush();
        } else if (!flush_armed_) {
            flush_armed_ = true;
            flush_timer_.expires_after(std::chrono::milliseconds(2));
            flush_timer_.async_wait([this](const boost::system::error_code& ec) {
                flush_armed_ = false;
                if (!ec) Flush();
            });
        }
        Pump();
    }

    void Flush() {
        if (flushing_) return;
        if (outcomes_.empty()) {
            if (stopping_ && on_flushed_) std::exchange(on_flushed_, {})();
            return;
        }
        flushing_ = true;
        auto batch = std::make_shared<std::vector<DeliveryOutcome>>(std::move(outcomes_));
        outcomes_.clear();
        store_.Complete(*batch, NowMs(), [this, batch](Result<int> done) {
            net::post(io_, [this, batch, done = std::move(done)] {
                flushing_ = false;
                if (!done.ok()) {
                    // Not recorded: keep them, and try again shortly. If ldisd dies first,
                    // the rows are still "sending" and are sent again at the next start.
                    spdlog::error("dispatch: cannot record {} outcome(s): {}", batch->size(),
                                  done.error().message);
                    outcomes_.insert(outcomes_.begin(), batch->begin(), batch->end());
                    if (stopping_) {
                        if (on_flushed_) std::exchange(on_flushed_, {})();
                        return;
                    }
                    flush_timer_.expires_after(std::chrono::seconds(1));
                    flush_armed_ = true;
                    flush_timer_.async_wait([this](const boost::system::error_code& ec) {
                        flush_armed_ = false;
                        if (!ec) Flush();
                    });
                    return;
                }
                if (!outcomes_.empty() || stopping_) {
                    Flush();
                    return;
                }
                // Retries are due later: make sure the timer knows.
                if (!claiming_ && in_flight_ == 0) {
                    if (const auto next = store_.NextDueMs()) ArmDue(*next);
                }
            });
        });
    }

    net::io_context& io_;
    ReportStore& store_;
    DispatcherOptions options_;
    std::shared_ptr<Impl*> self_ = std::make_shared<Impl*>(this);  // see SendMqtt
    CURLM* multi_ = nullptr;
    net::steady_timer curl_timer_;
    std::optional<std::chrono::steady_clock::time_point> curl_deadline_;  // what curl asked for
    bool curl_timer_armed_ = false;
    net::steady_timer due_timer_;
    net::steady_timer flush_timer_;
    net::steady_timer escalation_timer_;
    std::unordered_map<curl_socket_t, std::shared_ptr<Watch>> watches_;
    std::unordered_map<CURL*, std::unique_ptr<Transfer>> transfers_;
    std::map<std::int64_t, std::shared_ptr<net::steady_timer>> mqtt_pending_;
    std::vector<DeliveryOutcome> outcomes_;
    std::unordered_map<std::int64_t, std::int64_t> version_created_;  // in flight: id -> ms
    std::string maildir_;
    std::optional<NotifyKey> notify_key_;
    std::size_t in_flight_ = 0;
    std::deque<OutboxItem> smtp_waiting_;  // claimed emails waiting for a connection
    std::size_t smtp_active_ = 0;          // emails handed to libcurl
    bool claiming_ = false;
    bool wake_pending_ = false;
    bool flushing_ = false;
    bool flush_armed_ = false;
    bool stopping_ = false;
    std::function<void()> on_flushed_;
    DispatchCounters counters_;
};

Dispatcher::Dispatcher(net::io_context& io, ReportStore& store, DispatcherOptions options)
    : impl_(std::make_unique<Impl>(io, store, std::move(options))) {}
Dispatcher::~Dispatcher() = default;
void Dispatcher::Start() {
    impl_->Start();
}
void Dispatcher::Wake() {
    impl_->Wake();
}
void Dispatcher::Stop(std::function<void()> done) {
    impl_->Stop(std::move(done));
}
void Dispatcher::SetPartners(std::shared_ptr<const Partners> partners) {
    impl_->SetPartners(std::move(partners));
}
const DispatchCounters& Dispatcher::counters() const {
    return impl_->counters();
}
std::size_t Dispatcher::in_flight() const {
    return impl_->in_flight();
}

}  // namespace ldis::engine
