// Upgrades (issue 13): a database written by the ldisd of each earlier schema version
// (tests/fixtures/schema/v<N>.db, made by tests/fixtures/schema/make-fixture from that
// version's own commit) is migrated by today's ldisd at start, keeps everything it held,
// takes new reports, recognises a report it already had as a duplicate, and its audit chain
// still verifies; and the schema it ends with is exactly the one a new database is made of
// (alert-engine/src/store/schema.sql).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::TempDir;

constexpr auto kUpgradeWait = std::chrono::seconds(15);

// One value from an SQL query on `path` (read-only), or "" when there is none.
std::string Query(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    std::string out;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr)
            out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return out;
}

// What make-fixture wrote beside the database: "table count" lines, and "schema N".
std::map<std::string, long> Manifest(const std::string& path) {
    std::map<std::string, long> out;
    std::istringstream in(ldis::test::ReadFile(path));
    std::string name, value;
    while (in >> name >> value) {
        if (name != "commit") out[name] = std::stol(value);
    }
    return out;
}

int Ctl(const TempDir& dir, std::vector<std::string> args, std::string* out) {
    static int n = 0;
    const std::string log = dir / ("ldisctl-" + std::to_string(++n) + ".txt");
    args.insert(args.begin(), LDISCTL_PATH);
    ldis::test::Process ctl(args, log);
    const int code = ctl.Wait(std::chrono::seconds(30));
    *out = ldis::test::ReadFile(log);
    return code;
}

// The shape of a database's schema, one line per column, index and foreign key: what a
// query sees (names, order, types, NOT NULL, defaults, keys, partial indexes), not how the
// CREATE statement was spaced.
std::string SchemaOf(const std::string& path) {
    sqlite3* db = nullptr;
    std::string out;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close(db);
        return "cannot open " + path;
    }
    const char* queries[] = {
        "SELECT 'table ' || m.name || (CASE WHEN m.sql LIKE '%WITHOUT ROWID%' THEN ' without "
        "rowid' ELSE '' END) || ': ' || p.cid || ' ' || p.name || ' ' || p.type || ' notnull=' "
        "|| p.\"notnull\" || ' default=' || coalesce(p.dflt_value, '-') || ' pk=' || p.pk "
        "FROM sqlite_master m JOIN pragma_table_info(m.name) p "
        "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid",
        "SELECT 'index ' || m.name || ' on ' || m.tbl_name || ': ' || "
        "replace(replace(replace(lower(m.sql), char(10), ' '), '    ', ' '), '  ', ' ') "
        "FROM sqlite_master m WHERE m.type = 'index' AND m.sql IS NOT NULL ORDER BY m.name",
        "SELECT 'unique ' || m.name || ': ' || l.name || ' ' || l.\"unique\" || ' ' || l.origin "
        "FROM sqlite_master m JOIN pragma_index_list(m.name) l WHERE m.type = 'table' "
        "ORDER BY m.name, l.name",
        "SELECT 'foreign key ' || m.name || ': ' || f.\"from\" || ' -> ' || f.\"table\" || '(' || "
        "coalesce(f.\"to\", '') || ')' FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f "
        "WHERE m.type = 'table' ORDER BY m.name, f.\"from\""};
    for (const char* sql : queries) {
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
            out += std::string("query failed: ") + sqlite3_errmsg(db) + "\n";
            continue;
        }
        while (sqlite3_step(stmt) == SQLITE_ROW)
            out += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)) + std::string("\n");
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return out;
}

// A new database, as today's store makes it (from schema.sql).
std::string FreshSchema() {
    static const std::string schema = [] {
        TempDir dir;
        ldis::engine::StoreOptions options;
        options.path = dir / "fresh.db";
        { ldis::engine::ReportStore store(options); }
        return SchemaOf(options.path);
    }();
    return schema;
}

class UpgradeTest : public ::testing::TestWithParam<int> {};

TEST_P(UpgradeTest, EveryEarlierSchemaMigratesAndKeepsItsHistory) {
    const int version = GetParam();
    const std::string fixture =
        ldis::test::SourcePath("tests/fixtures/schema/v" + std::to_string(version));
    ASSERT_TRUE(fs::exists(fixture + ".db")) << "make it with tests/fixtures/schema/make-fixture";
    const auto before = Manifest(fixture + ".txt");
    ASSERT_EQ(before.at("schema"), version);

    TempDir dir;
    Mosquitto broker;
    Ldisd daemon(broker, dir);
    fs::copy_file(fixture + ".db", daemon.db_path());
    chmod(daemon.db_path().c_str(), 0600);
    ASSERT_EQ(Query(daemon.db_path(), "PRAGMA user_version"), std::to_string(version));
    const std::string old_id =
        Query(daemon.db_path(), "SELECT id FROM reports ORDER BY seq LIMIT 1");
    ASSERT_FALSE(old_id.empty());

    ASSERT_NO_THROW(daemon.Start()) << daemon.log();
    EXPECT_EQ(Query(daemon.db_path(), "PRAGMA user_version"),
              std::to_string(ldis::engine::ReportStore::kSchemaVersion));
    // Migrated, it has the schema a new database is made of: schema.sql tells the truth.
    EXPECT_EQ(SchemaOf(daemon.db_path()), FreshSchema());

    // What the old version wrote is all there.
    for (const auto& [table, count] : before) {
        if (table == "schema" || table == "deliveries" || table == "audit") continue;
        EXPECT_EQ(Query(daemon.db_path(), "SELECT count(*) FROM " + table), std::to_string(count))
            << table;
    }
    for (const std::string table : {"deliveries", "audit"}) {
        if (!before.count(table)) continue;
        EXPECT_GE(std::stol(Query(daemon.db_path(), "SELECT count(*) FROM " + table)),
                  before.at(table))
            << table;
    }

    // It works on: a new report is accepted, one it had before the upgrade is a duplicate.
    MqttPeer peer(broker.uri(), "upgrade-submitter");
    peer.Subscribe("ldis/v1/receipts/#");
    const auto submit = [&](const std::string& id) {
        EXPECT_TRUE(peer.Publish("ldis/v1/reports/hospital", ldis::test::ValidReportText(id)));
        const auto seen = peer.WaitForTopic("ldis/v1/receipts/hospital", kUpgradeWait);
        return seen ? std::string(ldis::test::ParseObject(seen->payload).at("status").as_string())
                    : std::string("none");
    };
    EXPECT_EQ(submit(ldis::test::NewUuid()), "accepted");
    EXPECT_EQ(submit(old_id), "duplicate");
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);

    // The audit chain, begun by the old version and continued by this one, verifies.
    std::string out;
    EXPECT_EQ(Ctl(dir, {"audit", "verify", "--db", daemon.db_path()}, &out), 0) << out;
    EXPECT_EQ(Query(daemon.db_path(), "SELECT count(*) FROM reports"),
              std::to_string(before.at("reports") + 1));
}

INSTANTIATE_TEST_SUITE_P(FromEachVersion, UpgradeTest,
                         ::testing::Range(1, ldis::engine::ReportStore::kSchemaVersion),
                         [](const ::testing::TestParamInfo<int>& param) {
                             return "v" + std::to_string(param.param);
                         });

// The fixtures cover every version before today's: a schema change without a fixture for
// the version it replaces fails here, naming the command that makes it.
TEST(UpgradeFixtures, OneForEachEarlierVersion) {
    for (int v = 1; v < ldis::engine::ReportStore::kSchemaVersion; ++v)
        EXPECT_TRUE(fs::exists(
            ldis::test::SourcePath("tests/fixtures/schema/v" + std::to_string(v) + ".db")))
            << "tests/fixtures/schema/make-fixture <the last commit at schema " << v << "> " << v;
}

}  // namespace
