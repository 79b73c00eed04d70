// Privacy by design (docs/privacy.md), proved from the outside: 120 texts a clinician in a
// hurry might type (tests/fixtures/privacy/identifying.txt: names from many backgrounds,
// hyphens and apostrophes, house and flat numbers, registrations, NI, NHS and phone
// numbers, dates, handles, emails) are each planted in every free-text field of a red
// report, sent half over HTTP and half over MQTT to a real ldisd, whose alerts go out at
// once, before any person reads them. Then everything that left LDIS is searched for the
// planted identifiers: every email (real SMTP), every Teams, Slack and JSON webhook body
// and every GOV.UK Notify SMS and email (a real HTTP receiver), everything published on
// the broker (alerts, receipts, rejections), every HTTP receipt, and the CAP and Atom a
// submitter can read.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace json = boost::json;
using ldis::test::Eventually;
using ldis::test::HttpRequest;
using ldis::test::NewUuid;
using ldis::test::ParseObject;

namespace {

struct Planted {
    std::string text;
    std::vector<std::string> identifiers;
};

// Where `id` appears in `out` as something a person typed, or npos. An appearance inside a
// long run of letters, digits, '-' and '_' is a random token (an unsubscribe link, a
// signed key, a MIME boundary) that happens to spell it, "ijChenjmYEi8..." once in a CI
// run, not a leak; any other appearance counts, glued to a word or not ("%20Chen", "DrChen").
std::size_t Leaked(const std::string& out, const std::string& id) {
    const auto token_char = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    };
    const bool id_is_one_run = std::all_of(id.begin(), id.end(), token_char);
    for (auto at = out.find(id); at != std::string::npos; at = out.find(id, at + 1)) {
        if (!id_is_one_run) return at;
        auto begin = at, end = at + id.size();
        while (begin > 0 && token_char(out[begin - 1])) --begin;
        while (end < out.size() && token_char(out[end])) ++end;
        if (end - begin < 20 || end - begin < id.size() + 8) return at;
    }
    return std::string::npos;
}

std::vector<Planted> Corpus() {
    std::ifstream in(ldis::test::SourcePath("tests/fixtures/privacy/identifying.txt"));
    std::vector<Planted> out;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        const auto tab = line.find('\t');
        Planted p{line.substr(0, tab), {}};
        std::istringstream ids(line.substr(tab + 1));
        for (std::string id; std::getline(ids, id, '|');) {
            p.identifiers.push_back(id);
            // A person's surname alone identifies too ("Mrs Okafor").
            const auto space = id.rfind(' ');
            if (space != std::string::npos && id.find_first_of("0123456789") == std::string::npos &&
                id.size() - space > 4)
                p.identifiers.push_back(id.substr(space + 1));
        }
        out.push_back(std::move(p));
    }
    return out;
}

TEST(PrivacyTest, NothingAReporterTypedLeavesLdisInAnAutomaticAlert) {
    const auto corpus = Corpus();
    ASSERT_GE(corpus.size(), 100u);
    ldis::test::Mosquitto broker;
    ldis::test::TempDir dir;
    ldis::test::SmtpSink smtp;
    smtp.Start();
    ldis::test::HttpReceiver hooks({}, "hook-secret");
    const std::string notify_key =
        "ldis_test-26785a09-ab16-4eb0-8407-a37497a57506-"
        "3d844edf-8d35-48ac-975b-e847b4f122b0";
    ldis::test::HttpReceiver notify({}, {}, notify_key);
    std::ofstream(dir / "hook.key") << "hook-secret";
    std::string partners =
        "[coordinators]\npartner = \"coordinators\"\n"
        "[[partner]]\nid = \"coordinators\"\nname = \"LDIS coordinators\"\n"
        "  [[partner.contact]]\n  name = \"mail\"\n  channel = \"email\"\n"
        "  address = \"coordinators@example.org\"\n"
        "[[partner]]\nid = \"everyone\"\nname = \"Every channel\"\n"
        "  [[partner.contact]]\n  name = \"mail\"\n  channel = \"email\"\n"
        "  address = \"partner@example.org\"\n";
    for (const char* format : {"teams", "slack", "json"}) {
        partners += std::string("  [[partner.contact]]\n  name = \"") + format +
                    "\"\n  channel = \"webhook\"\n  format = \"" + format + "\"\n  url = \"" +
                    hooks.url(std::string("/") + format) +
                    "\"\n  secret_file = \"hook.key\"\n  insecure = true\n";
    }
    partners +=
        "  [[partner.contact]]\n  name = \"phone\"\n  channel = \"notify_sms\"\n"
        "  address = \"+447700900111\"\n"
        "  [[partner.contact]]\n  name = \"inbox\"\n  channel = \"notify_email\"\n"
        "  address = \"inbox@example.org\"\n"
        "  [[partner.subscription]]\n  levels = [\"red\", \"amber\", \"green\"]\n";
    std::ofstream(dir / "partners.toml") << partners;
    setenv("LDIS_NOTIFY_API_KEY", notify_key.c_str(), 1);
    ldis::test::Ldisd daemon(
        broker, dir,
        {"paths.partners=" + (dir / "partners.toml"), "email.smtp_url=" + smtp.url(),
         "dispatch.channels=email,webhook,notify,mqtt", "notify.base_url=" + notify.url(),
         "notify.sms_template_id=sms-template", "notify.email_template_id=email-template",
         "dispatch.update_interval_s=0"});
    daemon.Start();
    unsetenv("LDIS_NOTIFY_API_KEY");
    ldis::test::MqttPeer watcher(broker.uri(), "privacy-watcher-" + NewUuid().substr(0, 8));
    watcher.Subscribe("ldis/v1/#");
    ldis::test::MqttPeer reporter(broker.uri(), "privacy-reporter-" + NewUuid().substr(0, 8));

    const std::string token = daemon.CreateToken("submitter", "privacy test");
    ASSERT_FALSE(token.empty());
    const std::vector<std::string> auth{"Authorization: Bearer " + token,
                                        "Content-Type: application/json"};
    const std::vector<std::pair<std::string, std::string>> districts = {
        {"Medway", "Medway"},  {"Kent", "Ashford"},        {"Kent", "Canterbury"},
        {"Kent", "Dartford"},  {"Kent", "Dover"},          {"Kent", "Gravesham"},
        {"Kent", "Maidstone"}, {"Kent", "Sevenoaks"},      {"Kent", "Swale"},
        {"Kent", "Thanet"},    {"Kent", "Tunbridge Wells"}};
    std::vector<std::string> outputs;  // everything that left LDIS
    std::vector<std::string> report_ids;
    std::set<std::string> alerts;
    for (std::size_t i = 0; i < corpus.size(); ++i) {
        const std::string& text = corpus[i].text;
        auto r = ldis::test::ValidReport(NewUuid());
        r["harms"].as_object()["deaths"] = 1;  // red: issued at once, before anyone reads it
        r["area"] = {{"authority", districts[i % districts.size()].first},
                     {"district", districts[i % districts.size()].second}};
        r["source"] = {{"type", "hospital"},
                       {"organisation", "Emergency department"},
                       {"role", text},
                       {"contact", text}};
        r["substances"] = json::array{
            {{"name", "heroin"}},
            {{"name", text}, {"sold_as", text}, {"appearance", text}, {"markings", text}}};
        r["symptoms"] = json::array{"slow breathing", text};
        r["description"] = text;
        report_ids.emplace_back(r.at("id").as_string());
        json::object receipt;
        if (i % 2 == 0) {
            const auto res = HttpRequest("POST", daemon.http_url() + "/api/v1/reports",
                                         json::serialize(r), auth);
            ASSERT_EQ(res.status, 202) << res.body;
            outputs.push_back(res.body);
            receipt = ParseObject(res.body);
        } else {
            const std::string id(r.at("id").as_string());
            ASSERT_TRUE(reporter.Publish("ldis/v1/reports/hospital", json::serialize(r)));
            const auto seen = watcher.WaitFor(
                [&](const ldis::test::Seen& s) {
                    return s.topic == "ldis/v1/receipts/hospital" &&
                           s.payload.find(id) != std::string::npos;
                },
                std::chrono::seconds(15));
            ASSERT_TRUE(seen) << "no receipt for " << text;
            outputs.push_back(seen->payload);
            receipt = ParseObject(seen->payload);
        }
        ASSERT_EQ(receipt.at("status"), "accepted") << json::serialize(receipt);
        ASSERT_EQ(receipt.at("level"), "red");
        alerts.insert(std::string(receipt.at("alert_id").as_string()));
    }
    // Every delivery settled.
    ldis::engine::StoreOptions o;
    o.path = daemon.db_path();
    ldis::engine::ReportStore store(o);
    ASSERT_TRUE(Eventually(
        [&] {
            const auto counts = store.DeliveryCounts();
            for (const char* busy : {"queued", "sending", "retrying"})
                if (counts.count(busy) && counts.at(busy) > 0) return false;
            return counts.count("delivered") && counts.at("delivered") > 0;
        },
        std::chrono::seconds(120)));
    std::size_t emails = 0, hooks_seen = 0, published = 0;
    for (const auto& m : smtp.Messages()) {
        outputs.push_back(json::serialize(m));
        ++emails;
    }
    for (const auto& h : hooks.Requests()) {
        outputs.push_back(json::serialize(h));
        ++hooks_seen;
    }
    std::size_t notified = 0;
    for (const auto& n : notify.Requests()) {
        outputs.push_back(json::serialize(n));
        ++notified;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (const auto& s : watcher.Drain()) {
        if (s.topic.starts_with("ldis/v1/reports/")) continue;  // what the reporter sent
        outputs.push_back(s.topic + " " + s.payload);
        if (s.topic.starts_with("ldis/v1/alerts/")) ++published;
    }
    for (const auto& ref : alerts) {
        const auto record = store.FindAlertRecord(ref);
        ASSERT_TRUE(record);
        for (const auto& v : record->versions) {
            const auto cap = HttpRequest("GET",
                                         daemon.http_url() + "/api/v1/alerts/" + ref +
                                             "/cap?version=" + std::to_string(v.version),
                                         {}, auth);
            ASSERT_EQ(cap.status, 200) << ref << " v" << v.version;
            outputs.push_back(cap.body);
        }
    }
    outputs.push_back(HttpRequest("GET", daemon.http_url() + "/feeds/alerts.atom", {}, auth).body);
    EXPECT_GT(emails, corpus.size());
    EXPECT_GT(hooks_seen, corpus.size());
    EXPECT_GE(published, alerts.size());
    EXPECT_GT(notified, corpus.size());  // SMS and email through GOV.UK Notify

    std::size_t found = 0;
    for (const auto& planted : corpus) {
        for (const auto& id : planted.identifiers) {
            for (const auto& out : outputs) {
                if (const auto at = Leaked(out, id); at != std::string::npos) {
                    if (++found <= 20)
                        ADD_FAILURE()
                            << "\"" << id
                            << "\" left LDIS in: " << out.substr(at > 200 ? at - 200 : 0, 400);
                    break;
                }
            }
        }
    }
    EXPECT_EQ(found, 0u) << "planted identifiers found in what left LDIS";

    // A coordinator reads every report through the scrubber (the second line): none of the
    // planted identifiers either, and clinical detail intact.
    const std::string coordinator = daemon.CreateToken("coordinator", "privacy coordinator");
    ASSERT_FALSE(coordinator.empty());
    const std::vector<std::string> as_coordinator{"Authorization: Bearer " + coordinator};
    std::size_t seen_by_coordinator = 0;
    for (std::size_t i = 0; i < corpus.size(); ++i) {
        const auto view = HttpRequest("GET", daemon.http_url() + "/api/v1/reports/" + report_ids[i],
                                      {}, as_coordinator);
        ASSERT_EQ(view.status, 200) << view.body;
        for (const auto& id : corpus[i].identifiers) {
            if (Leaked(view.body, id) != std::string::npos && ++seen_by_coordinator <= 10)
                ADD_FAILURE() << "\"" << id << "\" shown to a coordinator: " << view.body;
        }
    }
    EXPECT_EQ(seen_by_coordinator, 0u);
    auto clinical = ldis::test::ValidReport(NewUuid());
    const std::string detail =
        "2 mg naloxone at 14:30 on ward 7; tablets marked MSJ, DAN 5620 and T-20; cases in ME4; "
        "see KM-2026-0001";
    clinical["description"] = detail;
    ASSERT_EQ(
        HttpRequest("POST", daemon.http_url() + "/api/v1/reports", json::serialize(clinical), auth)
            .status,
        202);
    const auto clinical_view = HttpRequest(
        "GET", daemon.http_url() + "/api/v1/reports/" + std::string(clinical.at("id").as_string()),
        {}, as_coordinator);
    EXPECT_NE(clinical_view.body.find(detail), std::string::npos) << clinical_view.body;

    // The original words of one report, for a coordinator who says why; audited.
    const std::string reveal = daemon.http_url() + "/api/v1/reports/" + report_ids[0] + "/reveal";
    std::vector<std::string> json_coordinator = as_coordinator;
    json_coordinator.push_back("Content-Type: application/json");
    EXPECT_EQ(HttpRequest("POST", reveal, "{}", json_coordinator).status, 400);
    EXPECT_EQ(HttpRequest("POST", reveal, "{\"reason\": \"need it\"}", auth).status, 403);
    const auto revealed =
        HttpRequest("POST", reveal, "{\"reason\": \"the ED asked us to confirm which patient\"}",
                    json_coordinator);
    ASSERT_EQ(revealed.status, 200) << revealed.body;
    EXPECT_NE(revealed.body.find(corpus[0].identifiers.front()), std::string::npos);
    {
        ldis::test::Process ctl(
            {"/usr/bin/sqlite3", daemon.db_path(),
             "SELECT actor || '|' || action || '|' || detail FROM audit WHERE action = "
             "'report.revealed'"},
            dir / "reveal-audit.txt");
        ASSERT_EQ(ctl.Wait(std::chrono::seconds(10)), 0);
        const std::string audit = ldis::test::ReadFile(dir / "reveal-audit.txt");
        EXPECT_NE(audit.find("privacy coordinator|report.revealed"), std::string::npos) << audit;
        EXPECT_NE(audit.find("confirm which patient"), std::string::npos) << audit;
    }
    EXPECT_TRUE(store.VerifyAudit().ok());
    daemon.Stop(SIGTERM);
}

// Coordinators write the words: their sections replace the automatic ones in this and
// every later version, sent as written, after the scrubber has had its say.
TEST(PrivacyTest, ACoordinatorsWordingIsCheckedThenSentAsWrittenAndKept) {
    ldis::test::Mosquitto broker;
    ldis::test::TempDir dir;
    ldis::test::Ldisd daemon(broker, dir, {"dispatch.update_interval_s=0"});
    daemon.Start();
    const auto token = [&](const std::string& role) {
        const std::string t = daemon.CreateToken(role, "Dr " + role);
        EXPECT_FALSE(t.empty());
        return std::vector<std::string>{"Authorization: Bearer " + t,
                                        "Content-Type: application/json"};
    };
    const auto coordinator = token("coordinator"), submitter = token("submitter");
    auto r = ldis::test::ValidReport(NewUuid());
    r["harms"].as_object()["deaths"] = 1;
    const auto sent =
        HttpRequest("POST", daemon.http_url() + "/api/v1/reports", json::serialize(r), submitter);
    ASSERT_EQ(sent.status, 202) << sent.body;
    const std::string ref(ParseObject(sent.body).at("alert_id").as_string());
    const std::string update = daemon.http_url() + "/api/v1/alerts/" + ref + "/update";
    // A name in the wording: refused, with what was found, and nothing changes.
    const std::string named =
        "{\"wording\": {\"what\": \"Brown powder in small blue bags, sold by Darren "
        "McAllister near the station\"}}";
    const auto refused = HttpRequest("POST", update, named, coordinator);
    ASSERT_EQ(refused.status, 422) << refused.body;
    EXPECT_EQ(ParseObject(refused.body).at("error"), "personal_data");
    EXPECT_NE(refused.body.find("1 name"), std::string::npos) << refused.body;
    // Edited: sent as written, in a new version whose author the audit names.
    const std::string words =
        "Brown powder in small blue bags, stronger than usual; several people collapsed "
        "within minutes.";
    const auto done = HttpRequest(
        "POST", update,
        "{\"wording\": {\"what\": \"" + words + "\", \"advice\": \"Do not use alone.\"}}",
        coordinator);
    ASSERT_EQ(done.status, 200) << done.body;
    const auto cap =
        HttpRequest("GET", daemon.http_url() + "/api/v1/alerts/" + ref + "/cap", {}, submitter);
    EXPECT_NE(cap.body.find("stronger than usual"), std::string::npos) << cap.body;
    const auto record = ParseObject(
        HttpRequest("GET", daemon.http_url() + "/api/v1/alerts/" + ref, {}, coordinator).body);
    EXPECT_EQ(std::string(record.at("sections").at("what").as_string()), words);
    bool audited = false;
    for (const auto& e : record.at("audit").as_array()) {
        const auto& o = e.as_object();
        if (o.at("action") == "alert.updated" && o.at("actor") == "Dr coordinator" &&
            json::serialize(o.at("detail")).find("what") != std::string::npos)
            audited = true;
    }
    EXPECT_TRUE(audited) << json::serialize(record.at("audit"));
    // A later report makes a new version: the counts change, the coordinator's words stay.
    auto again = ldis::test::ValidReport(NewUuid());
    again["harms"].as_object()["deaths"] = 2;
    ASSERT_EQ(HttpRequest("POST", daemon.http_url() + "/api/v1/reports", json::serialize(again),
                          submitter)
                  .status,
              202);
    const auto later = ParseObject(
        HttpRequest("GET", daemon.http_url() + "/api/v1/alerts/" + ref, {}, coordinator).body);
    EXPECT_GT(later.at("version").as_int64(), record.at("version").as_int64());
    EXPECT_EQ(std::string(later.at("sections").at("what").as_string()), words);
    // Sent as written when the coordinator says so, and the audit counts what was found.
    const auto as_written =
        HttpRequest("POST", update,
                    "{\"wording\": {\"harms\": \"Dr Okafor at the ED has seen three cases.\"}, "
                    "\"send_as_written\": true}",
                    coordinator);
    EXPECT_EQ(as_written.status, 200) << as_written.body;
    daemon.Stop(SIGTERM);
}

}  // namespace
