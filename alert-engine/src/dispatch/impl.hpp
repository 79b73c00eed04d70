#pragma once
// Dispatcher::Impl (private to src/dispatch/): the scheduler (dispatcher.cpp: claims, the
// due timer, escalation, outcomes recorded in batches), the senders (senders.cpp: one per
// channel, rendering each message), and the curl-on-Asio reactor (curl_reactor.cpp: one
// curl multi handle driven by the io_context). What an answer means is channels.cpp's.

#include "ldis/engine/dispatcher.hpp"
#include "ldis/engine/stages.hpp"
#include "ldis/engine/text.hpp"

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

// How many deliveries the writer claims for the dispatcher right after the commit that
// queued them (see Dispatcher::Impl::Start).
inline constexpr std::size_t kClaimAtCommit = 8;
namespace dispatch_detail {

// libcurl's global state, set up once for the process.
struct CurlGlobal {
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~CurlGlobal() { curl_global_cleanup(); }
};

}  // namespace dispatch_detail

using namespace dispatch_detail;  // NOLINT(google-build-using-namespace): private

class Dispatcher::Impl {
public:
    Impl(net::io_context& io, Outbox& store, DispatcherOptions options);

    ~Impl();

    void Start();

    void Wake();

    void Stop(std::function<void()> done);

    void SetPartners(std::shared_ptr<const Partners> partners);

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
        // An email launched while the commit that claimed it syncs (Hold): curl opens the
        // transaction (MAIL FROM, RCPT TO, DATA) but ReadUpload gives it no byte of the
        // message until Settle says the commit is durable.
        bool gated = false;
        bool paused = false;                 // ReadUpload paused it, waiting for the gate
        std::optional<CURLcode> done;        // curl finished it before the gate opened
        curl_socket_t fd = CURL_SOCKET_BAD;  // its connection, as curl last reported it
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

    static int OnSocket(CURL*, curl_socket_t fd, int what, void* userp, void*);

    void Arm(const std::shared_ptr<Watch>& watch, curl_socket_t fd);

    // curl's timer: never act from inside this callback, even for a timeout of 0.
    // curl moves its deadline on with almost every step of every transfer; re-arming the
    // Asio timer each time costs a timerfd_settime() system call (8% of the io thread in a
    // 5,000-email fan-out), so a timer already due earlier is left alone and re-armed for
    // the latest deadline when it fires.
    static int OnTimer(CURLM*, long timeout_ms, void* userp);

    void ArmCurlTimer(std::chrono::steady_clock::time_point at);

    void Action(curl_socket_t fd, int events);

    static void Release(Transfer& t);

    // How many more deliveries may be in flight.
    std::size_t Room() const;

    // Takes what is due from the outbox, in batches, while there is room.
    void Pump();

    // Deliveries claimed, by a pump (`by_pump`) or by the writer at the commit that queued
    // them (`committed`, when it ended): each is sent; a full claim, or a commit meanwhile,
    // claims again.
    void OnClaimed(Result<std::vector<OutboxItem>> claimed, std::size_t asked, bool by_pump,
                   std::optional<std::chrono::steady_clock::time_point> committed);

    // After `got` of `asked` were sent: a full claim at the commit claims the rest a
    // millisecond later; a full pump's claim, or a commit meanwhile, claims again now.
    void ClaimAgain(std::size_t got, std::size_t asked, bool by_pump);

    // Deliveries the writer claimed inside a commit not yet durable: emails are rendered
    // and their transfers set up now, and nothing is sent until Settle(true); Settle(false)
    // (the commit rolled back, the claim with it) drops them.
    void Hold(Result<std::vector<OutboxItem>> claimed, std::size_t asked);
    void Settle(bool committed, std::chrono::steady_clock::time_point at);

    void ArmDue(std::int64_t at_ms);

    void ScheduleEscalation();

    MessageContext ContextFor(const OutboxItem& item) const;
    void PutPhotos(EmailMessage& m);  // channels/email.cpp; on the reactor thread
    std::vector<std::pair<std::string, std::shared_ptr<const std::string>>> photo_cache_;

    // `first`: one of a version's first deliveries, claimed at the commit that made it.
    void Send(OutboxItem item, bool first = false);

    void SendMqtt(OutboxItem item);

    void WriteMaildir(const OutboxItem& item);

    static std::size_t ReadUpload(char* buffer, std::size_t size, std::size_t n, void* userp);

    static std::size_t WriteResponse(char* data, std::size_t size, std::size_t n, void* userp);

    static std::size_t ReadHeader(char* data, std::size_t size, std::size_t n, void* userp);

    std::unique_ptr<Transfer> NewTransfer(OutboxItem item, Protocol protocol);

    void Launch(std::unique_ptr<Transfer> t);

    // Hands an email to curl gated; gives it back, ungated, when curl will not take it.
    std::unique_ptr<Transfer> LaunchGated(std::unique_ptr<Transfer> t);

    // Opens the gate of every email a claim launched (the commit is durable): each paused
    // one gets its message, each that curl already finished is finished here.
    void OpenGates(const std::vector<CURL*>& gated);

    // Takes a transfer from curl before it is done, without letting curl end an email's
    // message (see curl_reactor.cpp).
    void Abandon(Transfer& t);

    // Takes back every email a rolled-back claim launched, before any of its message left:
    // curl closes the connection mid-transaction and the server discards it.
    void AbortGated(const std::vector<CURL*>& gated);

    // libcurl keeps transfers beyond CURLMOPT_MAX_HOST_CONNECTIONS in a pending list that it
    // walks again and again: with 256 emails handed over at once, a 10,000-email fan-out ran
    // at 3,600/s; with two per connection it runs at ~4,800/s. The rest wait here, claimed
    // (rows `sending`, so sent again after a crash), and are rendered only when they go. A
    // version's first emails (`first`) wait ahead of what earlier fan-outs left waiting.
    void SendSmtp(OutboxItem item, bool first);

    void LaunchWaitingSmtp();

    void LaunchSmtp(OutboxItem item);

    // The message rendered and the transfer set up, not yet handed to libcurl.
    std::unique_ptr<Transfer> PrepareSmtp(OutboxItem item);

    void Post(std::unique_ptr<Transfer> t, const std::string& url,
              const std::vector<std::string>& headers);

    void SendWebhook(OutboxItem item);

    void SendNotify(OutboxItem item);

    void Finished(Transfer& t, CURLcode result);

    void Record(DeliveryOutcome outcome);

    void Flush();

    net::io_context& io_;
    // When a commit first queued deliveries not yet claimed (steady clock, ns; 0: none).
    std::atomic<std::int64_t> woken_at_ns_{0};
    Outbox& store_;
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
    std::atomic<std::size_t> in_flight_{0};  // written on the io thread; read by the writer
    std::deque<OutboxItem> smtp_waiting_;    // claimed emails waiting for a connection
    std::size_t smtp_firsts_ = 0;            // how many of them, at its front, are firsts
    std::size_t smtp_active_ = 0;            // emails handed to libcurl
    bool claiming_ = false;
    bool wake_pending_ = false;
    struct Held {
        bool holding = false;
        std::size_t asked = 0;
        std::vector<CURL*> gated;                          // emails launched, gated
        std::vector<std::unique_ptr<Transfer>> transfers;  // emails ready to go
        std::vector<OutboxItem> items;                     // the rest, sent as claimed
    };
    Held held_;  // a claim at a commit not yet durable
    bool flushing_ = false;
    bool flush_armed_ = false;
    std::atomic<bool> stopping_{false};  // read by the writer thread too (the claim at commit)
    std::function<void()> on_flushed_;
    DispatchCounters counters_;
};

}  // namespace ldis::engine
