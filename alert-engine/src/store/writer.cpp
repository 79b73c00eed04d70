// The writer thread: batches of reports committed together, jobs between them, migrations.
#include <pthread.h>

#include "impl.hpp"

namespace ldis::engine {

ReportStore::Impl::Impl(StoreOptions options)
    : options_(std::move(options)),
      writer_((CreatePrivately(options_.path), options_.path),
              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
              options_.busy_timeout_ms) {
    // Reading the schema first turns a corrupt or foreign file into a clear error.
    const int rc = writer_.Exec("SELECT count(*) FROM sqlite_schema");
    if (rc != SQLITE_OK) throw StoreError(options_.path + ": " + writer_.Describe(rc));
    char* mode = nullptr;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(writer_.get(), "PRAGMA journal_mode=WAL", -1, &stmt, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        mode = sqlite3_mprintf("%s", sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    const bool wal = mode != nullptr && std::string_view(mode) == "wal";
    sqlite3_free(mode);
    if (!wal)
        throw StoreError(options_.path + ": " + writer_.Describe(sqlite3_errcode(writer_.get())) +
                         " (could not switch to WAL mode)");
    writer_.ExecOrThrow(SynchronousPragma(options_.synchronous));
    writer_.ExecOrThrow("PRAGMA foreign_keys=ON");
    Migrate();
    insert_ = writer_.Prepare(
        "INSERT INTO reports (seq, id, reference, received_at_ms, channel, submitted_at, "
        "observed_at, "
        "source_type, organisation, authority, district, ward, ward_current, establishment, "
        "evidence, document, drill) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) "
        "ON CONFLICT(id) DO NOTHING");
    find_reference_ = writer_.Prepare("SELECT reference FROM reports WHERE id = ?1");
    LoadNextSeq();
    LoadLastAuditHash();
    LoadAckKey();
    WriteOutDeferredNow();  // a fan-out deferred when ldisd last stopped
    grading_ = options_.grading;
    reader_ = std::make_unique<Connection>(
        options_.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, options_.busy_timeout_ms);
    // Replaces the automatic checkpoint (a WAL hook of its own) with the checkpointer's.
    checkpointer_ = std::make_unique<Checkpointer>(options_.path, options_.synchronous,
                                                   options_.busy_timeout_ms);
    sqlite3_wal_hook(writer_.get(), &Checkpointer::OnWal, checkpointer_.get());
    thread_ = std::thread([this] {
        // Named for top -H, perf and gdb (at most 15 characters).
        pthread_setname_np(pthread_self(), "ldis-writer");
        Run();
    });
}

ReportStore::Impl::~Impl() {
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    wake_.notify_all();
    thread_.join();
    sqlite3_wal_hook(writer_.get(), nullptr, nullptr);
    checkpointer_.reset();
}

void ReportStore::Impl::SetOutboxListener(std::function<void()> listener) {
    std::lock_guard lock(mutex_);
    outbox_listener_ = std::move(listener);
}

void ReportStore::Impl::SetClaimAtCommit(CommitClaim hooks) {
    std::lock_guard lock(mutex_);
    claim_hooks_ = std::move(hooks);
}

// Queues `job` for the writer thread and returns at once; false when closing.
bool ReportStore::Impl::Post(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        if (closing_) return false;
        jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
    return true;
}

void ReportStore::Impl::SetGrading(std::shared_ptr<const GradingSetup> grading) {
    std::lock_guard lock(mutex_);
    grading_ = std::move(grading);
}

Result<StoredReport> ReportStore::Impl::Insert(const Report& report, std::string_view channel) {
    Pending pending{&report, channel, {}};
    auto done = pending.promise.get_future();
    {
        std::lock_guard lock(mutex_);
        if (closing_) return Error{"the store is closing"};
        queue_.push_back(&pending);
    }
    wake_.notify_one();
    return done.get();
}

void ReportStore::Impl::Migrate() {
    const int version = ReadUserVersion(writer_);
    if (version > kSchemaVersion) {
        throw StoreError(options_.path + ": was written by a newer LDIS (schema version " +
                         std::to_string(version) + "; this build knows up to " +
                         std::to_string(kSchemaVersion) + "); upgrade ldisd");
    }
    // Built with a migration for each version after the first (CMakeLists.txt globs them):
    // one missing or one too many is this build's mistake, found before any data is touched.
    if (kMigrationCount != kSchemaVersion - 1) {
        throw StoreError("this build has " + std::to_string(kMigrationCount) +
                         " schema migrations for schema version " + std::to_string(kSchemaVersion) +
                         "; it needs " + std::to_string(kSchemaVersion - 1));
    }
    // Each step in one transaction with its user_version: a new database takes the whole
    // schema at once; an older one each migration after its version.
    const auto step = [&](const char* sql, int to) {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            throw StoreError(options_.path + ": " + writer_.Describe(tx.begun()));
        writer_.ExecOrThrow(sql);
        writer_.ExecOrThrow(("PRAGMA user_version=" + std::to_string(to)).c_str());
        const int rc = tx.Commit();
        if (rc != SQLITE_OK) throw StoreError(options_.path + ": " + writer_.Describe(rc));
    };
    if (version == 0) return step(kSchemaSql, kSchemaVersion);
    for (int v = version; v < kSchemaVersion; ++v) step(kMigrationSql[v - 1], v + 1);
}

void ReportStore::Impl::LoadNextSeq() {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(writer_.get(), "SELECT coalesce(max(seq), 0) FROM reports", -1, &stmt,
                       nullptr);
    next_seq_ = (sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0) + 1;
    sqlite3_finalize(stmt);
}

std::string ReportStore::Impl::ReferenceFor(std::int64_t seq) const {
    return ReportReference(options_.reference_prefix, seq);
}

// Reports and jobs take turns: a batch of reports, then one job. Reports wait for
// their acknowledgement, so a busy outbox must never hold them back.
void ReportStore::Impl::Run() {
    std::vector<Pending*> batch;
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mutex_);
            const auto ready = [this] { return closing_ || !queue_.empty() || !jobs_.empty(); };
            // A fan-out's deferred rows are written out when they are due, busy or not.
            if (deferred_due_ && (!wake_.wait_until(lock, *deferred_due_, ready) ||
                                  std::chrono::steady_clock::now() >= *deferred_due_)) {
                lock.unlock();
                WriteOutDeferredNow();
                continue;
            }
            wake_.wait(lock, ready);
            if (queue_.empty() && jobs_.empty()) {  // closing, nothing left to do but these
                lock.unlock();
                WriteOutDeferredNow();
                return;
            }
            while (!queue_.empty() && batch.size() < options_.max_batch) {
                batch.push_back(queue_.front());
                queue_.pop_front();
            }
            batch_grading_ = grading_;
            if (!jobs_.empty()) {
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
        }
        if (!batch.empty()) Commit(batch);
        batch.clear();
        if (job) job();
    }
}

// Writes a batch in one transaction; every caller learns the outcome only after COMMIT.
void ReportStore::Impl::Commit(const std::vector<Pending*>& batch) {
    std::vector<StoredReport> results;
    results.reserve(batch.size());
    const std::int64_t first_seq = next_seq_;
    std::string failure;
    const auto begun = std::chrono::steady_clock::now();
    for (const Pending* p : batch) Observe(Stage::kWriterQueue, begun - p->queued_at);
    {
        Transaction tx(writer_);
        int rc = tx.begun();
        const std::int64_t now = NowMs();
        for (std::size_t i = 0; rc == SQLITE_OK && i < batch.size(); ++i) {
            const Report& r = *batch[i]->report;
            const std::string reference = ReferenceFor(next_seq_);
            StatementUse use(insert_);
            sqlite3_bind_int64(insert_, 1, next_seq_);
            BindText(insert_, 2, r.id);
            BindText(insert_, 3, reference);
            sqlite3_bind_int64(insert_, 4, now);
            BindText(insert_, 5, batch[i]->channel);
            BindText(insert_, 6, r.submitted_at);
            BindText(insert_, 7, r.observed_at, true);
            BindText(insert_, 8, r.source_type);
            BindText(insert_, 9, r.organisation);
            BindText(insert_, 10, r.authority);
            BindText(insert_, 11, r.district);
            BindText(insert_, 12, r.ward, true);
            BindText(insert_, 13, r.ward_current, true);
            BindText(insert_, 14, r.establishment, true);
            BindText(insert_, 15, r.evidence);
            BindText(insert_, 16, r.document);
            BindText(insert_, 17, ToString(r.drill));
            rc = sqlite3_step(insert_);
            if (rc != SQLITE_DONE) break;
            rc = SQLITE_OK;
            if (sqlite3_changes(writer_.get()) == 1) {
                results.push_back({r.id, reference, false, {}, {}});
                const std::int64_t seq = next_seq_++;
                audit_.push_back({now, "ldisd", "report.accepted", reference,
                                  "{\"id\":\"" + r.id + "\",\"channel\":\"" +
                                      std::string(batch[i]->channel) + "\"}"});
                if (!r.photos.empty()) rc = LinkPhotos(r);
                if (rc == SQLITE_OK && batch_grading_) {
                    StageTimer pipeline(Stage::kPipeline);
                    rc = GradeNew(r, seq, reference, now, *batch_grading_, results.back());
                }
                if (rc == SQLITE_OK) rc = FlushAudit();
            } else {
                StatementUse find(find_reference_);
                BindText(find_reference_, 1, r.id);
                rc = sqlite3_step(find_reference_);
                if (rc != SQLITE_ROW) break;
                rc = SQLITE_OK;
                results.push_back({r.id, ColumnText(find_reference_, 0), true, {}, {}});
                GradeOf(r.id, results.back());
            }
        }
        if (rc == SQLITE_OK) {
            ClaimBeforeCommit();
            StageTimer commit(Stage::kCommit);
            rc = tx.Commit();
        }
        if (rc != SQLITE_OK) failure = writer_.Describe(rc);
    }
    SettleClaim(failure.empty());
    if (!failure.empty()) {
        AfterCommitDeferred(false);
        next_seq_ = first_seq;
        audit_.clear();
        outbox_added_ = 0;
        LoadLastAuditHash();
        for (auto* p : batch) p->promise.set_value(Error{options_.path + ": " + failure});
        return;
    }
    AfterCommitDeferred(true);
    for (std::size_t i = 0; i < batch.size(); ++i)
        batch[i]->promise.set_value(std::move(results[i]));
    NotifyOutbox();
}

std::shared_ptr<const GradingSetup> ReportStore::Impl::CurrentGrading() const {
    std::lock_guard lock(mutex_);
    return grading_;
}

// Ends a writer transaction that may have appended audit entries and queued
// deliveries: commits them, or rolls back and forgets them. An Error when it failed.
std::optional<Error> ReportStore::Impl::Finish(Transaction& tx, int rc) {
    if (rc == SQLITE_OK) rc = FlushAudit();
    if (rc == SQLITE_OK) {
        ClaimBeforeCommit();
        rc = tx.Commit();
    }
    SettleClaim(rc == SQLITE_OK);
    if (rc != SQLITE_OK) {
        AfterCommitDeferred(false);
        audit_.clear();
        outbox_added_ = 0;
        LoadLastAuditHash();
        return Error{options_.path + ": " + writer_.Describe(rc)};
    }
    AfterCommitDeferred(true);
    NotifyOutbox();
    return std::nullopt;
}

// The first deliveries a transaction queued are claimed in it, just before its COMMIT, and
// handed to the dispatcher held: it renders them and opens their SMTP transactions on its
// own thread while this one waits for the disk, and sends the messages when SettleClaim
// says the commit is durable (a rollback takes the claim with it). Nothing of a message
// leaves before the commit (only an envelope: the partner's address), and the first email
// no longer waits, after it, for a claim, eight renders and three round trips. Claimed in a
// savepoint, so that a claim that fails part-way leaves the transaction as it was and the rows to
// the pump.
void ReportStore::Impl::ClaimBeforeCommit() {
    if (outbox_added_ == 0) return;
    CommitClaim hooks;
    {
        std::lock_guard lock(mutex_);
        hooks = claim_hooks_;
    }
    if (!hooks.room || !hooks.claimed || !hooks.settled) return;
    const std::size_t n = hooks.room();
    if (n == 0) return;
    if (writer_.Exec("SAVEPOINT claim") != SQLITE_OK) return;
    auto items = ClaimRows(NowMs(), n);
    if (!items.ok()) {
        writer_.Exec("ROLLBACK TO claim");
        writer_.Exec("RELEASE claim");
        return;
    }
    if (writer_.Exec("RELEASE claim") != SQLITE_OK) return;
    held_claim_ = std::move(hooks.settled);
    hooks.claimed(std::move(items), n, true);
}

void ReportStore::Impl::SettleClaim(bool committed) {
    if (!held_claim_) return;
    auto settle = std::exchange(held_claim_, {});
    if (committed) outbox_added_ = 0;  // claimed: the listener has nothing to wake for
    settle(committed);
}

// Tells the writer's listener, outside any lock, that the outbox has new rows.
void ReportStore::Impl::NotifyOutbox() {
    if (outbox_added_ == 0) return;
    outbox_added_ = 0;
    std::function<void()> listener;
    {
        std::lock_guard lock(mutex_);
        listener = outbox_listener_;
    }
    if (listener) listener();
}

}  // namespace ldis::engine
