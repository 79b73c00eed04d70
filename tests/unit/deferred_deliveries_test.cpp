// A fan-out's deliveries after its first few, deferred (SQLite's store): the transaction that
// decides a red alert writes its first rows and keeps the rest as one row, written out just
// after its commit, and at the next start when ldisd stopped (or failed) in between. The
// reporter and every reader see the same deliveries as without the deferral.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/json.hpp>
#include <set>
#include <tuple>

#include "ldis/engine/report_store.hpp"
#include "support/grading.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace {

namespace json = boost::json;
using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file
using ldis::test::SourcePath;

// Twelve partners subscribed to red, one email each: with the MQTT document and the page to
// the coordinators (a provisional red is issued at once), 14 deliveries.
std::string TwelvePartners() {
    std::string toml = "[coordinators]\npartner = \"coord\"\n";
    toml += "[[partner]]\nid = \"coord\"\nname = \"Coordinators\"\n";
    toml += "  [[partner.contact]]\n  name = \"team\"\n  channel = \"email\"\n";
    toml += "  address = \"team@example.org\"\n";
    for (int i = 1; i <= 12; ++i) {
        const std::string id = "p" + std::to_string(i);
        toml += "[[partner]]\nid = \"" + id + "\"\nname = \"Partner " + std::to_string(i) + "\"\n";
        toml += "  [[partner.contact]]\n  name = \"desk\"\n  channel = \"email\"\n";
        toml += "  address = \"" + id + "@example.org\"\n";
        toml += "  [[partner.subscription]]\n  levels = [\"red\"]\n";
    }
    return toml;
}

std::shared_ptr<GradingSetup> GradingWithTwelvePartners() {
    auto setup = std::make_shared<GradingSetup>();
    setup->substances = Substances::LoadFile(SourcePath("config/substances.toml"));
    setup->rules = Rules::LoadFile(SourcePath("config/rules.toml"), setup->substances);
    setup->templates = AlertTemplates::LoadDir(SourcePath("templates/alert"));
    setup->partners = std::make_shared<const Partners>(Partners::Parse(TwelvePartners(), "p.toml"));
    return setup;
}

StoreOptions DeferringOptions(const std::string& path, std::size_t first) {
    StoreOptions o;
    o.path = path;
    o.grading = GradingWithTwelvePartners();
    o.first_deliveries = first;
    return o;
}

using ldis::test::SubmitRed;

// What a delivery is, without its row's number and times.
using Planned =
    std::tuple<std::string, std::string, std::string, std::string, std::string, int, std::int64_t>;
std::multiset<Planned> PlannedOf(const std::vector<DeliveryRow>& rows, std::int64_t created) {
    std::multiset<Planned> out;
    for (const auto& d : rows) {
        out.insert({d.kind, d.partner, d.contact, d.channel, d.address, d.version,
                    d.ack_due_ms == 0 ? 0 : d.ack_due_ms - created});
    }
    return out;
}

// A statement on the database file from outside the store (the test's own connection).
std::string Sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    std::string out;
    sqlite3_open(path.c_str(), &db);
    char* error = nullptr;
    sqlite3_exec(
        db, sql.c_str(),
        [](void* to, int, char** values, char**) {
            *static_cast<std::string*>(to) += values[0] != nullptr ? values[0] : "NULL";
            return 0;
        },
        &out, &error);
    if (error != nullptr) {
        out = std::string("error: ") + error;
        sqlite3_free(error);
    }
    sqlite3_close(db);
    return out;
}

TEST(DeferredDeliveriesTest, OnlyTheFirstRowsAreInTheCommitAndEveryReaderSeesTheWholeFanOut) {
    ldis::test::TempDir dir;
    const std::string path = dir / "ldis.db";
    ReportStore store(DeferringOptions(path, 3));
    std::mutex mutex;
    std::vector<OutboxItem> claimed;
    CommitClaim hooks;
    hooks.room = [] { return std::size_t{10}; };
    hooks.claimed = [&](Result<std::vector<OutboxItem>> items, std::size_t, bool) {
        std::lock_guard lock(mutex);
        if (items.ok()) claimed = items.value();
    };
    hooks.settled = [](bool) {};
    store.SetClaimAtCommit(hooks);
    const auto stored = SubmitRed(store);
    ASSERT_EQ(stored.level, "red");
    store.SetClaimAtCommit({});
    {
        // The claim at the commit could take ten and found three: the rest were not rows yet.
        std::lock_guard lock(mutex);
        EXPECT_EQ(claimed.size(), 3u);
    }
    const auto rows = store.Deliveries(stored.alert_reference);
    ASSERT_EQ(rows.size(), 14u);
    EXPECT_EQ(Sql(path, "SELECT count(*) FROM deferred_deliveries"), "0");
    for (const auto& d : rows) EXPECT_EQ(d.created_at_ms, rows.front().created_at_ms) << d.id;

    // The same fan-out as a store that writes every row in the deciding transaction.
    ReportStore whole(DeferringOptions(dir / "whole.db", 0));
    const auto same = SubmitRed(whole);
    const auto expected = whole.Deliveries(same.alert_reference);
    EXPECT_EQ(PlannedOf(rows, rows.front().created_at_ms),
              PlannedOf(expected, expected.front().created_at_ms));
}

TEST(DeferredDeliveriesTest, AFanOutLeftDeferredIsWrittenOutAtTheNextStart) {
    ldis::test::TempDir dir;
    const std::string path = dir / "ldis.db";
    std::string reference;
    {
        ReportStore store(DeferringOptions(path, 3));
        // The write-out fails (as a full disk would make it): the deferred row is kept.
        ASSERT_EQ(Sql(path,
                      "CREATE TRIGGER no_write_out BEFORE DELETE ON deferred_deliveries BEGIN "
                      "SELECT RAISE(ABORT, 'the test stops the write-out'); END"),
                  "");
        const auto stored = SubmitRed(store);
        ASSERT_EQ(stored.level, "red");  // the report and its alert are stored all the same
        reference = stored.alert_reference;
        EXPECT_EQ(store.Deliveries(reference).size(), 3u);
        EXPECT_EQ(Sql(path, "SELECT count(*) FROM deferred_deliveries"), "1");
    }
    ASSERT_EQ(Sql(path, "DROP TRIGGER no_write_out"), "");
    ReportStore store(DeferringOptions(path, 3));
    const auto rows = store.Deliveries(reference);
    ASSERT_EQ(rows.size(), 14u);
    EXPECT_EQ(Sql(path, "SELECT count(*) FROM deferred_deliveries"), "0");
    // Each row as the fan-out was decided: its time, its version, its deadline.
    for (const auto& d : rows) {
        EXPECT_EQ(d.created_at_ms, rows.front().created_at_ms) << d.id;
        EXPECT_EQ(d.version, 1) << d.id;
        EXPECT_EQ(d.status, "queued") << d.id;
    }
    std::set<std::string> partners;
    for (const auto& d : rows) partners.insert(d.partner);
    EXPECT_EQ(partners.size(), 14u);  // twelve partners, the coordinators, the MQTT document's ""
}

TEST(DeferredDeliveriesTest, ADeferredRowThatIsNotOneIsKeptAndTheStoreStillOpens) {
    ldis::test::TempDir dir;
    const std::string path = dir / "ldis.db";
    { ReportStore store(DeferringOptions(path, 3)); }
    ASSERT_EQ(Sql(path,
                  "INSERT INTO deferred_deliveries (alert_id, version, created_at_ms, planned) "
                  "VALUES (NULL, 1, 1, '[{\"kind\":\"alert\",\"partner\":\"p1\"}]')"),
              "");
    ReportStore store(DeferringOptions(path, 3));
    EXPECT_EQ(Sql(path, "SELECT count(*) FROM deferred_deliveries"), "1");
    EXPECT_TRUE(store.Deliveries("").empty());
    // And the store goes on taking reports, each with its whole fan-out.
    const auto stored = SubmitRed(store);
    EXPECT_EQ(stored.level, "red");
    EXPECT_EQ(store.Deliveries(stored.alert_reference).size(), 14u);
    EXPECT_EQ(Sql(path, "SELECT count(*) FROM deferred_deliveries"), "1");
}

}  // namespace
