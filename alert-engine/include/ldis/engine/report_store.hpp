#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/report.hpp"
#include "ldis/engine/result.hpp"

namespace ldis::engine {

// SQLite's `synchronous` setting for the write connection.
enum class Synchronous { kOff, kNormal, kFull, kExtra };
std::optional<Synchronous> ParseSynchronous(std::string_view text);

struct StoreOptions {
    std::string path;
    Synchronous synchronous = Synchronous::kFull;
    int busy_timeout_ms = 5000;
    std::size_t max_batch = 512;          // reports committed together at most
    std::string reference_prefix = "KM";  // references look like KM-R000042
};

// The outcome of storing one report.
struct StoredReport {
    std::string id;
    std::string reference;
    bool duplicate = false;  // the id was already stored; nothing changed
};

// A stored report as read back.
struct StoredReportRow {
    std::string id;
    std::string reference;
    std::int64_t received_at_ms = 0;
    std::string source_type;
    std::string authority;
    std::string district;
    std::string channel;
    std::string document;
};

// Thrown at start-up when the database cannot be opened, migrated or is corrupt.
class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The durable store of reports: one SQLite file in WAL mode, migrated through
// PRAGMA user_version. Writes go through one writer thread that owns the write
// connection and commits whatever is queued in one transaction (group commit), so that
// many concurrent Insert() calls share one fsync. Reads use their own connection.
class ReportStore {
public:
    static constexpr int kSchemaVersion = 1;

    // Opens or creates the file, checks its integrity header and migrates it.
    // Throws StoreError naming the file and the problem.
    explicit ReportStore(StoreOptions options);
    // Finishes every queued write, then closes.
    ~ReportStore();
    ReportStore(const ReportStore&) = delete;
    ReportStore& operator=(const ReportStore&) = delete;

    // Thread-safe. Blocks until the report's row is committed, or found already stored
    // (duplicate). Returns an Error, and stores nothing, when the commit fails (disk full,
    // I/O error, closing); the caller must then not acknowledge the report.
    Result<StoredReport> Insert(const Report& report, std::string_view channel);

    // Thread-safe reads on a separate connection.
    std::optional<StoredReportRow> Find(std::string_view id) const;
    std::int64_t CountReports() const;
    std::vector<std::string> ListIds() const;
    // The most recently received reports, newest first.
    std::vector<StoredReportRow> Recent(std::size_t limit) const;

    // The user_version of a database file, without migrating it. Throws StoreError.
    static int FileSchemaVersion(const std::string& path);

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ldis::engine
