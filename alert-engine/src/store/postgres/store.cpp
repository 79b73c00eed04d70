// PostgresStore: its connections, the outbox's thread, the LISTEN for other instances'
// deliveries, and the Outbox interface's calls.
#include <poll.h>
#include <pthread.h>

#include "ldis/engine/codec.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;

PostgresStore::PostgresStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(Options options) {
    auto impl = std::make_unique<Impl>();
    for (auto* slot : {&impl->intake, &impl->outbox, &impl->reader}) {
        auto db = PostgresDatabase::Open(options.url);
        if (!db.ok()) return db.error();
        *slot = std::make_unique<pgstore::Writer>(std::move(db).value());
    }
    auto listen = PostgresDatabase::Open(options.url);
    if (!listen.ok()) return listen.error();
    impl->listen = std::move(listen).value();
    impl->options = std::move(options);
    // The key that signs acknowledgement links: one for every instance, made by the first.
    auto key = pg::Exec(impl->outbox->c(), "make the acknowledgement key",
                        "INSERT INTO settings (key, value) VALUES ('ack_key', $1) ON CONFLICT "
                        "(key) DO NOTHING",
                        {Hex(RandomBytes(32))});
    if (!key.ok()) return Error{impl->outbox->where() + ": " + key.error().message};
    auto read = pg::Exec(impl->outbox->c(), "read the acknowledgement key",
                         "SELECT value FROM settings WHERE key = 'ack_key'");
    if (!read.ok()) return Error{impl->outbox->where() + ": " + read.error().message};
    impl->ack_key = std::string(read.value().text(0, 0));
    auto listening = pg::Exec(PostgresAccess::Connection(*impl->listen), "listen for deliveries",
                              std::string("LISTEN ") + pgstore::kOutboxChannel);
    if (!listening.ok()) return Error{impl->listen->where() + ": " + listening.error().message};
    Impl* raw = impl.get();
    impl->worker = std::thread([raw] {
        pthread_setname_np(pthread_self(), "ldis-pg-outbox");
        raw->RunJobs();
    });
    impl->listener_thread = std::thread([raw] {
        pthread_setname_np(pthread_self(), "ldis-pg-listen");
        raw->Listen();
    });
    return std::unique_ptr<PostgresStore>(new PostgresStore(std::move(impl)));
}

PostgresStore::~PostgresStore() {
    {
        std::lock_guard lock(impl_->jobs_mutex);
        impl_->stopping = true;
    }
    impl_->jobs_cv.notify_all();
    if (impl_->worker.joinable()) impl_->worker.join();
    if (impl_->listener_thread.joinable()) impl_->listener_thread.join();
}

void PostgresStore::Impl::Post(std::function<void()> job) {
    {
        std::lock_guard lock(jobs_mutex);
        jobs.push_back(std::move(job));
    }
    jobs_cv.notify_one();
}

void PostgresStore::Impl::RunJobs() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(jobs_mutex);
            jobs_cv.wait(lock, [&] { return stopping || !jobs.empty(); });
            if (jobs.empty()) return;  // stopping, nothing left
            job = std::move(jobs.front());
            jobs.pop_front();
        }
        job();
    }
}

// Another instance's commit that queued deliveries wakes this one's dispatcher, so that
// the work is shared and nothing waits for a timer.
void PostgresStore::Impl::Listen() {
    PGconn* c = PostgresAccess::Connection(*listen);
    for (;;) {
        {
            std::lock_guard lock(jobs_mutex);
            if (stopping) return;
        }
        if (PQstatus(c) != CONNECTION_OK) {
            // Lost: make it again and LISTEN again; meanwhile the due timer still runs.
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            PQreset(c);
            if (PQstatus(c) == CONNECTION_OK)
                PQclear(PQexec(c, (std::string("LISTEN ") + pgstore::kOutboxChannel).c_str()));
            continue;
        }
        pollfd p{PQsocket(c), POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        if (PQconsumeInput(c) == 0) continue;  // lost: made again above
        bool woken = false;
        while (PGnotify* n = PQnotifies(c)) {
            woken = true;
            PQfreemem(n);
        }
        if (!woken) continue;
        std::function<void()> wake;
        {
            std::lock_guard lock(hooks_mutex);
            wake = listener;
        }
        if (wake) wake();
    }
}

// After a commit that queued deliveries in this process: claimed at once for this
// instance's dispatcher when it has room, as on SQLite (other instances hear the NOTIFY).
// The claim is a job on the outbox's thread: the caller (a report's intake, on Paho's
// thread) returns, and its receipt goes, without waiting for a second transaction.
void PostgresStore::Impl::AfterCommit(int queued) {
    if (queued == 0) return;
    std::function<void()> wake;
    CommitClaim hooks;
    {
        std::lock_guard lock(hooks_mutex);
        wake = listener;
        hooks = claim_hooks;
    }
    if (hooks.room && hooks.claimed) {
        return Post([this, wake, hooks] {
            if (const std::size_t n = hooks.room(); n > 0)
                return hooks.claimed(Claim(NowMs(), n), n, false);
            if (wake) wake();
        });
    }
    if (wake) wake();
}

Result<StoredReport> PostgresStore::Insert(const Report& report, std::string_view channel) {
    StoredReport out;
    Result<int> queued = 0;
    {
        std::lock_guard lock(impl_->intake->mutex());
        const std::int64_t now = NowMs();
        queued = impl_->intake->Transaction([&] { out = impl_->Take(report, channel, now); }, now);
    }
    if (!queued.ok()) return queued.error();
    impl_->AfterCommit(queued.value());
    return out;
}

void PostgresStore::SetOutboxListener(std::function<void()> listener) {
    std::lock_guard lock(impl_->hooks_mutex);
    impl_->listener = std::move(listener);
}

void PostgresStore::SetClaimAtCommit(CommitClaim hooks) {
    std::lock_guard lock(impl_->hooks_mutex);
    impl_->claim_hooks = std::move(hooks);
}

void PostgresStore::ClaimDue(std::int64_t now_ms, std::size_t limit,
                             std::function<void(Result<std::vector<OutboxItem>>)> done) {
    impl_->Post([this, now_ms, limit, done] { done(impl_->Claim(now_ms, limit)); });
}

void PostgresStore::Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now_ms,
                             std::function<void(Result<int>)> done) {
    auto shared = std::make_shared<std::vector<DeliveryOutcome>>(std::move(outcomes));
    impl_->Post([this, shared, now_ms, done] { done(impl_->CompleteNow(*shared, now_ms)); });
}

void PostgresStore::EscalateDue(std::int64_t now_ms, std::function<void(Result<int>)> done) {
    impl_->Post([this, now_ms, done] { done(impl_->EscalateNow(now_ms)); });
}

Result<int> PostgresStore::RecoverInFlight(std::int64_t now_ms) {
    std::lock_guard lock(impl_->outbox->mutex());
    auto r = pg::Exec(impl_->outbox->c(), "count the leases run out",
                      "SELECT count(*) FROM deliveries WHERE status = 'sending' AND "
                      "next_attempt_ms <= $1",
                      {Int(now_ms)});
    if (!r.ok()) return Error{impl_->outbox->where() + ": " + r.error().message};
    return static_cast<int>(r.value().integer(0, 0));
}

const std::string& PostgresStore::AckKey() const {
    return impl_->ack_key;
}

std::optional<std::int64_t> PostgresStore::NextDueMs() const {
    std::lock_guard lock(impl_->outbox->mutex());
    auto r = pg::Exec(impl_->outbox->c(), "find the next due delivery",
                      "SELECT min(next_attempt_ms) FROM deliveries WHERE status IN "
                      "('queued','retrying','sending')");
    if (!r.ok() || r.value().null(0, 0)) return std::nullopt;
    return r.value().integer(0, 0);
}

bool PostgresStore::leader() const {
    return impl_->leader.load();
}

}  // namespace ldis::engine
