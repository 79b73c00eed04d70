#pragma once
// What a PostgresDatabase holds (private to src/store/postgres/).
#include <string>

#include "ldis/engine/postgres.hpp"
#include "pg.hpp"

namespace ldis::engine {

struct PostgresDatabase::Impl {
    pg::Connection connection;
    std::string where;  // the URL as messages show it
    int version = 0;
    bool made = false;
    bool migrated = false;  // brought from an earlier schema version at this start
};

// Walks the audit chain on `c` (migrate.cpp): the number of entries, or the first broken.
Result<std::int64_t> VerifyAuditOn(PGconn* c);

// The connection inside a PostgresDatabase, for the store's own files.
struct PostgresAccess {
    static PGconn* Connection(const PostgresDatabase& d) { return d.impl_->connection.get(); }
};

}  // namespace ldis::engine
