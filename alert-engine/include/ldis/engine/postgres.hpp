#pragma once
// The PostgreSQL store's database (issue 15): the connection from `store.url` and the
// schema (src/store/postgres/schema.sql), made once however many ldisd start at once.
//
// This is the first room of the PostgreSQL backend. The Store interface (store.hpp) is
// not yet implemented on it; see docs/postgresql.md for what is built and what is not.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ldis/engine/result.hpp"

namespace ldis::engine {

// Checks a `store.url` before anything connects with it: the scheme is postgresql:// (or
// postgres://), and no password is written in it; a password belongs in a passfile
// (`?passfile=/etc/ldis/pgpass` or PGPASSFILE), readable by ldisd alone, so that the
// configuration can be shown, copied and logged. Returns the URL as messages may show it.
Result<std::string> CheckPostgresUrl(std::string_view url);

class PostgresDatabase {
public:
    // Connects and brings the database to this build's schema: an empty database is made
    // from schema.sql in one transaction, under an advisory lock that every instance takes
    // first, so that instances starting together make it once. A database written by a
    // newer LDIS is refused, as SQLite's is. The error says where and why, never the
    // password.
    static Result<std::unique_ptr<PostgresDatabase>> Open(const std::string& url);
    ~PostgresDatabase();
    PostgresDatabase(const PostgresDatabase&) = delete;
    PostgresDatabase& operator=(const PostgresDatabase&) = delete;

    int schema_version() const;
    // The URL as messages show it.
    const std::string& where() const;
    // True if this call made the schema (the others found it made).
    bool made_schema() const;

    // Walks the audit log's hash chain as `ldisctl audit verify` does on SQLite: the number
    // of entries, or the first broken one.
    Result<std::int64_t> VerifyAudit() const;

    // `ldisctl migrate`: copies a whole SQLite history (store.path, at this build's schema
    // version) into this database, which must hold none yet: every table, row for row with
    // its numbers, in one transaction with the tables locked, the sequences moved past the
    // numbers copied. The source's audit chain is verified first and the copy's before the
    // commit, so a broken or half-copied history is never left behind. Returns each
    // table's row count.
    Result<std::vector<std::pair<std::string, std::int64_t>>> CopyFromSqlite(
        const std::string& sqlite_path);

private:
    struct Impl;
    explicit PostgresDatabase(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace ldis::engine
