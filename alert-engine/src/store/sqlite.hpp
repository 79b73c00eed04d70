#pragma once
// The SQLite store's shared parts (private to src/store/): the schema and its migrations, the
// connection and statement helpers, and the small pure helpers every table's file uses.

#include "ldis/engine/report_store.hpp"

#include "audit_chain.hpp"
#include "ldis/engine/pipeline.hpp"
#include "ldis/engine/stages.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"
#include "rows.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include <openssl/evp.h>
#include <boost/json.hpp>

#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/codec.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/panel.hpp"
#include "ldis/engine/text.hpp"

namespace ldis::engine::sql {

// The schema, whole (schema.sql), for a new database; and the migrations
// (migrations/NNNN.sql), kMigrationSql[i] taking version i + 1 to i + 2, for one an earlier
// LDIS wrote. Compiled in from the .sql files by alert-engine/CMakeLists.txt.
extern const char* const kSchemaSql;
extern const char* const kMigrationSql[];
extern const int kMigrationCount;

// A new database file is made 0600 whatever the umask of the process that opens it first
// (ldisd, ldisctl, a test): it holds reports about people. SQLite gives its -wal and -shm
// files the database file's permissions. An existing file is left as it is.
inline void CreatePrivately(const std::string& path) {
    if (path.empty() || path == ":memory:") return;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
}

inline const char* SynchronousPragma(Synchronous s) {
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

    // A statement prepared on first use and kept; reset after each use (StatementUse).
    sqlite3_stmt* Cached(const char* sql) {
        if (auto it = by_sql_.find(sql); it != by_sql_.end()) return it->second;
        return by_sql_[sql] = Prepare(sql);
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
    std::unordered_map<const char*, sqlite3_stmt*> by_sql_;
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

inline void BindText(sqlite3_stmt* stmt, int index, std::string_view text,
                     bool null_if_empty = false) {
    if (null_if_empty && text.empty()) {
        sqlite3_bind_null(stmt, index);
    } else {
        sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
    }
}

inline std::string ColumnText(sqlite3_stmt* stmt, int column) {
    const auto* text = sqlite3_column_text(stmt, column);
    return text ? std::string(reinterpret_cast<const char*>(text),
                              static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)))
                : std::string();
}

// A status or level column: the store writes only the enums' words (ToString).
inline AlertStatus StatusColumn(sqlite3_stmt* stmt, int column) {
    AlertStatus out = AlertStatus::kDraft;
    ParseAlertStatus(ColumnText(stmt, column), out);
    return out;
}

inline Level LevelColumn(sqlite3_stmt* stmt, int column) {
    Level out = Level::kNone;
    ParseLevel(ColumnText(stmt, column), out);
    return out;
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

// While it lives, commits on `c` do not wait for the disk (synchronous=NORMAL in WAL) when
// the store's setting is FULL or EXTRA: for writes whose loss with the power changes nothing
// (a claim; rows written out from a durable one). They survive a crash of ldisd, and the
// next full commit's fsync covers them, as the WAL is written in order.
class RelaxedSync {
public:
    RelaxedSync(Connection& c, Synchronous setting)
        : c_(c),
          setting_(setting),
          relax_(setting == Synchronous::kFull || setting == Synchronous::kExtra) {
        if (relax_) c_.Exec("PRAGMA synchronous=NORMAL");
    }
    ~RelaxedSync() {
        if (relax_) c_.Exec(SynchronousPragma(setting_));
    }
    RelaxedSync(const RelaxedSync&) = delete;
    RelaxedSync& operator=(const RelaxedSync&) = delete;

private:
    Connection& c_;
    Synchronous setting_;
    bool relax_;
};

inline int ReadUserVersion(Connection& c) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(c.get(), "PRAGMA user_version", -1, &stmt, nullptr);
    if (rc != SQLITE_OK) throw StoreError(c.path() + ": " + c.Describe(rc));
    rc = sqlite3_step(stmt);
    const int version = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    if (version < 0) throw StoreError(c.path() + ": " + c.Describe(rc));
    return version;
}

}  // namespace ldis::engine::sql
