// The curl-on-Asio reactor: one curl multi handle, its sockets watched by the io_context
// (after curl's multi-uv.c), its timer a steady_timer; transfers set up and finished here.
#include "impl.hpp"

#include <sys/socket.h>

namespace ldis::engine {

int Dispatcher::Impl::OnSocket(CURL* easy, curl_socket_t fd, int what, void* userp, void*) {
    auto* self = static_cast<Impl*>(userp);
    // The connection a transfer is on (CURLINFO_ACTIVESOCKET is only for CONNECT_ONLY).
    if (what != CURL_POLL_REMOVE)
        if (auto t = self->transfers_.find(easy); t != self->transfers_.end()) t->second->fd = fd;
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

void Dispatcher::Impl::Arm(const std::shared_ptr<Watch>& watch, curl_socket_t fd) {
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
int Dispatcher::Impl::OnTimer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Impl*>(userp);
    if (timeout_ms < 0) {
        self->curl_deadline_.reset();
        self->curl_timer_armed_ = false;
        self->curl_timer_.cancel();
        return 0;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    self->curl_deadline_ = deadline;
    if (self->curl_timer_armed_ && self->curl_timer_.expiry() <= deadline) return 0;
    self->ArmCurlTimer(deadline);
    return 0;
}

void Dispatcher::Impl::ArmCurlTimer(std::chrono::steady_clock::time_point at) {
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

void Dispatcher::Impl::Action(curl_socket_t fd, int events) {
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
        if (it->second->gated) {
            // Refused before its message (a recipient refused, a timeout): what that means
            // is said once the commit is known to be durable (OpenGates); a rollback drops it.
            it->second->done = result;
            continue;
        }
        std::unique_ptr<Transfer> t = std::move(it->second);
        transfers_.erase(it);
        Finished(*t, result);
        Release(*t);
    }
}

void Dispatcher::Impl::Release(Transfer& t) {
    if (t.headers) curl_slist_free_all(t.headers);
    if (t.recipients) curl_slist_free_all(t.recipients);
    if (t.easy) curl_easy_cleanup(t.easy);
    t.headers = t.recipients = nullptr;
    t.easy = nullptr;
}

std::size_t Dispatcher::Impl::ReadUpload(char* buffer, std::size_t size, std::size_t n,
                                         void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    if (t->gated) {
        t->paused = true;
        return CURL_READFUNC_PAUSE;
    }
    const std::size_t room = size * n;
    const std::size_t take = std::min(room, t->upload.size() - t->sent);
    std::memcpy(buffer, t->upload.data() + t->sent, take);
    t->sent += take;
    return take;
}

std::size_t Dispatcher::Impl::WriteResponse(char* data, std::size_t size, std::size_t n,
                                            void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    if (t->response.size() < 65536)
        t->response.append(data, std::min(size * n, 65536 - t->response.size()));
    return size * n;
}

std::size_t Dispatcher::Impl::ReadHeader(char* data, std::size_t size, std::size_t n, void* userp) {
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

std::unique_ptr<Dispatcher::Impl::Transfer> Dispatcher::Impl::NewTransfer(OutboxItem item,
                                                                          Protocol protocol) {
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

void Dispatcher::Impl::Launch(std::unique_ptr<Transfer> t) {
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

std::unique_ptr<Dispatcher::Impl::Transfer> Dispatcher::Impl::LaunchGated(
    std::unique_ptr<Transfer> t) {
    CURL* e = t->easy;
    t->gated = true;
    transfers_[e] = std::move(t);
    if (curl_multi_add_handle(multi_, e) == CURLM_OK) return nullptr;
    t = std::move(transfers_.extract(e).mapped());
    t->gated = false;  // launched, ungated, when the commit is durable
    return t;
}

void Dispatcher::Impl::OpenGates(const std::vector<CURL*>& gated) {
    bool resumed = false;
    for (CURL* e : gated) {
        auto it = transfers_.find(e);
        if (it == transfers_.end()) continue;
        Transfer& t = *it->second;
        t.gated = false;
        if (t.item.kind == kKindAlert) version_created_[t.item.id] = t.item.created_at_ms;
        if (t.done) {
            std::unique_ptr<Transfer> finished = std::move(it->second);
            transfers_.erase(it);
            Finished(*finished, *finished->done);
            Release(*finished);
        } else if (t.paused) {
            t.paused = false;
            curl_easy_pause(e, CURLPAUSE_CONT);
            resumed = true;
        }
    }
    // curl_easy_pause only asks for a run (a timeout of 0): run it now, not a loop later.
    if (resumed) Action(CURL_SOCKET_TIMEOUT, 0);
}

void Dispatcher::Impl::AbortGated(const std::vector<CURL*>& gated) {
    for (CURL* e : gated) {
        auto it = transfers_.find(e);
        if (it == transfers_.end()) continue;
        if (!it->second->done) Abandon(*it->second);
        Release(*it->second);
        transfers_.erase(it);
        if (smtp_active_ > 0) --smtp_active_;
    }
}

// libcurl, when an SMTP transfer is removed before it is done, ends the message it was
// sending with CRLF.CRLF and waits for the server's answer (smtp_done), so the server
// accepts what it has: an empty message for one still waiting for its gate, a truncated one
// mid-message. Shutting the socket first makes that write fail: the server sees the
// connection drop mid-transaction and discards it.
void Dispatcher::Impl::Abandon(Transfer& t) {
    if (t.protocol == Protocol::kSmtp && t.fd != CURL_SOCKET_BAD) ::shutdown(t.fd, SHUT_RDWR);
    curl_multi_remove_handle(multi_, t.easy);
}

void Dispatcher::Impl::Post(std::unique_ptr<Transfer> t, const std::string& url,
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

void Dispatcher::Impl::Finished(Transfer& t, CURLcode result) {
    long code = 0;
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
    if (t.protocol == Protocol::kSmtp || t.protocol == Protocol::kWebhook) {
        curl_off_t took_us = 0;
        curl_easy_getinfo(t.easy, CURLINFO_TOTAL_TIME_T, &took_us);
        Observe(t.protocol == Protocol::kSmtp ? Stage::kSmtp : Stage::kWebhook,
                std::chrono::microseconds(took_us));
    }
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

}  // namespace ldis::engine
