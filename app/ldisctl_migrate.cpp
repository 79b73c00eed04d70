#include "ldisctl_migrate.hpp"

#include <filesystem>
#include <iostream>

#include "ldis/engine/postgres.hpp"

namespace ldis::app::ctl {

int Migrate(const std::string& from, const std::string& to) {
    constexpr int kFailed = 6;
    if (!from.starts_with("sqlite:")) {
        std::cerr << "ldisctl: --from must be sqlite:PATH (the SQLite file, store.path)\n";
        return kFailed;
    }
    const std::string path = from.substr(7);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        std::cerr << "ldisctl: no SQLite file at " << path << '\n';
        return kFailed;
    }
    const auto checked = engine::CheckPostgresUrl(to);
    if (!checked.ok()) {
        std::cerr << "ldisctl: --to: " << checked.error().message << '\n';
        return kFailed;
    }
    std::cout << "connecting to " << checked.value() << " and making the schema if it is new\n";
    auto db = engine::PostgresDatabase::Open(to);
    if (!db.ok()) {
        std::cerr << "ldisctl: " << db.error().message << '\n';
        return kFailed;
    }
    std::cout << "copying " << path << " (its audit chain verified first)\n";
    const auto counts = db.value()->CopyFromSqlite(path);
    if (!counts.ok()) {
        std::cerr << "ldisctl: " << counts.error().message << '\n';
        return kFailed;
    }
    for (const auto& [table, rows] : counts.value())
        std::cout << "  " << table << ": " << rows << " rows\n";
    const auto verified = db.value()->VerifyAudit();
    if (!verified.ok()) {
        std::cerr << "ldisctl: the audit log on " << checked.value()
                  << " is broken: " << verified.error().message << '\n';
        return kFailed;
    }
    std::cout << "audit log OK on " << checked.value() << ": " << verified.value()
              << " entries, hash chain intact\n";
    return 0;
}

}  // namespace ldis::app::ctl
