// The HTTP server over real HTTP: ldisd on loopback with mosquitto, an SMTP server and
// SQLite on disk; requests from libcurl and from raw sockets.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <ctime>
#include <fstream>
#include <set>

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
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::NewUuid;
using ldis::test::ParseObject;
using ldis::test::SmtpSink;
using ldis::test::TempDir;

namespace {

class HttpTest : public ::testing::Test {
protected:
    void SetUp() override {
        smtp_.Start();
        daemon_ = std::make_unique<Ldisd>(
            broker_, dir_,
            std::vector<std::string>{"email.smtp_url=" + smtp_.url(),
                                     "http.public_url=https://ldis.example.org"});
        daemon_->Start();
        url_ = daemon_->http_url();
    }
    void TearDown() override {
        if (HasFailure()) std::cerr << "ldisd log:\n" << daemon_->log();
        daemon_->Stop(SIGTERM);
    }

    // A token made the way an operator makes one: ldisctl on the database file.
    std::string Token(const std::string& role) {
        const std::string out = dir_ / ("token-" + role + ".txt");
        ldis::test::Process ctl({LDISCTL_PATH, "tokens", "create", "--db", daemon_->db_path(),
                                 "--role", role, "--name", "test " + role},
                                out);
        EXPECT_EQ(ctl.Wait(std::chrono::seconds(10)), 0) << ldis::test::ReadFile(out);
        std::string text = ldis::test::ReadFile(out);
        return text.substr(0, text.find('\n'));
    }

    std::vector<std::string> Auth(const std::string& token) {
        return {"Authorization: Bearer " + token, "Content-Type: application/json"};
    }

    Mosquitto broker_;
    TempDir dir_;
    SmtpSink smtp_;
    std::unique_ptr<Ldisd> daemon_;
    std::string url_;
};

TEST_F(HttpTest, HealthzAndMetrics) {
    const auto health = HttpRequest("GET", url_ + "/healthz");
    ASSERT_EQ(health.status, 200) << health.error << health.body;
    const auto h = ParseObject(health.body);
    EXPECT_EQ(h.at("status"), "ok");
    EXPECT_EQ(h.at("broker"), "connected");
    EXPECT_EQ(h.at("database"), "ok");
    EXPECT_TRUE(h.contains("outbox_backlog"));
    const auto metrics = HttpRequest("GET", daemon_->metrics_url() + "/metrics");
    ASSERT_EQ(metrics.status, 200);
    EXPECT_EQ(metrics.headers.at("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
    for (const char* line :
         {"ldis_reports_total{status=\"accepted\"} 0",
          "ldis_deliveries_by_status{status=\"failed\"} 0", "ldis_mqtt_connected 1",
          "# TYPE ldis_dispatch_attempts_total counter",
          "# TYPE ldis_dispatch_latency_seconds histogram",
          "ldis_dispatch_latency_seconds_bucket{le=\"+Inf\"} 0", "ldis_reports_stored 0"}) {
        EXPECT_NE(metrics.body.find(line), std::string::npos) << line << "\n" << metrics.body;
    }
    const auto wrong = HttpRequest("POST", url_ + "/healthz", "x");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_EQ(ParseObject(wrong.body).at("error"), "method_not_allowed");
    const auto missing = HttpRequest("GET", url_ + "/nowhere");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(ParseObject(missing.body).at("error"), "not_found");
}

TEST_F(HttpTest, ReportsGoThroughTheSameIntakeWithABearerToken) {
    const std::string report = ldis::test::ValidReportText(NewUuid());
    const auto anonymous = HttpRequest("POST", url_ + "/api/v1/reports", report);
    EXPECT_EQ(anonymous.status, 401);
    EXPECT_EQ(anonymous.headers.at("www-authenticate").rfind("Bearer", 0), 0u);
    const auto forged = HttpRequest("POST", url_ + "/api/v1/reports", report, Auth("ldis_forged"));
    EXPECT_EQ(forged.status, 401);

    const std::string token = Token("submitter");
    ASSERT_EQ(token.rfind("ldis_", 0), 0u) << token;
    const auto accepted = HttpRequest("POST", url_ + "/api/v1/reports", report, Auth(token));
    ASSERT_EQ(accepted.status, 202) << accepted.body;
    const auto receipt = ParseObject(accepted.body);
    EXPECT_EQ(receipt.at("status"), "accepted");
    EXPECT_EQ(receipt.at("level"), "amber");
    EXPECT_EQ(std::string(receipt.at("reference").as_string()).substr(0, 4), "KM-R");
    const auto again = HttpRequest("POST", url_ + "/api/v1/reports", report, Auth(token));
    EXPECT_EQ(again.status, 200);
    EXPECT_EQ(ParseObject(again.body).at("status"), "duplicate");

    // Stored durably, through the HTTP channel, once.
    ldis::engine::StoreOptions o;
    o.path = daemon_->db_path();
    ldis::engine::ReportStore store(o);
    const auto row = store.Find(std::string(receipt.at("report_id").as_string()));
    ASSERT_TRUE(row);
    EXPECT_EQ(row->channel, "http");
    // The token is kept only as a hash.
    EXPECT_EQ(ldis::test::ReadFile(daemon_->db_path()).find(token), std::string::npos);

    const auto broken = HttpRequest("POST", url_ + "/api/v1/reports", "{\"schema\": ", Auth(token));
    EXPECT_EQ(broken.status, 422);
    const auto rejected = ParseObject(broken.body);
    EXPECT_EQ(rejected.at("status"), "rejected");
    EXPECT_FALSE(rejected.at("errors").as_array().empty());
    const auto huge =
        HttpRequest("POST", url_ + "/api/v1/reports", std::string(300 * 1024, 'x'), Auth(token));
    EXPECT_EQ(huge.status, 413);
    EXPECT_EQ(ParseObject(huge.body).at("error"), "payload_too_large");
    // Every role may submit; the metrics count what came in.
    const auto coordinator =
        HttpRequest("POST", url_ + "/api/v1/reports", ldis::test::ValidReportText(NewUuid()),
                    Auth(Token("coordinator")));
    EXPECT_EQ(coordinator.status, 202);
    const auto metrics = HttpRequest("GET", daemon_->metrics_url() + "/metrics");
    EXPECT_NE(metrics.body.find("ldis_reports_total{status=\"accepted\"} 2"), std::string::npos)
        << metrics.body;
    // Two reports of one batch: one signal, graded red, issued at once.
    EXPECT_NE(metrics.body.find("ldis_alerts{level=\"red\",status=\"issued\"} 1"),
              std::string::npos)
        << metrics.body;
    // Its emails went out, and were timed.
    ASSERT_TRUE(ldis::test::Eventually(
        [&] {
            const auto m = HttpRequest("GET", daemon_->metrics_url() + "/metrics").body;
            return m.find("ldis_deliveries{channel=\"email\",status=\"delivered\"}") !=
                       std::string::npos &&
                   m.find("ldis_dispatch_latency_seconds_count 0") == std::string::npos;
        },
        std::chrono::seconds(10)))
        << HttpRequest("GET", daemon_->metrics_url() + "/metrics").body;
    // And each stage of the reports' path, from validation to the email's SMTP transaction,
    // has its histogram (issue 14): counted, with buckets that add up to the count. (The
    // receipt's stage is the broker's: these came over HTTP.)
    ASSERT_TRUE(ldis::test::Eventually(
        [&] {
            const auto m = HttpRequest("GET", daemon_->metrics_url() + "/metrics").body;
            for (const char* stage :
                 {"validate", "writer_queue", "pipeline", "commit", "handoff", "render", "smtp"}) {
                const std::string count =
                    std::string("ldis_stage_seconds_count{stage=\"") + stage + "\"} ";
                const auto at = m.find(count);
                if (at == std::string::npos || m.compare(at + count.size(), 2, "0\n") == 0)
                    return false;
                const std::string inf =
                    std::string("ldis_stage_seconds_bucket{stage=\"") + stage + "\",le=\"+Inf\"} ";
                const auto inf_at = m.find(inf);
                if (inf_at == std::string::npos ||
                    m.substr(inf_at + inf.size(), m.find('\n', inf_at) - inf_at - inf.size()) !=
                        m.substr(at + count.size(), m.find('\n', at) - at - count.size()))
                    return false;
            }
            return true;
        },
        std::chrono::seconds(10)))
        << HttpRequest("GET", daemon_->metrics_url() + "/metrics").body;
}

TEST_F(HttpTest, AckLinkConfirmsOnGetAndRecordsOnPost) {
    auto red = ldis::test::ValidReport(NewUuid());
    red["harms"].as_object()["deaths"] = 1;
    const auto submitted = HttpRequest("POST", url_ + "/api/v1/reports", json::serialize(red),
                                       Auth(Token("submitter")));
    ASSERT_EQ(submitted.status, 202) << submitted.body;
    ASSERT_EQ(ParseObject(submitted.body).at("level"), "red");
    // The link from a partner's real email.
    std::string token;
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& m : smtp_.Messages()) {
                if (m.at("headers").at("X-LDIS-Kind") != "alert") continue;
                const std::string text(m.at("parts").as_array().at(1).at("text").as_string());
                constexpr std::string_view kLink = "https://ldis.example.org/ack/";
                if (const auto at = text.find(kLink); at != std::string::npos) {
                    const auto begin = at + kLink.size();
                    token = text.substr(begin, text.find_first_of(" \t\r\n", begin) - begin);
                    return true;
                }
            }
            return false;
        },
        std::chrono::seconds(20)));
    const std::int64_t delivery = std::stoll(token.substr(0, token.find('.')));
    ldis::engine::StoreOptions o;
    o.path = daemon_->db_path();
    const auto acknowledged = [&] {
        ldis::engine::ReportStore store(o);
        return store.FindDelivery(delivery)->acknowledged_at_ms > 0;
    };

    // A mail scanner's GET changes nothing.
    const auto page = HttpRequest("GET", url_ + "/ack/" + token);
    ASSERT_EQ(page.status, 200) << page.body;
    EXPECT_NE(page.body.find("<form method=\"post\""), std::string::npos);
    EXPECT_NE(page.body.find("RED - Drug Alert"), std::string::npos);
    EXPECT_FALSE(acknowledged());

    const auto done = HttpRequest("POST", url_ + "/ack/" + token);
    ASSERT_EQ(done.status, 200) << done.body;
    EXPECT_NE(done.body.find("Thank you: acknowledged"), std::string::npos);
    EXPECT_TRUE(acknowledged());
    EXPECT_NE(HttpRequest("GET", url_ + "/ack/" + token).body.find("Already acknowledged"),
              std::string::npos);

    // Tampered and malformed links get a clear page, not an error dump.
    std::string tampered = token;
    tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
    const auto bad = HttpRequest("POST", url_ + "/ack/" + tampered);
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.body.find("This link does not work"), std::string::npos);
    EXPECT_NE(bad.body.find("altered"), std::string::npos);
    EXPECT_EQ(HttpRequest("GET", url_ + "/ack/nonsense").status, 400);
    // A genuine link past its expiry: signed with the daemon's own key, expired in 1970.
    {
        ldis::engine::ReportStore keys(o);
        const std::string old_link = ldis::engine::MakeAckToken(keys.AckKey(), delivery, 1);
        const auto expired = HttpRequest("GET", url_ + "/ack/" + old_link);
        EXPECT_EQ(expired.status, 410);
        EXPECT_NE(expired.body.find("This link has expired"), std::string::npos) << expired.body;
    }

    // The one-click unsubscribe asks the coordinators; it stops nothing by itself.
    std::string unsubscribe;
    for (const auto& m : smtp_.Messages()) {
        if (m.at("headers").at("X-LDIS-Kind") != "alert") continue;
        const std::string header(m.at("headers").at("List-Unsubscribe").as_string());
        const auto at = header.find("/unsubscribe/");
        if (at != std::string::npos &&
            header.find(token.substr(0, token.find('.')) + ".") != std::string::npos)
            unsubscribe = header.substr(at + 13, header.find('>') - at - 13);
    }
    ASSERT_FALSE(unsubscribe.empty());
    EXPECT_NE(
        HttpRequest("GET", url_ + "/unsubscribe/" + unsubscribe).body.find("Stop LDIS messages?"),
        std::string::npos);
    EXPECT_EQ(HttpRequest("POST", url_ + "/unsubscribe/" + token).status,
              400);  // an ack token is not one
    const auto asked =
        HttpRequest("POST", url_ + "/unsubscribe/" + unsubscribe, "List-Unsubscribe=One-Click");
    ASSERT_EQ(asked.status, 200) << asked.body;
    EXPECT_NE(asked.body.find("Request sent to the LDIS coordinators"), std::string::npos);
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& m : smtp_.Messages()) {
                if (m.at("headers").at("X-LDIS-Kind") == "unsubscribe") return true;
            }
            return false;
        },
        std::chrono::seconds(20)));

    ldis::engine::ReportStore store(o);
    EXPECT_TRUE(store.VerifyAudit().ok());
}

TEST_F(HttpTest, ASlowClientDoesNotBlockOthers) {
    // A client that sends half a request and stalls.
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(daemon_->http_port()));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string partial =
        "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    ASSERT_EQ(write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(HttpRequest("GET", url_ + "/healthz").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    close(fd);
    // Not HTTP at all: a 400, and the server carries on.
    const int junk = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(junk, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string garbage = "\x01\x02 not http\r\n\r\n";
    ASSERT_GT(write(junk, garbage.data(), garbage.size()), 0);
    char buffer[512] = {0};
    const auto n = read(junk, buffer, sizeof buffer - 1);
    EXPECT_GT(n, 0);
    EXPECT_NE(std::string(buffer).find("400"), std::string::npos) << buffer;
    close(junk);
    EXPECT_EQ(HttpRequest("GET", url_ + "/healthz").status, 200);
}

TEST_F(HttpTest, PagesNeedASessionAndEveryFormACsrfToken) {
    // Not signed in: sent to sign in.
    const auto anonymous = HttpRequest("GET", url_ + "/");
    EXPECT_EQ(anonymous.status, 303);
    EXPECT_EQ(anonymous.headers.at("location"), "/login?next=/");
    const auto login = ldis::test::OpenForm(url_ + "/login");
    const auto wrong =
        HttpRequest("POST", url_ + "/login", "key=ldis_nope&next=%2F&csrf=" + login.csrf,
                    {login.cookie, "Content-Type: application/x-www-form-urlencoded"});
    EXPECT_EQ(wrong.status, 401);
    EXPECT_NE(wrong.body.find("govuk-error-summary"), std::string::npos);

    const auto cookie_of = [&](const std::string& role) {
        const auto form = ldis::test::OpenForm(url_ + "/login");
        const auto signed_in = HttpRequest(
            "POST", url_ + "/login", "next=%2F&csrf=" + form.csrf + "&key=" + Token(role),
            {form.cookie, "Content-Type: application/x-www-form-urlencoded"});
        EXPECT_EQ(signed_in.status, 303);
        const std::string set = signed_in.headers.at("set-cookie");
        EXPECT_NE(set.find("HttpOnly"), std::string::npos) << set;
        EXPECT_NE(set.find("SameSite=Strict"), std::string::npos) << set;
        return "Cookie: " + set.substr(0, set.find(';'));
    };
    const std::string coordinator = cookie_of("coordinator");
    const auto dashboard = HttpRequest("GET", url_ + "/", {}, {coordinator});
    ASSERT_EQ(dashboard.status, 200);
    EXPECT_NE(dashboard.body.find("LDIS dashboard"), std::string::npos);
    const std::string mark = "name=\"csrf\" value=\"";
    const auto csrf_at = dashboard.body.find(mark);
    ASSERT_NE(csrf_at, std::string::npos);
    const auto csrf_begin = csrf_at + mark.size();
    const std::string csrf =
        dashboard.body.substr(csrf_begin, dashboard.body.find('"', csrf_begin) - csrf_begin);

    // A form posted without the session's CSRF token, or with another, is refused.
    const std::vector<std::string> form{coordinator,
                                        "Content-Type: application/x-www-form-urlencoded"};
    EXPECT_EQ(HttpRequest("POST", url_ + "/alerts/KM-2026-0001/cancel", "", form).status, 403);
    EXPECT_EQ(HttpRequest("POST", url_ + "/alerts/KM-2026-0001/cancel", "csrf=forged", form).status,
              403);
    // With it, the action happens (here: refused by the store, as there is no such alert).
    const auto real =
        HttpRequest("POST", url_ + "/alerts/KM-2026-0001/cancel", "csrf=" + csrf, form);
    EXPECT_NE(real.status, 403) << real.body;

    // A submitter may report but not see the dashboard.
    const std::string submitter = cookie_of("submitter");
    EXPECT_EQ(HttpRequest("GET", url_ + "/report", {}, {submitter}).status, 200);
    const auto refused = HttpRequest("GET", url_ + "/", {}, {submitter});
    EXPECT_EQ(refused.status, 403);
    EXPECT_NE(refused.body.find("not review alerts"), std::string::npos);
    // Signing out ends the session.
    EXPECT_EQ(HttpRequest("POST", url_ + "/logout", "csrf=" + csrf, form).status, 303);
    EXPECT_EQ(HttpRequest("GET", url_ + "/", {}, {coordinator}).status, 303);
}

}  // namespace

// The alerting rules of packaging/prometheus read only metrics that ldisd exposes, and the
// ones added for them move: the newest report's time, the disk, and a red alert that a
// partner has not acknowledged by its deadline (1 s here).
TEST(MetricsForAlertingTest, TheAlertingRulesReadMetricsLdisdExposes) {
    Mosquitto broker;
    TempDir dir;
    SmtpSink smtp;
    smtp.Start();
    Ldisd daemon(broker, dir, {"email.smtp_url=" + smtp.url(), "escalation.red_ack_s=1"});
    daemon.Start();
    const auto metrics = [&] { return HttpRequest("GET", daemon.metrics_url() + "/metrics").body; };
    const auto value = [&](const std::string& name) {
        const std::string text = metrics();
        const auto at = text.find("\n" + name + " ");
        return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
    };
    EXPECT_EQ(value("ldis_last_report_received_timestamp_seconds"), 0.0);
    EXPECT_EQ(value("ldis_red_alerts_unacknowledged_overdue"), 0.0);
    EXPECT_GT(value("ldis_store_disk_size_bytes"), 0.0);
    EXPECT_GT(value("ldis_store_disk_free_bytes"), 0.0);

    const std::string rules =
        ldis::test::ReadFile(ldis::test::SourcePath("packaging/prometheus/ldis-rules.yml"));
    const std::string text = metrics();
    std::set<std::string> names;
    for (std::size_t at = rules.find("ldis_"); at != std::string::npos;
         at = rules.find("ldis_", at + 1)) {
        if (at > 0 &&
            (std::isalnum(static_cast<unsigned char>(rules[at - 1])) || rules[at - 1] == '_'))
            continue;
        std::size_t end = at;
        while (end < rules.size() &&
               (std::islower(static_cast<unsigned char>(rules[end])) || rules[end] == '_'))
            ++end;
        names.insert(rules.substr(at, end - at));
    }
    EXPECT_GE(names.size(), 6u);
    for (const auto& name : names)
        EXPECT_NE(text.find("\n" + name), std::string::npos) << name << " is not exposed";

    const std::int64_t before = std::time(nullptr);
    auto red = ldis::test::ValidReport(NewUuid());
    red["harms"].as_object()["deaths"] = 1;
    const std::string token = daemon.CreateToken("submitter", "ed");
    const auto res = HttpRequest("POST", daemon.http_url() + "/api/v1/reports",
                                 json::serialize(red), {"Authorization: Bearer " + token});
    ASSERT_EQ(res.status, 202) << res.body;
    // (The metrics are cached for 2 s.)
    EXPECT_TRUE(ldis::test::Eventually(
        [&] {
            return value("ldis_last_report_received_timestamp_seconds") >=
                   static_cast<double>(before);
        },
        std::chrono::seconds(10)));
    // Partners were sent the red alert; nobody acknowledges it within the second.
    EXPECT_TRUE(ldis::test::Eventually(
        [&] { return value("ldis_red_alerts_unacknowledged_overdue") == 1.0; },
        std::chrono::seconds(15)))
        << metrics();
    daemon.Stop(SIGTERM);
}

// The clinician's form offers the schema's own words and the configured districts: a word
// added to the schema, or a district to areas.toml, is on the form with nothing else
// changed (nothing in the pages copies either list).
TEST(FormVocabularyTest, TheFormsListsAreTheSchemasAndTheAreas) {
    Mosquitto broker;
    TempDir dir;
    std::string schema =
        ldis::test::ReadFile(ldis::test::SourcePath("config/schema/report.schema.json"));
    const std::string forms = R"("vape", "herbal")";
    ASSERT_NE(schema.find(forms), std::string::npos);
    schema.replace(schema.find(forms), forms.size(), R"("vape", "blotter", "herbal")");
    std::ofstream(dir / "report.schema.json") << schema;
    std::string areas = ldis::test::ReadFile(ldis::test::SourcePath("config/areas.toml"));
    const std::string kent = R"(Kent = ["Ashford",)";
    ASSERT_NE(areas.find(kent), std::string::npos);
    areas.replace(areas.find(kent), kent.size(), R"(Kent = ["Ashford", "Isle of Grain Test",)");
    std::ofstream(dir / "areas.toml") << areas;
    Ldisd daemon(
        broker, dir,
        {"paths.schema=" + (dir / "report.schema.json"), "paths.areas=" + (dir / "areas.toml")});
    daemon.Start();
    const auto page = HttpRequest("GET", daemon.http_url() + "/report");
    ASSERT_EQ(page.status, 200) << page.body.substr(0, 300);
    EXPECT_NE(page.body.find("value=\"blotter\""), std::string::npos);
    EXPECT_NE(page.body.find("value=\"Isle of Grain Test\""), std::string::npos);
    // And everything the shipped schema lists, with the form's labels where it has them.
    for (const char* word :
         {"value=\"drug_checking\"", "Drug checking service", "value=\"festival\"",
          "value=\"post_mortem\"", "value=\"very_high\"", "Much stronger than usual",
          "value=\"snorted\"", "value=\"corroborated\"", "value=\"Medway\"",
          "value=\"Tunbridge Wells\""})
        EXPECT_NE(page.body.find(word), std::string::npos) << word;
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}
