#include "ldis/engine/report_store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace ldis::engine {
namespace {

// Each entry takes the database from version i to i + 1, in one transaction with the
// user_version bump. Never edit an entry once released: add a new one.
constexpr const char* kMigrations[] = {
    R"sql(
    CREATE TABLE reports (
        seq            INTEGER PRIMARY KEY,
        id             TEXT NOT NULL UNIQUE,
        reference      TEXT NOT NULL UNIQUE,
        received_at_ms INTEGER NOT NULL,
        channel        TEXT NOT NULL,
        submitted_at   TEXT NOT NULL,
        observed_at    TEXT,
        source_type    TEXT NOT NULL,
        organisation   TEXT NOT NULL,
        authority      TEXT NOT NULL,
        district       TEXT NOT NULL,
        ward           TEXT,
        ward_current   TEXT,
        establishment  TEXT,
        evidence       TEXT NOT NULL,
        document       TEXT NOT NULL
    );
    CREATE INDEX reports_by_area ON reports(district, received_at_ms);
    )sql",
};
static_assert(std::size(kMigrations) == ReportStore::kSchemaVersion);

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

const char* SynchronousPragma(Synchronous s) {
    switch (s) {
        case Synchronous::kOff:
            return "PRAGMA synchronous=OFF";
        case Synchronous::kNormal:
            return "PRAGMA synchronous=NORMAL";
        case Synchronous::kFull:
            return "PRAGMA synchronous=FULL";
        case Synchronous::kExtra:
            return "PRAGMA synchronous=EXTRA";
    }
    return "PRAGMA synchronous=FULL";
}

// A connection that closes itself; errors name the file.
class Connection {
public:
    Connection(const std::string& path, int flags, int busy_timeout_ms) : path_(path) {
        if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
            std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            db_ = nullptr;
            throw StoreError(path + ": cannot open the database: " + message);
        }
        sqlite3_extended_result_codes(db_, 1);
        sqlite3_busy_timeout(db_, busy_timeout_ms);
    }
    ~Connection() {
        for (auto* stmt : cache_) sqlite3_finalize(stmt);
        sqlite3_close_v2(db_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    sqlite3* get() const { return db_; }
    const std::string& path() const { return path_; }

    std::string Describe(int rc) const {
        std::string what = sqlite3_errmsg(db_);
        const int primary = rc & 0xFF;
        if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
            return "is not an LDIS database or is corrupt (" + what +
                   "); restore it from a backup or move it aside";
        }
        if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
            return "is locked by another process (" + what + "); is another ldisd using it?";
        }
        if (primary == SQLITE_FULL) return "cannot be written: the disk is full (" + what + ")";
        if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM) {
            return "cannot be written (" + what +
                   "); check the permissions of the file and its folder";
        }
        return what;
    }

    // Runs SQL with no results; returns the SQLite code.
    int Exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

    void ExecOrThrow(const char* sql) {
        const int rc = Exec(sql);
        if (rc != SQLITE_OK) throw StoreError(path_ + ": " + Describe(rc));
    }

    // A statement prepared once and reset after each use.
    sqlite3_stmt* Prepare(const char* sql) {
        sqlite3_stmt* stmt = nullptr;
        const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
        if (rc != SQLITE_OK) throw StoreError(path_ + ": " + Describe(rc));
        cache_.push_back(stmt);
        return stmt;
    }

private:
    std::string path_;
    sqlite3* db_ = nullptr;
    std::vector<sqlite3_stmt*> cache_;
};

// Resets a cached statement whatever happens.
class StatementUse {
public:
    explicit StatementUse(sqlite3_stmt* stmt) : stmt_(stmt) {}
    ~StatementUse() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    StatementUse(const StatementUse&) = delete;
    StatementUse& operator=(const StatementUse&) = delete;
    sqlite3_stmt* get() const { return stmt_; }

private:
    sqlite3_stmt* stmt_;
};

void BindText(sqlite3_stmt* stmt, int index, std::string_view text, bool null_if_empty = false) {
    if (null_if_empty && text.empty()) {
        sqlite3_bind_null(stmt, index);
    } else {
        sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    }
}

std::string ColumnText(sqlite3_stmt* stmt, int column) {
    const auto* text = sqlite3_column_text(stmt, column);
    return text ? std::string(reinterpret_cast<const char*>(text),
                              static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)))
                : std::string();
}

// BEGIN IMMEDIATE ... COMMIT, rolled back unless committed.
class Transaction {
public:
    explicit Transaction(Connection& c) : c_(c) { rc_ = c_.Exec("BEGIN IMMEDIATE"); }
    ~Transaction() {
        if (rc_ == SQLITE_OK && !done_) c_.Exec("ROLLBACK");
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    int begun() const { return rc_; }
    int Commit() {
        const int rc = c_.Exec("COMMIT");
        if (rc == SQLITE_OK) done_ = true;
        return rc;
    }

private:
    Connection& c_;
    int rc_;
    bool done_ = false;
};

int ReadUserVersion(Connection& c) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(c.get(), "PRAGMA user_version", -1, &stmt, nullptr);
    if (rc != SQLITE_OK) throw StoreError(c.path() + ": " + c.Describe(rc));
    rc = sqlite3_step(stmt);
    const int version = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    if (version < 0) throw StoreError(c.path() + ": " + c.Describe(rc));
    return version;
}

}  // namespace

std::optional<Synchronous> ParseSynchronous(std::string_view text) {
    if (text == "off") return Synchronous::kOff;
    if (text == "normal") return Synchronous::kNormal;
    if (text == "full") return Synchronous::kFull;
    if (text == "extra") return Synchronous::kExtra;
    return std::nullopt;
}

class ReportStore::Impl {
public:
    explicit Impl(StoreOptions options)
        : options_(std::move(options)),
          writer_(options_.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
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
            throw StoreError(options_.path + ": " +
                             writer_.Describe(sqlite3_errcode(writer_.get())) +
                             " (could not switch to WAL mode)");
        writer_.ExecOrThrow(SynchronousPragma(options_.synchronous));
        writer_.ExecOrThrow("PRAGMA foreign_keys=ON");
        Migrate();
        insert_ = writer_.Prepare(
            "INSERT INTO reports (seq, id, reference, received_at_ms, channel, submitted_at, "
            "observed_at, "
            "source_type, organisation, authority, district, ward, ward_current, establishment, "
            "evidence, document) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) "
            "ON CONFLICT(id) DO NOTHING");
        find_reference_ = writer_.Prepare("SELECT reference FROM reports WHERE id = ?1");
        LoadNextSeq();
        reader_ = std::make_unique<Connection>(
            options_.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, options_.busy_timeout_ms);
        thread_ = std::thread([this] { Run(); });
    }

    ~Impl() {
        {
            std::lock_guard lock(mutex_);
            closing_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }

    Result<StoredReport> Insert(const Report& report, std::string_view channel) {
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

    std::optional<StoredReportRow> Find(std::string_view id) const {
        auto rows = Query("WHERE id = ?1 OR reference = ?1", id, 1);
        if (rows.empty()) return std::nullopt;
        return std::move(rows.front());
    }

    std::vector<StoredReportRow> Recent(std::size_t limit) const {
        return Query("ORDER BY seq DESC LIMIT ?2", {}, limit);
    }

    std::vector<StoredReportRow> Query(const std::string& tail, std::string_view key,
                                       std::size_t limit) const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        const std::string sql =
            "SELECT id, reference, received_at_ms, source_type, authority, district, channel, "
            "document "
            "FROM reports " +
            tail;
        sqlite3_prepare_v2(reader_->get(), sql.c_str(), -1, &stmt, nullptr);
        if (!key.empty()) BindText(stmt, 1, key);
        if (sql.find("?2") != std::string::npos)
            sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(limit));
        std::vector<StoredReportRow> rows;
        while (rows.size() < limit && sqlite3_step(stmt) == SQLITE_ROW) {
            rows.push_back(StoredReportRow{ColumnText(stmt, 0), ColumnText(stmt, 1),
                                           sqlite3_column_int64(stmt, 2), ColumnText(stmt, 3),
                                           ColumnText(stmt, 4), ColumnText(stmt, 5),
                                           ColumnText(stmt, 6), ColumnText(stmt, 7)});
        }
        sqlite3_finalize(stmt);
        return rows;
    }

    std::int64_t Count() const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(), "SELECT count(*) FROM reports", -1, &stmt, nullptr);
        const std::int64_t n =
            sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
        sqlite3_finalize(stmt);
        return n;
    }

    std::vector<std::string> ListIds() const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(), "SELECT id FROM reports ORDER BY seq", -1, &stmt,
                           nullptr);
        std::vector<std::string> ids;
        while (sqlite3_step(stmt) == SQLITE_ROW) ids.push_back(ColumnText(stmt, 0));
        sqlite3_finalize(stmt);
        return ids;
    }

private:
    struct Pending {
        const Report* report;
        std::string_view channel;
        std::promise<Result<StoredReport>> promise;
    };

    void Migrate() {
        const int version = ReadUserVersion(writer_);
        if (version > kSchemaVersion) {
            throw StoreError(options_.path + ": was written by a newer LDIS (schema version " +
                             std::to_string(version) + "; this build knows up to " +
                             std::to_string(kSchemaVersion) + "); upgrade ldisd");
        }
        for (int v = version; v < kSchemaVersion; ++v) {
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                throw StoreError(options_.path + ": " + writer_.Describe(tx.begun()));
            writer_.ExecOrThrow(kMigrations[v]);
            writer_.ExecOrThrow(("PRAGMA user_version=" + std::to_string(v + 1)).c_str());
            const int rc = tx.Commit();
            if (rc != SQLITE_OK) throw StoreError(options_.path + ": " + writer_.Describe(rc));
        }
    }

    void LoadNextSeq() {
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(writer_.get(), "SELECT coalesce(max(seq), 0) FROM reports", -1, &stmt,
                           nullptr);
        next_seq_ = (sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0) + 1;
        sqlite3_finalize(stmt);
    }

    std::string ReferenceFor(std::int64_t seq) const {
        char digits[32];
        std::snprintf(digits, sizeof digits, "%06lld", static_cast<long long>(seq));
        return options_.reference_prefix + "-R" + digits;
    }

    void Run() {
        std::vector<Pending*> batch;
        for (;;) {
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
                if (queue_.empty()) return;  // closing, and nothing left to write
                while (!queue_.empty() && batch.size() < options_.max_batch) {
                    batch.push_back(queue_.front());
                    queue_.pop_front();
                }
            }
            Commit(batch);
            batch.clear();
        }
    }

    // Writes a batch in one transaction; every caller learns the outcome only after COMMIT.
    void Commit(const std::vector<Pending*>& batch) {
        std::vector<StoredReport> results;
        results.reserve(batch.size());
        const std::int64_t first_seq = next_seq_;
        std::string failure;
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
                rc = sqlite3_step(insert_);
                if (rc != SQLITE_DONE) break;
                rc = SQLITE_OK;
                if (sqlite3_changes(writer_.get()) == 1) {
                    results.push_back({r.id, reference, false});
                    ++next_seq_;
                } else {
                    StatementUse find(find_reference_);
                    BindText(find_reference_, 1, r.id);
                    rc = sqlite3_step(find_reference_);
                    if (rc != SQLITE_ROW) break;
                    rc = SQLITE_OK;
                    results.push_back({r.id, ColumnText(find_reference_, 0), true});
                }
            }
            if (rc == SQLITE_OK) rc = tx.Commit();
            if (rc != SQLITE_OK) failure = writer_.Describe(rc);
        }
        if (!failure.empty()) {
            next_seq_ = first_seq;
            for (auto* p : batch) p->promise.set_value(Error{options_.path + ": " + failure});
            return;
        }
        for (std::size_t i = 0; i < batch.size(); ++i)
            batch[i]->promise.set_value(std::move(results[i]));
    }

    StoreOptions options_;
    Connection writer_;
    sqlite3_stmt* insert_ = nullptr;
    sqlite3_stmt* find_reference_ = nullptr;
    std::int64_t next_seq_ = 1;
    std::unique_ptr<Connection> reader_;
    mutable std::mutex reader_mutex_;

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending*> queue_;
    bool closing_ = false;
    std::thread thread_;
};

ReportStore::ReportStore(StoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
ReportStore::~ReportStore() = default;

Result<StoredReport> ReportStore::Insert(const Report& report, std::string_view channel) {
    return impl_->Insert(report, channel);
}
std::optional<StoredReportRow> ReportStore::Find(std::string_view id) const {
    return impl_->Find(id);
}
std::int64_t ReportStore::CountReports() const {
    return impl_->Count();
}
std::vector<std::string> ReportStore::ListIds() const {
    return impl_->ListIds();
}
std::vector<StoredReportRow> ReportStore::Recent(std::size_t limit) const {
    return impl_->Recent(limit);
}

int ReportStore::FileSchemaVersion(const std::string& path) {
    Connection c(path, SQLITE_OPEN_READONLY, 1000);
    return ReadUserVersion(c);
}

}  // namespace ldis::engine
