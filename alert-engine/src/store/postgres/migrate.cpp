// `ldisctl migrate --from sqlite:PATH --to postgresql://…`: a SQLite history copied whole
// into an empty PostgreSQL database, and the audit chain verified on both sides.
#include <sqlite3.h>

#include <memory>

#include "../audit_chain.hpp"
#include "impl.hpp"
#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_store.hpp"

namespace ldis::engine {
namespace {

// Parents before children, as the foreign keys need them.
constexpr const char* kTables[] = {"reports",  "signals",        "signal_reports", "signal_sources",
                                   "alerts",   "alert_versions", "audit",          "deliveries",
                                   "settings", "tokens",         "sessions",       "federated"};
// The numbered columns: their sequences go on from the largest number copied.
constexpr std::pair<const char*, const char*> kNumbered[] = {
    {"reports", "seq"},   {"signals", "id"}, {"alerts", "id"},   {"audit", "seq"},
    {"deliveries", "id"}, {"tokens", "id"},  {"federated", "id"}};

struct SqliteCloser {
    void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct StatementCloser {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

}  // namespace

Result<std::int64_t> VerifyAuditOn(PGconn* c) {
    auto rows = pg::Exec(c, "read the audit log",
                         "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash "
                         "FROM audit ORDER BY seq");
    if (!rows.ok()) return rows.error();
    const auto& r = rows.value();
    AuditChainCheck chain;
    for (int i = 0; i < r.size(); ++i) {
        const std::string problem =
            chain.Next(r.integer(i, 0), r.integer(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4),
                       r.text(i, 5), r.text(i, 6), r.text(i, 7));
        if (!problem.empty()) return Error{problem};
    }
    return chain.count();
}

Result<std::int64_t> PostgresDatabase::VerifyAudit() const {
    return VerifyAuditOn(impl_->connection.get());
}

Result<std::vector<std::pair<std::string, std::int64_t>>> PostgresDatabase::CopyFromSqlite(
    const std::string& sqlite_path) {
    using Counts = std::vector<std::pair<std::string, std::int64_t>>;
    sqlite3* raw = nullptr;
    const int opened = sqlite3_open_v2(sqlite_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
    std::unique_ptr<sqlite3, SqliteCloser> lite(raw);
    if (opened != SQLITE_OK)
        return Error{"cannot open " + sqlite_path + ": " +
                     (raw != nullptr ? sqlite3_errmsg(raw) : "out of memory")};
    const auto one = [&](const std::string& sql) -> std::int64_t {
        sqlite3_stmt* s = nullptr;
        std::int64_t v = -1;
        if (sqlite3_prepare_v2(lite.get(), sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
    };
    const std::int64_t version = one("PRAGMA user_version");
    if (version != ReportStore::kSchemaVersion)
        return Error{sqlite_path + " has schema version " + std::to_string(version) +
                     (version <= 0 ? " (is it an LDIS database?)"
                                   : "; this ldisctl copies version " +
                                         std::to_string(ReportStore::kSchemaVersion) +
                                         ": start this ldisd on it once (or run ldisctl audit "
                                         "verify --db on it), which upgrades it, then copy")};
    // The source's chain first: a broken history is investigated where it is, not moved.
    {
        StoreOptions options;
        options.path = sqlite_path;
        ReportStore source(options);
        auto verified = source.VerifyAudit();
        if (!verified.ok())
            return Error{"the audit log of " + sqlite_path +
                         " is broken, so it is not copied: " + verified.error().message};
    }

    PGconn* c = impl_->connection.get();
    const auto failed = [&](const Error& e) {
        PQclear(PQexec(c, "ROLLBACK"));
        return Error{impl_->where + ": " + e.message};
    };
    if (auto r = pg::Exec(c, "begin the copy", "BEGIN"); !r.ok()) return failed(r.error());
    // No ldisd writes while the history comes in (they wait, then find it).
    std::string all;
    for (const char* t : kTables) all += std::string(all.empty() ? "" : ", ") + t;
    if (auto r = pg::Exec(c, "lock the tables", "LOCK TABLE " + all + " IN EXCLUSIVE MODE");
        !r.ok())
        return failed(r.error());
    auto held = pg::Exec(c, "count what the database holds",
                         "SELECT (SELECT count(*) FROM reports) + (SELECT count(*) FROM audit) + "
                         "(SELECT count(*) FROM alerts) + (SELECT count(*) FROM tokens)");
    if (!held.ok()) return failed(held.error());
    if (held.value().integer(0, 0) != 0)
        return failed(
            Error{"the database already holds a history (reports, alerts, tokens or "
                  "audit entries); copy only into an empty one, never on top of "
                  "another"});

    Counts counts;
    for (const char* table : kTables) {
        sqlite3_stmt* raw_stmt = nullptr;
        const std::string select = std::string("SELECT * FROM ") + table;
        if (sqlite3_prepare_v2(lite.get(), select.c_str(), -1, &raw_stmt, nullptr) != SQLITE_OK)
            return failed(Error{"cannot read " + std::string(table) + " from " + sqlite_path +
                                ": " + sqlite3_errmsg(lite.get())});
        std::unique_ptr<sqlite3_stmt, StatementCloser> stmt(raw_stmt);
        const int n = sqlite3_column_count(raw_stmt);
        std::string insert = std::string("INSERT INTO ") + table + " (";
        std::string values;
        for (int i = 0; i < n; ++i) {
            insert += std::string(i ? ", " : "") + "\"" + sqlite3_column_name(raw_stmt, i) + "\"";
            values += (i ? ", $" : "$") + std::to_string(i + 1);
        }
        insert += ") VALUES (" + values + ")";
        {
            PGresult* r = PQprepare(c, table, insert.c_str(), n, nullptr);
            const pg::Rows prepared(r);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                return failed(Error{"cannot prepare the copy of " + std::string(table) + ": " +
                                    pg::FirstLine(PQresultErrorMessage(r))});
        }
        std::int64_t copied = 0;
        std::vector<std::string> text(static_cast<std::size_t>(n));
        std::vector<const char*> params(static_cast<std::size_t>(n));
        int rc;
        while ((rc = sqlite3_step(raw_stmt)) == SQLITE_ROW) {
            for (int i = 0; i < n; ++i) {
                const auto k = static_cast<std::size_t>(i);
                if (sqlite3_column_type(raw_stmt, i) == SQLITE_NULL) {
                    params[k] = nullptr;
                    continue;
                }
                const auto* p = sqlite3_column_text(raw_stmt, i);
                text[k].assign(reinterpret_cast<const char*>(p),
                               static_cast<std::size_t>(sqlite3_column_bytes(raw_stmt, i)));
                params[k] = text[k].c_str();
            }
            PGresult* r = PQexecPrepared(c, table, n, params.data(), nullptr, nullptr, 0);
            const pg::Rows done(r);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                return failed(Error{"cannot copy row " + std::to_string(copied + 1) + " of " +
                                    table + ": " + pg::FirstLine(PQresultErrorMessage(r))});
            ++copied;
        }
        if (rc != SQLITE_DONE)
            return failed(Error{"cannot read " + std::string(table) + " from " + sqlite_path +
                                ": " + sqlite3_errmsg(lite.get())});
        counts.emplace_back(table, copied);
    }
    for (const auto& [table, column] : kNumbered) {
        const std::string sql = std::string("SELECT setval(pg_get_serial_sequence('") + table +
                                "', '" + column + "'), coalesce(max(" + column + "), 1), max(" +
                                column + ") IS NOT NULL) FROM " + table;
        if (auto r = pg::Exec(c, std::string("move the numbering of ") + table + " on", sql);
            !r.ok())
            return failed(r.error());
    }
    auto verified = VerifyAuditOn(c);
    if (!verified.ok())
        return failed(Error{"the copied audit log does not verify, so nothing was copied: " +
                            verified.error().message});
    if (auto r = pg::Exec(c, "commit the copy", "COMMIT"); !r.ok()) return failed(r.error());
    return counts;
}

}  // namespace ldis::engine
