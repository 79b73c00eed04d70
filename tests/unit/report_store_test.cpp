#include "ldis/engine/report_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "ldis/engine/report_validator.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

using ldis::engine::Report;
using ldis::engine::ReportStore;
using ldis::engine::StoreError;
using ldis::engine::StoreOptions;
using ldis::engine::Synchronous;

namespace {

Report MakeReport(const std::string& id) {
    static const auto validator = ldis::engine::LoadReportValidator(
        ldis::test::SourcePath("config/schema/report.schema.json"),
        ldis::test::SourcePath("config/areas.toml"));
    auto v = validator->Validate(ldis::test::ValidReportText(id));
    EXPECT_TRUE(v.ok());
    return *v.report;
}

StoreOptions Options(const std::string& path, Synchronous sync = Synchronous::kFull) {
    StoreOptions o;
    o.path = path;
    o.synchronous = sync;
    return o;
}

void Sqlite(const std::string& path, const std::string& sql) {
    const std::string command = "sqlite3 '" + path + "' '" + sql + "'";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

TEST(StoreTest, RetentionRemovesFreeTextOnceAndTheAuditStillVerifies) {
    ldis::test::TempDir dir;
    ReportStore store(Options(dir / "r.db"));
    static const auto validator = ldis::engine::LoadReportValidator(
        ldis::test::SourcePath("config/schema/report.schema.json"),
        ldis::test::SourcePath("config/areas.toml"));
    auto doc = ldis::test::ValidReport(ldis::test::NewUuid());
    doc["substances"] = boost::json::array{{{"name", "heroin"},
                                            {"form", "powder"},
                                            {"colour", "brown"},
                                            {"appearance", "from John Smith of 12 Elm Road"}},
                                           {{"name", "bag from Sarah Jones"}}};
    doc["symptoms"] = boost::json::array{"slow breathing", "at Peter Brown's flat"};
    const auto v = validator->Validate(boost::json::serialize(doc));
    ASSERT_TRUE(v.ok());
    const std::string id(doc.at("id").as_string());
    ASSERT_TRUE(store.Insert(*v.report, "http").ok());
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    // Nothing is older than a day ago; everything is older than a minute from now.
    EXPECT_EQ(store.PurgeFreeText(now - 86400000, now, "test").value(), 0);
    EXPECT_NE(store.Find(id)->document.find("John Smith"), std::string::npos);
    EXPECT_EQ(store.PurgeFreeText(now + 60000, now, "test").value(), 1);
    EXPECT_EQ(store.PurgeFreeText(now + 60000, now, "test").value(), 0);  // once
    const std::string kept = store.Find(id)->document;
    for (const char* gone : {"John Smith", "Elm Road", "Sarah Jones", "Peter Brown",
                             "ed.nurse@example.org", "ED nurse", "Two people in the ED"})
        EXPECT_EQ(kept.find(gone), std::string::npos) << gone << "\n" << kept;
    for (const char* stays : {"heroin", "brown", "powder", "slow breathing", "Medway",
                              "[removed after the retention period]"})
        EXPECT_NE(kept.find(stays), std::string::npos) << stays << "\n" << kept;
    EXPECT_TRUE(store.VerifyAudit().ok());
}

TEST(StoreTest, MigratesNewFile) {
    ldis::test::TempDir dir;
    {
        ReportStore store(Options(dir / "a.db"));
        EXPECT_EQ(store.CountReports(), 0);
    }
    EXPECT_EQ(ReportStore::FileSchemaVersion(dir / "a.db"), ReportStore::kSchemaVersion);
}

TEST(StoreTest, MigratesEveryPastVersion) {
    // Version 0 is an empty SQLite file, as sqlite3 or an interrupted first start leaves it.
    ldis::test::TempDir dir;
    Sqlite(dir / "v0.db", "PRAGMA user_version=0; CREATE TABLE unrelated(x);");
    ReportStore store(Options(dir / "v0.db"));
    const auto stored = store.Insert(MakeReport(ldis::test::NewUuid()), "mqtt");
    ASSERT_TRUE(stored.ok()) << stored.error().message;
    EXPECT_EQ(ReportStore::FileSchemaVersion(dir / "v0.db"), ReportStore::kSchemaVersion);
}

TEST(StoreTest, RefusesNewerDatabase) {
    ldis::test::TempDir dir;
    Sqlite(dir / "future.db", "PRAGMA user_version=99;");
    try {
        ReportStore store(Options(dir / "future.db"));
        FAIL() << "expected StoreError";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("newer LDIS"), std::string::npos) << e.what();
    }
}

TEST(StoreTest, CorruptFileIsAClearError) {
    ldis::test::TempDir dir;
    std::ofstream(dir / "bad.db") << std::string(8192, 'x');
    try {
        ReportStore store(Options(dir / "bad.db"));
        FAIL() << "expected StoreError";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("bad.db"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("corrupt"), std::string::npos) << e.what();
    }
    EXPECT_EQ(ldis::test::ReadFile(dir / "bad.db"), std::string(8192, 'x'));  // left as it was
}

TEST(StoreTest, MissingFolderIsAClearError) {
    EXPECT_THROW(ReportStore store(Options("/nonexistent-folder/ldis.db")), StoreError);
}

TEST(StoreTest, DuplicateReportStoredOnce) {
    ldis::test::TempDir dir;
    ReportStore store(Options(dir / "d.db"));
    const auto id = ldis::test::NewUuid();
    const auto first = store.Insert(MakeReport(id), "mqtt");
    const auto again = store.Insert(MakeReport(id), "http");
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(first.value().duplicate);
    EXPECT_TRUE(again.value().duplicate);
    EXPECT_EQ(first.value().reference, "KM-R000001");
    EXPECT_EQ(again.value().reference, first.value().reference);
    EXPECT_EQ(store.CountReports(), 1);
    const auto row = store.Find(id);
    ASSERT_TRUE(row);
    EXPECT_EQ(row->channel, "mqtt");
    EXPECT_EQ(store.Find("KM-R000001")->id, id);
}

TEST(StoreTest, ConcurrentInsertsShareCommitsAndKeepEveryReport) {
    ldis::test::TempDir dir;
    ReportStore store(Options(dir / "c.db", Synchronous::kNormal));
    constexpr int kThreads = 8;
    constexpr int kEach = 250;
    std::vector<std::vector<std::string>> references(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                const auto r = store.Insert(MakeReport(ldis::test::NewUuid()), "mqtt");
                ASSERT_TRUE(r.ok());
                references[static_cast<std::size_t>(t)].push_back(r.value().reference);
            }
        });
    }
    for (auto& t : threads) t.join();
    std::set<std::string> unique;
    for (const auto& list : references) unique.insert(list.begin(), list.end());
    EXPECT_EQ(unique.size(), static_cast<std::size_t>(kThreads * kEach));
    EXPECT_EQ(store.CountReports(), kThreads * kEach);
    EXPECT_TRUE(unique.count("KM-R000001"));
    EXPECT_TRUE(unique.count("KM-R002000"));
}

// The WAL is checkpointed by the store's own thread (ldis-checkpoint), not inside a report's
// commit: the writer's hook replaces SQLite's automatic checkpoint and checkpoints itself only
// past 4,000 pages (16 MiB). With the thread, the WAL starts again from its beginning once it
// has been copied, and stays near the 1,000 pages (4 MiB) at which a checkpoint is due.
TEST(StoreTest, TheWalIsCheckpointedOffTheWritersPath) {
    ldis::test::TempDir dir;
    const std::string path = dir / "w.db";
    ReportStore store(Options(path));
    bool named = false;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(task.path() / "comm");
        std::string name;
        std::getline(comm, name);
        named = named || name == "ldis-checkpoint";
    }
    EXPECT_TRUE(named) << "no ldis-checkpoint thread";
    // Each report's commit writes about seven pages to the WAL: 700 reports are 4,900 pages.
    // At most 400 a second, as intake runs most of the time: a checkpoint can only start the
    // WAL again at a moment when it has copied every frame, which a writer that never pauses
    // does not give it (then the writer's own checkpoint, past 4,000 pages, bounds it).
    std::uintmax_t largest = 0;
    for (int i = 0; i < 700; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ASSERT_TRUE(store.Insert(MakeReport(ldis::test::NewUuid()), "mqtt").ok());
        largest = std::max(largest, std::filesystem::file_size(path + "-wal"));
    }
    EXPECT_LT(largest, 10u * 1024 * 1024) << "the checkpointer did not keep the WAL short";
    EXPECT_GT(largest, 3u * 1024 * 1024) << "too few pages to need a checkpoint";
    EXPECT_EQ(store.CountReports(), 700);
}

TEST(StoreTest, DuplicatesInsideOneBatch) {
    ldis::test::TempDir dir;
    ReportStore store(Options(dir / "b.db"));
    const auto id = ldis::test::NewUuid();
    std::vector<std::thread> threads;
    std::atomic<int> duplicates{0};
    for (int t = 0; t < 6; ++t) {
        threads.emplace_back([&] {
            const auto r = store.Insert(MakeReport(id), "mqtt");
            ASSERT_TRUE(r.ok());
            if (r.value().duplicate) ++duplicates;
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(duplicates.load(), 5);
    EXPECT_EQ(store.CountReports(), 1);
}

TEST(StoreTest, ReopensAfterCrashWithEveryAcknowledgedReport) {
    // A child process inserts reports and tells the parent each one acknowledged;
    // the parent kills it with SIGKILL mid-stream and reopens the file.
    ldis::test::TempDir dir;
    const std::string path = dir / "crash.db";
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(pipe_fds[0]);
        ReportStore store(Options(path));
        std::vector<std::thread> writers;
        for (int t = 0; t < 4; ++t) {
            writers.emplace_back([&] {
                for (;;) {
                    const auto id = ldis::test::NewUuid();
                    if (!store.Insert(MakeReport(id), "mqtt").ok()) _exit(2);
                    const std::string line = id + "\n";
                    if (write(pipe_fds[1], line.data(), line.size()) < 0) _exit(3);
                }
            });
        }
        for (auto& w : writers) w.join();
        _exit(0);
    }
    close(pipe_fds[1]);
    std::string acknowledged;
    char buffer[4096];
    while (std::count(acknowledged.begin(), acknowledged.end(), '\n') < 400) {
        const auto n = read(pipe_fds[0], buffer, sizeof buffer);
        ASSERT_GT(n, 0);
        acknowledged.append(buffer, static_cast<std::size_t>(n));
    }
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    // Lines written before the kill and still in the pipe were acknowledged too.
    for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
        acknowledged.append(buffer, static_cast<std::size_t>(n));
    }
    close(pipe_fds[0]);
    acknowledged.resize(acknowledged.rfind('\n') + 1);  // a torn last line was never acknowledged

    ReportStore store(Options(path));
    const auto ids = store.ListIds();
    const std::set<std::string> stored(ids.begin(), ids.end());
    std::size_t checked = 0;
    for (std::size_t start = 0, end; (end = acknowledged.find('\n', start)) != std::string::npos;
         start = end + 1) {
        EXPECT_TRUE(stored.count(acknowledged.substr(start, end - start)))
            << acknowledged.substr(start, end - start);
        ++checked;
    }
    EXPECT_GE(checked, 400u);
    EXPECT_EQ(stored.size(), ids.size());  // no id twice
    const auto more = store.Insert(MakeReport(ldis::test::NewUuid()), "mqtt");
    EXPECT_TRUE(more.ok());
}

TEST(StoreTest, ParsesSynchronous) {
    EXPECT_EQ(ldis::engine::ParseSynchronous("full"), Synchronous::kFull);
    EXPECT_EQ(ldis::engine::ParseSynchronous("normal"), Synchronous::kNormal);
    EXPECT_FALSE(ldis::engine::ParseSynchronous("FULL"));
}

}  // namespace
