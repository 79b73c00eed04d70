// The PostgreSQL database: the URL checked, the connection made, the schema made once.
#include <cstdint>

#include "impl.hpp"
#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_store.hpp"

namespace ldis::engine {
namespace sql {
extern const char* const kPostgresSchemaSql;
extern const char* const kPostgresMigrationSql[];
extern const int kPostgresMigrationCount;
}  // namespace sql

namespace {

// The advisory lock every instance takes before it looks at the schema ("LDIS" and 1).
// Transaction-scoped: a process that dies while holding it lets go with its connection.
constexpr std::int64_t kSchemaLock = (std::int64_t{0x4c444953} << 32) | 1;

}  // namespace

Result<std::string> CheckPostgresUrl(std::string_view url) {
    if (!url.starts_with("postgresql://") && !url.starts_with("postgres://"))
        return Error{
            "store.url must start with postgresql:// (for SQLite, set store.path "
            "instead)"};
    const std::string text(url);
    char* failure = nullptr;
    PQconninfoOption* options = PQconninfoParse(text.c_str(), &failure);
    if (options == nullptr) {
        std::string why = failure != nullptr ? failure : "out of memory";
        if (failure != nullptr) PQfreemem(failure);
        while (!why.empty() && why.back() == '\n') why.pop_back();
        return Error{"store.url is not a PostgreSQL URL libpq can read: " + why};
    }
    std::string secret;
    for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
        const std::string_view key = o->keyword;
        if ((key == "password" || key == "sslpassword") && o->val != nullptr && *o->val != 0)
            secret = o->keyword;
    }
    PQconninfoFree(options);
    // The URL is then safe to print: it carries no secret.
    if (!secret.empty())
        return Error{"store.url must not hold the " + secret +
                     " (it would be in the configuration and the logs): put it in a "
                     "passfile readable by ldisd alone and name it with ?passfile=PATH or "
                     "PGPASSFILE"};
    return text;
}

PostgresDatabase::PostgresDatabase(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresDatabase::~PostgresDatabase() = default;
int PostgresDatabase::schema_version() const {
    return impl_->version;
}
const std::string& PostgresDatabase::where() const {
    return impl_->where;
}
bool PostgresDatabase::made_schema() const {
    return impl_->made;
}

Result<std::unique_ptr<PostgresDatabase>> PostgresDatabase::Open(const std::string& url) {
    auto where = CheckPostgresUrl(url);
    if (!where.ok()) return where.error();
    auto impl = std::make_unique<Impl>();
    impl->where = where.value();
    auto connection = pg::Connect(url, impl->where);
    if (!connection.ok()) return connection.error();
    impl->connection = std::move(connection).value();
    PGconn* c = impl->connection.get();
    const auto failed = [&](const Error& e) {
        PQclear(PQexec(c, "ROLLBACK"));
        return Error{impl->where + ": " + e.message};
    };
    if (auto r = pg::Exec(c, "begin the schema's transaction", "BEGIN"); !r.ok())
        return failed(r.error());
    // Without the lock, two instances starting on an empty database both see no schema and
    // both make it; the second fails on a table the first has just made.
    if (auto r = pg::Exec(c, "take the schema lock", "SELECT pg_advisory_xact_lock($1)",
                          {std::to_string(kSchemaLock)});
        !r.ok())
        return failed(r.error());
    auto found = pg::Exec(c, "look for the schema", "SELECT to_regclass('ldis_schema') IS NULL");
    if (!found.ok()) return failed(found.error());
    if (found.value().text(0, 0) == "t") {
        if (auto r = pg::ExecScript(c, "make the schema", sql::kPostgresSchemaSql); !r.ok())
            return failed(r.error());
        impl->made = true;
    }
    auto version = pg::Exec(c, "read the schema version", "SELECT max(version) FROM ldis_schema");
    if (!version.ok()) return failed(version.error());
    impl->version = static_cast<int>(version.value().integer(0, 0));
    // An earlier version is brought up to this one inside the same transaction and lock:
    // the instance that starts first migrates, the others find it done.
    constexpr int kFirstVersion = 9;  // the PostgreSQL store's first schema
    static_assert(ReportStore::kSchemaVersion >= kFirstVersion);
    if (sql::kPostgresMigrationCount != ReportStore::kSchemaVersion - kFirstVersion)
        return failed(Error{"this ldisd was built with " +
                            std::to_string(sql::kPostgresMigrationCount) +
                            " PostgreSQL migrations; schema version " +
                            std::to_string(ReportStore::kSchemaVersion) + " needs " +
                            std::to_string(ReportStore::kSchemaVersion - kFirstVersion)});
    for (int v = impl->version; v >= kFirstVersion && v < ReportStore::kSchemaVersion; ++v) {
        if (auto r = pg::ExecScript(c, "migrate the schema to version " + std::to_string(v + 1),
                                    sql::kPostgresMigrationSql[v - kFirstVersion]);
            !r.ok())
            return failed(r.error());
        impl->version = v + 1;
        impl->migrated = true;
    }
    if (impl->version != ReportStore::kSchemaVersion) {
        return failed(Error{"the database has schema version " + std::to_string(impl->version) +
                            (impl->version > ReportStore::kSchemaVersion
                                 ? ", written by a newer LDIS than this one (" +
                                       std::to_string(ReportStore::kSchemaVersion) +
                                       "): run that version, or restore a backup made before it"
                                 : ", and this LDIS has no migration from it to " +
                                       std::to_string(ReportStore::kSchemaVersion))});
    }
    if (auto r = pg::Exec(c, "commit the schema", "COMMIT"); !r.ok()) return failed(r.error());
    return std::unique_ptr<PostgresDatabase>(new PostgresDatabase(std::move(impl)));
}

}  // namespace ldis::engine
