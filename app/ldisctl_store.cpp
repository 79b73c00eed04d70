#include "ldisctl_store.hpp"

#include <filesystem>
#include <iostream>

#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_store.hpp"

namespace ldis::app::ctl {

bool IsPostgres(const std::string& db) {
    return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

std::unique_ptr<engine::Store> OpenStore(const std::string& db) {
    if (IsPostgres(db)) {
        engine::PostgresStore::Options options;
        options.url = db;
        auto opened = engine::PostgresStore::Open(options);
        if (!opened.ok()) throw engine::StoreError(opened.error().message);
        return std::move(opened).value();
    }
    engine::StoreOptions options;
    options.path = db;
    return std::make_unique<engine::ReportStore>(options);
}

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
