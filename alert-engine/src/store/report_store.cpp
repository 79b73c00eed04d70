#include "ldis/engine/report_store.hpp"

#include "ldis/engine/pipeline.hpp"
#include "ldis/engine/wire.hpp"

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
    R"sql(
    CREATE TABLE signals (
        id             INTEGER PRIMARY KEY,
        family         TEXT NOT NULL,
        authority      TEXT NOT NULL,
        district       TEXT NOT NULL,
        opened_at_ms   INTEGER NOT NULL,
        first_seen_ms  INTEGER NOT NULL,
        last_seen_ms   INTEGER NOT NULL,
        level          TEXT NOT NULL DEFAULT 'none',
        confidence     TEXT NOT NULL DEFAULT 'anecdotal',
        facts          TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX signals_by_key ON signals(family, district, last_seen_ms);
    CREATE TABLE signal_reports (
        signal_id  INTEGER NOT NULL REFERENCES signals(id),
        report_seq INTEGER NOT NULL UNIQUE REFERENCES reports(seq),
        PRIMARY KEY (signal_id, report_seq)
    );
    CREATE TABLE signal_sources (
        signal_id    INTEGER NOT NULL REFERENCES signals(id),
        organisation TEXT NOT NULL,
        PRIMARY KEY (signal_id, organisation)
    ) WITHOUT ROWID;
    CREATE TABLE alerts (
        id             INTEGER PRIMARY KEY,
        reference      TEXT NOT NULL UNIQUE,
        signal_id      INTEGER NOT NULL REFERENCES signals(id),
        status         TEXT NOT NULL,
        level          TEXT NOT NULL,
        confidence     TEXT NOT NULL,
        audience       TEXT NOT NULL,
        version        INTEGER NOT NULL,
        provisional    INTEGER NOT NULL,
        created_at_ms  INTEGER NOT NULL,
        updated_at_ms  INTEGER NOT NULL,
        issued_at_ms   INTEGER,
        valid_until_ms INTEGER
    );
    CREATE INDEX alerts_by_signal ON alerts(signal_id, status);
    CREATE TABLE alert_versions (
        alert_id      INTEGER NOT NULL REFERENCES alerts(id),
        version       INTEGER NOT NULL,
        status        TEXT NOT NULL,
        level         TEXT NOT NULL,
        confidence    TEXT NOT NULL,
        rules         TEXT NOT NULL,
        facts         TEXT NOT NULL,
        body          TEXT NOT NULL DEFAULT '{}',
        scrubbed      INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (alert_id, version)
    );
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        at_ms     INTEGER NOT NULL,
        actor     TEXT NOT NULL,
        action    TEXT NOT NULL,
        subject   TEXT NOT NULL,
        detail    TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    );
    )sql",
    R"sql(
    CREATE TABLE deliveries (
        id                 INTEGER PRIMARY KEY,
        alert_id           INTEGER NOT NULL REFERENCES alerts(id),
        version            INTEGER NOT NULL,
        kind               TEXT NOT NULL,
        partner            TEXT NOT NULL,
        contact            TEXT NOT NULL,
        slot               TEXT NOT NULL,
        channel            TEXT NOT NULL,
        address            TEXT NOT NULL,
        status             TEXT NOT NULL,
        attempts           INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms    INTEGER NOT NULL,
        created_at_ms      INTEGER NOT NULL,
        updated_at_ms      INTEGER NOT NULL,
        delivered_at_ms    INTEGER,
        last_error         TEXT,
        ack_due_ms         INTEGER,
        acknowledged_at_ms INTEGER,
        escalated          INTEGER NOT NULL DEFAULT 0,
        fallback_of        INTEGER,
        detail             TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX deliveries_due ON deliveries(status, next_attempt_ms);
    CREATE INDEX deliveries_by_alert ON deliveries(alert_id, partner);
    CREATE INDEX deliveries_ack_due ON deliveries(ack_due_ms) WHERE escalated = 0;
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    )sql",
    R"sql(
    CREATE TABLE tokens (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL,
        role          TEXT NOT NULL,
        hash          TEXT NOT NULL UNIQUE,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
    );
    )sql",
    R"sql(
    ALTER TABLE alerts ADD COLUMN routed_version INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alerts ADD COLUMN routed_at_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE alerts SET routed_version = version, routed_at_ms = updated_at_ms;
    )sql",
    // Web sessions survive a restart and end with their access key; a recipient's request
    // to stop messages is recorded once per delivery.
    R"sql(
    CREATE TABLE sessions (
        id_hash       TEXT PRIMARY KEY,
        token_id      INTEGER NOT NULL REFERENCES tokens(id),
        csrf          TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_token ON sessions(token_id, created_at_ms);
    ALTER TABLE deliveries ADD COLUMN unsubscribe_requested_at_ms INTEGER;
    )sql",
    // Retention: when a report's free text and contact were removed.
    R"sql(
    ALTER TABLE reports ADD COLUMN purged_at_ms INTEGER;
    CREATE INDEX reports_to_purge ON reports(received_at_ms) WHERE purged_at_ms IS NULL;
    )sql",
    // The sections of an alert its coordinators wrote, kept over every later version.
    R"sql(
    ALTER TABLE alerts ADD COLUMN wording TEXT NOT NULL DEFAULT '{}';
    )sql",
    // v9: a coordinator's override of a signal's level, with the reason; the level column
    // stays what the rules give.
    R"sql(
    ALTER TABLE signals ADD COLUMN override_level TEXT;
    ALTER TABLE signals ADD COLUMN override_reason TEXT;
    ALTER TABLE signals ADD COLUMN override_by TEXT;
    ALTER TABLE signals ADD COLUMN override_at_ms INTEGER;
    )sql",
};
static_assert(std::size(kMigrations) == ReportStore::kSchemaVersion);

// A new database file is made 0600 whatever the umask of the process that opens it first
// (ldisd, ldisctl, a test): it holds reports about people. SQLite gives its -wal and -shm
// files the database file's permissions. An existing file is left as it is.
void CreatePrivately(const std::string& path) {
    if (path.empty() || path == ":memory:") return;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
}

// The rules that fired, as the alert_versions.rules column holds them.
std::string RulesJson(const Grade& grade) {
    boost::json::array fired;
    for (const auto& f : grade.fired) {
        fired.push_back(
            {{"id", f.id}, {"level", std::string(ToString(f.level))}, {"reason", f.reason}});
    }
    return boost::json::serialize(fired);
}

// The grade an alert shows: the rules', or a coordinator's override of its level, which
// then comes first among the rules with its reason.
Grade WithOverride(Grade grade, const SignalOverride& held) {
    Level level = Level::kNone;
    if (held.level.empty() || !ParseLevel(held.level, level)) return grade;
    // Partners read that a coordinator set it, not their words or name: the reason is for
    // the audit log and the coordinators' record.
    grade.fired.insert(grade.fired.begin(),
                       FiredRule{"override", level,
                                 "Set by a public health coordinator, who has seen more than the "
                                 "reports show (the rules give " +
                                     std::string(ToString(grade.level)) + ")."});
    grade.level = level;
    return grade;
}

// What an audit entry's hash covers: every field, and the hash of the entry before.
std::string AuditHash(const std::string& prev_hash, std::int64_t seq, std::int64_t at_ms,
                      std::string_view actor, std::string_view action, std::string_view subject,
                      std::string_view detail) {
    const std::string seq_text = std::to_string(seq);
    const std::string at_text = std::to_string(at_ms);
    std::string data = prev_hash;
    for (const std::string_view part :
         {std::string_view(seq_text), std::string_view(at_text), actor, action, subject, detail}) {
        data.push_back('\x1f');
        data.append(part);
    }
    return Sha256Hex(data);
}

int YearOf(std::int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    return utc.tm_year + 1900;
}

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
        LoadLastAuditHash();
        LoadAckKey();
        grading_ = options_.grading;
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

    // Runs `job` on the writer thread, between batches, and returns its result.
    template <typename T>
    Result<T> OnWriter(std::function<Result<T>()> job) {
        std::promise<Result<T>> done;
        auto future = done.get_future();
        {
            std::lock_guard lock(mutex_);
            if (closing_) return Error{"the store is closing"};
            jobs_.push_back([&] { done.set_value(job()); });
        }
        wake_.notify_one();
        return future.get();
    }

    Result<StoredAlert> Act(std::string_view reference, AlertAction action, std::string_view actor,
                            const AlertWording& wording) {
        const std::string ref(reference);
        const std::string who(actor);
        auto outcome = OnWriter<std::string>(
            [&]() -> Result<std::string> { return ActOnWriter(ref, action, who, wording); });
        if (!outcome.ok()) return outcome.error();
        auto alert = Alerts(ref);
        if (alert.empty()) return Error{"no alert " + ref};
        return alert.front();
    }

    Result<SignalOverride> Override(std::int64_t signal_id, const std::string& level,
                                    const std::string& reason, const std::string& actor) {
        return OnWriter<SignalOverride>([&]() -> Result<SignalOverride> {
            return OverrideOnWriter(signal_id, level, reason, actor);
        });
    }

    Result<std::vector<std::string>> ExpireDue(std::int64_t now_ms) {
        return OnWriter<std::vector<std::string>>(
            [&]() -> Result<std::vector<std::string>> { return ExpireOnWriter(now_ms); });
    }

    Result<std::string> CreateToken(const std::string& name, const std::string& role) {
        return OnWriter<std::string>([&]() -> Result<std::string> {
            const std::string secret = "ldis_" + Base64Url(RandomBytes(32));
            const std::int64_t now = NowMs();
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                return Error{options_.path + ": " + writer_.Describe(tx.begun())};
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO tokens (name, role, hash, created_at_ms) VALUES (?1, ?2, ?3, ?4)");
            {
                StatementUse use(stmt);
                BindText(stmt, 1, name);
                BindText(stmt, 2, role);
                const std::string hash = Sha256Hex(secret);
                BindText(stmt, 3, hash);
                sqlite3_bind_int64(stmt, 4, now);
                if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                    return Error{options_.path + ": " + writer_.Describe(rc)};
            }
            audit_.push_back({now, "ldisctl", "token.created", name,
                              boost::json::serialize(boost::json::object{{"role", role}})});
            if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
            return secret;
        });
    }

    std::optional<ApiToken> FindToken(std::string_view secret) const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(),
                           "SELECT id, name, role FROM tokens WHERE hash = ?1 AND revoked_at_ms IS "
                           "NULL",
                           -1, &stmt, nullptr);
        const std::string hash = Sha256Hex(secret);
        BindText(stmt, 1, hash);
        std::optional<ApiToken> out;
        if (sqlite3_step(stmt) == SQLITE_ROW)
            out = ApiToken{sqlite3_column_int64(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2)};
        sqlite3_finalize(stmt);
        return out;
    }

    std::vector<TokenRow> Tokens() const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(),
                           "SELECT t.id, t.name, t.role, t.created_at_ms, "
                           "coalesce(t.revoked_at_ms, 0), (SELECT count(*) FROM sessions s "
                           "WHERE s.token_id = t.id AND s.expires_at_ms > ?1) "
                           "FROM tokens t ORDER BY t.id",
                           -1, &stmt, nullptr);
        sqlite3_bind_int64(stmt, 1, NowMs());
        std::vector<TokenRow> out;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            out.push_back({sqlite3_column_int64(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2),
                           sqlite3_column_int64(stmt, 3), sqlite3_column_int64(stmt, 4),
                           sqlite3_column_int(stmt, 5)});
        }
        sqlite3_finalize(stmt);
        return out;
    }

    Result<int> RevokeToken(std::int64_t id, const std::string& actor) {
        return OnWriter<int>([&]() -> Result<int> {
            const std::int64_t now = NowMs();
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                return Error{options_.path + ": " + writer_.Describe(tx.begun())};
            std::string name;
            {
                sqlite3_stmt* stmt = writer_.Cached(
                    "UPDATE tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS "
                    "NULL RETURNING name");
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, id);
                sqlite3_bind_int64(stmt, 2, now);
                const int rc = sqlite3_step(stmt);
                if (rc == SQLITE_DONE)
                    return Error{"there is no live token " + std::to_string(id) +
                                 " (ldisctl tokens list shows them)"};
                if (rc != SQLITE_ROW) return Error{options_.path + ": " + writer_.Describe(rc)};
                name = ColumnText(stmt, 0);
            }
            int ended = 0;
            {
                sqlite3_stmt* stmt = writer_.Cached("DELETE FROM sessions WHERE token_id = ?1");
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, id);
                if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                    return Error{options_.path + ": " + writer_.Describe(rc)};
                ended = sqlite3_changes(writer_.get());
            }
            audit_.push_back({now, actor, "token.revoked", name,
                              boost::json::serialize(
                                  boost::json::object{{"token", id}, {"sessions_ended", ended}})});
            if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
            return ended;
        });
    }

    Result<int> CreateSession(const WebSession& session, std::size_t max_per_token,
                              std::size_t max_total) {
        return OnWriter<int>([&]() -> Result<int> {
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                return Error{options_.path + ": " + writer_.Describe(tx.begun())};
            const auto run = [&](const char* sql, auto bind) -> int {
                sqlite3_stmt* stmt = writer_.Cached(sql);
                StatementUse use(stmt);
                bind(stmt);
                return sqlite3_step(stmt);
            };
            int rc = run("DELETE FROM sessions WHERE expires_at_ms <= ?1", [&](sqlite3_stmt* st) {
                sqlite3_bind_int64(st, 1, session.created_at_ms);
            });
            if (rc == SQLITE_DONE)
                rc = run(
                    "INSERT INTO sessions (id_hash, token_id, csrf, created_at_ms, expires_at_ms) "
                    "VALUES (?1, ?2, ?3, ?4, ?5)",
                    [&](sqlite3_stmt* st) {
                        BindText(st, 1, session.id_hash);
                        sqlite3_bind_int64(st, 2, session.who.id);
                        BindText(st, 3, session.csrf);
                        sqlite3_bind_int64(st, 4, session.created_at_ms);
                        sqlite3_bind_int64(st, 5, session.expires_at_ms);
                    });
            // The table stays bounded: one key signed in on many browsers, or many keys,
            // end their oldest sessions first.
            if (rc == SQLITE_DONE)
                rc = run(
                    "DELETE FROM sessions WHERE token_id = ?1 AND id_hash NOT IN (SELECT id_hash "
                    "FROM sessions WHERE token_id = ?1 ORDER BY created_at_ms DESC LIMIT ?2)",
                    [&](sqlite3_stmt* st) {
                        sqlite3_bind_int64(st, 1, session.who.id);
                        sqlite3_bind_int64(st, 2, static_cast<std::int64_t>(max_per_token));
                    });
            if (rc == SQLITE_DONE)
                rc =
                    run("DELETE FROM sessions WHERE id_hash NOT IN (SELECT id_hash FROM sessions "
                        "ORDER BY created_at_ms DESC LIMIT ?1)",
                        [&](sqlite3_stmt* st) {
                            sqlite3_bind_int64(st, 1, static_cast<std::int64_t>(max_total));
                        });
            if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
            if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
            return 1;
        });
    }

    std::optional<WebSession> FindSession(std::string_view id_hash, std::int64_t now) const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(),
                           "SELECT s.id_hash, t.id, t.name, t.role, s.csrf, s.created_at_ms, "
                           "s.expires_at_ms FROM sessions s JOIN tokens t ON t.id = s.token_id "
                           "WHERE s.id_hash = ?1 AND s.expires_at_ms > ?2 AND t.revoked_at_ms IS "
                           "NULL",
                           -1, &stmt, nullptr);
        BindText(stmt, 1, id_hash);
        sqlite3_bind_int64(stmt, 2, now);
        std::optional<WebSession> out;
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            out = WebSession{
                ColumnText(stmt, 0),
                ApiToken{sqlite3_column_int64(stmt, 1), ColumnText(stmt, 2), ColumnText(stmt, 3)},
                ColumnText(stmt, 4), sqlite3_column_int64(stmt, 5), sqlite3_column_int64(stmt, 6)};
        }
        sqlite3_finalize(stmt);
        return out;
    }

    Result<int> EndSession(const std::string& id_hash, std::int64_t now) {
        return OnWriter<int>([&]() -> Result<int> {
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                return Error{options_.path + ": " + writer_.Describe(tx.begun())};
            sqlite3_stmt* stmt =
                writer_.Cached("DELETE FROM sessions WHERE id_hash = ?1 OR expires_at_ms <= ?2");
            int changed = 0;
            {
                StatementUse use(stmt);
                BindText(stmt, 1, id_hash);
                sqlite3_bind_int64(stmt, 2, now);
                if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                    return Error{options_.path + ": " + writer_.Describe(rc)};
                changed = sqlite3_changes(writer_.get());
            }
            if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
            return changed;
        });
    }

    void SetOutboxListener(std::function<void()> listener) {
        std::lock_guard lock(mutex_);
        outbox_listener_ = std::move(listener);
    }

    // Queues `job` for the writer thread and returns at once; false when closing.
    bool Post(std::function<void()> job) {
        {
            std::lock_guard lock(mutex_);
            if (closing_) return false;
            jobs_.push_back(std::move(job));
        }
        wake_.notify_one();
        return true;
    }

    // A claim only marks rows `sending`, and rows left `sending` are sent again at start
    // (RecoverInFlight), so a claim lost with the power changes nothing: it is committed
    // without waiting for the disk (synchronous=NORMAL in WAL still survives a crash of
    // ldisd), which takes one fsync off the path from a red report to its first email.
    // The next full commit's fsync covers it, as the WAL is written in order.
    void ClaimDue(std::int64_t now, std::size_t limit,
                  std::function<void(Result<std::vector<OutboxItem>>)> done) {
        if (!Post([this, now, limit, done] {
                const bool relax = options_.synchronous == Synchronous::kFull ||
                                   options_.synchronous == Synchronous::kExtra;
                if (relax)
                    sqlite3_exec(writer_.get(), "PRAGMA synchronous=NORMAL", nullptr, nullptr,
                                 nullptr);
                auto claimed = ClaimOnWriter(now, limit);
                if (relax)
                    sqlite3_exec(writer_.get(), SynchronousPragma(options_.synchronous), nullptr,
                                 nullptr, nullptr);
                done(std::move(claimed));
            }))
            done(Error{"the store is closing"});
    }

    void Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now,
                  std::function<void(Result<int>)> done) {
        auto shared = std::make_shared<std::vector<DeliveryOutcome>>(std::move(outcomes));
        if (!Post([this, shared, now, done] { done(CompleteOnWriter(*shared, now)); }))
            done(Error{"the store is closing"});
    }

    void EscalateDue(std::int64_t now, std::function<void(Result<int>)> done) {
        if (!Post([this, now, done] { done(EscalateOnWriter(now)); }))
            done(Error{"the store is closing"});
    }

    std::string Setting(const std::string& key) {
        auto value = OnWriter<std::string>([&]() -> Result<std::string> {
            sqlite3_stmt* stmt = writer_.Cached("SELECT value FROM settings WHERE key = ?1");
            StatementUse use(stmt);
            BindText(stmt, 1, key);
            return sqlite3_step(stmt) == SQLITE_ROW ? ColumnText(stmt, 0) : std::string();
        });
        return value.ok() ? value.value() : std::string();
    }

    Result<StoredReportRow> Reveal(const std::string& id, const std::string& actor,
                                   const std::string& reason) {
        auto row = Find(id);
        if (!row) return Error{"no report " + id};
        const auto written = OnWriter<int>([&]() -> Result<int> {
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                return Error{options_.path + ": " + writer_.Describe(tx.begun())};
            audit_.push_back({NowMs(), actor, "report.revealed", row->reference,
                              boost::json::serialize(boost::json::object{{"reason", reason}})});
            if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
            return 1;
        });
        if (!written.ok()) return written.error();
        return *row;
    }

    Result<int> PurgeFreeText(std::int64_t before_ms, std::int64_t now, const std::string& actor) {
        return OnWriter<int>([&]() -> Result<int> {
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                return Error{options_.path + ": " + writer_.Describe(tx.begun())};
            std::vector<std::pair<std::int64_t, std::string>> due;
            {
                sqlite3_stmt* stmt = writer_.Cached(
                    "SELECT seq, document FROM reports WHERE received_at_ms < ?1 AND "
                    "purged_at_ms IS NULL");
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, before_ms);
                int rc;
                while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
                    due.emplace_back(sqlite3_column_int64(stmt, 0), ColumnText(stmt, 1));
                if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
            }
            const std::string marker = "[removed after the retention period]";
            for (const auto& [seq, document] : due) {
                sqlite3_stmt* stmt = writer_.Cached(
                    "UPDATE reports SET document = ?2, purged_at_ms = ?3 WHERE seq = ?1");
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, seq);
                const std::string kept = WithoutFreeText(document, marker);
                BindText(stmt, 2, kept);
                sqlite3_bind_int64(stmt, 3, now);
                if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                    return Error{options_.path + ": " + writer_.Describe(rc)};
            }
            if (due.empty()) return 0;
            // The audit log names what was done, never the text: its chain still verifies.
            audit_.push_back(
                {now, actor, "reports.purged", "reports",
                 boost::json::serialize(boost::json::object{
                     {"count", due.size()}, {"received_before", IsoTimeMs(before_ms)}})});
            if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
            return static_cast<int>(due.size());
        });
    }

    Result<int> SetSetting(const std::string& key, const std::string& value) {
        return OnWriter<int>([&]() -> Result<int> {
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
            StatementUse use(stmt);
            BindText(stmt, 1, key);
            BindText(stmt, 2, value);
            const int rc = sqlite3_step(stmt);
            if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
            return 1;
        });
    }

    Result<int> RecoverInFlight(std::int64_t now) {
        return OnWriter<int>([&]() -> Result<int> {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE deliveries SET status = 'retrying', next_attempt_ms = ?1, updated_at_ms = "
                "?1, last_error = 'interrupted: ldisd stopped while sending' "
                "WHERE status = 'sending'");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, now);
            const int rc = sqlite3_step(stmt);
            if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
            return sqlite3_changes(writer_.get());
        });
    }

    Result<DeliveryRow> RequestUnsubscribe(std::int64_t delivery_id, std::int64_t now) {
        auto rows = DeliveryQuery("WHERE d.id = ?1", std::to_string(delivery_id));
        if (rows.empty()) return Error{"no delivery " + std::to_string(delivery_id)};
        const DeliveryRow row = rows.front();
        auto outcome = OnWriter<int>([&]() -> Result<int> {
            const auto g = CurrentGrading();
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                return Error{options_.path + ": " + writer_.Describe(tx.begun())};
            std::int64_t alert_id = 0;
            {
                // However often the link is posted, the coordinators hear of it once.
                sqlite3_stmt* stmt = writer_.Cached(
                    "UPDATE deliveries SET unsubscribe_requested_at_ms = ?2 WHERE id = ?1 AND "
                    "unsubscribe_requested_at_ms IS NULL RETURNING alert_id");
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, delivery_id);
                sqlite3_bind_int64(stmt, 2, now);
                const int rc = sqlite3_step(stmt);
                if (rc == SQLITE_DONE) return 0;  // asked before: nothing more to send
                if (rc != SQLITE_ROW) return Error{options_.path + ": " + writer_.Describe(rc)};
                alert_id = sqlite3_column_int64(stmt, 0);
            }
            const std::string detail =
                boost::json::serialize(boost::json::object{{"delivery", delivery_id},
                                                           {"partner", row.partner},
                                                           {"contact", row.contact},
                                                           {"address", row.address}});
            int rc = SQLITE_OK;
            if (g)
                rc = NoticeCoordinators(*g, alert_id, row.version, kKindUnsubscribe, now, detail);
            audit_.push_back({now, row.partner + "/" + row.contact, "unsubscribe.requested",
                              "delivery-" + std::to_string(delivery_id), detail});
            if (auto failed = Finish(tx, rc)) return *failed;
            return 1;
        });
        if (!outcome.ok()) return outcome.error();
        DeliveryRow out = row;
        out.unsubscribe_already_requested = outcome.value() == 0;
        return out;
    }

    Result<DeliveryRow> Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                    std::int64_t now) {
        const std::string who(actor);
        auto outcome = OnWriter<int>([&]() -> Result<int> {
            Transaction tx(writer_);
            if (tx.begun() != SQLITE_OK)
                return Error{options_.path + ": " + writer_.Describe(tx.begun())};
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE deliveries SET acknowledged_at_ms = ?2 WHERE id = ?1 AND "
                "acknowledged_at_ms IS NULL");
            int changed = 0;
            {
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, delivery_id);
                sqlite3_bind_int64(stmt, 2, now);
                if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                    return Error{options_.path + ": " + writer_.Describe(rc)};
                changed = sqlite3_changes(writer_.get());
            }
            if (changed == 0) return 0;
            audit_.push_back({now, who, "delivery.acknowledged",
                              "delivery-" + std::to_string(delivery_id), "{}"});
            if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
            return changed;
        });
        if (!outcome.ok()) return outcome.error();
        auto rows = DeliveryQuery("WHERE d.id = ?1", std::to_string(delivery_id));
        if (rows.empty()) return Error{"no delivery " + std::to_string(delivery_id)};
        return rows.front();
    }

    std::vector<DeliveryRow> DeliveryQuery(const std::string& where, const std::string& key) const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        const std::string sql =
            "SELECT d.id, a.reference, d.version, d.kind, d.partner, d.contact, d.channel, "
            "d.address, d.status, d.attempts, d.created_at_ms, d.updated_at_ms, "
            "coalesce(d.delivered_at_ms, 0), coalesce(d.acknowledged_at_ms, 0), "
            "coalesce(d.fallback_of, 0), coalesce(d.last_error, ''), v.level "
            "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "JOIN alert_versions v ON v.alert_id = d.alert_id AND v.version = d.version " +
            where + " ORDER BY d.id";
        if (sqlite3_prepare_v2(reader_->get(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
            return {};
        if (!key.empty()) BindText(stmt, 1, key);
        std::vector<DeliveryRow> out;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            DeliveryRow r;
            r.id = sqlite3_column_int64(stmt, 0);
            r.reference = ColumnText(stmt, 1);
            r.version = sqlite3_column_int(stmt, 2);
            r.kind = ColumnText(stmt, 3);
            r.partner = ColumnText(stmt, 4);
            r.contact = ColumnText(stmt, 5);
            r.channel = ColumnText(stmt, 6);
            r.address = ColumnText(stmt, 7);
            r.status = ColumnText(stmt, 8);
            r.attempts = sqlite3_column_int(stmt, 9);
            r.created_at_ms = sqlite3_column_int64(stmt, 10);
            r.updated_at_ms = sqlite3_column_int64(stmt, 11);
            r.delivered_at_ms = sqlite3_column_int64(stmt, 12);
            r.acknowledged_at_ms = sqlite3_column_int64(stmt, 13);
            r.fallback_of = sqlite3_column_int64(stmt, 14);
            r.last_error = ColumnText(stmt, 15);
            r.level = ColumnText(stmt, 16);
            out.push_back(std::move(r));
        }
        sqlite3_finalize(stmt);
        return out;
    }

    std::optional<std::int64_t> NextDueMs() const {
        const std::int64_t n = CountOf(
            "SELECT coalesce(min(next_attempt_ms), -1) FROM deliveries "
            "WHERE status IN ('queued','retrying')");
        if (n < 0) return std::nullopt;
        return n;
    }

    std::map<std::string, std::int64_t> DeliveryCounts() const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(),
                           "SELECT status, count(*) FROM deliveries GROUP BY status", -1, &stmt,
                           nullptr);
        std::map<std::string, std::int64_t> out;
        while (sqlite3_step(stmt) == SQLITE_ROW)
            out[ColumnText(stmt, 0)] = sqlite3_column_int64(stmt, 1);
        sqlite3_finalize(stmt);
        return out;
    }

    const std::string& AckKey() const { return ack_key_; }

    ReportStore::Counts CountAll() const {
        ReportStore::Counts out;
        std::lock_guard lock(reader_mutex_);
        const auto pairs = [&](const char* sql, std::map<std::string, std::int64_t>& into) {
            sqlite3_stmt* stmt = nullptr;
            sqlite3_prepare_v2(reader_->get(), sql, -1, &stmt, nullptr);
            while (sqlite3_step(stmt) == SQLITE_ROW)
                into[ColumnText(stmt, 0) + "/" + ColumnText(stmt, 1)] =
                    sqlite3_column_int64(stmt, 2);
            sqlite3_finalize(stmt);
        };
        pairs("SELECT level, status, count(*) FROM alerts GROUP BY level, status", out.alerts);
        pairs("SELECT channel, status, count(*) FROM deliveries GROUP BY channel, status",
              out.deliveries);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(),
                           "SELECT count(*), coalesce(max(received_at_ms), 0) FROM reports", -1,
                           &stmt, nullptr);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            out.reports = sqlite3_column_int64(stmt, 0);
            out.last_report_ms = sqlite3_column_int64(stmt, 1);
        }
        sqlite3_finalize(stmt);
        sqlite3_prepare_v2(
            reader_->get(),
            "SELECT count(DISTINCT d.alert_id) FROM deliveries d JOIN alerts a ON a.id = "
            "d.alert_id WHERE a.level = 'red' AND a.status IN ('issued','updated') AND d.kind = "
            "'alert' AND d.ack_due_ms IS NOT NULL AND d.ack_due_ms <= ?1 AND NOT EXISTS (SELECT "
            "1 FROM deliveries x WHERE x.alert_id = d.alert_id AND x.partner = d.partner AND "
            "x.acknowledged_at_ms IS NOT NULL)",
            -1, &stmt, nullptr);
        sqlite3_bind_int64(stmt, 1, NowMs());
        if (sqlite3_step(stmt) == SQLITE_ROW)
            out.red_unacknowledged_overdue = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        // The file system the database is on: a full disk stops ldisd taking reports.
        std::string folder = options_.path;
        const auto slash = folder.rfind('/');
        folder = slash == std::string::npos ? "." : slash == 0 ? "/" : folder.substr(0, slash);
        struct statvfs fs {};
        if (::statvfs(folder.c_str(), &fs) == 0) {
            out.disk_free_bytes =
                static_cast<std::int64_t>(fs.f_bavail) * static_cast<std::int64_t>(fs.f_frsize);
            out.disk_size_bytes =
                static_cast<std::int64_t>(fs.f_blocks) * static_cast<std::int64_t>(fs.f_frsize);
        }
        return out;
    }

    void SetGrading(std::shared_ptr<const GradingSetup> grading) {
        std::lock_guard lock(mutex_);
        grading_ = std::move(grading);
    }
    std::shared_ptr<const GradingSetup> GradingInUse() const { return CurrentGrading(); }
    const std::string& FilePath() const { return options_.path; }

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
                                       std::size_t limit, std::int64_t number = -1) const {
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
            sqlite3_bind_int64(stmt, 2, number >= 0 ? number : static_cast<sqlite3_int64>(limit));
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

    std::vector<StoredAlert> Alerts(std::string_view reference) const {
        AlertFilter f;
        f.reference = std::string(reference);
        f.limit = reference.empty() ? 1000000 : 1;
        return FindAlerts(f).alerts;
    }

    AlertPage FindAlerts(const AlertFilter& f) const {
        std::string where = " WHERE 1=1";
        std::vector<std::string> texts;
        const auto text = [&](const std::string& value, const char* clause) {
            if (value.empty()) return;
            texts.push_back(value);
            where += std::string(" AND ") + clause + " ?" + std::to_string(texts.size());
        };
        text(f.reference, "a.reference =");
        text(f.level, "a.level =");
        text(f.status, "a.status =");
        text(f.authority, "s.authority =");
        text(f.district, "s.district =");
        text(f.family, "s.family =");
        if (!f.q.empty()) {
            texts.push_back("%" + f.q + "%");
            where += " AND (v.body LIKE ?" + std::to_string(texts.size()) +
                     " OR a.reference LIKE ?" + std::to_string(texts.size()) + ")";
        }
        if (f.since_ms > 0) where += " AND a.updated_at_ms >= " + std::to_string(f.since_ms);
        if (f.until_ms > 0) where += " AND a.updated_at_ms < " + std::to_string(f.until_ms);
        const std::string from =
            " FROM alerts a JOIN signals s ON s.id = a.signal_id "
            "JOIN alert_versions v ON v.alert_id = a.id AND v.version = a.version";
        std::lock_guard lock(reader_mutex_);
        AlertPage page;
        const auto bind = [&](sqlite3_stmt* stmt) {
            for (std::size_t i = 0; i < texts.size(); ++i)
                BindText(stmt, static_cast<int>(i + 1), texts[i]);
        };
        sqlite3_stmt* stmt = nullptr;
        const std::string count_sql = "SELECT count(*)" + from + where;
        sqlite3_prepare_v2(reader_->get(), count_sql.c_str(), -1, &stmt, nullptr);
        bind(stmt);
        if (sqlite3_step(stmt) == SQLITE_ROW) page.total = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        const std::string sql =
            "SELECT a.reference, a.signal_id, a.status, a.level, a.confidence, a.audience, "
            "a.version, a.provisional, s.family, s.district, v.rules, v.scrubbed, v.body, "
            "(SELECT count(*) FROM signal_reports sr WHERE sr.signal_id = a.signal_id), "
            "s.authority, a.created_at_ms, a.updated_at_ms, coalesce(a.issued_at_ms, 0), "
            "coalesce(a.valid_until_ms, 0), s.level, coalesce(s.override_level, ''), "
            "coalesce(s.override_reason, ''), coalesce(s.override_by, ''), "
            "coalesce(s.override_at_ms, 0)" +
            from + where + " ORDER BY a.id DESC LIMIT " + std::to_string(f.limit) + " OFFSET " +
            std::to_string(f.offset);
        sqlite3_prepare_v2(reader_->get(), sql.c_str(), -1, &stmt, nullptr);
        bind(stmt);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            StoredAlert a;
            a.reference = ColumnText(stmt, 0);
            a.signal_id = sqlite3_column_int64(stmt, 1);
            a.status = ColumnText(stmt, 2);
            a.level = ColumnText(stmt, 3);
            a.confidence = ColumnText(stmt, 4);
            a.audience = ColumnText(stmt, 5);
            a.version = sqlite3_column_int(stmt, 6);
            a.provisional = sqlite3_column_int(stmt, 7) != 0;
            a.family = ColumnText(stmt, 8);
            a.district = ColumnText(stmt, 9);
            boost::json::error_code ec;
            const auto rules = boost::json::parse(ColumnText(stmt, 10), ec);
            if (!ec && rules.is_array()) {
                for (const auto& r : rules.as_array()) a.rules.emplace_back(r.at("id").as_string());
            }
            a.scrubbed = sqlite3_column_int(stmt, 11);
            a.body = ColumnText(stmt, 12);
            a.reports = sqlite3_column_int(stmt, 13);
            a.authority = ColumnText(stmt, 14);
            a.created_at_ms = sqlite3_column_int64(stmt, 15);
            a.updated_at_ms = sqlite3_column_int64(stmt, 16);
            a.issued_at_ms = sqlite3_column_int64(stmt, 17);
            a.valid_until_ms = sqlite3_column_int64(stmt, 18);
            a.override.signal_id = a.signal_id;
            a.override.rules_level = ColumnText(stmt, 19);
            a.override.level = ColumnText(stmt, 20);
            a.override.reason = ColumnText(stmt, 21);
            a.override.by = ColumnText(stmt, 22);
            a.override.at_ms = sqlite3_column_int64(stmt, 23);
            page.alerts.push_back(std::move(a));
        }
        sqlite3_finalize(stmt);
        return page;
    }

    std::optional<AlertRecord> FindAlertRecord(std::string_view reference) const {
        auto alerts = Alerts(reference);
        if (alerts.empty()) return std::nullopt;
        AlertRecord record;
        record.alert = std::move(alerts.front());
        const std::string ref(reference);
        {
            std::lock_guard lock(reader_mutex_);
            sqlite3_stmt* stmt = nullptr;
            sqlite3_prepare_v2(
                reader_->get(),
                "SELECT v.version, v.status, v.level, v.confidence, v.rules, v.body, "
                "v.created_at_ms FROM alert_versions v JOIN alerts a ON a.id = "
                "v.alert_id WHERE a.reference = ?1 ORDER BY v.version",
                -1, &stmt, nullptr);
            BindText(stmt, 1, ref);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                record.versions.push_back({sqlite3_column_int(stmt, 0), ColumnText(stmt, 1),
                                           ColumnText(stmt, 2), ColumnText(stmt, 3),
                                           ColumnText(stmt, 4), ColumnText(stmt, 5),
                                           sqlite3_column_int64(stmt, 6)});
            }
            sqlite3_finalize(stmt);
            sqlite3_prepare_v2(
                reader_->get(),
                "SELECT seq, at_ms, actor, action, subject, detail FROM audit WHERE subject = ?1 "
                "OR subject = ?2 OR subject IN (SELECT 'delivery-' || d.id FROM deliveries d JOIN "
                "alerts a ON a.id = d.alert_id WHERE a.reference = ?1) ORDER BY seq",
                -1, &stmt, nullptr);
            BindText(stmt, 1, ref);
            const std::string signal = "signal-" + std::to_string(record.alert.signal_id);
            BindText(stmt, 2, signal);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                record.audit.push_back({sqlite3_column_int64(stmt, 0),
                                        sqlite3_column_int64(stmt, 1), ColumnText(stmt, 2),
                                        ColumnText(stmt, 3), ColumnText(stmt, 4),
                                        ColumnText(stmt, 5)});
            }
            sqlite3_finalize(stmt);
        }
        record.reports = Query(
            "WHERE seq IN (SELECT report_seq FROM signal_reports WHERE signal_id = ?2) ORDER BY "
            "seq",
            {}, 100000, record.alert.signal_id);
        record.deliveries = DeliveryQuery("WHERE a.reference = ?1", ref);
        return record;
    }

    std::int64_t CountSignals() const { return CountOf("SELECT count(*) FROM signals"); }

    Result<std::int64_t> VerifyAudit() const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(),
                           "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash "
                           "FROM audit ORDER BY seq",
                           -1, &stmt, nullptr);
        std::string prev(64, '0');
        std::int64_t expected_seq = 1;
        std::int64_t n = 0;
        std::string problem;
        while (problem.empty() && sqlite3_step(stmt) == SQLITE_ROW) {
            const std::int64_t seq = sqlite3_column_int64(stmt, 0);
            const std::string action = ColumnText(stmt, 3);
            const std::string subject = ColumnText(stmt, 4);
            const std::string name =
                "audit entry " + std::to_string(seq) + " (" + action + " " + subject + ")";
            if (seq != expected_seq) {
                problem = "audit entry " + std::to_string(expected_seq) +
                          " is missing (the next is " + std::to_string(seq) + ")";
            } else if (ColumnText(stmt, 6) != prev) {
                problem = name + " does not follow the entry before it: its prev_hash was changed";
            } else if (AuditHash(prev, seq, sqlite3_column_int64(stmt, 1), ColumnText(stmt, 2),
                                 action, subject, ColumnText(stmt, 5)) != ColumnText(stmt, 7)) {
                problem = name + " does not match its hash: it was changed after it was written";
            }
            prev = ColumnText(stmt, 7);
            ++expected_seq;
            ++n;
        }
        sqlite3_finalize(stmt);
        if (!problem.empty()) return Error{problem};
        return n;
    }

    std::int64_t Count() const { return CountOf("SELECT count(*) FROM reports"); }

    // One number from the reader connection, or -1.
    std::int64_t CountOf(const char* sql) const {
        std::lock_guard lock(reader_mutex_);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(reader_->get(), sql, -1, &stmt, nullptr);
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

    // Reports and jobs take turns: a batch of reports, then one job. Reports wait for
    // their acknowledgement, so a busy outbox must never hold them back.
    void Run() {
        std::vector<Pending*> batch;
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [this] { return closing_ || !queue_.empty() || !jobs_.empty(); });
                if (queue_.empty() && jobs_.empty()) return;  // closing, nothing left to do
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
                    results.push_back({r.id, reference, false, {}, {}});
                    const std::int64_t seq = next_seq_++;
                    audit_.push_back({now, "ldisd", "report.accepted", reference,
                                      "{\"id\":\"" + r.id + "\",\"channel\":\"" +
                                          std::string(batch[i]->channel) + "\"}"});
                    if (batch_grading_)
                        rc = GradeNew(r, seq, reference, now, *batch_grading_, results.back());
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
            if (rc == SQLITE_OK) rc = tx.Commit();
            if (rc != SQLITE_OK) failure = writer_.Describe(rc);
        }
        if (!failure.empty()) {
            next_seq_ = first_seq;
            audit_.clear();
            outbox_added_ = 0;
            LoadLastAuditHash();
            for (auto* p : batch) p->promise.set_value(Error{options_.path + ": " + failure});
            return;
        }
        for (std::size_t i = 0; i < batch.size(); ++i)
            batch[i]->promise.set_value(std::move(results[i]));
        NotifyOutbox();
    }

    // The latest version's rules and facts, copied into a new version row.
    int AddVersion(std::int64_t alert_id, int version, std::string_view status, std::int64_t now) {
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO alert_versions (alert_id, version, status, level, confidence, rules, "
            "facts, body, "
            "scrubbed, created_at_ms) "
            "SELECT alert_id, ?2, ?3, level, confidence, rules, facts, body, scrubbed, ?4 FROM "
            "alert_versions "
            "WHERE alert_id = ?1 ORDER BY version DESC LIMIT 1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        sqlite3_bind_int(stmt, 2, version);
        BindText(stmt, 3, status);
        sqlite3_bind_int64(stmt, 4, now);
        const int rc = sqlite3_step(stmt);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
    }

    // Sets (level) or lifts (level "") a coordinator's override of a signal's level, and
    // makes the signal's alert follow: a new version at the level now shown, by policy (a
    // red goes out at once; an amber is a draft to approve), or a new alert. The override
    // holds when new reports grade the signal again, until it is lifted. Audited with the
    // reason and what the rules give.
    Result<SignalOverride> OverrideOnWriter(std::int64_t signal_id, const std::string& level,
                                            const std::string& reason, const std::string& actor) {
        const auto g = CurrentGrading();
        if (!g) return Error{"grading is not set up in this store"};
        const std::int64_t now = NowMs();
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        const auto failed = [&](int rc) {
            return Error{options_.path + ": " + writer_.Describe(rc)};
        };
        SignalOverride before;
        if (const int rc = ReadOverride(signal_id, before); rc == SQLITE_NOTFOUND)
            return Error{"there is no signal " + std::to_string(signal_id)};
        else if (rc != SQLITE_OK)
            return failed(rc);
        if (level.empty() && before.level.empty())
            return Error{"signal " + std::to_string(signal_id) +
                         " has no override to lift: the rules set its level"};
        std::string authority, district, facts_text, live_reference, live_level;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT authority, district, facts, (SELECT reference FROM alerts WHERE "
                "signal_id = ?1 AND status IN ('draft','issued','updated') ORDER BY id DESC "
                "LIMIT 1), (SELECT level FROM alerts WHERE signal_id = ?1 AND status IN "
                "('draft','issued','updated') ORDER BY id DESC LIMIT 1) FROM signals WHERE id = "
                "?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, signal_id);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_ROW) return failed(rc);
            authority = ColumnText(stmt, 0);
            district = ColumnText(stmt, 1);
            facts_text = ColumnText(stmt, 2);
            live_reference = ColumnText(stmt, 3);
            live_level = ColumnText(stmt, 4);
        }
        if (level == "none" && !live_reference.empty())
            return Error{"signal " + std::to_string(signal_id) + " has the live alert " +
                         live_reference + ": to take it down, cancel it (POST /api/v1/alerts/" +
                         live_reference + "/cancel); an override may lower it to green"};
        // The rules may have changed since the last report: grade again, as a replay would.
        const SignalFacts facts = FactsFromJson(facts_text);
        const Grade grade = g->rules.Apply(facts);
        const std::string rules_level(ToString(grade.level));
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE signals SET override_level = nullif(?2, ''), override_reason = "
                "nullif(?3, ''), override_by = nullif(?4, ''), override_at_ms = CASE WHEN ?2 = '' "
                "THEN NULL ELSE ?5 END, level = ?6, confidence = ?7 WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, signal_id);
            // BindText does not copy: each value must outlive the step.
            const std::string kept_reason = level.empty() ? std::string() : reason;
            const std::string kept_by = level.empty() ? std::string() : actor;
            BindText(stmt, 2, level);
            BindText(stmt, 3, kept_reason);
            BindText(stmt, 4, kept_by);
            sqlite3_bind_int64(stmt, 5, now);
            BindText(stmt, 6, rules_level);
            BindText(stmt, 7, grade.confidence);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return failed(rc);
        }
        const std::string signal_ref = "signal-" + std::to_string(signal_id);
        audit_.push_back(
            {now, actor, level.empty() ? "signal.override_lifted" : "signal.overridden", signal_ref,
             boost::json::serialize(boost::json::object{
                 {"level", level.empty() ? rules_level : level},
                 {"reason", reason},
                 {"rules_level", rules_level},
                 {"was", before.level.empty() ? before.rules_level : before.level}})});
        SignalOverride held;
        held.signal_id = signal_id;
        held.level = level;
        held.reason = level.empty() ? std::string() : reason;
        held.by = level.empty() ? std::string() : actor;
        held.at_ms = level.empty() ? 0 : now;
        held.rules_level = rules_level;
        Grade shown = WithOverride(grade, held);
        const std::string shown_level(ToString(shown.level));
        held.alert_reference = live_reference;
        if (shown_level != (live_reference.empty() ? std::string("none") : live_level)) {
            AlertRevision rv;
            rv.signal_id = signal_id;
            rv.signal_ref = signal_ref;
            rv.level = shown_level;
            rv.rules_text = RulesJson(shown);
            rv.grade = std::move(shown);
            rv.facts = facts;
            rv.facts_text = facts_text;
            if (const int rc = LatestDocuments(signal_id, rv.documents); rc != SQLITE_OK)
                return failed(rc);
            rv.authority = authority;
            rv.district = district;
            rv.trusted = true;  // a coordinator
            rv.actor = actor;
            if (const int rc = ReviseAlert(rv, *g, now, held.alert_reference); rc != SQLITE_OK)
                return failed(rc);
        }
        if (auto error = Finish(tx, SQLITE_OK)) return *error;
        return held;
    }

    Result<std::string> ActOnWriter(const std::string& reference, AlertAction action,
                                    const std::string& actor, const AlertWording& wording = {}) {
        const std::int64_t now = NowMs();
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        std::int64_t alert_id = 0;
        std::string status_text;
        int version = 0;
        bool provisional = false;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT id, status, version, provisional FROM alerts WHERE reference = ?1");
            StatementUse use(stmt);
            BindText(stmt, 1, reference);
            if (sqlite3_step(stmt) != SQLITE_ROW) return Error{"no alert " + reference};
            alert_id = sqlite3_column_int64(stmt, 0);
            status_text = ColumnText(stmt, 1);
            version = sqlite3_column_int(stmt, 2);
            provisional = sqlite3_column_int(stmt, 3) != 0;
        }
        AlertStatus from = AlertStatus::kDraft;
        ParseAlertStatus(status_text, from);
        std::string audit_action;
        AlertStatus to = from;
        if (action == AlertAction::kApprove && from != AlertStatus::kDraft && IsLive(from) &&
            provisional) {
            audit_action = "alert.confirmed";  // a provisional red alert confirmed by a coordinator
        } else {
            auto next = Transition(reference, from, action);
            if (!next.ok()) return next.error();
            to = next.value();
            audit_action = "alert." + std::string(ToString(action) == "approve"  ? "approved"
                                                  : ToString(action) == "cancel" ? "cancelled"
                                                  : ToString(action) == "expire" ? "expired"
                                                                                 : "updated");
        }
        const int new_version = version + 1;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE alerts SET status = ?2, version = ?3, updated_at_ms = ?4, provisional = 0, "
                "issued_at_ms = coalesce(issued_at_ms, CASE WHEN ?2 = 'issued' THEN ?4 END), "
                "valid_until_ms = coalesce(valid_until_ms, CASE WHEN ?2 = 'issued' THEN ?4 + ?5 "
                "END) "
                "WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, alert_id);
            BindText(stmt, 2, ToString(to));
            sqlite3_bind_int(stmt, 3, new_version);
            sqlite3_bind_int64(stmt, 4, now);
            std::shared_ptr<const GradingSetup> g;
            {
                std::lock_guard lock(mutex_);
                g = grading_;
            }
            sqlite3_bind_int64(stmt, 5, g ? g->valid_for_ms : 365LL * 24 * 3600 * 1000);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
                return Error{options_.path + ": " + writer_.Describe(rc)};
            }
        }
        if (const int rc = AddVersion(alert_id, new_version, ToString(to), now); rc != SQLITE_OK) {
            return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        boost::json::array worded;
        if (!wording.sections.empty()) {
            if (action == AlertAction::kCancel || action == AlertAction::kExpire)
                return Error{"the wording of " + reference + " changes with an update, not a " +
                             std::string(ToString(action))};
            boost::json::object words;
            for (const auto& [name, text] : wording.sections) {
                const auto& allowed = WordingSections();
                if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
                    return Error{"\"" + name +
                                 "\" is not a section a coordinator writes; choose "
                                 "what, harms or advice"};
                if (text.empty() || text.size() > 4000)
                    return Error{"the " + name + " section must be 1 to 4,000 characters"};
                words[name] = text;
                worded.emplace_back(name);
            }
            // Merged into what earlier coordinators wrote, then into this version's body.
            sqlite3_stmt* read = writer_.Cached("SELECT wording FROM alerts WHERE id = ?1");
            std::string merged = boost::json::serialize(words);
            {
                StatementUse use(read);
                sqlite3_bind_int64(read, 1, alert_id);
                if (sqlite3_step(read) == SQLITE_ROW) {
                    boost::json::error_code ec;
                    auto old = boost::json::parse(ColumnText(read, 0), ec);
                    if (!ec && old.is_object()) {
                        for (const auto& [k, v] : words) old.as_object()[k] = v;
                        merged = boost::json::serialize(old);
                    }
                }
            }
            sqlite3_stmt* save = writer_.Cached("UPDATE alerts SET wording = ?2 WHERE id = ?1");
            {
                StatementUse use(save);
                sqlite3_bind_int64(save, 1, alert_id);
                BindText(save, 2, merged);
                if (const int rc = sqlite3_step(save); rc != SQLITE_DONE)
                    return Error{options_.path + ": " + writer_.Describe(rc)};
            }
            sqlite3_stmt* body = writer_.Cached(
                "UPDATE alert_versions SET body = ?3 WHERE alert_id = ?1 AND version = ?2");
            std::string current;
            {
                sqlite3_stmt* get = writer_.Cached(
                    "SELECT body FROM alert_versions WHERE alert_id = ?1 AND version = ?2");
                StatementUse use(get);
                sqlite3_bind_int64(get, 1, alert_id);
                sqlite3_bind_int(get, 2, new_version);
                if (sqlite3_step(get) == SQLITE_ROW) current = ColumnText(get, 0);
            }
            {
                StatementUse use(body);
                sqlite3_bind_int64(body, 1, alert_id);
                sqlite3_bind_int(body, 2, new_version);
                const std::string worded_body = WithWording(current, merged);
                BindText(body, 3, worded_body);
                if (const int rc = sqlite3_step(body); rc != SQLITE_DONE)
                    return Error{options_.path + ": " + writer_.Describe(rc)};
            }
        }
        outbox_added_ = 0;
        if (const auto g = CurrentGrading(); g && action != AlertAction::kExpire) {
            VersionRoute route;
            route.alert_id = alert_id;
            route.version = new_version;
            route.status = std::string(ToString(to));
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT a.level, a.audience, s.authority, s.district FROM alerts a JOIN signals s "
                "ON s.id = a.signal_id WHERE a.id = ?1");
            {
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, alert_id);
                if (sqlite3_step(stmt) == SQLITE_ROW) {
                    route.level = ColumnText(stmt, 0);
                    route.audience = ColumnText(stmt, 1);
                    route.authority = ColumnText(stmt, 2);
                    route.district = ColumnText(stmt, 3);
                }
            }
            int rc = QueueDeliveries(route, *g, now);
            if (rc == SQLITE_OK) rc = MarkRouted(alert_id, new_version, now);
            if (rc != SQLITE_OK) {
                outbox_added_ = 0;
                return Error{options_.path + ": " + writer_.Describe(rc)};
            }
        }
        boost::json::object detail{{"from", std::string(ToString(from))},
                                   {"to", std::string(ToString(to))},
                                   {"version", new_version}};
        if (!worded.empty()) {
            detail["wording"] = std::move(worded);  // which sections, never their text
            detail["sent_despite_findings"] = wording.confirmed_findings;
        }
        audit_.push_back({now, actor, audit_action, reference, boost::json::serialize(detail)});
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return std::string(ToString(to));
    }

    Result<std::vector<std::string>> ExpireOnWriter(std::int64_t now) {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        std::vector<std::pair<std::int64_t, std::pair<std::string, int>>> due;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT id, reference, version FROM alerts WHERE status IN ('issued','updated') "
                "AND valid_until_ms IS NOT NULL AND valid_until_ms < ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, now);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                due.push_back({sqlite3_column_int64(stmt, 0),
                               {ColumnText(stmt, 1), sqlite3_column_int(stmt, 2)}});
            }
        }
        std::vector<std::string> expired;
        int rc = SQLITE_OK;
        for (const auto& [id, ref_version] : due) {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE alerts SET status = 'expired', version = ?2, updated_at_ms = ?3 WHERE id = "
                "?1");
            {
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, id);
                sqlite3_bind_int(stmt, 2, ref_version.second + 1);
                sqlite3_bind_int64(stmt, 3, now);
                rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            }
            if (rc == SQLITE_OK) rc = AddVersion(id, ref_version.second + 1, "expired", now);
            if (rc != SQLITE_OK) break;
            audit_.push_back({now, "ldisd", "alert.expired", ref_version.first,
                              "{\"version\":" + std::to_string(ref_version.second + 1) + "}"});
            expired.push_back(ref_version.first);
        }
        if (auto failed = Finish(tx, rc)) return *failed;
        return expired;
    }

    void LoadLastAuditHash() {
        sqlite3_stmt* stmt =
            writer_.Cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
        StatementUse use(stmt);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            last_audit_seq_ = sqlite3_column_int64(stmt, 0);
            last_audit_hash_ = ColumnText(stmt, 1);
        } else {
            last_audit_seq_ = 0;
            last_audit_hash_ = std::string(64, '0');
        }
    }

    // Appends the transaction's audit entries to the hash chain. The chain's end is read
    // inside the transaction, so another process (ldisctl) may append too.
    int FlushAudit() {
        if (!audit_.empty()) LoadLastAuditHash();
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO audit (seq, at_ms, actor, action, subject, detail, prev_hash, hash) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
        for (const auto& e : audit_) {
            const std::int64_t seq = last_audit_seq_ + 1;
            const std::string hash =
                AuditHash(last_audit_hash_, seq, e.at_ms, e.actor, e.action, e.subject, e.detail);
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, seq);
            sqlite3_bind_int64(stmt, 2, e.at_ms);
            BindText(stmt, 3, e.actor);
            BindText(stmt, 4, e.action);
            BindText(stmt, 5, e.subject);
            BindText(stmt, 6, e.detail);
            BindText(stmt, 7, last_audit_hash_);
            BindText(stmt, 8, hash);
            const int rc = sqlite3_step(stmt);
            if (rc != SQLITE_DONE) return rc;
            last_audit_seq_ = seq;
            last_audit_hash_ = hash;
        }
        audit_.clear();
        return SQLITE_OK;
    }

    // For a duplicate: the grade of the signal its first copy joined.
    void GradeOf(const std::string& id, StoredReport& out) {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT s.level, (SELECT a.reference FROM alerts a WHERE a.signal_id = s.id "
            "AND a.status IN ('draft','issued','updated') ORDER BY a.id DESC LIMIT 1) "
            "FROM reports r JOIN signal_reports sr ON sr.report_seq = r.seq JOIN signals s ON s.id "
            "= sr.signal_id "
            "WHERE r.id = ?1");
        StatementUse use(stmt);
        BindText(stmt, 1, id);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            out.level = ColumnText(stmt, 0);
            out.alert_reference = ColumnText(stmt, 1);
        }
    }

    // Correlates a new report into its signal, grades the signal again on all its
    // reports, and creates or revises the signal's one live alert, by policy. Runs in
    // the transaction that stores the report. Returns an SQLite code.
    int GradeNew(const Report& r, std::int64_t seq, const std::string& reference, std::int64_t now,
                 const GradingSetup& g, StoredReport& out) {
        const SignalFacts own = FactsOf({r.document}, g.substances);
        // The same word the grading panel's table correlates on (panel.hpp).
        const std::string family =
            own.family.empty() ? CorrelationFamily(r.document, g.substances) : own.family;
        std::int64_t seen = ParseTimeMs(r.observed_at.empty() ? r.submitted_at : r.observed_at);
        if (seen < 0) seen = now;

        std::int64_t signal_id = 0;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT id FROM signals WHERE family = ?1 AND district = ?2 AND last_seen_ms >= ?3 "
                "AND first_seen_ms <= ?4 ORDER BY id DESC LIMIT 1");
            StatementUse use(stmt);
            BindText(stmt, 1, family);
            BindText(stmt, 2, r.district);
            sqlite3_bind_int64(stmt, 3, seen - g.window_ms);
            sqlite3_bind_int64(stmt, 4, seen + g.window_ms);
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_ROW)
                signal_id = sqlite3_column_int64(stmt, 0);
            else if (rc != SQLITE_DONE)
                return rc;
        }
        if (signal_id == 0) {
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO signals (family, authority, district, opened_at_ms, first_seen_ms, "
                "last_seen_ms) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?5)");
            StatementUse use(stmt);
            BindText(stmt, 1, family);
            BindText(stmt, 2, r.authority);
            BindText(stmt, 3, r.district);
            sqlite3_bind_int64(stmt, 4, now);
            sqlite3_bind_int64(stmt, 5, seen);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
            signal_id = sqlite3_last_insert_rowid(writer_.get());
        } else {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE signals SET first_seen_ms = min(first_seen_ms, ?2), last_seen_ms = "
                "max(last_seen_ms, ?2) "
                "WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, signal_id);
            sqlite3_bind_int64(stmt, 2, seen);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
        }
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO signal_reports (signal_id, report_seq) VALUES (?1, ?2)");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, signal_id);
            sqlite3_bind_int64(stmt, 2, seq);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
        }
        // The signal's facts grow by this report's: no re-reading of every report.
        bool new_source = false;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT OR IGNORE INTO signal_sources (signal_id, organisation) VALUES (?1, ?2)");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, signal_id);
            BindText(stmt, 2, r.organisation);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
            new_source = sqlite3_changes(writer_.get()) == 1;
        }
        SignalFacts facts = own;
        // The signal's facts so far, and a coordinator's override, which holds until lifted.
        SignalOverride held;
        {
            std::string stored;
            if (const int rc = ReadOverride(signal_id, held, &stored); rc != SQLITE_OK) return rc;
            const SignalFacts before = FactsFromJson(stored);
            if (!before.numbers.empty()) {
                facts = Merge(before, own, g.substances);
                facts.numbers["sources"] = before.numbers.at("sources") + (new_source ? 1 : 0);
            }
        }
        // The latest reports give the lists in the alert text (substances, symptoms).
        std::vector<std::string> documents;
        if (const int rc = LatestDocuments(signal_id, documents); rc != SQLITE_OK) return rc;
        const Grade grade = g.rules.Apply(facts);
        const std::string level(ToString(grade.level));
        boost::json::array fired;
        for (const auto& f : grade.fired) {
            fired.push_back(
                {{"id", f.id}, {"level", std::string(ToString(f.level))}, {"reason", f.reason}});
        }
        const std::string facts_text = FactsToJson(facts);  // the signal row and the version row
        const std::string signal_ref = "signal-" + std::to_string(signal_id);
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE signals SET level = ?2, confidence = ?3, facts = ?4 WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, signal_id);
            BindText(stmt, 2, level);
            BindText(stmt, 3, grade.confidence);
            BindText(stmt, 4, facts_text);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
        }
        audit_.push_back(
            {now, "ldisd", "signal.graded", signal_ref,
             boost::json::serialize(boost::json::object{{"report", reference},
                                                        {"level", level},
                                                        {"confidence", grade.confidence},
                                                        {"reports", facts.numbers["reports"]},
                                                        {"rules", fired}})});
        // A coordinator's override holds until it is lifted: the alert shows it, and each
        // version records what the rules give as well.
        Grade shown = WithOverride(grade, held);
        const std::string shown_level(ToString(shown.level));
        const std::string rules_text = RulesJson(shown);
        out.level = shown_level;

        AlertRevision rv;
        rv.signal_id = signal_id;
        rv.signal_ref = signal_ref;
        rv.level = shown_level;
        rv.grade = std::move(shown);
        rv.facts = facts;
        rv.facts_text = facts_text;
        rv.rules_text = rules_text;
        rv.documents = std::move(documents);
        rv.authority = r.authority;
        rv.district = r.district;
        rv.trusted = TrustedSource(r.trust, r.source_type, g.policy);
        rv.report_reference = reference;
        return ReviseAlert(rv, g, now, out.alert_reference);
    }

    // The latest 20 reports of a signal, oldest first: what the alert text lists.
    int LatestDocuments(std::int64_t signal_id, std::vector<std::string>& out) {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT document FROM reports WHERE seq IN (SELECT report_seq FROM signal_reports "
            "WHERE signal_id = ?1 ORDER BY report_seq DESC LIMIT 20) ORDER BY seq");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, signal_id);
        int rc;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) out.push_back(ColumnText(stmt, 0));
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
    }

    // The override a coordinator set on a signal, if any (level "" when none), and the
    // signal's stored facts when `facts` is given: one read of the row for both.
    int ReadOverride(std::int64_t signal_id, SignalOverride& out, std::string* facts = nullptr) {
        sqlite3_stmt* stmt = writer_.Cached(
            "SELECT coalesce(override_level, ''), coalesce(override_reason, ''), "
            "coalesce(override_by, ''), coalesce(override_at_ms, 0), level, facts FROM signals "
            "WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, signal_id);
        const int rc = sqlite3_step(stmt);
        if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
        out.signal_id = signal_id;
        out.level = ColumnText(stmt, 0);
        out.reason = ColumnText(stmt, 1);
        out.by = ColumnText(stmt, 2);
        out.at_ms = sqlite3_column_int64(stmt, 3);
        out.rules_level = ColumnText(stmt, 4);
        if (facts) *facts = ColumnText(stmt, 5);
        return SQLITE_OK;
    }

    // What a new version of a signal's alert is made of: the level it shows (the rules', or
    // a coordinator's override) and the grade, facts and reports behind it.
    struct AlertRevision {
        std::int64_t signal_id = 0;
        std::string signal_ref;  // "signal-12", for the audit log
        std::string level;       // the level the alert shows
        Grade grade;             // its level is `level`; its rules include an override
        SignalFacts facts;
        std::string facts_text, rules_text;
        std::vector<std::string> documents;  // the latest reports, for the alert text
        std::string authority, district;
        bool trusted = false;          // a trusted source, or a coordinator
        std::string actor = "ldisd";   // who made the version
        std::string report_reference;  // the report that made it; "" for an override
    };

    // Creates or revises the signal's one live alert for `rv`, by policy, and routes the
    // new version. Runs in the caller's transaction. Returns an SQLite code.
    int ReviseAlert(const AlertRevision& rv, const GradingSetup& g, std::int64_t now,
                    std::string& alert_reference_out) {
        // The signal's live alert, if any.
        std::int64_t alert_id = 0;
        std::string alert_reference, status_text, previous_level;
        std::int64_t routed_at = 0;
        int version = 0;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT id, reference, status, version, level, routed_at_ms FROM alerts WHERE "
                "signal_id = ?1 AND status IN ('draft','issued','updated') ORDER BY id DESC LIMIT "
                "1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, rv.signal_id);
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_ROW) {
                alert_id = sqlite3_column_int64(stmt, 0);
                alert_reference = ColumnText(stmt, 1);
                status_text = ColumnText(stmt, 2);
                version = sqlite3_column_int(stmt, 3);
                previous_level = ColumnText(stmt, 4);
                routed_at = sqlite3_column_int64(stmt, 5);
            } else if (rc != SQLITE_DONE) {
                return rc;
            }
        }
        std::optional<LiveAlert> live;
        if (alert_id != 0) {
            live.emplace();
            ParseAlertStatus(status_text, live->status);
            live->version = version;
            ParseLevel(previous_level, live->level);
            live->routed_at_ms = routed_at;
        }
        // What the new grade makes of the alert is the pipeline's decision (pipeline.hpp);
        // here it is written down.
        const VersionDecision next = NextVersion(live, rv.grade.level, g.policy, rv.trusted, now,
                                                 g.dispatch.update_interval_ms);
        if (next.kind == VersionDecision::Kind::kNone) return SQLITE_OK;  // logged, no alert
        const AlertStatus status = next.status;
        const bool provisional = next.provisional;
        version = next.version;
        if (next.kind == VersionDecision::Kind::kCreate) {
            const int year = YearOf(now);
            const std::string prefix = options_.reference_prefix + "-" + std::to_string(year) + "-";
            sqlite3_stmt* count =
                writer_.Cached("SELECT count(*) FROM alerts WHERE reference LIKE ?1 || '%'");
            std::int64_t n = 0;
            {
                StatementUse use(count);
                BindText(count, 1, prefix);
                if (sqlite3_step(count) == SQLITE_ROW) n = sqlite3_column_int64(count, 0);
            }
            alert_reference = AlertReference(options_.reference_prefix, year, n);
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO alerts (reference, signal_id, status, level, confidence, audience, "
                "version, provisional, "
                "created_at_ms, updated_at_ms, issued_at_ms, valid_until_ms) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?8, ?9, ?10)");
            StatementUse use(stmt);
            BindText(stmt, 1, alert_reference);
            sqlite3_bind_int64(stmt, 2, rv.signal_id);
            BindText(stmt, 3, ToString(status));
            BindText(stmt, 4, rv.level);
            BindText(stmt, 5, rv.grade.confidence);
            BindText(stmt, 6, next.audience);
            sqlite3_bind_int(stmt, 7, provisional ? 1 : 0);
            sqlite3_bind_int64(stmt, 8, now);
            if (status == AlertStatus::kIssued) {
                sqlite3_bind_int64(stmt, 9, now);
                sqlite3_bind_int64(stmt, 10, now + g.valid_for_ms);
            } else {
                sqlite3_bind_null(stmt, 9);
                sqlite3_bind_null(stmt, 10);
            }
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
            alert_id = sqlite3_last_insert_rowid(writer_.get());
        } else {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE alerts SET status = ?2, level = ?3, confidence = ?4, version = ?5, "
                "updated_at_ms = ?6, "
                "provisional = CASE WHEN status = 'draft' THEN ?7 ELSE provisional END, "
                "issued_at_ms = coalesce(issued_at_ms, CASE WHEN ?2 != 'draft' THEN ?6 END), "
                "valid_until_ms = coalesce(valid_until_ms, CASE WHEN ?2 != 'draft' THEN ?6 + ?8 "
                "END) "
                "WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, alert_id);
            BindText(stmt, 2, ToString(status));
            BindText(stmt, 3, rv.level);
            BindText(stmt, 4, rv.grade.confidence);
            sqlite3_bind_int(stmt, 5, version);
            sqlite3_bind_int64(stmt, 6, now);
            sqlite3_bind_int(stmt, 7, provisional ? 1 : 0);
            sqlite3_bind_int64(stmt, 8, g.valid_for_ms);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
        }
        AlertMeta meta;
        meta.reference = alert_reference;
        meta.version = version;
        meta.status = std::string(ToString(status));
        meta.provisional = provisional;
        meta.authority = rv.authority;
        meta.district = rv.district;
        meta.public_url = g.public_url;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT version, status, level FROM alert_versions WHERE alert_id = ?1 "
                "ORDER BY version DESC LIMIT 9");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, alert_id);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                meta.history.insert(
                    meta.history.begin(),
                    {sqlite3_column_int(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2)});
            }
        }
        const RenderedAlert rendered =
            RenderAlert(g.templates, meta, rv.documents, rv.facts, rv.grade, g.substances);
        std::string body = rendered.ToJson();
        {
            // What a coordinator wrote stays in every later version: a new report changes
            // the counts, not their words.
            sqlite3_stmt* stmt = writer_.Cached("SELECT wording FROM alerts WHERE id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, alert_id);
            if (sqlite3_step(stmt) == SQLITE_ROW) {
                const std::string wording = ColumnText(stmt, 0);
                if (wording != "{}") body = WithWording(body, wording);
            }
        }
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "INSERT INTO alert_versions (alert_id, version, status, level, confidence, rules, "
                "facts, "
                "created_at_ms, body, scrubbed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, alert_id);
            sqlite3_bind_int(stmt, 2, version);
            BindText(stmt, 3, ToString(status));
            BindText(stmt, 4, rv.level);
            BindText(stmt, 5, rv.grade.confidence);
            BindText(stmt, 6, rv.rules_text);
            BindText(stmt, 7, rv.facts_text);
            sqlite3_bind_int64(stmt, 8, now);
            BindText(stmt, 9, body);
            sqlite3_bind_int(stmt, 10, rendered.scrubbed);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return rc;
        }
        {
            VersionRoute route;
            route.alert_id = alert_id;
            route.version = version;
            route.status = std::string(ToString(status));
            route.level = rv.level;
            route.authority = rv.authority;
            route.district = rv.district;
            route.audience = next.audience;
            route.created_draft = next.ask_coordinators;
            route.page = next.page;
            const bool routed_now = next.route_now;
            if (routed_now) {
                if (const int rc = QueueDeliveries(route, g, now); rc != SQLITE_OK) return rc;
                if (const int rc = MarkRouted(alert_id, version, now); rc != SQLITE_OK) return rc;
            }
        }
        audit_.push_back(
            {now, rv.actor, next.audit_action, alert_reference,
             boost::json::serialize(boost::json::object{{"version", version},
                                                        {"status", std::string(ToString(status))},
                                                        {"level", rv.level},
                                                        {"provisional", provisional},
                                                        {"signal", rv.signal_ref},
                                                        {"report", rv.report_reference}})});
        alert_reference_out = alert_reference;
        return SQLITE_OK;
    }

    // What routing needs to know of the version just written.
    struct VersionRoute {
        std::int64_t alert_id = 0;
        int version = 0;
        std::string status;
        std::string level;
        std::string authority;
        std::string district;
        std::string audience;
        bool created_draft = false;  // a new draft: the coordinators are asked to approve it
        bool page = false;           // a provisional red issued at once: the coordinators are paged
    };

    std::shared_ptr<const GradingSetup> CurrentGrading() const {
        std::lock_guard lock(mutex_);
        return grading_;
    }

    int InsertDelivery(std::int64_t alert_id, int version, std::string_view kind,
                       const std::string& partner, const std::string& contact,
                       const std::string& slot, Channel channel, const std::string& address,
                       std::int64_t now, std::int64_t ack_due, std::int64_t fallback_of,
                       const std::string& detail) {
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO deliveries (alert_id, version, kind, partner, contact, slot, channel, "
            "address, status, next_attempt_ms, created_at_ms, updated_at_ms, ack_due_ms, "
            "fallback_of, detail) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', ?9, ?9, ?9, ?10, ?11, ?12)");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        sqlite3_bind_int(stmt, 2, version);
        BindText(stmt, 3, kind);
        BindText(stmt, 4, partner);
        BindText(stmt, 5, contact);
        BindText(stmt, 6, slot);
        BindText(stmt, 7, ToString(channel));
        BindText(stmt, 8, address);
        sqlite3_bind_int64(stmt, 9, now);
        if (ack_due > 0)
            sqlite3_bind_int64(stmt, 10, ack_due);
        else
            sqlite3_bind_null(stmt, 10);
        if (fallback_of > 0)
            sqlite3_bind_int64(stmt, 11, fallback_of);
        else
            sqlite3_bind_null(stmt, 11);
        BindText(stmt, 12, detail);
        const int rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) return rc;
        ++outbox_added_;
        return SQLITE_OK;
    }

    // A notice to every contact of the coordinators' partner.
    int NoticeCoordinators(const GradingSetup& g, std::int64_t alert_id, int version,
                           std::string_view kind, std::int64_t now, const std::string& detail) {
        const Partner* c = g.partners ? g.partners->coordinators() : nullptr;
        if (c == nullptr) return SQLITE_OK;
        for (const auto& contact : c->contacts) {
            if (!g.dispatch.enabled.contains(contact.channel)) continue;
            const int rc = InsertDelivery(alert_id, version, kind, c->id, contact.name,
                                          c->id + "/" + contact.name, contact.channel,
                                          contact.address, now, 0, 0, detail);
            if (rc != SQLITE_OK) return rc;
        }
        return SQLITE_OK;
    }

    // Routes a version just written to the outbox, in the caller's transaction.
    int QueueDeliveries(const VersionRoute& v, const GradingSetup& g, std::int64_t now) {
        if (v.status == "draft") {
            return v.created_draft
                       ? NoticeCoordinators(g, v.alert_id, v.version, kKindApproval, now, "{}")
                       : SQLITE_OK;
        }
        if (v.status == "expired") return SQLITE_OK;
        RouteInput in;
        ParseLevel(v.level, in.level);
        in.authority = v.authority;
        in.district = v.district;
        in.audience = v.audience;
        in.cancellation = v.status == "cancelled";
        {
            // Each slot's latest row: the contact that reached it last (after any fallback).
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT partner, contact, slot FROM deliveries WHERE alert_id = ?1 AND kind = "
                "'alert' ORDER BY id");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, v.alert_id);
            std::map<std::string, std::size_t> at;
            int rc;
            while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                Recipient r{ColumnText(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2)};
                if (auto it = at.find(r.slot); it != at.end()) {
                    in.earlier[it->second] = std::move(r);
                } else {
                    at[r.slot] = in.earlier.size();
                    in.earlier.push_back(std::move(r));
                }
            }
            if (rc != SQLITE_DONE) return rc;
        }
        const std::int64_t ack_ms =
            AckWindowMs(in.level, in.cancellation, g.dispatch.red_ack_ms, g.dispatch.amber_ack_ms);
        if (g.partners) {
            for (const auto& r : g.partners->Route(in, g.dispatch.enabled)) {
                const Contact* c = g.partners->Find(r.partner)->FindContact(r.contact);
                const int rc = InsertDelivery(v.alert_id, v.version, kKindAlert, r.partner,
                                              r.contact, r.slot, c->channel, c->address, now,
                                              ack_ms > 0 ? now + ack_ms : 0, 0, "{}");
                if (rc != SQLITE_OK) return rc;
            }
        }
        if (g.dispatch.enabled.contains(Channel::kMqtt)) {
            const int rc =
                InsertDelivery(v.alert_id, v.version, kKindMqtt, "", "mqtt", "mqtt", Channel::kMqtt,
                               wire::AlertTopic(v.level, v.authority), now, 0, 0, "{}");
            if (rc != SQLITE_OK) return rc;
        }
        if (v.page) return NoticeCoordinators(g, v.alert_id, v.version, kKindPage, now, "{}");
        return SQLITE_OK;
    }

    // Ends a writer transaction that may have appended audit entries and queued
    // deliveries: commits them, or rolls back and forgets them. An Error when it failed.
    std::optional<Error> Finish(Transaction& tx, int rc) {
        if (rc == SQLITE_OK) rc = FlushAudit();
        if (rc == SQLITE_OK) rc = tx.Commit();
        if (rc != SQLITE_OK) {
            audit_.clear();
            outbox_added_ = 0;
            LoadLastAuditHash();
            return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        NotifyOutbox();
        return std::nullopt;
    }

    int MarkRouted(std::int64_t alert_id, int version, std::int64_t now) {
        sqlite3_stmt* stmt = writer_.Cached(
            "UPDATE alerts SET routed_version = ?2, routed_at_ms = ?3 WHERE id = ?1");
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, alert_id);
        sqlite3_bind_int(stmt, 2, version);
        sqlite3_bind_int64(stmt, 3, now);
        return sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(writer_.get());
    }

    // Sends the latest version of every live alert whose newer versions were held back
    // by dispatch.update_interval, once the interval has passed. In the caller's transaction.
    int FlushUpdates(const GradingSetup& g, std::int64_t now) {
        std::vector<VersionRoute> due;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT a.id, a.version, a.status, a.level, a.audience, s.authority, s.district "
                "FROM alerts a JOIN signals s ON s.id = a.signal_id "
                "WHERE a.status IN ('issued','updated') AND a.version > a.routed_version "
                "AND a.routed_at_ms <= ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, now - g.dispatch.update_interval_ms);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                VersionRoute r;
                r.alert_id = sqlite3_column_int64(stmt, 0);
                r.version = sqlite3_column_int(stmt, 1);
                r.status = ColumnText(stmt, 2);
                r.level = ColumnText(stmt, 3);
                r.audience = ColumnText(stmt, 4);
                r.authority = ColumnText(stmt, 5);
                r.district = ColumnText(stmt, 6);
                due.push_back(std::move(r));
            }
        }
        for (const auto& r : due) {
            if (const int rc = QueueDeliveries(r, g, now); rc != SQLITE_OK) return rc;
            if (const int rc = MarkRouted(r.alert_id, r.version, now); rc != SQLITE_OK) return rc;
        }
        return SQLITE_OK;
    }

    // Tells the writer's listener, outside any lock, that the outbox has new rows.
    void NotifyOutbox() {
        if (outbox_added_ == 0) return;
        outbox_added_ = 0;
        std::function<void()> listener;
        {
            std::lock_guard lock(mutex_);
            listener = outbox_listener_;
        }
        if (listener) listener();
    }

    Result<std::vector<OutboxItem>> ClaimOnWriter(std::int64_t now, std::size_t limit) {
        const auto g = CurrentGrading();
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        std::vector<OutboxItem> items;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT d.id, d.kind, d.partner, d.contact, d.channel, d.address, d.attempts, "
                "d.detail, d.version, a.reference, v.status, v.level, v.confidence, a.audience, "
                "a.provisional, s.authority, s.district, s.family, coalesce(a.issued_at_ms, 0), "
                "v.created_at_ms, coalesce(a.valid_until_ms, 0), v.body "
                "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                "JOIN alert_versions v ON v.alert_id = d.alert_id AND v.version = d.version "
                "JOIN signals s ON s.id = a.signal_id "
                "WHERE d.status IN ('queued','retrying') AND d.next_attempt_ms <= ?1 "
                "ORDER BY d.next_attempt_ms, d.id LIMIT ?2");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, now);
            sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(limit));
            int rc;
            while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                OutboxItem it;
                it.id = sqlite3_column_int64(stmt, 0);
                it.kind = ColumnText(stmt, 1);
                it.partner = ColumnText(stmt, 2);
                it.contact = ColumnText(stmt, 3);
                ParseChannel(ColumnText(stmt, 4), it.channel);
                it.address = ColumnText(stmt, 5);
                it.attempts = sqlite3_column_int(stmt, 6) + 1;
                it.detail = ColumnText(stmt, 7);
                it.version = sqlite3_column_int(stmt, 8);
                it.reference = ColumnText(stmt, 9);
                it.status = ColumnText(stmt, 10);
                it.level = ColumnText(stmt, 11);
                it.confidence = ColumnText(stmt, 12);
                it.audience = ColumnText(stmt, 13);
                it.provisional = sqlite3_column_int(stmt, 14) != 0;
                it.authority = ColumnText(stmt, 15);
                it.district = ColumnText(stmt, 16);
                it.family = ColumnText(stmt, 17);
                it.issued_at_ms = sqlite3_column_int64(stmt, 18);
                it.created_at_ms = sqlite3_column_int64(stmt, 19);
                it.valid_until_ms = sqlite3_column_int64(stmt, 20);
                it.body = ColumnText(stmt, 21);
                if (g) {
                    if (const Family* f = g->substances.Find(it.family)) it.family_label = f->label;
                }
                if (it.family_label.empty() && it.family.starts_with("other:"))
                    it.family_label = it.family.substr(6);
                items.push_back(std::move(it));
            }
            if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        sqlite3_stmt* mark = writer_.Cached(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, updated_at_ms = ?2 "
            "WHERE id = ?1");
        for (const auto& it : items) {
            StatementUse use(mark);
            sqlite3_bind_int64(mark, 1, it.id);
            sqlite3_bind_int64(mark, 2, now);
            if (const int rc = sqlite3_step(mark); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        if (const int rc = tx.Commit(); rc != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(rc)};
        return items;
    }

    Result<int> CompleteOnWriter(const std::vector<DeliveryOutcome>& outcomes, std::int64_t now) {
        const auto g = CurrentGrading();
        const DispatchPolicy policy = g ? g->dispatch : DispatchPolicy{};
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        int changed = 0;
        int rc = SQLITE_OK;
        for (const auto& o : outcomes) {
            std::string kind, partner, contact, slot, channel, status, detail;
            std::int64_t alert_id = 0, ack_due = 0;
            int version = 0, attempts = 0;
            {
                sqlite3_stmt* stmt = writer_.Cached(
                    "SELECT kind, partner, contact, slot, channel, status, alert_id, version, "
                    "attempts, coalesce(ack_due_ms, 0), detail FROM deliveries WHERE id = ?1");
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, o.id);
                if (sqlite3_step(stmt) != SQLITE_ROW) continue;
                kind = ColumnText(stmt, 0);
                partner = ColumnText(stmt, 1);
                contact = ColumnText(stmt, 2);
                slot = ColumnText(stmt, 3);
                channel = ColumnText(stmt, 4);
                status = ColumnText(stmt, 5);
                alert_id = sqlite3_column_int64(stmt, 6);
                version = sqlite3_column_int(stmt, 7);
                attempts = sqlite3_column_int(stmt, 8);
                ack_due = sqlite3_column_int64(stmt, 9);
                detail = ColumnText(stmt, 10);
            }
            if (status != "sending") continue;  // settled already
            ++changed;
            const bool delivered = o.kind == DeliveryOutcome::Kind::kDelivered;
            const bool failed = !delivered && (o.kind == DeliveryOutcome::Kind::kFailed ||
                                               attempts >= policy.max_attempts);
            std::string error = o.error;
            if (!delivered && o.kind == DeliveryOutcome::Kind::kRetry && failed)
                error = "gave up after " + std::to_string(attempts) + " attempts: " + error;
            {
                sqlite3_stmt* stmt = writer_.Cached(
                    "UPDATE deliveries SET status = ?2, updated_at_ms = ?3, next_attempt_ms = ?4, "
                    "last_error = ?5, delivered_at_ms = CASE WHEN ?2 = 'delivered' THEN ?3 END "
                    "WHERE id = ?1");
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, o.id);
                BindText(stmt, 2, delivered ? "delivered" : failed ? "failed" : "retrying");
                sqlite3_bind_int64(stmt, 3, now);
                sqlite3_bind_int64(
                    stmt, 4,
                    delivered || failed
                        ? now
                        : now + RetryDelayMs(policy, attempts, o.retry_after_ms, rng_));
                BindText(stmt, 5, error, true);
                rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(writer_.get());
            }
            if (rc != SQLITE_OK) break;
            if (!failed) continue;
            audit_.push_back({now, "ldisd", "delivery.failed", "delivery-" + std::to_string(o.id),
                              boost::json::serialize(boost::json::object{{"partner", partner},
                                                                         {"contact", contact},
                                                                         {"channel", channel},
                                                                         {"attempts", attempts},
                                                                         {"error", error}})});
            if (kind != kKindAlert && kind != kKindEscalation && kind != kKindMqtt) continue;
            // The partner's next channel, then a word to the coordinators.
            std::string next = "No fallback contact is configured for this partner.";
            if (g && g->partners && !partner.empty()) {
                std::set<std::string> used;
                sqlite3_stmt* stmt = writer_.Cached(
                    "SELECT contact FROM deliveries WHERE alert_id = ?1 AND version = ?2 AND "
                    "partner = ?3 AND kind = ?4");
                {
                    StatementUse use(stmt);
                    sqlite3_bind_int64(stmt, 1, alert_id);
                    sqlite3_bind_int(stmt, 2, version);
                    BindText(stmt, 3, partner);
                    BindText(stmt, 4, kind);
                    while (sqlite3_step(stmt) == SQLITE_ROW) used.insert(ColumnText(stmt, 0));
                }
                if (auto fb = g->partners->Fallback(partner, contact, used, g->dispatch.enabled)) {
                    const Contact* c = g->partners->Find(partner)->FindContact(*fb);
                    rc = InsertDelivery(alert_id, version, kind, partner, *fb, slot, c->channel,
                                        c->address, now, ack_due, o.id, detail);
                    if (rc != SQLITE_OK) break;
                    next =
                        "Falling back to " + *fb + " (" + std::string(ToString(c->channel)) + ").";
                }
            }
            if (g) {
                const Partner* p = g->partners ? g->partners->Find(partner) : nullptr;
                rc = NoticeCoordinators(
                    *g, alert_id, version, kKindDeadLetter, now,
                    boost::json::serialize(boost::json::object{
                        {"delivery", o.id},
                        {"partner", p ? p->name : (partner.empty() ? "the MQTT broker" : partner)},
                        {"contact", contact},
                        {"channel", channel},
                        {"attempts", std::to_string(attempts)},
                        {"error", error},
                        {"next", next}}));
                if (rc != SQLITE_OK) break;
            }
        }
        if (auto failed = Finish(tx, rc)) return *failed;
        return changed;
    }

    Result<int> EscalateOnWriter(std::int64_t now) {
        const auto g = CurrentGrading();
        if (!g || !g->partners) return 0;
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        if (const int rc = FlushUpdates(*g, now); rc != SQLITE_OK) {
            outbox_added_ = 0;
            return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        struct Due {
            std::int64_t alert_id;
            std::string partner;
            int version;
            std::string level;
            bool acknowledged;
        };
        std::vector<Due> due;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "SELECT d.alert_id, d.partner, a.version, a.level, "
                "(SELECT count(*) FROM deliveries x WHERE x.alert_id = d.alert_id AND x.partner = "
                "d.partner AND x.acknowledged_at_ms IS NOT NULL) "
                "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                "WHERE d.escalated = 0 AND d.ack_due_ms IS NOT NULL AND d.ack_due_ms <= ?1 "
                "AND d.kind = 'alert' AND a.status IN ('issued','updated') "
                "GROUP BY d.alert_id, d.partner");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, now);
            while (sqlite3_step(stmt) == SQLITE_ROW) {
                due.push_back({sqlite3_column_int64(stmt, 0), ColumnText(stmt, 1),
                               sqlite3_column_int(stmt, 2), ColumnText(stmt, 3),
                               sqlite3_column_int64(stmt, 4) > 0});
            }
        }
        int queued = 0;
        int rc = SQLITE_OK;
        for (const auto& d : due) {
            {
                sqlite3_stmt* stmt = writer_.Cached(
                    "UPDATE deliveries SET escalated = 1 WHERE alert_id = ?1 AND partner = ?2 AND "
                    "kind = 'alert' AND ack_due_ms <= ?3");
                StatementUse use(stmt);
                sqlite3_bind_int64(stmt, 1, d.alert_id);
                BindText(stmt, 2, d.partner);
                sqlite3_bind_int64(stmt, 3, now);
                if ((rc = sqlite3_step(stmt)) != SQLITE_DONE) break;
                rc = SQLITE_OK;
            }
            if (d.acknowledged) continue;
            const Partner* p = g->partners->Find(d.partner);
            const Contact* c = p ? p->FindContact(p->escalation) : nullptr;
            if (c == nullptr || !g->dispatch.enabled.contains(c->channel)) continue;
            const std::int64_t window =
                d.level == "red" ? g->dispatch.red_ack_ms : g->dispatch.amber_ack_ms;
            const std::string within =
                window >= 3600000
                    ? std::to_string(window / 3600000) + " hours"
                    : std::to_string(std::max<std::int64_t>(window / 1000, 1)) + " seconds";
            rc = InsertDelivery(
                d.alert_id, d.version, kKindEscalation, p->id, c->name, p->id + "/" + c->name,
                c->channel, c->address, now, 0, 0,
                boost::json::serialize(boost::json::object{
                    {"partner", p->id}, {"partner_name", p->name}, {"ack_within", within}}));
            if (rc != SQLITE_OK) break;
            audit_.push_back({now, "ldisd", "delivery.escalated", p->id,
                              "{\"alert\":" + std::to_string(d.alert_id) + "}"});
            ++queued;
        }
        if (auto failed = Finish(tx, rc)) return *failed;
        return queued;
    }

    void LoadAckKey() {
        sqlite3_stmt* stmt = writer_.Cached("SELECT value FROM settings WHERE key = 'ack_key'");
        {
            StatementUse use(stmt);
            if (sqlite3_step(stmt) == SQLITE_ROW) {
                ack_key_ = ColumnText(stmt, 0);
                return;
            }
        }
        ack_key_ = Hex(RandomBytes(32));
        sqlite3_stmt* insert =
            writer_.Cached("INSERT INTO settings (key, value) VALUES ('ack_key', ?1)");
        StatementUse use(insert);
        BindText(insert, 1, ack_key_);
        if (const int rc = sqlite3_step(insert); rc != SQLITE_DONE)
            throw StoreError(options_.path + ": " + writer_.Describe(rc));
    }

    StoreOptions options_;
    Connection writer_;
    sqlite3_stmt* insert_ = nullptr;
    sqlite3_stmt* find_reference_ = nullptr;
    std::int64_t next_seq_ = 1;
    std::unique_ptr<Connection> reader_;
    mutable std::mutex reader_mutex_;

    std::shared_ptr<const GradingSetup> grading_;        // guarded by mutex_
    std::shared_ptr<const GradingSetup> batch_grading_;  // the writer thread's copy for one batch
    struct AuditEntry {
        std::int64_t at_ms;
        std::string actor, action, subject, detail;
    };
    std::vector<AuditEntry> audit_;  // entries of the transaction in hand, written by FlushAudit
    std::string last_audit_hash_;
    std::int64_t last_audit_seq_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Pending*> queue_;
    std::deque<std::function<void()>> jobs_;
    bool closing_ = false;
    std::function<void()> outbox_listener_;  // guarded by mutex_
    int outbox_added_ = 0;                   // rows queued by the transaction in hand
    std::string ack_key_;
    std::mt19937_64 rng_{std::random_device{}()};
    std::thread thread_;
};

std::vector<StoredSignal> ReportStore::ReadSignals(const std::string& path) {
    Connection db(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 5000);
    if (const int rc = db.Exec("SELECT count(*) FROM signals"); rc != SQLITE_OK)
        throw StoreError(path + ": " + db.Describe(rc));
    std::vector<StoredSignal> out;
    sqlite3_stmt* signals =
        db.Prepare("SELECT id, family, authority, district, level FROM signals ORDER BY id");
    int rc;
    while ((rc = sqlite3_step(signals)) == SQLITE_ROW) {
        StoredSignal s;
        s.id = sqlite3_column_int64(signals, 0);
        s.family = ColumnText(signals, 1);
        s.authority = ColumnText(signals, 2);
        s.district = ColumnText(signals, 3);
        s.level = ColumnText(signals, 4);
        out.push_back(std::move(s));
    }
    if (rc != SQLITE_DONE) throw StoreError(path + ": " + db.Describe(rc));
    sqlite3_stmt* documents = db.Prepare(
        "SELECT r.document FROM reports r JOIN signal_reports sr ON sr.report_seq = r.seq "
        "WHERE sr.signal_id = ?1 ORDER BY r.seq");
    sqlite3_stmt* alert = db.Prepare(
        "SELECT reference, status, level FROM alerts WHERE signal_id = ?1 AND status IN "
        "('draft','issued','updated') ORDER BY id DESC LIMIT 1");
    for (auto& s : out) {
        {
            StatementUse use(documents);
            sqlite3_bind_int64(documents, 1, s.id);
            while ((rc = sqlite3_step(documents)) == SQLITE_ROW)
                s.documents.push_back(ColumnText(documents, 0));
            if (rc != SQLITE_DONE) throw StoreError(path + ": " + db.Describe(rc));
        }
        StatementUse use(alert);
        sqlite3_bind_int64(alert, 1, s.id);
        rc = sqlite3_step(alert);
        if (rc == SQLITE_ROW) {
            s.alert_reference = ColumnText(alert, 0);
            s.alert_status = ColumnText(alert, 1);
            s.alert_level = ColumnText(alert, 2);
        } else if (rc != SQLITE_DONE) {
            throw StoreError(path + ": " + db.Describe(rc));
        }
    }
    return out;
}

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

std::shared_ptr<const GradingSetup> ReportStore::Grading() const {
    return impl_->GradingInUse();
}
std::vector<StoredSignal> ReportStore::Signals() const {
    return ReadSignals(impl_->FilePath());
}
void ReportStore::SetGrading(std::shared_ptr<const GradingSetup> grading) {
    impl_->SetGrading(std::move(grading));
}
std::vector<StoredAlert> ReportStore::Alerts() const {
    return impl_->Alerts({});
}
std::optional<StoredAlert> ReportStore::FindAlert(std::string_view reference) const {
    if (reference.empty()) return std::nullopt;
    auto all = impl_->Alerts(reference);
    if (all.empty()) return std::nullopt;
    return std::move(all.front());
}
Result<SignalOverride> ReportStore::Override(std::int64_t signal_id, std::string_view level,
                                             std::string_view reason, std::string_view actor) {
    return impl_->Override(signal_id, std::string(level), std::string(reason), std::string(actor));
}
Result<StoredAlert> ReportStore::Act(std::string_view reference, AlertAction action,
                                     std::string_view actor, const AlertWording& wording) {
    return impl_->Act(reference, action, actor, wording);
}
Result<std::vector<std::string>> ReportStore::ExpireDue(std::int64_t now_ms) {
    return impl_->ExpireDue(now_ms);
}
AlertPage ReportStore::FindAlerts(const AlertFilter& filter) const {
    return impl_->FindAlerts(filter);
}
std::optional<AlertRecord> ReportStore::FindAlertRecord(std::string_view reference) const {
    return impl_->FindAlertRecord(reference);
}
std::int64_t ReportStore::CountSignals() const {
    return impl_->CountSignals();
}
Result<std::int64_t> ReportStore::VerifyAudit() const {
    return impl_->VerifyAudit();
}

void ReportStore::SetOutboxListener(std::function<void()> listener) {
    impl_->SetOutboxListener(std::move(listener));
}
void ReportStore::ClaimDue(std::int64_t now_ms, std::size_t limit,
                           std::function<void(Result<std::vector<OutboxItem>>)> done) {
    impl_->ClaimDue(now_ms, limit, std::move(done));
}
void ReportStore::Complete(std::vector<DeliveryOutcome> outcomes, std::int64_t now_ms,
                           std::function<void(Result<int>)> done) {
    impl_->Complete(std::move(outcomes), now_ms, std::move(done));
}
void ReportStore::EscalateDue(std::int64_t now_ms, std::function<void(Result<int>)> done) {
    impl_->EscalateDue(now_ms, std::move(done));
}
Result<int> ReportStore::RecoverInFlight(std::int64_t now_ms) {
    return impl_->RecoverInFlight(now_ms);
}
Result<DeliveryRow> ReportStore::Acknowledge(std::int64_t delivery_id, std::string_view actor,
                                             std::int64_t now_ms) {
    return impl_->Acknowledge(delivery_id, actor, now_ms);
}
Result<DeliveryRow> ReportStore::RequestUnsubscribe(std::int64_t delivery_id, std::int64_t now_ms) {
    return impl_->RequestUnsubscribe(delivery_id, now_ms);
}
const std::string& ReportStore::AckKey() const {
    return impl_->AckKey();
}
std::string ReportStore::Setting(const std::string& key) {
    return impl_->Setting(key);
}
Result<int> ReportStore::SetSetting(const std::string& key, const std::string& value) {
    return impl_->SetSetting(key, value);
}
std::vector<DeliveryRow> ReportStore::Deliveries(std::string_view reference) const {
    return reference.empty()
               ? impl_->DeliveryQuery("", "")
               : impl_->DeliveryQuery("WHERE a.reference = ?1", std::string(reference));
}
std::optional<DeliveryRow> ReportStore::FindDelivery(std::int64_t id) const {
    auto rows = impl_->DeliveryQuery("WHERE d.id = ?1", std::to_string(id));
    if (rows.empty()) return std::nullopt;
    return std::move(rows.front());
}
ReportStore::Counts ReportStore::CountAll() const {
    return impl_->CountAll();
}
std::optional<std::int64_t> ReportStore::NextDueMs() const {
    return impl_->NextDueMs();
}
std::map<std::string, std::int64_t> ReportStore::DeliveryCounts() const {
    return impl_->DeliveryCounts();
}

Result<std::string> ReportStore::CreateToken(std::string_view name, std::string_view role) {
    return impl_->CreateToken(std::string(name), std::string(role));
}
std::optional<ApiToken> ReportStore::FindToken(std::string_view secret) const {
    return impl_->FindToken(secret);
}

Result<StoredReportRow> ReportStore::Reveal(std::string_view id, std::string_view actor,
                                            std::string_view reason) {
    return impl_->Reveal(std::string(id), std::string(actor), std::string(reason));
}
Result<int> ReportStore::PurgeFreeText(std::int64_t before_ms, std::int64_t now_ms,
                                       std::string_view actor) {
    return impl_->PurgeFreeText(before_ms, now_ms, std::string(actor));
}
std::vector<TokenRow> ReportStore::Tokens() const {
    return impl_->Tokens();
}
Result<int> ReportStore::RevokeToken(std::int64_t id, std::string_view actor) {
    return impl_->RevokeToken(id, std::string(actor));
}
Result<int> ReportStore::CreateSession(const WebSession& session, std::size_t max_per_token,
                                       std::size_t max_total) {
    return impl_->CreateSession(session, max_per_token, max_total);
}
std::optional<WebSession> ReportStore::FindSession(std::string_view id_hash,
                                                   std::int64_t now_ms) const {
    return impl_->FindSession(id_hash, now_ms);
}
Result<int> ReportStore::EndSession(std::string_view id_hash, std::int64_t now_ms) {
    return impl_->EndSession(std::string(id_hash), now_ms);
}

int ReportStore::FileSchemaVersion(const std::string& path) {
    Connection c(path, SQLITE_OPEN_READONLY, 1000);
    return ReadUserVersion(c);
}

namespace {

// Copies the whole of `from`'s main database into `to` with the online backup API. One
// step of -1 pages holds one read transaction over the source, so the copy is one
// consistent moment even while ldisd writes (WAL lets it go on writing meanwhile).
void CopyDatabase(Connection& from, Connection& to) {
    sqlite3_backup* backup = sqlite3_backup_init(to.get(), "main", from.get(), "main");
    if (backup == nullptr) throw StoreError(to.path() + ": " + sqlite3_errmsg(to.get()));
    int rc;
    while ((rc = sqlite3_backup_step(backup, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
        sqlite3_sleep(50);
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE) throw StoreError(to.path() + ": the copy failed: " + to.Describe(rc));
}

std::int64_t CountRows(Connection& c, const char* sql) {
    sqlite3_stmt* stmt = c.Prepare(sql);
    if (const int rc = sqlite3_step(stmt); rc != SQLITE_ROW)
        throw StoreError(c.path() + ": " + c.Describe(rc));
    return sqlite3_column_int64(stmt, 0);
}

void RemoveFile(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        throw StoreError(path + ": cannot remove: " + std::strerror(errno));
}

}  // namespace

std::int64_t ReportStore::Backup(const std::string& db_path, const std::string& to) {
    const std::string partial = to + ".partial";
    RemoveFile(partial);
    std::int64_t reports = 0;
    {
        Connection source(db_path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 5000);
        if (const int rc = source.Exec("SELECT count(*) FROM sqlite_schema"); rc != SQLITE_OK)
            throw StoreError(db_path + ": " + source.Describe(rc));
        CreatePrivately(partial);  // 0600: a backup holds what the database holds
        Connection copy(partial, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        5000);
        CopyDatabase(source, copy);
        reports = CountRows(copy, "SELECT count(*) FROM reports");
    }
    if (::rename(partial.c_str(), to.c_str()) != 0)
        throw StoreError(to + ": cannot write the backup: " + std::strerror(errno));
    return reports;
}

ReportStore::Restored ReportStore::Restore(const std::string& from, const std::string& db_path) {
    Restored out;
    try {
        Connection copy(from, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 1000);
        sqlite3_stmt* check = copy.Prepare("PRAGMA integrity_check");
        std::string verdict;
        int rc;
        while ((rc = sqlite3_step(check)) == SQLITE_ROW) {
            if (!verdict.empty()) verdict += "; ";
            verdict += ColumnText(check, 0);
        }
        if (rc != SQLITE_DONE) throw StoreError(from + ": " + copy.Describe(rc));
        if (verdict != "ok")
            throw StoreError(from + ": the backup is damaged (integrity check: " + verdict +
                             "); nothing was replaced");
        out.schema_from = ReadUserVersion(copy);
        if (out.schema_from > kSchemaVersion || out.schema_from < 1)
            throw StoreError(from + ": schema version " + std::to_string(out.schema_from) +
                             " is not one this ldisctl knows (1 to " +
                             std::to_string(kSchemaVersion) + "); nothing was replaced");
    } catch (const StoreError& e) {
        const std::string what = e.what();
        if (what.ends_with("nothing was replaced")) throw;
        throw StoreError("the backup cannot be used: " + what + "; nothing was replaced");
    }
    // The copy to put in place, migrated and with its audit chain verified first.
    const std::string restoring = db_path + ".restoring";
    for (const char* suffix : {"", "-wal", "-shm"}) RemoveFile(restoring + suffix);
    {
        Connection source(from, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, 1000);
        CreatePrivately(restoring);
        Connection copy(restoring, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        1000);
        CopyDatabase(source, copy);
    }
    try {
        StoreOptions options;
        options.path = restoring;
        ReportStore store(options);
        const auto verified = store.VerifyAudit();
        if (!verified.ok())
            throw StoreError(from + ": the audit chain does not verify (" +
                             verified.error().message + "); nothing was replaced");
        out.audit_entries = verified.value();
        out.reports = store.CountReports();
    } catch (...) {
        for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((restoring + suffix).c_str());
        throw;
    }
    // Refused while anything has the database open: an exclusive lock in WAL mode is
    // granted only to the one connection there is.
    if (::access(db_path.c_str(), F_OK) == 0) {
        {
            Connection live(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, 0);
            const int rc = live.Exec(
                "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; SELECT count(*) FROM "
                "sqlite_schema; COMMIT;");
            if (rc != SQLITE_OK) {
                for (const char* suffix : {"", "-wal", "-shm"})
                    ::unlink((restoring + suffix).c_str());
                throw StoreError(db_path + " is in use (" + live.Describe(rc) +
                                 "): stop ldisd before restoring; nothing was replaced");
            }
        }
        out.kept_previous = db_path + ".before-restore-" + std::to_string(NowMs());
        for (const char* suffix : {"", "-wal", "-shm"}) {
            const std::string old = db_path + suffix;
            if (::access(old.c_str(), F_OK) == 0 &&
                ::rename(old.c_str(), (out.kept_previous + suffix).c_str()) != 0)
                throw StoreError(old + ": cannot move aside: " + std::strerror(errno));
        }
    }
    {
        // Everything into the one file, so that a plain rename moves all of it.
        Connection settle(restoring, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, 1000);
        settle.ExecOrThrow("PRAGMA journal_mode=DELETE");
    }
    if (::rename(restoring.c_str(), db_path.c_str()) != 0)
        throw StoreError(db_path + ": cannot put the backup in place: " + std::strerror(errno));
    return out;
}

}  // namespace ldis::engine
