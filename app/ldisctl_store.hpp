#pragma once
// ldisctl and the store: --db opens either backend; migrate copies SQLite into PostgreSQL.
#include <memory>
#include <string>

#include "ldis/engine/store.hpp"

namespace ldis::app::ctl {

// ldisctl migrate --from sqlite:PATH --to postgresql://…: makes the schema on the target,
// copies the whole history, verifies the audit chain there, and says so table by table.
// Returns ldisctl's exit code (0, or 6 with the reason on stderr).
int Migrate(const std::string& from, const std::string& to);

// True if --db names a PostgreSQL database (postgresql://..., store.url) rather than a
// SQLite file (store.path).
bool IsPostgres(const std::string& db);
// The store --db names, either kind; throws StoreError with the reason.
std::unique_ptr<engine::Store> OpenStore(const std::string& db);

}  // namespace ldis::app::ctl
