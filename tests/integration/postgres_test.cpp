// The PostgreSQL store's database (issue 15), against a real PostgreSQL that each test
// starts (tests/support/postgres.hpp): the URL checked before it is used, the schema the
// same as SQLite's, made once however many instances start together, and a database of a
// newer LDIS refused.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <latch>
#include <thread>
#include <vector>

#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_store.hpp"
#include "support/postgres.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace ldis::engine::sql {
extern const char* const kSchemaSql;
}

namespace {

using ldis::engine::CheckPostgresUrl;
using ldis::engine::PostgresDatabase;
using ldis::test::PgRows;
using ldis::test::PostgresServer;

// The same for SQLite.
std::vector<std::string> LiteRows(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::vector<std::string> out;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        std::string row;
        for (int j = 0; j < sqlite3_column_count(stmt); ++j) {
            const auto* text = sqlite3_column_text(stmt, j);
            row += (j ? "\t" : "") + std::string(text ? reinterpret_cast<const char*>(text) : "");
        }
        out.push_back(row);
    }
    sqlite3_finalize(stmt);
    return out;
}

TEST(PostgresStoreTest, ANewDatabaseHoldsTheSameTablesColumnsAndIndexesAsSqlite) {
    PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    auto db = PostgresDatabase::Open(url);
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_EQ(db.value()->schema_version(), ldis::engine::ReportStore::kSchemaVersion);
    EXPECT_TRUE(db.value()->made_schema());
    auto again = PostgresDatabase::Open(url);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_FALSE(again.value()->made_schema()) << "a second start must find the schema made";

    sqlite3* lite = nullptr;
    ASSERT_EQ(sqlite3_open(":memory:", &lite), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(lite, ldis::engine::sql::kSchemaSql, nullptr, nullptr, nullptr),
              SQLITE_OK);
    const auto tables = LiteRows(lite,
                                 "SELECT name FROM sqlite_master WHERE type = 'table' "
                                 "ORDER BY name");
    auto pg_tables = PgRows(url,
                            "SELECT table_name FROM information_schema.tables WHERE "
                            "table_schema = 'public' AND table_name <> 'ldis_schema' "
                            "ORDER BY table_name COLLATE \"C\"");
    EXPECT_EQ(pg_tables, tables);
    for (const auto& table : tables) {
        // SQLite: name, type, NOT NULL (a primary key's column is never null either).
        std::vector<std::string> expected;
        for (const auto& row : LiteRows(lite,
                                        // SQLite's BLOB is PostgreSQL's bytea (a photo).
                                        "SELECT name, CASE upper(type) WHEN 'INTEGER' THEN "
                                        "'bigint' WHEN 'BLOB' THEN 'bytea' ELSE lower(type) END, "
                                        "CASE WHEN \"notnull\" OR pk > 0 THEN 'NO' ELSE 'YES' END "
                                        "FROM pragma_table_info('" +
                                            table + "') ORDER BY cid"))
            expected.push_back(row);
        const auto got = PgRows(url,
                                "SELECT column_name, data_type, is_nullable FROM "
                                "information_schema.columns WHERE table_schema = 'public' AND "
                                "table_name = '" +
                                    table + "' ORDER BY ordinal_position");
        EXPECT_EQ(got, expected) << "table " << table;
    }
    // Every named index, with the columns it covers (and its condition, if partial).
    const auto lite_indexes =
        LiteRows(lite,
                 "SELECT m.name, group_concat(i.name, ',') FROM sqlite_master m, "
                 "pragma_index_info(m.name) i WHERE m.type = 'index' AND m.sql IS NOT NULL "
                 "GROUP BY m.name ORDER BY m.name");
    const auto pg_indexes = PgRows(
        url,
        "SELECT i.relname, string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace s ON s.oid = i.relnamespace "
        "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
        "WHERE s.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE "
        "c.conindid = i.oid) GROUP BY i.relname ORDER BY i.relname COLLATE \"C\"");
    EXPECT_EQ(pg_indexes, lite_indexes);
    sqlite3_close(lite);
}

TEST(PostgresStoreTest, InstancesStartingTogetherOnAnEmptyDatabaseMakeTheSchemaOnce) {
    PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    constexpr int kInstances = 8;
    std::latch start(kInstances);
    std::vector<std::string> errors(kInstances);
    std::vector<int> made(kInstances, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < kInstances; ++i) {
        threads.emplace_back([&, i] {
            auto db = PostgresDatabase::Open(url);
            if (db.ok())
                made[i] = db.value()->made_schema() ? 1 : 0;
            else
                errors[i] = db.error().message;
        });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < kInstances; ++i) EXPECT_EQ(errors[i], "") << "instance " << i;
    int makers = 0;
    for (int m : made) makers += m;
    EXPECT_EQ(makers, 1);
    EXPECT_EQ(PgRows(url, "SELECT count(*), max(version) FROM ldis_schema"),
              std::vector<std::string>{"1\t" +
                                       std::to_string(ldis::engine::ReportStore::kSchemaVersion)});
}

TEST(PostgresStoreTest, APasswordInTheUrlIsRefusedAndNeverRepeated) {
    for (const std::string url : {"postgresql://ldis:s3cret-pw@db.kent.example/ldis",
                                  "postgresql://db.kent.example/ldis?password=s3cret-pw",
                                  "postgres://ldis@db.kent.example/ldis?sslpassword=s3cret-pw"}) {
        const auto checked = CheckPostgresUrl(url);
        ASSERT_FALSE(checked.ok()) << url;
        EXPECT_NE(checked.error().message.find("passfile"), std::string::npos)
            << checked.error().message;
        EXPECT_EQ(checked.error().message.find("s3cret"), std::string::npos)
            << checked.error().message;
        const auto opened = PostgresDatabase::Open(url);
        ASSERT_FALSE(opened.ok());
        EXPECT_EQ(opened.error().message.find("s3cret"), std::string::npos);
    }
    const auto sqlite = CheckPostgresUrl("sqlite:/var/lib/ldis/ldis.db");
    ASSERT_FALSE(sqlite.ok());
    EXPECT_NE(sqlite.error().message.find("store.path"), std::string::npos);
    const auto garbled = CheckPostgresUrl("postgresql://db.kent.example/ldis?nonsense=1");
    ASSERT_FALSE(garbled.ok());
    EXPECT_NE(garbled.error().message.find("nonsense"), std::string::npos)
        << garbled.error().message;
    ASSERT_TRUE(CheckPostgresUrl("postgresql://ldis@db.kent.example/ldis?sslmode=verify-full&"
                                 "passfile=/etc/ldis/pgpass")
                    .ok());
}

// A server that asks for a password (SCRAM): ldisd reads it from the passfile the URL
// names, and no message ever carries it.
TEST(PostgresStoreTest, APassfileGivesThePasswordAndNoMessageCarriesIt) {
    const std::string secret = "s3cret-Kent-pw";
    PostgresServer server(secret);
    const std::string url = server.CreateDatabase("ldis");
    const auto none = PostgresDatabase::Open(url);
    ASSERT_FALSE(none.ok());
    EXPECT_NE(none.error().message.find("password"), std::string::npos) << none.error().message;
    ldis::test::TempDir dir;
    const auto passfile = [&](const std::string& name, const std::string& password) {
        const std::string path = dir / name;
        std::ofstream(path) << "*:*:*:ldis:" << password << "\n";
        chmod(path.c_str(), 0600);  // libpq ignores a passfile others can read
        return path;
    };
    const auto wrong = PostgresDatabase::Open(url + "&passfile=" + passfile("wrong", "guess"));
    ASSERT_FALSE(wrong.ok());
    EXPECT_NE(wrong.error().message.find("password authentication failed"), std::string::npos)
        << wrong.error().message;
    EXPECT_EQ(wrong.error().message.find("guess"), std::string::npos);
    const auto opened = PostgresDatabase::Open(url + "&passfile=" + passfile("right", secret));
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(opened.value()->where().find(secret), std::string::npos);
}

// TLS to the database as a council runs it: sslmode=verify-full with the council's CA
// connects; a server whose certificate another CA signed is refused, with the reason.
TEST(PostgresStoreTest, VerifyFullTlsConnectsToTheRightServerOnly) {
    PostgresServer server;
    ldis::test::TempDir dir;
    const auto ca = ldis::test::MakeCa(dir, "council");
    const auto [cert, key] = ldis::test::MakeSignedCertificate(dir, ca, "IP:127.0.0.1", "db");
    server.EnableTls(cert, key);
    server.CreateDatabase("ldis");
    const std::string base = "postgresql://ldis@127.0.0.1:" + std::to_string(server.tls_port()) +
                             "/ldis?sslmode=verify-full&sslrootcert=";
    const auto opened = PostgresDatabase::Open(base + ca.cert);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    const auto other = ldis::test::MakeCa(dir, "stranger");
    const auto refused = PostgresDatabase::Open(base + other.cert);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("certificate verify failed"), std::string::npos)
        << refused.error().message;
}

TEST(PostgresStoreTest, AServerThatIsNotThereIsNamedWithTheReason) {
    ldis::test::TempDir nowhere;
    const std::string url = "postgresql:///ldis?host=" + nowhere.path().string() + "&user=ldis";
    const auto opened = PostgresDatabase::Open(url);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().message.find("cannot connect to PostgreSQL at " + url),
              std::string::npos)
        << opened.error().message;
    EXPECT_NE(opened.error().message.find("No such file"), std::string::npos)
        << opened.error().message;
}

TEST(PostgresStoreTest, ADatabaseWrittenByANewerLdisIsRefused) {
    PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    ASSERT_TRUE(PostgresDatabase::Open(url).ok());
    const std::string today = std::to_string(ldis::engine::ReportStore::kSchemaVersion);
    const std::string newer = std::to_string(ldis::engine::ReportStore::kSchemaVersion + 1);
    PgRows(url, "UPDATE ldis_schema SET version = " + newer);
    const auto opened = PostgresDatabase::Open(url);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().message.find("schema version " + newer + ", written by a newer LDIS"),
              std::string::npos)
        << opened.error().message;
    // A restarted server keeps what was committed: the schema is found, not made again.
    PgRows(url, "UPDATE ldis_schema SET version = " + today);
    server.Restart();
    const auto after = PostgresDatabase::Open(url);
    ASSERT_TRUE(after.ok()) << after.error().message;
    EXPECT_FALSE(after.value()->made_schema());
}

// Every column of every table, with its type, NOT NULL and default, in order.
std::vector<std::string> PgColumns(const std::string& url) {
    return PgRows(url,
                  "SELECT table_name, column_name, data_type, is_nullable, "
                  "coalesce(column_default, '-') FROM information_schema.columns WHERE "
                  "table_schema = 'public' ORDER BY table_name COLLATE \"C\", ordinal_position");
}

// A database made by the first PostgreSQL store (schema 9, tests/fixtures/schema/
// postgres-v9.sql: that commit's schema.sql) is brought to today's schema at start, keeps
// its rows, and ends with exactly the columns a new database is made with.
TEST(PostgresStoreTest, ADatabaseOfAnEarlierSchemaIsMigratedAtStartAndKeepsItsRows) {
    PostgresServer server;
    const std::string fresh = server.CreateDatabase("fresh");
    ASSERT_TRUE(PostgresDatabase::Open(fresh).ok());
    const std::string old = server.CreateDatabase("old");
    PgRows(old,
           ldis::test::ReadFile(ldis::test::SourcePath("tests/fixtures/schema/postgres-v9.sql")));
    PgRows(old,
           "INSERT INTO reports (id, reference, received_at_ms, channel, submitted_at, "
           "source_type, organisation, authority, district, evidence, document) VALUES "
           "('r1', 'KM-R000001', 1, 'mqtt', '2026-11-23T09:30:00Z', 'hospital', 'A trust', "
           "'Medway', 'Medway', 'professional', '{}')");
    ASSERT_EQ(PgRows(old, "SELECT max(version) FROM ldis_schema"), std::vector<std::string>{"9"});
    ASSERT_NE(PgColumns(old), PgColumns(fresh));

    auto db = PostgresDatabase::Open(old);
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_EQ(db.value()->schema_version(), ldis::engine::ReportStore::kSchemaVersion);
    EXPECT_FALSE(db.value()->made_schema());
    EXPECT_EQ(PgColumns(old), PgColumns(fresh));
    EXPECT_EQ(PgRows(old, "SELECT reference, drill FROM reports"),
              std::vector<std::string>{"KM-R000001\t"});
    // A second start finds it migrated.
    auto again = PostgresDatabase::Open(old);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(PgRows(old, "SELECT count(*) FROM ldis_schema WHERE version = " +
                              std::to_string(ldis::engine::ReportStore::kSchemaVersion)),
              std::vector<std::string>{"1"});
}

// Runs ldisctl; returns its exit code and everything it printed.
std::pair<int, std::string> Ldisctl(const ldis::test::TempDir& dir, std::vector<std::string> args) {
    static int runs = 0;
    std::vector<std::string> argv{LDISCTL_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log = dir / ("ldisctl-" + std::to_string(++runs) + ".log");
    ldis::test::Process p(argv, log);
    const int code = p.Wait(std::chrono::seconds(60));
    return {code, ldis::test::ReadFile(log)};
}

// A history written by a real ldisd (the schema v8 fixture: reports, signals, alerts and
// versions, deliveries, settings, audit), upgraded to today's schema by ldisctl.
std::string History(const ldis::test::TempDir& dir, const std::string& name) {
    const std::string path = dir / name;
    std::filesystem::copy_file(std::string(LDIS_SOURCE_DIR) + "/tests/fixtures/schema/v8.db", path);
    const auto [code, out] = Ldisctl(dir, {"audit", "verify", "--db", path});
    EXPECT_EQ(code, 0) << out;
    return path;
}

TEST(LdisctlMigrateTest, AWholeSqliteHistoryMovesAndItsAuditChainVerifiesThere) {
    PostgresServer server;
    ldis::test::TempDir dir;
    const std::string url = server.CreateDatabase("ldis");
    const std::string path = History(dir, "ldis.db");
    const auto [code, out] = Ldisctl(dir, {"migrate", "--from", "sqlite:" + path, "--to", url});
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("audit log OK on " + url + ": 12 entries, hash chain intact"),
              std::string::npos)
        << out;
    sqlite3* lite = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &lite), SQLITE_OK);
    for (const std::string table :
         {"reports", "signals", "signal_reports", "signal_sources", "alerts", "alert_versions",
          "audit", "deliveries", "settings", "tokens", "sessions"}) {
        // Row for row: every column of every row, in the order of the first column.
        const std::string order = " ORDER BY 1, 2";
        const auto want = LiteRows(lite, "SELECT * FROM " + table + order);
        EXPECT_EQ(PgRows(url, "SELECT * FROM " + table + order), want) << table;
        EXPECT_NE(out.find("  " + table + ": " + std::to_string(want.size()) + " rows"),
                  std::string::npos)
            << out;
    }
    EXPECT_FALSE(LiteRows(lite, "SELECT * FROM deliveries").empty());
    // The next number each instance takes goes on from the history's.
    const auto last = LiteRows(lite, "SELECT max(seq) + 1 FROM audit");
    EXPECT_EQ(PgRows(url, "SELECT nextval(pg_get_serial_sequence('audit', 'seq'))"), last);
    sqlite3_close(lite);

    // A second copy on top of the first would mix two histories: refused, nothing added.
    const auto [again, again_out] =
        Ldisctl(dir, {"migrate", "--from", "sqlite:" + path, "--to", url});
    EXPECT_EQ(again, 6);
    EXPECT_NE(again_out.find("already holds a history"), std::string::npos) << again_out;
    EXPECT_EQ(PgRows(url, "SELECT count(*) FROM audit"), std::vector<std::string>{"12"});
}

// An operator's admin commands on PostgreSQL: --db takes store.url as it takes a SQLite
// file, so the first token of a new deployment is made the same way; backup and restore
// say they are SQLite's.
TEST(LdisctlMigrateTest, AdminCommandsTakeAPostgresqlUrl) {
    PostgresServer server;
    ldis::test::TempDir dir;
    const std::string url = server.CreateDatabase("ldis");
    const auto [made, token] = Ldisctl(dir, {"tokens", "create", "--db", url, "--role",
                                             "coordinator", "--name", "lead@kent.example"});
    ASSERT_EQ(made, 0) << token;
    EXPECT_TRUE(token.starts_with("ldis_")) << token;
    const auto [listed, list] = Ldisctl(dir, {"tokens", "list", "--db", url});
    EXPECT_EQ(listed, 0) << list;
    EXPECT_NE(list.find("lead@kent.example"), std::string::npos) << list;
    const auto [verified, chain] = Ldisctl(dir, {"audit", "verify", "--db", url});
    EXPECT_EQ(verified, 0) << chain;
    EXPECT_NE(chain.find("audit log OK: 1 entries"), std::string::npos) << chain;
    const auto [backup, said] = Ldisctl(dir, {"backup", "--db", url, "--to", dir / "copy.db"});
    EXPECT_EQ(backup, 2);
    EXPECT_NE(said.find("pg_dump"), std::string::npos) << said;
}

TEST(LdisctlMigrateTest, ABrokenAuditChainIsNotCopied) {
    PostgresServer server;
    ldis::test::TempDir dir;
    const std::string url = server.CreateDatabase("ldis");
    const std::string path = History(dir, "tampered.db");
    sqlite3* lite = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &lite), SQLITE_OK);
    LiteRows(lite, "UPDATE audit SET detail = '{}' WHERE seq = 3");
    sqlite3_close(lite);
    const auto [code, out] = Ldisctl(dir, {"migrate", "--from", "sqlite:" + path, "--to", url});
    EXPECT_EQ(code, 6);
    EXPECT_NE(out.find("is broken, so it is not copied: audit entry 3"), std::string::npos) << out;
    EXPECT_EQ(PgRows(url, "SELECT count(*) FROM reports"), std::vector<std::string>{"0"});
    // Nor is a file that is not an LDIS database, or a source given without its scheme.
    const auto [other, other_out] = Ldisctl(dir, {"migrate", "--from", path, "--to", url});
    EXPECT_EQ(other, 6);
    EXPECT_NE(other_out.find("--from must be sqlite:PATH"), std::string::npos) << other_out;
}

}  // namespace
