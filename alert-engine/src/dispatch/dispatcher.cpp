// The scheduler: claims due deliveries from the outbox, arms the due timer, runs escalation,
// records outcomes in batches.
#include "impl.hpp"

namespace ldis::engine {

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

Dispatcher::Impl::Impl(net::io_context& io, Outbox& store, DispatcherOptions options)
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

Dispatcher::Impl::~Impl() {
    for (auto& [easy, t] : transfers_) {
        if (!t->done) Abandon(*t);
        Release(*t);
    }
    transfers_.clear();
    curl_multi_cleanup(multi_);
    for (auto& [fd, w] : watches_) {
        w->closed = true;
        w->descriptor.release();
    }
}

void Dispatcher::Impl::Start() {
    const auto recovered = store_.RecoverInFlight(NowMs());
    if (recovered.ok() && recovered.value() > 0)
        spdlog::info("dispatch: {} deliveries in flight at the last stop will be sent again",
                     recovered.value());
    store_.SetOutboxListener([this] { Wake(); });
    // The deliveries a commit queued are claimed by the store at that commit: the first
    // email of a red alert does not wait for a claim of its own. Only the first few, though:
    // claiming a red alert's 101 rows took the writer 0.84 ms before the first could start
    // (8 take 0.19), and the rest are claimed by the pump a millisecond later, when the
    // first messages are on the wire (bench/run --only latency: first email p50 3.5-3.7 ->
    // 2.9-3.0 ms). SQLite's writer claims them inside the commit's transaction and they are
    // held here, their SMTP transactions opened up to DATA, until it is durable (Hold, Settle).
    CommitClaim hooks;
    hooks.room = [this] {
        return stopping_.load() ? std::size_t{0} : std::min(Room(), kClaimAtCommit);
    };
    hooks.claimed = [this](Result<std::vector<OutboxItem>> claimed, std::size_t asked, bool held) {
        const auto committed = std::chrono::steady_clock::now();
        net::post(io_, [this, asked, held, committed, claimed = std::move(claimed)]() mutable {
            if (held) return Hold(std::move(claimed), asked);
            OnClaimed(std::move(claimed), asked, false, committed);
        });
    };
    // Posted after `claimed` by the same thread: the io thread sees Hold before Settle.
    hooks.settled = [this](bool committed) {
        const auto at = std::chrono::steady_clock::now();
        net::post(io_, [this, committed, at] { Settle(committed, at); });
    };
    store_.SetClaimAtCommit(std::move(hooks));
    net::post(io_, [this] { Pump(); });
    ScheduleEscalation();
}

void Dispatcher::Impl::Wake() {
    // The hand-off is timed from the first commit not yet claimed.
    std::int64_t none = 0;
    woken_at_ns_.compare_exchange_strong(
        none, std::chrono::steady_clock::now().time_since_epoch().count());
    net::post(io_, [this] {
        wake_pending_ = true;
        Pump();
    });
}

void Dispatcher::Impl::Stop(std::function<void()> done) {
    stopping_ = true;
    store_.SetOutboxListener({});
    store_.SetClaimAtCommit({});
    due_timer_.cancel();
    escalation_timer_.cancel();
    curl_timer_.cancel();
    flush_timer_.cancel();
    for (auto& [easy, t] : transfers_) {
        if (!t->done) Abandon(*t);
        Release(*t);
    }
    transfers_.clear();
    for (auto& t : held_.transfers) Release(*t);
    held_ = {};
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

void Dispatcher::Impl::SetPartners(std::shared_ptr<const Partners> partners) {
    options_.partners = std::move(partners);
}

// How many more deliveries may be in flight (read by the writer too: the claim at commit).
std::size_t Dispatcher::Impl::Room() const {
    return options_.max_in_flight - std::min(in_flight_.load(), options_.max_in_flight);
}

// Takes what is due from the outbox, in batches, while there is room.
void Dispatcher::Impl::Pump() {
    if (stopping_ || claiming_) return;
    const std::size_t room = Room();
    // Refill in batches: one claim (one commit) for many deliveries.
    if (room == 0 || (in_flight_ > 0 && room < options_.max_in_flight / 4)) return;
    claiming_ = true;
    wake_pending_ = false;
    store_.ClaimDue(NowMs(), room, [this, room](Result<std::vector<OutboxItem>> claimed) {
        net::post(io_, [this, room, claimed = std::move(claimed)]() mutable {
            OnClaimed(std::move(claimed), room, true, std::nullopt);
        });
    });
}

void Dispatcher::Impl::OnClaimed(Result<std::vector<OutboxItem>> claimed, std::size_t asked,
                                 bool by_pump,
                                 std::optional<std::chrono::steady_clock::time_point> committed) {
    if (by_pump) claiming_ = false;
    if (stopping_) return;
    if (!claimed.ok()) {
        spdlog::error("dispatch: cannot claim deliveries: {}", claimed.error().message);
        ArmDue(NowMs() + 1000);
        return;
    }
    auto& items = claimed.value();
    if (!items.empty()) {
        // The hand-off: from the commit that queued them (a claim at the commit), or from the
        // first commit not yet claimed (a pump's claim).
        if (!committed) {
            if (const std::int64_t woken = woken_at_ns_.exchange(0); woken != 0)
                committed = std::chrono::steady_clock::time_point(
                    std::chrono::steady_clock::duration(woken));
        }
        if (committed) Observe(Stage::kHandoff, std::chrono::steady_clock::now() - *committed);
    }
    const std::size_t got = items.size();
    for (auto& item : items) Send(std::move(item));
    ClaimAgain(got, asked, by_pump);
}

void Dispatcher::Impl::ClaimAgain(std::size_t got, std::size_t asked, bool by_pump) {
    if (!by_pump && got >= asked) {
        // A full claim at the commit: the rest are claimed once these are under way (the
        // pump would otherwise run the writer's next claim beside their first round trips).
        wake_pending_ = true;
        ArmDue(NowMs() + 1);
    } else if (got >= asked || wake_pending_) {
        wake_pending_ = true;  // a full claim: more may be due, claimed in turn
        Pump();
    } else if (by_pump) {
        const auto next = store_.NextDueMs();
        if (next) ArmDue(*next);
    }
}

void Dispatcher::Impl::Hold(Result<std::vector<OutboxItem>> claimed, std::size_t asked) {
    held_ = {};
    held_.holding = true;
    if (!claimed.ok()) {
        spdlog::error("dispatch: cannot claim deliveries: {}", claimed.error().message);
        return;
    }
    held_.asked = asked;
    const std::size_t limit = static_cast<std::size_t>(options_.smtp_connections) * 2;
    for (auto& item : claimed.value()) {
        ++in_flight_;
        // Ahead of what earlier fan-outs left waiting, as SendSmtp would put it.
        if (item.channel == Channel::kEmail && maildir_.empty() && smtp_firsts_ == 0 &&
            smtp_active_ < limit && !stopping_) {
            ++smtp_active_;
            auto t = PrepareSmtp(std::move(item));
            CURL* easy = t->easy;
            if (options_.smtp_envelope_before_commit) t = LaunchGated(std::move(t));
            if (t)
                held_.transfers.push_back(std::move(t));  // launched when settled
            else
                held_.gated.push_back(easy);
        } else {
            held_.items.push_back(std::move(item));
        }
    }
}

void Dispatcher::Impl::Settle(bool committed, std::chrono::steady_clock::time_point at) {
    if (!held_.holding) return;  // stopped meanwhile
    Held held = std::move(held_);
    held_ = {};
    const std::size_t got = held.gated.size() + held.transfers.size() + held.items.size();
    if (!committed || stopping_) {
        // Rolled back: the rows are not there to send (or are queued again).
        AbortGated(held.gated);
        for (auto& t : held.transfers) {
            Release(*t);
            if (smtp_active_ > 0) --smtp_active_;
        }
        in_flight_ -= std::min<std::size_t>(in_flight_, got);
        if (!stopping_) LaunchWaitingSmtp();
        return;
    }
    if (got > 0) Observe(Stage::kHandoff, std::chrono::steady_clock::now() - at);
    OpenGates(held.gated);
    for (auto& t : held.transfers) {
        if (t->item.kind == kKindAlert) version_created_[t->item.id] = t->item.created_at_ms;
        Launch(std::move(t));
    }
    for (auto& item : held.items) {
        --in_flight_;  // Send counts it again
        Send(std::move(item), /*first=*/true);
    }
    ClaimAgain(got, held.asked, false);
}

void Dispatcher::Impl::ArmDue(std::int64_t at_ms) {
    const auto wait = std::max<std::int64_t>(0, at_ms - NowMs());
    due_timer_.expires_after(std::chrono::milliseconds(wait));
    due_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) Pump();
    });
}

void Dispatcher::Impl::ScheduleEscalation() {
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

void Dispatcher::Impl::Record(DeliveryOutcome outcome) {
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

void Dispatcher::Impl::Flush() {
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

Dispatcher::Dispatcher(net::io_context& io, Outbox& store, DispatcherOptions options)
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
