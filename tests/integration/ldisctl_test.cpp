// ldisctl end to end against a running ldisd (mosquitto and SQLite on loopback): every
// HTTP command, its tables and --json, and its exit codes.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "ldis/engine/insight.hpp"
#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"

namespace json = boost::json;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::NewUuid;
using ldis::test::TempDir;

namespace {

class LdisctlTest : public ::testing::Test {
protected:
    void SetUp() override {
        daemon_ = std::make_unique<Ldisd>(broker_, dir_, std::vector<std::string>{});
        daemon_->Start();
        coordinator_ = Token("coordinator");
        submitter_ = Token("submitter");
    }
    void TearDown() override {
        if (HasFailure()) std::cerr << "ldisd log:\n" << daemon_->log();
        daemon_->Stop(SIGTERM);
    }

    std::string Token(const std::string& role) {
        const auto [code, out] = Run({"tokens", "create", "--db", daemon_->db_path(), "--role",
                                      role, "--name", role + "@example.org"});
        EXPECT_EQ(code, 0) << out;
        return out.substr(0, out.find('\n'));
    }

    // Runs ldisctl; returns its exit code and everything it printed.
    std::pair<int, std::string> Run(std::vector<std::string> args, const std::string& token = {}) {
        std::vector<std::string> argv{LDISCTL_PATH};
        if (args[0] != "tokens" && args[0] != "purge" && args[0] != "audit" &&
            args[0] != "report") {
            if (std::find(args.begin(), args.end(), "--server") == args.end())
                argv.insert(argv.end(), {"--server", daemon_->http_url()});
            if (!token.empty()) argv.insert(argv.end(), {"--token", token});
        }
        argv.insert(argv.end(), args.begin(), args.end());
        const std::string log = dir_ / ("ldisctl-" + std::to_string(++runs_) + ".log");
        ldis::test::Process p(argv, log);
        const int code = p.Wait(std::chrono::seconds(20));
        return {code, ldis::test::ReadFile(log)};
    }

    Mosquitto broker_;
    TempDir dir_;
    std::unique_ptr<Ldisd> daemon_;
    std::string coordinator_, submitter_;
    int runs_ = 0;
};

TEST_F(LdisctlTest, SubmitListShowApproveCancelAndPartners) {
    const std::string file = dir_ / "report.json";
    std::ofstream(file) << ldis::test::ValidReportText(NewUuid());
    auto [code, out] = Run({"submit", file}, submitter_);
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("accepted: reference KM-R000001, level amber, alert KM-"), std::string::npos)
        << out;
    const std::string ref = out.substr(out.find("alert ") + 6, 12);

    std::tie(code, out) = Run({"submit", file}, submitter_);
    EXPECT_EQ(code, 0);
    EXPECT_NE(out.find("duplicate"), std::string::npos) << out;

    std::ofstream(dir_ / "bad.json") << "{\"schema\": \"ldis.report/1\"}";
    std::tie(code, out) = Run({"submit", dir_ / "bad.json"}, submitter_);
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("the report was rejected"), std::string::npos) << out;

    std::tie(code, out) = Run({"alerts", "list"}, coordinator_);
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find(ref), std::string::npos) << out;
    EXPECT_NE(out.find("1 of 1 alert(s)"), std::string::npos) << out;
    std::tie(code, out) = Run({"alerts", "list", "--level", "red", "--json"}, coordinator_);
    ASSERT_EQ(code, 0);
    EXPECT_EQ(json::parse(out).at("total").as_int64(), 0);

    std::tie(code, out) = Run({"alerts", "show", ref}, coordinator_);
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("1 version(s), 1 report(s)"), std::string::npos) << out;
    std::tie(code, out) = Run({"alerts", "approve", ref}, coordinator_);
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find(ref + " is now issued (version 2)"), std::string::npos) << out;
    std::tie(code, out) = Run({"alerts", "approve", ref}, coordinator_);
    EXPECT_EQ(code, 5) << out;  // refused: it is issued already
    std::tie(code, out) = Run({"alerts", "cancel", ref}, coordinator_);
    EXPECT_EQ(code, 0) << out;
    std::tie(code, out) = Run({"alerts", "show", "KM-1999-0001"}, coordinator_);
    EXPECT_EQ(code, 4) << out;

    std::tie(code, out) = Run({"partners", "list"}, coordinator_);
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("Kent Police"), std::string::npos) << out;
    EXPECT_NE(out.find("coordinators: medway-public-health"), std::string::npos) << out;
    std::tie(code, out) = Run({"partners", "list", "--json"}, coordinator_);
    EXPECT_EQ(out.find("\"secret"), std::string::npos);  // no webhook secret leaves

    std::tie(code, out) = Run({"reports", "show", "KM-R000001"}, coordinator_);
    ASSERT_EQ(code, 0) << out;
    EXPECT_EQ(out.find("ed.nurse@example.org"), std::string::npos) << "the contact leaked";
}

TEST_F(LdisctlTest, ExitCodesSayWhatWentWrong) {
    auto [code, out] = Run({"alerts", "list"}, submitter_);
    EXPECT_EQ(code, 7) << out;  // a submitter may not list alerts
    std::tie(code, out) = Run({"alerts", "list"}, "ldis_wrong");
    EXPECT_EQ(code, 7) << out;
    std::tie(code, out) = Run({"alerts", "list"});
    EXPECT_EQ(code, 7) << out;
    std::tie(code, out) = Run({"--server", "http://127.0.0.1:1", "alerts", "list"}, coordinator_);
    EXPECT_EQ(code, 6) << out;
    EXPECT_NE(out.find("no answer from the server"), std::string::npos) << out;
    std::tie(code, out) = Run({"submit", dir_ / "missing.json"}, submitter_);
    EXPECT_EQ(code, 2) << out;
    std::tie(code, out) = Run({"alerts", "--help"});
    EXPECT_EQ(code, 0);
    EXPECT_NE(out.find("approve"), std::string::npos) << out;
}

TEST_F(LdisctlTest, PurgeRemovesFreeTextBeforeADateAndTheAuditStillVerifies) {
    auto r = ldis::test::ValidReport(ldis::test::NewUuid());
    r["description"] = "Found at the home of Peter Brown, 22 Station Road";
    const auto sent = ldis::test::HttpRequest(
        "POST", daemon_->http_url() + "/api/v1/reports", boost::json::serialize(r),
        {"Authorization: Bearer " + submitter_, "Content-Type: application/json"});
    ASSERT_EQ(sent.status, 202) << sent.body;
    const std::string id(r.at("id").as_string());
    const auto document = [&] {
        ldis::engine::StoreOptions o;
        o.path = daemon_->db_path();
        return ldis::engine::ReportStore(o).Find(id)->document;
    };
    EXPECT_NE(document().find("Peter Brown"), std::string::npos);
    const auto [bad, bad_out] = Run({"purge", "--db", daemon_->db_path(), "--before", "soon"});
    EXPECT_EQ(bad, 2);
    EXPECT_NE(bad_out.find("2024-11-29"), std::string::npos) << bad_out;
    const auto [before, before_out] =
        Run({"purge", "--db", daemon_->db_path(), "--before", "2020-01-01"});
    EXPECT_EQ(before, 0) << before_out;
    EXPECT_NE(before_out.find("0 report(s)"), std::string::npos) << before_out;
    const auto [purged, purged_out] =
        Run({"purge", "--db", daemon_->db_path(), "--before", "2100-01-01"});
    EXPECT_EQ(purged, 0) << purged_out;
    EXPECT_NE(purged_out.find("1 report(s)"), std::string::npos) << purged_out;
    EXPECT_EQ(document().find("Peter Brown"), std::string::npos) << document();
    const auto [verified, verified_out] = Run({"audit", "verify", "--db", daemon_->db_path()});
    EXPECT_EQ(verified, 0) << verified_out;
}

// `--db` read the database on the host and printed a report as stored: the reporter's typed
// words unscrubbed (an NHS number, a name, a phone number), where the API gives coordinators
// them scrubbed. Now ldisctl prints the API's own documents, report and delivery alike.
TEST_F(LdisctlTest, ReadingTheDatabaseOnTheHostShowsWhatTheApiShowsAndNoMore) {
    auto r = ldis::test::ValidReport(ldis::test::NewUuid());
    r["harms"].as_object()["deaths"] = 1;  // red: issued at once, so it has deliveries
    r["description"] = "patient Callum Whitehead NHS 943 476 5919, his mum on 07700 900123";
    r["source"].as_object()["role"] = "nurse, ask for Niamh Gallagher";
    const auto sent = ldis::test::HttpRequest(
        "POST", daemon_->http_url() + "/api/v1/reports", boost::json::serialize(r),
        {"Authorization: Bearer " + submitter_, "Content-Type: application/json"});
    ASSERT_EQ(sent.status, 202) << sent.body;
    const std::string id(r.at("id").as_string());
    const std::string alert = ldis::test::StringOf(json::parse(sent.body).at("alert_id"));
    ASSERT_FALSE(alert.empty()) << sent.body;
    const auto api = [&](const std::string& path) {
        const auto got = ldis::test::HttpRequest("GET", daemon_->http_url() + path, "",
                                                 {"Authorization: Bearer " + coordinator_});
        EXPECT_EQ(got.status, 200) << got.body;
        return json::parse(got.body);
    };
    const auto report = api("/api/v1/reports/" + id);
    for (const char* typed :
         {"Callum Whitehead", "943 476 5919", "07700 900123", "Niamh Gallagher", "ed.nurse@"})
        ASSERT_EQ(json::serialize(report).find(typed), std::string::npos) << typed;

    const std::string db = daemon_->db_path();
    auto [code, out] = Run({"reports", "show", id, "--db", db});
    ASSERT_EQ(code, 0) << out;
    EXPECT_EQ(json::parse(out), report) << out;
    std::tie(code, out) = Run({"reports", "list", "--db", db, "--json"});
    ASSERT_EQ(code, 0) << out;
    EXPECT_EQ(json::parse(out), json::array{report}) << out;

    // Every delivery as the API's alert record has it, with the alert and whether it was
    // acknowledged beside it.
    const auto record = api("/api/v1/alerts/" + alert);
    const auto& deliveries = record.at("deliveries").as_array();
    ASSERT_FALSE(deliveries.empty()) << record;
    std::tie(code, out) = Run({"deliveries", "list", "--db", db, "--alert", alert, "--json"});
    ASSERT_EQ(code, 0) << out;
    const auto listed = json::parse(out).as_array();
    ASSERT_EQ(listed.size(), deliveries.size()) << out;
    for (std::size_t i = 0; i < listed.size(); ++i) {
        auto row = listed[i].as_object();
        EXPECT_EQ(row.at("alert"), json::value(alert));
        EXPECT_TRUE(row.at("acknowledged").is_bool());
        row.erase("alert");
        row.erase("acknowledged");
        const auto same = std::find_if(deliveries.begin(), deliveries.end(),
                                       [&](const auto& d) { return d.at("id") == row.at("id"); });
        ASSERT_NE(same, deliveries.end()) << row;
        // A delivery may have been sent between the two reads: compare what cannot change.
        for (const char* key : {"version", "kind", "partner", "contact", "channel", "fallback_of"})
            EXPECT_EQ(row.at(key), same->at(key)) << key;
        std::vector<std::string> keys, api_keys;
        for (const auto& kv : row) keys.emplace_back(kv.key());
        for (const auto& kv : same->as_object()) api_keys.emplace_back(kv.key());
        EXPECT_EQ(keys, api_keys);
    }
}

}  // namespace

// A panel's table: every incident graded, the disagreements named with their line, the
// agreement printed; a mistake in the table is named with its line.
TEST_F(LdisctlTest, GradingTestPrintsTheAgreementAndNamesEachDisagreement) {
    const std::string table = dir_ / "table.toml";
    std::ofstream(table) << R"(window_days = 7
[base]
schema = "ldis.report/1"
submitted_at = "2026-11-23T09:30:00Z"
source = { type = "hospital", organisation = "Medway NHS Foundation Trust" }
area = { authority = "Medway", district = "Medway" }
substances = [{ name = "heroin" }]
harms = { cases = 1 }
evidence = "professional"

[[incident]]
name = "one harm"
level = "green"
reason = "One unconfirmed harm event."
reports = [{}]

[[incident]]
name = "a death the table wrongly calls amber"
level = "amber"
reason = "Written wrong on purpose."
reports = [{ harms = { cases = 1, deaths = 1 } }]
)";
    const std::string rules = ldis::test::SourcePath("config/rules.toml");
    const std::string substances = ldis::test::SourcePath("config/substances.toml");
    auto [code, out] =
        Run({"grading", "test", table, "--rules", rules, "--substances", substances});
    EXPECT_EQ(code, 1) << out;
    EXPECT_NE(out.find("DISAGREES  " + table + ":17  a death the table wrongly calls amber"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("level red, the panel gave amber"), std::string::npos) << out;
    EXPECT_NE(out.find("grading: 1 of 2 incidents agree with the panel (50.0%)"), std::string::npos)
        << out;

    // The project's own table agrees in full with the shipped rules.
    std::tie(code, out) =
        Run({"grading", "test", ldis::test::SourcePath("tests/grading/panel.toml"), "--rules",
             rules, "--substances", substances});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("incidents agree with the panel (100.0%)"), std::string::npos) << out;

    std::ofstream(table, std::ios::app) << "\n[[incident]]\nname = \"x\"\nlevel = \"purple\"\n";
    std::tie(code, out) =
        Run({"grading", "test", table, "--rules", rules, "--substances", substances});
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find(table + ":23: level must be none, green, amber or red"), std::string::npos)
        << out;
}

// A replay grades every stored signal again with a proposed rules file and writes
// nothing; a change that would bring down a live red alert says so, and exits 8.
TEST_F(LdisctlTest, GradingReplayShowsWhatWouldChangeAndWarnsOfALoweredRed) {
    const std::string file = dir_ / "red.json";
    auto red = ldis::test::ValidReport(NewUuid());
    red["harms"].as_object()["deaths"] = 1;
    std::ofstream(file) << json::serialize(red);
    auto [code, out] = Run({"submit", file}, submitter_);
    ASSERT_EQ(code, 0) << out;
    ASSERT_NE(out.find("level red"), std::string::npos) << out;
    const std::string alert = out.substr(out.find("alert KM-") + 6, 12);
    const std::string green = dir_ / "green.json";
    auto one = ldis::test::ValidReport(NewUuid());
    one["harms"] = json::object{{"cases", 1}};
    one["area"] = json::object{{"authority", "Kent"}, {"district", "Thanet"}};
    std::ofstream(green) << json::serialize(one);
    std::tie(code, out) = Run({"submit", green}, submitter_);
    ASSERT_EQ(code, 0) << out;

    const std::string rules = ldis::test::SourcePath("config/rules.toml");
    const std::string substances = ldis::test::SourcePath("config/substances.toml");
    const auto audit_before = Run({"audit", "verify", "--db", daemon_->db_path()}).second;
    std::tie(code, out) = Run({"grading", "replay", "--db", daemon_->db_path(), "--rules", rules,
                               "--substances", substances});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("2 signals, 0 would change."), std::string::npos) << out;
    EXPECT_NE(out.find("now:  red 1, amber 0, green 1, none 0"), std::string::npos) << out;

    // The proposal: no death rule.
    std::string text = ldis::test::ReadFile(rules);
    const auto start = text.find("[[rule]]\nid = \"death\"");
    ASSERT_NE(start, std::string::npos);
    text.erase(start, text.find("[[rule]]", start + 8) - start);
    const std::string proposed = dir_ / "proposed.toml";
    std::ofstream(proposed) << text;
    std::tie(code, out) = Run({"grading", "replay", "--db", daemon_->db_path(), "--rules", proposed,
                               "--substances", substances});
    EXPECT_EQ(code, 8) << out;
    EXPECT_NE(out.find("Medway  opioid  red -> amber  [harm-cluster, single-harm]  alert " + alert +
                       " (issued)"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("2 signals, 1 would change."), std::string::npos) << out;
    EXPECT_NE(out.find("then: red 0, amber 1, green 1, none 0"), std::string::npos) << out;
    EXPECT_NE(out.find("WARNING: the live red alert " + alert), std::string::npos) << out;
    std::tie(code, out) = Run({"grading", "replay", "--db", daemon_->db_path(), "--rules", proposed,
                               "--substances", substances, "--json"});
    EXPECT_EQ(code, 8) << out;
    const auto doc = json::parse(out).as_object();
    EXPECT_EQ(doc.at("lowered_live_reds").as_int64(), 1);
    EXPECT_EQ(doc.at("changes").as_array().at(0).at("level_then").as_string(), "amber");
    // Nothing was written: the audit log has the same entries, and the alert is still red.
    EXPECT_EQ(Run({"audit", "verify", "--db", daemon_->db_path()}).second, audit_before);
    std::tie(code, out) = Run({"alerts", "show", alert}, coordinator_);
    EXPECT_NE(out.find("red"), std::string::npos) << out;
}

// A coordinator sets a signal's level by hand from the command line, and lifts it.
TEST_F(LdisctlTest, AlertsOverrideSetsTheLevelByHandAndLiftsIt) {
    const std::string file = dir_ / "report.json";
    std::ofstream(file) << ldis::test::ValidReportText(NewUuid());
    auto [code, out] = Run({"submit", file}, submitter_);
    ASSERT_EQ(code, 0) << out;
    const std::string alert = out.substr(out.find("alert KM-") + 6, 12);
    std::tie(code, out) =
        Run({"alerts", "override", alert, "--reason", "no level given here"}, coordinator_);
    EXPECT_EQ(code, 2) << out;
    EXPECT_NE(out.find("give --level LEVEL, or --lift"), std::string::npos) << out;
    std::tie(code, out) =
        Run({"alerts", "override", alert, "--level", "red", "--reason", "short"}, coordinator_);
    EXPECT_EQ(code, 2) << out;
    std::tie(code, out) = Run({"alerts", "override", alert, "--level", "red", "--reason",
                               "A death from this batch is with the coroner"},
                              submitter_);
    EXPECT_EQ(code, 7) << out;
    std::tie(code, out) = Run({"alerts", "override", alert, "--level", "red", "--reason",
                               "A death from this batch is with the coroner"},
                              coordinator_);
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("is now red (set by hand; the rules give amber); alert " + alert +
                       " version 2, issued"),
              std::string::npos)
        << out;
    std::tie(code, out) = Run({"alerts", "override", alert, "--lift", "--reason",
                               "The coroner found another cause of death"},
                              coordinator_);
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("is now amber (set by the rules); alert " + alert + " version 3, updated"),
              std::string::npos)
        << out;
}

// A backup taken while reports pour in restores into a fresh folder, and an ldisd started
// on it has every report that was acknowledged (202) before the backup began.
TEST_F(LdisctlTest, ABackupDuringABurstRestoresEveryReportAcknowledgedBeforeIt) {
    std::mutex m;
    std::vector<std::string> acknowledged;
    std::atomic<bool> stop{false};
    const std::string url = daemon_->http_url() + "/api/v1/reports";
    const std::vector<std::string> headers{"Authorization: Bearer " + submitter_};
    std::thread burst([&] {
        for (int i = 0; i < 2000 && !stop; ++i) {
            auto r = ldis::test::ValidReport(NewUuid());
            const std::string id(r.at("id").as_string());
            const auto res = ldis::test::HttpRequest("POST", url, json::serialize(r), headers);
            if (res.status == 202) {
                std::lock_guard lock(m);
                acknowledged.push_back(id);
            }
        }
    });
    ASSERT_TRUE(ldis::test::Eventually(
        [&] {
            std::lock_guard lock(m);
            return acknowledged.size() >= 60;
        },
        std::chrono::seconds(60)));
    std::vector<std::string> before;
    {
        std::lock_guard lock(m);
        before = acknowledged;
    }
    const std::string backup = dir_ / "nightly.db";
    auto [code, out] = Run({"backup", "--db", daemon_->db_path(), "--to", backup});
    // The burst goes on while the copy is made; then it stops.
    ASSERT_TRUE(ldis::test::Eventually(
        [&] {
            std::lock_guard lock(m);
            return acknowledged.size() >= before.size() + 20;
        },
        std::chrono::seconds(60)));
    stop = true;
    burst.join();
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("backed up "), std::string::npos) << out;
    struct stat st {};
    ASSERT_EQ(::stat(backup.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    // Refused while ldisd has the database open: nothing is replaced.
    std::tie(code, out) = Run({"restore", "--from", backup, "--db", daemon_->db_path()});
    EXPECT_EQ(code, 3) << out;
    EXPECT_NE(out.find("stop ldisd before restoring; nothing was replaced"), std::string::npos)
        << out;
    daemon_->Stop(SIGTERM);

    // A damaged copy is refused.
    const std::string damaged = dir_ / "damaged.db";
    {
        std::ifstream in(backup, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        for (std::size_t at = 8192; at < bytes.size() && at < 8192 + 4096; ++at) bytes[at] = '\x5a';
        std::ofstream(damaged, std::ios::binary) << bytes;
    }
    TempDir fresh;
    const std::string restored = fresh / "ldis.db";
    std::tie(code, out) = Run({"restore", "--from", damaged, "--db", restored});
    EXPECT_EQ(code, 3) << out;
    EXPECT_NE(out.find("nothing was replaced"), std::string::npos) << out;
    EXPECT_NE(::access(restored.c_str(), F_OK), 0);

    std::tie(code, out) = Run({"restore", "--from", backup, "--db", restored});
    ASSERT_EQ(code, 0) << out;
    EXPECT_NE(out.find("audit chain intact"), std::string::npos) << out;

    Ldisd again(broker_, fresh, {});
    again.Start();
    for (const auto& id : before) {
        const auto res = ldis::test::HttpRequest("GET", again.http_url() + "/api/v1/reports/" + id,
                                                 {}, {"Authorization: Bearer " + coordinator_});
        EXPECT_EQ(res.status, 200) << id;
    }
    again.Stop(SIGTERM);
}

namespace {

// Issue 17 §2: the quarterly report's CSV, from ldisctl on the database, matches what this
// test sent, counted here independently; small numbers blurred; a wrong quarter refused.
TEST_F(LdisctlTest, TheQuarterlyCsvMatchesTheReportsSentCountedIndependently) {
    struct Sent {
        std::string district, source, substance, setting, evidence;
        int n;
    };
    const std::vector<Sent> sent = {
        {"Medway", "hospital", "heroin", "community", "professional", 4},
        {"Swale", "prison", "spice", "prison", "professional", 3},
        {"Dover", "drug_checking", "cocaine", "community", "confirmed", 1},
        {"Thanet", "outreach", "ketamine", "street", "anecdotal", 2}};
    std::map<std::string, int> by_source, by_district, by_setting;
    int all = 0, confirmed = 0, drug_checking = 0;
    for (const auto& s : sent) {
        for (int i = 0; i < s.n; ++i) {
            auto r = ldis::test::ValidReport(NewUuid());
            r["area"] = s.district == "Medway"
                            ? json::object{{"authority", "Medway"}, {"district", "Medway"}}
                            : json::object{{"authority", "Kent"}, {"district", s.district}};
            r["source"].as_object()["type"] = s.source;
            r["substances"] = json::array{{{"name", s.substance}}};
            r["setting"] = s.setting;
            r["evidence"] = s.evidence;
            const std::string file = dir_ / ("r" + std::to_string(all) + ".json");
            std::ofstream(file) << json::serialize(r);
            const auto [code, out] = Run({"submit", file}, submitter_);
            ASSERT_EQ(code, 0) << out;
            by_source[s.source] += 1;
            by_district[s.district] += 1;
            by_setting[s.setting] += 1;
            confirmed += s.evidence == "confirmed" ? 1 : 0;
            drug_checking += s.source == "drug_checking" ? 1 : 0;
            ++all;
        }
    }
    const auto said = [](int n) {
        return n > 0 && n < 3 ? std::string("fewer than 3") : std::to_string(n);
    };
    const auto named = [](std::string w) {
        std::replace(w.begin(), w.end(), '_', ' ');
        w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        return w;
    };
    const std::string quarter =
        ldis::engine::QuarterOf(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count())
            .name;
    // (Not a structured binding: clang 14, which builds the sanitizer pass, cannot capture one.)
    const auto quarterly =
        Run({"report", "quarterly", quarter, "--format", "csv", "--db", daemon_->db_path()});
    const int code = quarterly.first;
    const std::string& csv = quarterly.second;
    ASSERT_EQ(code, 0) << csv;
    const auto has = [&](const std::string& line) {
        EXPECT_NE(csv.find(line + "\r\n"), std::string::npos) << line << "\n" << csv;
    };
    for (const auto& [source, n] : by_source)
        has("reports-by-source," + quarter + "," + named(source) + "," + said(n));
    for (const auto& [district, n] : by_district)
        has("reports-by-district," + quarter + "," + district + "," + said(n));
    for (const auto& [setting, n] : by_setting)
        has("reports-by-setting," + quarter + "," + named(setting) + "," + said(n));
    has("reports-by-source," + quarter + ",All," + std::to_string(all));
    has("reports-by-family," + quarter + ",All," + std::to_string(all));
    has("confirmations," + quarter + ",Reports from drug checking services," + said(drug_checking));
    has("confirmations," + quarter + ",Reports confirmed by a test or laboratory," +
        said(confirmed));
    has("exercises," + quarter + ",Exercise and test alerts issued,0");

    const auto [html_code, html] =
        Run({"report", "quarterly", quarter, "--format", "html", "--db", daemon_->db_path()});
    ASSERT_EQ(html_code, 0);
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_NE(html.find("@page{size:A4"), std::string::npos);
    const auto [wrong, why] = Run({"report", "quarterly", "2026-Q5", "--db", daemon_->db_path()});
    EXPECT_EQ(wrong, 2);
    EXPECT_NE(why.find("like 2026-Q4"), std::string::npos) << why;
}

}  // namespace
