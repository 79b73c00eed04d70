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
#include "ldis/engine/store.hpp"

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
    friend class PostgresIntake;
    struct Impl;
    explicit PostgresDatabase(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Reports taken in on PostgreSQL: ReportIntake for a database that several ldisd share.
// Each Insert is one transaction on this instance's connection, correct whichever instance
// takes which report:
// - the report's signal is found or made under an advisory transaction lock on its key
//   (family and district), so two reports of one signal at two instances at once make one
//   signal and one alert, never two;
// - an alert's number (KM-2026-0007) is counted under a lock held to the commit, so a
//   rolled-back transaction leaves no gap a coordinator would see as a missing alert;
//   report references (KM-R000042) come from the sequence, where a rollback or a
//   duplicate may leave a gap, as receipts alone carry them;
// - audit entries are appended under a lock on the chain's head, so the chain stays one;
// - the same report id at two instances is stored once (the second finds it).
// The locks are always taken in that order (signal, numbering, audit), so no two
// transactions wait on each other in a cycle.
class PostgresIntake : public ReportIntake {
public:
    struct Options {
        std::string url;
        std::string reference_prefix = "KM";
        // When set, every report is correlated, graded and alerted on in the transaction
        // that stores it, as on SQLite; without it reports are only stored.
        std::shared_ptr<const GradingSetup> grading;
    };
    static Result<std::unique_ptr<PostgresIntake>> Open(Options options);
    ~PostgresIntake() override;
    PostgresIntake(const PostgresIntake&) = delete;
    PostgresIntake& operator=(const PostgresIntake&) = delete;

    Result<StoredReport> Insert(const Report& report, std::string_view channel) override;

private:
    struct Impl;
    explicit PostgresIntake(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace ldis::engine
