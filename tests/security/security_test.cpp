// The attack suite (docs/security.md): each test performs one attack that a hostile review
// found to work, over real HTTP or MQTT against a real ldisd on loopback (with mosquitto,
// an SMTP server, HTTP receivers and SQLite on disk), and fails if the attack succeeds.
// The numbers are those of the review's items.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "ldis/engine/delivery.hpp"
#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/mqtt_peer.hpp"
#include "support/photos.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;
using ldis::test::Eventually;
using ldis::test::HttpRequest;
using ldis::test::HttpResponse;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::NewUuid;
using ldis::test::ParseObject;
using ldis::test::TempDir;

namespace {

constexpr auto kWait = std::chrono::seconds(15);
const std::string kForm = "Content-Type: application/x-www-form-urlencoded";

std::string Str(const json::value& v) {
    return v.is_string() ? std::string(v.as_string()) : std::string();
}

// A connected TCP socket to ldisd's port, or -1.
int Connect(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// One request sent byte for byte as given (no client normalises the path), and the whole
// response as it came, headers included.
std::string Raw(int port, const std::string& request) {
    const int fd = Connect(port);
    if (fd < 0) return {};
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::size_t sent = 0;
    while (sent < request.size()) {
        const auto n = write(fd, request.data() + sent, request.size() - sent);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
    }
    std::string out;
    char buffer[4096];
    for (;;) {
        const auto n = read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        out.append(buffer, static_cast<std::size_t>(n));
    }
    close(fd);
    return out;
}

int StatusOf(const std::string& raw) {
    if (raw.size() < 12 || !raw.starts_with("HTTP/1.")) return 0;
    return std::stoi(raw.substr(9, 3));
}

std::string HeadOf(const std::string& raw) {
    return raw.substr(0, raw.find("\r\n\r\n"));
}

std::string RedReportText(const std::string& id) {
    auto r = ldis::test::ValidReport(id);
    r["harms"].as_object()["deaths"] = 1;
    return json::serialize(r);
}

class SecurityTest : public ::testing::Test {
protected:
    void TearDown() override {
        if (HasFailure() && daemon_) std::cerr << "ldisd log:\n" << daemon_->log();
        if (daemon_ && daemon_->running()) daemon_->Stop(SIGTERM);
    }

    void StartDaemon(std::vector<std::string> sets = {}) {
        daemon_ = std::make_unique<Ldisd>(broker_, dir_, std::move(sets));
        daemon_->Start();
        url_ = daemon_->http_url();
    }

    // ldisctl run as an operator would; returns its exit code, its output in `out`.
    int Ctl(std::vector<std::string> args, std::string* out = nullptr) {
        static int n = 0;
        const std::string log = dir_ / ("ldisctl-" + std::to_string(++n) + ".txt");
        args.insert(args.begin(), LDISCTL_PATH);
        ldis::test::Process ctl(args, log);
        const int code = ctl.Wait(std::chrono::seconds(20));
        if (out) *out = ldis::test::ReadFile(log);
        return code;
    }

    std::string Token(const std::string& role, const std::string& name = {}) {
        const std::string token = daemon_->CreateToken(role, name.empty() ? "test " + role : name);
        EXPECT_FALSE(token.empty());
        return token;
    }

    std::vector<std::string> Auth(const std::string& token) {
        return {"Authorization: Bearer " + token, "Content-Type: application/json"};
    }

    json::object Submit(const std::string& text, const std::string& token) {
        const auto r = HttpRequest("POST", url_ + "/api/v1/reports", text, Auth(token));
        EXPECT_TRUE(r.status == 202 || r.status == 200) << r.status << " " << r.body;
        return r.status == 0 ? json::object{} : ParseObject(r.body);
    }

    ldis::engine::ReportStore Store() {
        ldis::engine::StoreOptions o;
        o.path = daemon_->db_path();
        return ldis::engine::ReportStore(o);
    }

    Mosquitto broker_;
    TempDir dir_;
    std::unique_ptr<Ldisd> daemon_;
    std::string url_;
};

// 1. Any file the daemon could read was served to anyone: fs::path(dir) / "/etc/passwd" is
// "/etc/passwd". Only regular files whose canonical path lies inside the assets folder.
TEST_F(SecurityTest, AssetsServeOnlyRegularFilesInsideTheAssetsFolder) {
    const fs::path assets = dir_.path() / "assets";
    fs::create_directories(assets / "assets");
    std::ofstream(assets / "ok.css") << "body{color:#0b0c0c}";
    std::ofstream(assets / "assets" / "logo.svg") << "<svg/>";
    std::ofstream(dir_.path() / "secret.txt") << "TOP-SECRET";
    fs::create_symlink("/etc/passwd", assets / "leak.css");  // planted links pointing out
    fs::create_symlink("/etc", assets / "etc");
    fs::create_symlink("../secret.txt", assets / "up.css");
    StartDaemon({"paths.assets=" + assets.string()});
    const int port = daemon_->http_port();
    const auto get = [&](const std::string& target) {
        return Raw(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    };
    const std::string ok = get("/assets/ok.css");
    EXPECT_EQ(StatusOf(ok), 200) << ok;
    EXPECT_NE(ok.find("body{color:#0b0c0c}"), std::string::npos);
    EXPECT_EQ(StatusOf(get("/assets/logo.svg")), 200);  // the stylesheet's images
    for (const std::string& target : std::vector<std::string>{
             "/assets//etc/passwd", "/assets//proc/self/environ", "/assets//proc/self/cwd/ldis.db",
             "/assets/../../../../../etc/passwd", "/assets/%2Fetc%2Fpasswd",
             "/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
             "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/assets/ok.css%00.png",
             "/assets/..\\..\\..\\..\\etc\\passwd", "/assets/leak.css", "/assets/etc/passwd",
             "/assets/up.css", "/assets/.", "/assets/", "/assets/assets/../../secret.txt",
             "/assets/" + (dir_.path() / "secret.txt").string()}) {
        const std::string res = get(target);
        EXPECT_NE(StatusOf(res), 200) << target << "\n" << res.substr(0, 300);
        EXPECT_EQ(res.find("root:"), std::string::npos) << target;
        EXPECT_EQ(res.find("TOP-SECRET"), std::string::npos) << target;
        EXPECT_EQ(res.find("LDIS_"), std::string::npos) << target;  // the environment
    }
    EXPECT_EQ(StatusOf(get("/assets//etc/passwd")), 404);
    EXPECT_EQ(StatusOf(get("/assets/leak.css")), 404);
}

// 2. A CR LF in `next` became a real Set-Cookie header. Every header value passes one check.
TEST_F(SecurityTest, NoRequestCanAddAResponseHeader) {
    StartDaemon();
    const std::string key = Token("coordinator");
    const auto form = ldis::test::OpenForm(url_ + "/login");
    const std::string body = "next=/%0D%0ASet-Cookie:%20evil=1&csrf=" + form.csrf + "&key=" + key;
    const std::string res =
        Raw(daemon_->http_port(),
            "POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + form.cookie + "\r\n" +
                kForm + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    const std::string head = HeadOf(res);
    EXPECT_EQ(StatusOf(res), 303) << res;
    EXPECT_EQ(head.find("evil=1"), std::string::npos) << head;
    EXPECT_NE(head.find("\r\nLocation: /\r\n"), std::string::npos) << head;
    // The same through the query string of the sign-in page, and the session-less redirect.
    const std::string page = Raw(daemon_->http_port(),
                                 "GET /login?next=/%0D%0AX-Evil:%201 HTTP/1.1\r\nHost: x\r\n"
                                 "Connection: close\r\n\r\n");
    EXPECT_EQ(HeadOf(page).find("X-Evil"), std::string::npos) << HeadOf(page);
    const std::string redirect =
        Raw(daemon_->http_port(),
            "GET /alerts/KM%0D%0ASet-Cookie:%20evil=1 HTTP/1.1\r\nHost: x\r\nConnection: "
            "close\r\n\r\n");
    EXPECT_EQ(HeadOf(redirect).find("evil=1\r\n"), std::string::npos) << HeadOf(redirect);
    EXPECT_EQ(HeadOf(redirect).find("\r\nSet-Cookie: evil"), std::string::npos);
}

// 3. next=/%5Cevil.example sent a freshly signed-in coordinator to another host.
TEST_F(SecurityTest, SignInRedirectsOnlyToPathsOnThisSite) {
    StartDaemon();
    const std::string key = Token("coordinator");
    const auto location_after = [&](const std::string& next) {
        const auto form = ldis::test::OpenForm(url_ + "/login");
        const auto r = HttpRequest("POST", url_ + "/login",
                                   "next=" + next + "&csrf=" + form.csrf + "&key=" + key,
                                   {form.cookie, kForm});
        EXPECT_EQ(r.status, 303) << next << " " << r.body;
        return r.headers.count("location") ? r.headers.at("location") : std::string("(none)");
    };
    for (const std::string next :
         {"/%5Cevil.example", "%2F%2Fevil.example", "https%3A%2F%2Fevil.example",
          "/%5C/evil.example", "/%09/evil.example", "javascript%3Aalert(1)", "evil.example",
          "/%0D%0A"}) {
        EXPECT_EQ(location_after(next), "/") << next;
    }
    EXPECT_EQ(location_after("%2Falerts%2FKM-2026-0001"), "/alerts/KM-2026-0001");
    // Nor from the query string, as a link to the sign-in page would carry it.
    const auto page = HttpRequest("GET", url_ + "/login?next=%5Cevil.example");
    EXPECT_EQ(page.body.find("evil.example"), std::string::npos);
}

// 4. A hostile page could sign a coordinator's browser in with the attacker's key.
TEST_F(SecurityTest, SignInNeedsTheFormsOwnTokenAndASameSiteRequest) {
    StartDaemon();
    const std::string key = Token("coordinator");
    // As a form on another site would post it: no pre-session cookie, no token.
    const auto forged = HttpRequest("POST", url_ + "/login", "next=%2F&key=" + key, {kForm});
    EXPECT_EQ(forged.status, 403) << forged.body;
    EXPECT_EQ(forged.headers.count("set-cookie") ? forged.headers.at("set-cookie").find("session")
                                                 : std::string::npos,
              std::string::npos);
    // A token from one visitor's form does not sign in another visitor.
    const auto mine = ldis::test::OpenForm(url_ + "/login");
    const auto theirs = ldis::test::OpenForm(url_ + "/login");
    ASSERT_FALSE(mine.csrf.empty());
    ASSERT_NE(mine.csrf, theirs.csrf);
    EXPECT_EQ(HttpRequest("POST", url_ + "/login", "csrf=" + theirs.csrf + "&key=" + key,
                          {mine.cookie, kForm})
                  .status,
              403);
    // A browser that says the post came from another site is refused, token or not.
    EXPECT_EQ(HttpRequest("POST", url_ + "/login", "csrf=" + mine.csrf + "&key=" + key,
                          {mine.cookie, kForm, "Sec-Fetch-Site: cross-site"})
                  .status,
              403);
    // The form as the browser holds it signs in.
    const auto real = HttpRequest("POST", url_ + "/login", "csrf=" + mine.csrf + "&key=" + key,
                                  {mine.cookie, kForm, "Sec-Fetch-Site: same-origin"});
    EXPECT_EQ(real.status, 303) << real.body;
}

// 5. A submitter's token read the CAP of an unapproved draft.
TEST_F(SecurityTest, DraftsAreForCoordinatorsOnlyInEveryEndpoint) {
    StartDaemon();
    const std::string submitter = Token("submitter"), coordinator = Token("coordinator");
    const auto receipt = Submit(ldis::test::ValidReportText(NewUuid()), submitter);  // amber
    const std::string ref = Str(receipt.at("alert_id"));
    ASSERT_FALSE(ref.empty()) << json::serialize(receipt);
    ASSERT_EQ(
        Str(ParseObject(
                HttpRequest("GET", url_ + "/api/v1/alerts/" + ref, {}, Auth(coordinator)).body)
                .at("status")),
        "draft");
    for (const std::string& path :
         {"/api/v1/alerts/" + ref + "/cap", "/api/v1/alerts/" + ref + "/cap?version=1",
          "/api/v1/alerts/" + ref}) {
        const auto r = HttpRequest("GET", url_ + path, {}, Auth(submitter));
        EXPECT_TRUE(r.status == 404 || r.status == 403) << path << " " << r.status;
        EXPECT_EQ(r.body.find("<status>Draft</status>"), std::string::npos) << path;
        EXPECT_EQ(r.body.find("<alert "), std::string::npos) << path;
    }
    EXPECT_EQ(HttpRequest("GET", url_ + "/feeds/alerts.atom", {}, Auth(submitter)).body.find(ref),
              std::string::npos);
    // A coordinator sees the draft; once approved, everyone may read what was issued.
    EXPECT_EQ(
        HttpRequest("GET", url_ + "/api/v1/alerts/" + ref + "/cap", {}, Auth(coordinator)).status,
        200);
    ASSERT_EQ(
        HttpRequest("POST", url_ + "/api/v1/alerts/" + ref + "/approve", "{}", Auth(coordinator))
            .status,
        200);
    const auto issued =
        HttpRequest("GET", url_ + "/api/v1/alerts/" + ref + "/cap", {}, Auth(submitter));
    EXPECT_EQ(issued.status, 200) << issued.body;
    EXPECT_EQ(
        HttpRequest("GET", url_ + "/api/v1/alerts/" + ref + "/cap?version=1", {}, Auth(submitter))
            .status,
        404);  // version 1 was the draft
}

// 6. Each post of an unsubscribe link queued a notice to every coordinator contact.
TEST_F(SecurityTest, AnUnsubscribeLinkPostedManyTimesAsksTheCoordinatorsOnce) {
    StartDaemon();
    Submit(RedReportText(NewUuid()), Token("submitter"));
    auto store = Store();
    std::int64_t delivery = 0;
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& d : store.Deliveries(""))
                if (d.kind == "alert" && d.channel == "email") delivery = d.id;
            return delivery != 0;
        },
        kWait));
    const std::string link =
        ldis::engine::MakeAckToken(store.AckKey() + ":unsubscribe", delivery,
                                   std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                           .count() +
                                       3600);
    const auto notices = [&] {
        int n = 0;
        for (const auto& d : store.Deliveries(""))
            if (d.kind == "unsubscribe") ++n;
        return n;
    };
    const auto first =
        HttpRequest("POST", url_ + "/unsubscribe/" + link, "List-Unsubscribe=One-Click");
    ASSERT_EQ(first.status, 200) << first.body;
    const int once = notices();
    ASSERT_GT(once, 0);
    for (int i = 0; i < 25; ++i) {
        const auto again =
            HttpRequest("POST", url_ + "/unsubscribe/" + link, "List-Unsubscribe=One-Click");
        EXPECT_EQ(again.status, 200);
        EXPECT_NE(again.body.find("already"), std::string::npos) << again.body;
    }
    EXPECT_EQ(notices(), once);
}

// 7. A rejected report's raw payload (contact, description) went to ldis/v1/rejected, and a
// submitter could make ldisd publish on LDIS's own alert and status topics.
TEST_F(SecurityTest, TheBrokerNeverCarriesARejectedPayloadOrAReceiptOnLdisTopics) {
    StartDaemon();
    MqttPeer watcher(broker_.uri(), "watcher-" + NewUuid().substr(0, 8));
    watcher.Subscribe("ldis/v1/#");
    MqttPeer hospital(broker_.uri(), "hospital-" + NewUuid().substr(0, 8));
    auto bad = ldis::test::ValidReport(NewUuid());
    bad.erase("evidence");
    bad["description"] = "Jane Doe of 12 Elm Road, mobile 07700 900123, collapsed";
    bad["area"].as_object()["district"] = "Jane Doe's flat";
    ASSERT_TRUE(hospital.Publish("ldis/v1/reports/hospital", json::serialize(bad),
                                 "ldis/v1/alerts/red/kent"));
    const auto rejected = watcher.WaitForTopic("ldis/v1/rejected", kWait);
    ASSERT_TRUE(rejected);
    EXPECT_EQ(rejected->payload.find("Jane Doe"), std::string::npos) << rejected->payload;
    EXPECT_EQ(rejected->payload.find("07700"), std::string::npos);
    EXPECT_EQ(Str(ParseObject(rejected->payload).at("source")), "hospital");
    // The receipt went to the source's receipts topic, not the alerts topic named.
    EXPECT_TRUE(watcher.WaitForTopic("ldis/v1/receipts/hospital", kWait));
    for (const std::string topic :
         {"ldis/v1/status/ldisd", "ldis/v1/receipts/custody", "ldis/v1/alerts/red/kent"}) {
        ASSERT_TRUE(hospital.Publish("ldis/v1/reports/hospital",
                                     ldis::test::ValidReportText(NewUuid()), topic));
        EXPECT_TRUE(watcher.WaitForTopic("ldis/v1/receipts/hospital", kWait)) << topic;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (const auto& s : watcher.Drain()) {
        EXPECT_EQ(s.payload.find("\"report_id\""), std::string::npos)
            << "a receipt on " << s.topic << ": " << s.payload;
    }
    // Nor do ldisd's own log lines repeat what was sent (13).
    EXPECT_EQ(daemon_->log().find("Jane Doe"), std::string::npos);
}

// 8. Report text went raw into Slack mrkdwn and Teams Markdown: a red alert nobody
// approved could ping every partner channel with a phishing link. Now a version nobody
// wrote carries no free text at all (issue 12), and every text a chat message carries is
// escaped for its channel (SlackEscape, TeamsPlainText: tests/unit/delivery_test.cpp).
TEST_F(SecurityTest, ReporterTextIsInertInSlackAndTeams) {
    ldis::test::HttpReceiver hooks({}, "hook-secret");
    std::ofstream(dir_.path() / "hook.key") << "hook-secret";
    const std::string partners = dir_ / "partners.toml";
    std::ofstream(partners)
        << "[coordinators]\npartner = \"coordinators\"\n"
           "[[partner]]\nid = \"coordinators\"\nname = \"LDIS coordinators\"\n"
           "  [[partner.contact]]\n  name = \"mail\"\n  channel = \"email\"\n"
           "  address = \"coordinators@example.org\"\n"
           "[[partner]]\nid = \"medway-treat\"\nname = \"Medway treatment\"\n"
           "  [[partner.contact]]\n  name = \"teams\"\n  channel = \"webhook\"\n"
           "  format = \"teams\"\n  url = \""
        << hooks.url("/teams")
        << "\"\n  secret_file = \"hook.key\"\n  insecure = true\n"
           "  [[partner.contact]]\n  name = \"slack\"\n  channel = \"webhook\"\n"
           "  format = \"slack\"\n  url = \""
        << hooks.url("/slack")
        << "\"\n  secret_file = \"hook.key\"\n  insecure = true\n"
           "  [[partner.subscription]]\n  districts = [\"Medway\"]\n";
    StartDaemon({"paths.partners=" + partners, "dispatch.channels=email,webhook"});
    auto red = ldis::test::ValidReport(NewUuid());
    red["harms"].as_object()["deaths"] = 1;
    red["substances"].as_array()[0].as_object()["markings"] =
        "<!channel> <https://evil.example|Naloxone guidance>";
    red["substances"].as_array()[0].as_object()["appearance"] =
        "[Naloxone guidance](https://evil.example) *urgent*";
    Submit(json::serialize(red), Token("submitter"));
    ASSERT_TRUE(Eventually(
        [&] { return !hooks.Requests("/slack").empty() && !hooks.Requests("/teams").empty(); },
        kWait))
        << daemon_->log();
    const auto texts = [](const json::value& v, auto&& self,
                          std::vector<std::string>& out) -> void {
        if (v.is_object()) {
            for (const auto& [k, x] : v.as_object()) {
                if (k == "text" && x.is_string()) out.emplace_back(x.as_string());
                self(x, self, out);
            }
        } else if (v.is_array()) {
            for (const auto& x : v.as_array()) self(x, self, out);
        }
    };
    std::vector<std::string> slack, teams;
    texts(json::parse(Str(hooks.Requests("/slack").front().at("body"))), texts, slack);
    texts(json::parse(Str(hooks.Requests("/teams").front().at("body"))), texts, teams);
    ASSERT_FALSE(slack.empty());
    ASSERT_FALSE(teams.empty());
    for (const auto& t : slack) {
        EXPECT_EQ(t.find("<!channel>"), std::string::npos) << t;
        EXPECT_EQ(t.find("<https://evil"), std::string::npos) << t;
        EXPECT_EQ(t.find("evil.example"), std::string::npos) << t;
    }
    for (const auto& t : teams) {
        EXPECT_EQ(t.find("[Naloxone guidance](https"), std::string::npos) << t;
        EXPECT_EQ(t.find(" *urgent*"), std::string::npos) << t;
        EXPECT_EQ(t.find("evil.example"), std::string::npos) << t;
    }
}

// 9. Transport checks that were off: webhooks over http://, SMTP AUTH in clear text, and
// MQTT over TLS that did not check the server's name.
TEST_F(SecurityTest, TransportsRefuseClearTextAndTheWrongServer) {
    const auto check = [&](std::vector<std::string> sets, std::string* out) {
        std::vector<std::string> argv{
            LDISD_PATH,       "--config", ldis::test::SourcePath("config/ldisd.toml"),
            "--check-config", "--set",    "store.path=" + (dir_ / "x.db")};
        for (auto& s : sets) argv.insert(argv.end(), {"--set", s});
        static int n = 0;
        const std::string log = dir_ / ("check-" + std::to_string(++n) + ".txt");
        ldis::test::Process p(argv, log);
        const int code = p.Wait(std::chrono::seconds(20));
        *out = ldis::test::ReadFile(log);
        return code;
    };
    std::string out;
    const std::string partners = dir_ / "hooks.toml";
    std::ofstream(partners) << "[[partner]]\nid = \"p\"\nname = \"P\"\n"
                               "  [[partner.contact]]\n  name = \"hook\"\n  channel = \"webhook\"\n"
                               "  url = \"http://hooks.example.org/p\"\n";
    EXPECT_NE(check({"paths.partners=" + partners}, &out), 0);
    EXPECT_NE(out.find("must start with https://"), std::string::npos) << out;
    std::ofstream(partners, std::ios::app) << "  insecure = true\n";
    EXPECT_EQ(check({"paths.partners=" + partners}, &out), 0) << out;

    EXPECT_NE(check({"email.smtp_url=smtp://relay.example.org:25", "email.username=ldis"}, &out),
              0);
    EXPECT_NE(out.find("clear text"), std::string::npos) << out;
    EXPECT_EQ(check({"email.smtp_url=smtp://relay.example.org:25", "email.username=ldis",
                     "email.starttls=true"},
                    &out),
              0)
        << out;
    EXPECT_EQ(check({"email.smtp_url=smtp://127.0.0.1:25", "email.username=ldis",
                     "email.allow_plaintext_auth=true"},
                    &out),
              0)
        << out;

    // A broker whose certificate a trusted CA signed, but for another name.
    TempDir certs;
    const auto ca = ldis::test::MakeCa(certs, "council-");
    const auto [cert, key] =
        ldis::test::MakeSignedCertificate(certs, ca, "DNS:wrong.example", "wrong-");
    Mosquitto impostor("listener {port} 127.0.0.1\nallow_anonymous true\ncertfile " + cert +
                       "\nkeyfile " + key + "\n");
    Ldisd daemon(
        impostor, dir_,
        {"mqtt.uri=ssl://127.0.0.1:" + std::to_string(impostor.port()), "mqtt.ca_file=" + ca.cert});
    EXPECT_THROW(daemon.Start(), std::runtime_error);
    EXPECT_EQ(daemon.log().find("mqtt connected"), std::string::npos) << daemon.log();
    // The log says why, in words an operator can act on.
    EXPECT_NE(daemon.log().find("check mqtt.ca_file and that the broker's certificate names"),
              std::string::npos)
        << daemon.log();
    daemon.Stop(SIGKILL);
}

// 10. The database, its WAL and maildir emails were created readable by everyone.
TEST_F(SecurityTest, FilesAreForLdisdsUserAlone) {
    const mode_t old = umask(022);  // as a careless shell would leave it
    StartDaemon();
    umask(old);
    Submit(RedReportText(NewUuid()), Token("submitter"));
    const fs::path mail = dir_.path() / "mail" / "new";
    ASSERT_TRUE(Eventually([&] { return fs::exists(mail) && !fs::is_empty(mail); }, kWait));
    const auto mode = [](const fs::path& p) {
        struct stat st {};
        EXPECT_EQ(stat(p.c_str(), &st), 0) << p;
        return st.st_mode & 0777;
    };
    for (const fs::path& p : {fs::path(daemon_->db_path()), fs::path(daemon_->db_path() + "-wal")})
        EXPECT_EQ(mode(p) & 077, 0u) << p << " mode " << std::oct << mode(p);
    for (const auto& e : fs::directory_iterator(mail))
        EXPECT_EQ(mode(e.path()) & 077, 0u) << e.path();
    EXPECT_EQ(mode(mail) & 077, 0u);
    // A database others can read: ldisd refuses to start and says how to fix it.
    daemon_->Stop(SIGTERM);
    chmod(daemon_->db_path().c_str(), 0644);
    EXPECT_THROW(daemon_->Start(), std::runtime_error);
    EXPECT_NE(daemon_->log().find("chmod 600"), std::string::npos);
    chmod(daemon_->db_path().c_str(), 0600);
    daemon_->Start();
}

// 11a. Idle connections held every descriptor; the accept loop then spun and logged.
TEST_F(SecurityTest, ConnectionsAreCappedAndRunningOutOfDescriptorsIsSurvived) {
    rlimit saved{};
    getrlimit(RLIMIT_NOFILE, &saved);
    rlimit low = saved;
    low.rlim_cur = 160;  // ldisd inherits it: descriptors run out at ~130 connections
    setrlimit(RLIMIT_NOFILE, &low);
    StartDaemon({"http.max_connections=60"});
    setrlimit(RLIMIT_NOFILE, &saved);
    const int port = daemon_->http_port();
    std::vector<int> idle;
    for (int i = 0; i < 60; ++i) idle.push_back(Connect(port));
    ASSERT_TRUE(
        Eventually([&] { return HttpRequest("GET", url_ + "/healthz").status == 503; }, kWait));
    const auto busy = HttpRequest("GET", url_ + "/healthz");
    EXPECT_EQ(busy.headers.count("retry-after"), 1u);
    for (int fd : idle) close(fd);
    idle.clear();
    ASSERT_TRUE(
        Eventually([&] { return HttpRequest("GET", url_ + "/healthz").status == 200; }, kWait));

    // Past the cap there is no reading at all, so the descriptor limit is reached by the
    // backlog: 400 half-open connections against 160 descriptors.
    daemon_->Stop(SIGTERM);
    setrlimit(RLIMIT_NOFILE, &low);
    daemon_ = std::make_unique<Ldisd>(broker_, dir_,
                                      std::vector<std::string>{"http.max_connections=100000"});
    daemon_->Start();
    setrlimit(RLIMIT_NOFILE, &saved);
    rlimit mine = saved;
    mine.rlim_cur = std::max<rlim_t>(saved.rlim_cur, 4096);
    setrlimit(RLIMIT_NOFILE, &mine);
    const int flood_port = daemon_->http_port();
    for (int i = 0; i < 400; ++i) {
        const int fd = Connect(flood_port);
        if (fd >= 0) idle.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_TRUE(daemon_->running());
    const std::string log = daemon_->log();
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = log.find("accept", at)) != std::string::npos; ++at) ++lines;
    EXPECT_LT(lines, 10u) << "the accept loop logs every failure";
    for (int fd : idle) close(fd);
    setrlimit(RLIMIT_NOFILE, &saved);
    EXPECT_TRUE(Eventually(
        [&] { return HttpRequest("GET", daemon_->http_url() + "/healthz").status == 200; }, kWait));
    EXPECT_LT(daemon_->log().size(), 64u * 1024) << "the log grew under the flood";
}

// 11b. Wrong access keys and bearer tokens could be tried without end; /metrics ran full
// table scans for anyone.
TEST_F(SecurityTest, GuessingKeysIsSlowedAndMetricsAreNotPublic) {
    StartDaemon({"http.sign_in_failures=3"});
    const std::string key = Token("coordinator");
    for (int i = 0; i < 3; ++i) {
        const auto form = ldis::test::OpenForm(url_ + "/login");
        EXPECT_EQ(HttpRequest("POST", url_ + "/login",
                              "csrf=" + form.csrf + "&key=ldis_guess" + std::to_string(i),
                              {form.cookie, kForm})
                      .status,
                  401);
    }
    const auto form = ldis::test::OpenForm(url_ + "/login");
    const auto limited = HttpRequest("POST", url_ + "/login", "csrf=" + form.csrf + "&key=" + key,
                                     {form.cookie, kForm});
    EXPECT_EQ(limited.status, 429);
    ASSERT_EQ(limited.headers.count("retry-after"), 1u);
    EXPECT_GT(std::stoi(limited.headers.at("retry-after")), 0);
    const auto api = HttpRequest("GET", url_ + "/api/v1/alerts", {}, Auth("ldis_guess"));
    EXPECT_EQ(api.status, 429);
    EXPECT_EQ(api.headers.count("retry-after"), 1u);

    EXPECT_EQ(HttpRequest("GET", url_ + "/metrics").status, 404);
    const auto metrics = HttpRequest("GET", daemon_->metrics_url() + "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.body.find("ldis_http_connections"), std::string::npos);
    // The metrics listener serves nothing else.
    EXPECT_EQ(HttpRequest("GET", daemon_->metrics_url() + "/api/v1/alerts").status, 404);
}

// 12. A web session lived 12 h after its key was revoked; sessions were unbounded and lost
// at every restart.
TEST_F(SecurityTest, RevokingAKeyEndsItsSessionsAtOnce) {
    StartDaemon();
    const std::string key = Token("coordinator", "Dr Revoked");
    const std::string cookie = ldis::test::SignIn(url_, key);
    ASSERT_FALSE(cookie.empty());
    EXPECT_EQ(HttpRequest("GET", url_ + "/", {}, {cookie}).status, 200);
    // Sessions survive a restart.
    daemon_->Stop(SIGTERM);
    daemon_->Start();
    url_ = daemon_->http_url();
    EXPECT_EQ(HttpRequest("GET", url_ + "/", {}, {cookie}).status, 200);
    std::string out;
    ASSERT_EQ(Ctl({"tokens", "list", "--db", daemon_->db_path(), "--json"}, &out), 0) << out;
    std::int64_t id = 0;
    const auto listed = json::parse(out);
    for (const auto& t : listed.as_array()) {
        if (Str(t.at("name")) == "Dr Revoked") {
            id = t.at("id").as_int64();
            EXPECT_EQ(t.at("sessions").as_int64(), 1);
        }
    }
    ASSERT_NE(id, 0) << out;
    ASSERT_EQ(Ctl({"tokens", "revoke", "--db", daemon_->db_path(), std::to_string(id)}, &out), 0)
        << out;
    EXPECT_NE(out.find("1 web session(s) ended"), std::string::npos) << out;
    const auto after = HttpRequest("GET", url_ + "/", {}, {cookie});
    EXPECT_EQ(after.status, 303);
    EXPECT_EQ(after.headers.at("location").rfind("/login", 0), 0u);
    EXPECT_EQ(HttpRequest("GET", url_ + "/api/v1/alerts", {}, Auth(key)).status, 401);
    EXPECT_NE(Ctl({"tokens", "revoke", "--db", daemon_->db_path(), std::to_string(id)}, &out), 0);
    // One key signed in again and again keeps a bounded number of sessions.
    const std::string busy = Token("submitter", "Busy ED");
    for (int i = 0; i < 25; ++i) ASSERT_FALSE(ldis::test::SignIn(url_, busy).empty());
    ASSERT_EQ(Ctl({"tokens", "list", "--db", daemon_->db_path(), "--json"}, &out), 0);
    const auto relisted = json::parse(out);
    for (const auto& t : relisted.as_array())
        if (Str(t.at("name")) == "Busy ED") {
            EXPECT_EQ(t.at("sessions").as_int64(), 20);
        }
}

// 13. The small ones: sniffing, referrers, cookie prefixes, banners and paging links.
TEST_F(SecurityTest, EveryResponseCarriesTheSafeHeadersAndTheServerChoosesItsWords) {
    StartDaemon({"http.public_url=https://ldis.example.org"});
    for (const std::string path : {"/healthz", "/login", "/nowhere", "/api/v1/alerts",
                                   "/assets/govuk-frontend.min.css", "/ack/nonsense"}) {
        auto r = HttpRequest("GET", url_ + path);
        EXPECT_EQ(r.headers["x-content-type-options"], "nosniff") << path;
        EXPECT_EQ(r.headers["referrer-policy"], "no-referrer") << path;
    }
    // Under https the cookies are __Host- prefixed: no subdomain can set or shadow them.
    const auto form = ldis::test::OpenForm(url_ + "/login");
    EXPECT_EQ(form.cookie.rfind("Cookie: __Host-ldis_form=", 0), 0u) << form.cookie;
    EXPECT_NE(form.response.headers.at("set-cookie").find("Secure"), std::string::npos);
    const std::string key = Token("coordinator");
    const auto signed_in = HttpRequest("POST", url_ + "/login", "csrf=" + form.csrf + "&key=" + key,
                                       {form.cookie, kForm});
    ASSERT_EQ(signed_in.status, 303);
    EXPECT_EQ(signed_in.headers.at("set-cookie").rfind("__Host-ldis_session=", 0), 0u);
    const std::string cookie =
        "Cookie: " +
        signed_in.headers.at("set-cookie").substr(0, signed_in.headers.at("set-cookie").find(';'));
    // ?done= shows only what the server chose to say.
    const auto phish = HttpRequest(
        "GET", url_ + "/?done=Your%20key%20expired%3A%20call%2001234%20567890", {}, {cookie});
    ASSERT_EQ(phish.status, 200);
    EXPECT_EQ(phish.body.find("call 01234"), std::string::npos);
    EXPECT_NE(
        HttpRequest("GET", url_ + "/?done=cancelled", {}, {cookie}).body.find("was cancelled"),
        std::string::npos);
    // Paging links carry the filters encoded: a value cannot add a parameter of its own.
    const std::string submitter = Token("submitter");
    int made = 0;
    for (const char* district :
         {"Ashford", "Canterbury", "Dartford", "Dover", "Gravesham", "Maidstone", "Sevenoaks",
          "Swale", "Thanet", "Tunbridge Wells", "Folkestone & Hythe", "Tonbridge & Malling"}) {
        for (const char* substance : {"heroin", "cocaine"}) {
            auto r = ldis::test::ValidReport(NewUuid());
            r["area"] = {{"authority", "Kent"}, {"district", district}};
            r["substances"].as_array()[0].as_object()["name"] = substance;
            if (Str(Submit(json::serialize(r), submitter)["alert_id"]) != "") ++made;
        }
    }
    ASSERT_GT(made, 20);
    const auto page =
        HttpRequest("GET", url_ + "/?since=2020-01-01%26status%3Dcancelled", {}, {cookie});
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("since=2020-01-01%26status%3Dcancelled"), std::string::npos)
        << page.body.substr(page.body.find("govuk-pagination"), 800);
}

// 14. Any client that reached the broker could publish a report as any source type.
TEST_F(SecurityTest, TheProductionBrokerBindsEachOrganisationToItsSourceType) {
    TempDir files;
    const auto broker = ldis::test::StartProductionBroker(
        files, {{"ldisd", "ldisd-pass"}, {"medway-ed", "ed-pass"}, {"alerts-reader", "ar-pass"}});
    Mosquitto& secure = *broker;
    const std::string cert = files / "cert.pem";
    const std::string uri = "ssl://127.0.0.1:" + std::to_string(secure.port());

    MqttPeer anonymous(uri, "anon-" + NewUuid().substr(0, 8), "", "", cert);
    EXPECT_FALSE(anonymous.connected());
    MqttPeer wrong(uri, "wrong-" + NewUuid().substr(0, 8), "medway-ed", "guess", cert);
    EXPECT_FALSE(wrong.connected());

    setenv("LDIS_MQTT_PASSWORD", "ldisd-pass", 1);
    Ldisd daemon(secure, dir_, {"mqtt.uri=" + uri, "mqtt.ca_file=" + cert, "mqtt.username=ldisd"});
    daemon.SetProbeLogin("ldisd", "ldisd-pass", cert);
    daemon.Start();
    unsetenv("LDIS_MQTT_PASSWORD");

    MqttPeer reader(uri, "reader-" + NewUuid().substr(0, 8), "alerts-reader", "ar-pass", cert);
    ASSERT_TRUE(reader.connected());
    reader.Subscribe("ldis/v1/alerts/#");
    MqttPeer ed(uri, "ed-" + NewUuid().substr(0, 8), "medway-ed", "ed-pass", cert);
    ASSERT_TRUE(ed.connected());
    ed.Subscribe("ldis/v1/receipts/hospital");
    // As custody: the broker drops it, ldisd never sees it.
    const std::string spoofed = NewUuid();
    {
        // (On its own connection: Paho C drops a connection whose publish was refused.)
        MqttPeer spoof(uri, "spoof-" + NewUuid().substr(0, 8), "medway-ed", "ed-pass", cert);
        ASSERT_TRUE(spoof.connected());
        EXPECT_FALSE(spoof.Publish("ldis/v1/reports/custody", RedReportText(spoofed)));  // 0x87
    }
    // As itself: stored, answered, and its red alert goes out to the partners' systems.
    const std::string own = NewUuid();
    ASSERT_TRUE(ed.Publish("ldis/v1/reports/hospital", RedReportText(own)));
    const auto receipt = ed.WaitForTopic("ldis/v1/receipts/hospital", kWait);
    ASSERT_TRUE(receipt) << daemon.log();
    EXPECT_EQ(Str(ParseObject(receipt->payload).at("status")), "accepted");
    EXPECT_TRUE(reader.WaitFor(
        [](const auto& s) { return s.topic.starts_with("ldis/v1/alerts/red/"); }, kWait));
    ldis::engine::StoreOptions o;
    o.path = daemon.db_path();
    ldis::engine::ReportStore store(o);
    EXPECT_TRUE(store.Find(own));
    EXPECT_FALSE(store.Find(spoofed));
    EXPECT_EQ(store.CountReports(), 1);
    daemon.Stop(SIGTERM);
}

// 14b. Issue 16 §3: any broker client could publish any feed's heartbeat, and so keep a
// custody suite whose system has failed looking alive while its reports go nowhere. The
// production broker lets each organisation keep only its own feed alive.
TEST_F(SecurityTest, AnOrganisationCanKeepOnlyItsOwnFeedAlive) {
    TempDir files;
    const auto broker = ldis::test::StartProductionBroker(
        files, {{"ldisd", "ldisd-pass"}, {"medway-ed", "ed-pass"}});
    Mosquitto& secure = *broker;
    const std::string cert = files / "cert.pem";
    const std::string uri = "ssl://127.0.0.1:" + std::to_string(secure.port());
    setenv("LDIS_MQTT_PASSWORD", "ldisd-pass", 1);
    Ldisd daemon(
        secure, dir_, {"mqtt.uri=" + uri, "mqtt.ca_file=" + cert, "mqtt.username=ldisd"},
        ldis::test::ConfigWith(dir_,
                               "[[feeds]]\nsource_type = \"custody\"\norganisation = \"Kent Police "
                               "custody\"\nmax_silence_s = 3\n\n[[feeds]]\nsource_type = "
                               "\"hospital\"\norganisation = \"Medway NHS Foundation Trust\"\n"
                               "max_silence_s = 3\n"));
    daemon.SetProbeLogin("ldisd", "ldisd-pass", cert);
    daemon.Start();
    unsetenv("LDIS_MQTT_PASSWORD");
    const auto silent = [&](const std::string& labels) {
        const auto m = HttpRequest("GET", daemon.metrics_url() + "/metrics");
        return m.body.find("ldis_feed_silent{" + labels + "} 1") != std::string::npos;
    };
    const std::string custody = "source_type=\"custody\",organisation=\"Kent Police custody\"";
    const std::string hospital =
        "source_type=\"hospital\",organisation=\"Medway NHS Foundation Trust\"";
    MqttPeer ed(uri, "ed-" + NewUuid().substr(0, 8), "medway-ed", "ed-pass", cert);
    ASSERT_TRUE(ed.connected());
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
        // Its own heartbeat goes through; custody's, from it, is refused by the broker (on a
        // connection of its own: Paho C drops a connection whose publish was refused).
        EXPECT_TRUE(ed.Publish("ldis/v1/heartbeat/hospital/Medway NHS Foundation Trust", "{}"));
        MqttPeer spoof(uri, "spoof-" + NewUuid().substr(0, 8), "medway-ed", "ed-pass", cert);
        EXPECT_FALSE(spoof.Publish("ldis/v1/heartbeat/custody/Kent Police custody", "{}"));
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    EXPECT_TRUE(Eventually([&] { return silent(custody); }, kWait)) << daemon.log();
    EXPECT_FALSE(silent(hospital));
    daemon.Stop(SIGTERM);
}

// 15. Any submitter key or broker client could make a county-wide red alert go out before
// a person read it, while a busy nurse without a key could not report at all.
TEST_F(SecurityTest, TheOpenFormReportsButOnlyTrustedSourcesIssueAtOnce) {
    StartDaemon({"http.open_reports_per_hour=2"});
    const auto form = ldis::test::OpenForm(url_ + "/report");
    ASSERT_EQ(form.response.status, 200) << form.response.body;
    ASSERT_FALSE(form.csrf.empty());
    const auto fields = [](const std::string& id, const std::string& csrf) {
        return "id=" + id + "&csrf=" + csrf +
               "&source_type=hospital&organisation=Medway+ED&authority=Medway&district=Medway"
               "&substance=heroin&cases=2&deaths=1&hospitalisations=2&evidence=professional";
    };
    // Without the form's token (a page on another site posting it): refused.
    EXPECT_EQ(HttpRequest("POST", url_ + "/report", fields(NewUuid(), "forged"), {kForm}).status,
              403);
    const auto sent =
        HttpRequest("POST", url_ + "/report", fields(NewUuid(), form.csrf), {form.cookie, kForm});
    ASSERT_EQ(sent.status, 200) << sent.body;
    EXPECT_NE(sent.body.find("wait for a person"), std::string::npos) << sent.body;
    const std::string coordinator = Token("coordinator");
    auto alerts = ParseObject(
        HttpRequest("GET", url_ + "/api/v1/alerts?level=red", {}, Auth(coordinator)).body);
    ASSERT_EQ(alerts.at("total").as_int64(), 1);
    const auto& open_alert = alerts.at("alerts").as_array()[0].as_object();
    EXPECT_EQ(Str(open_alert.at("status")), "draft");
    // The coordinators are asked at once; no partner is sent anything.
    auto store = Store();
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& d : store.Deliveries(Str(open_alert.at("reference"))))
                if (d.kind == "approval") return true;
            return false;
        },
        kWait));
    for (const auto& d : store.Deliveries(Str(open_alert.at("reference"))))
        EXPECT_NE(d.kind, "alert") << d.partner;
    // A source type the policy marks untrusted waits too, over MQTT.
    MqttPeer peer(broker_.uri(), "public-" + NewUuid().substr(0, 8));
    peer.Subscribe("ldis/v1/receipts/#");
    auto public_report = ldis::test::ValidReport(NewUuid());
    public_report["source"] = {{"type", "public"}, {"organisation", "A member of the public"}};
    public_report["area"] = {{"authority", "Kent"}, {"district", "Swale"}};
    public_report["harms"].as_object()["deaths"] = 1;
    ASSERT_TRUE(peer.Publish("ldis/v1/reports/public", json::serialize(public_report)));
    const auto public_receipt = peer.WaitForTopic("ldis/v1/receipts/public", kWait);
    ASSERT_TRUE(public_receipt);
    const auto public_ref = Str(ParseObject(public_receipt->payload).at("alert_id"));
    EXPECT_EQ(Str(ParseObject(HttpRequest("GET", url_ + "/api/v1/alerts/" + public_ref, {},
                                          Auth(coordinator))
                                  .body)
                      .at("status")),
              "draft");
    // A trusted, authenticated source still issues a red alert at once.
    auto trusted = ldis::test::ValidReport(NewUuid());
    trusted["area"] = {{"authority", "Kent"}, {"district", "Dover"}};
    trusted["harms"].as_object()["deaths"] = 1;
    const auto issued = Submit(json::serialize(trusted), Token("submitter"));
    EXPECT_EQ(
        Str(ParseObject(HttpRequest("GET", url_ + "/api/v1/alerts/" + Str(issued.at("alert_id")),
                                    {}, Auth(coordinator))
                            .body)
                .at("status")),
        "issued");
    // The open form is limited per address.
    EXPECT_EQ(
        HttpRequest("POST", url_ + "/report", fields(NewUuid(), form.csrf), {form.cookie, kForm})
            .status,
        200);
    const auto limited =
        HttpRequest("POST", url_ + "/report", fields(NewUuid(), form.csrf), {form.cookie, kForm});
    EXPECT_EQ(limited.status, 429);
    EXPECT_EQ(limited.headers.count("retry-after"), 1u);
}

// 17. Behind a proxy: X-Forwarded-For chose the address the limits count, so anyone could
// write a new one for each guess. Believed only from the proxies named, with
// http.trust_forwarded on; the same goes for X-Forwarded-Proto and HSTS.
TEST_F(SecurityTest, ForwardedHeadersAreBelievedOnlyFromTrustedProxies) {
    // Three wrong tokens, each "from" another address, then a fourth: 429 if the limit
    // counted the connection's address, 401 if the header fooled it.
    const auto fourth_after_three = [&](const std::string& last_from) {
        for (int i = 0; i < 3; ++i) {
            auto headers = Auth("ldis_guess" + std::to_string(i));
            headers.push_back("X-Forwarded-For: 198.51.100.1, 203.0.113." + std::to_string(i + 1));
            EXPECT_EQ(HttpRequest("GET", url_ + "/api/v1/alerts", {}, headers).status, 401);
        }
        auto headers = Auth("ldis_guess9");
        headers.push_back("X-Forwarded-For: " + last_from);
        return HttpRequest("GET", url_ + "/api/v1/alerts", {}, headers).status;
    };
    const auto hsts_when_forwarded_https = [&] {
        const auto res = HttpRequest("GET", url_ + "/healthz", {}, {"X-Forwarded-Proto: https"});
        EXPECT_EQ(res.status, 200);
        return res.headers.count("strict-transport-security") == 1;
    };
    // Off (the default): the headers are anyone's words.
    StartDaemon({"http.sign_in_failures=3"});
    EXPECT_EQ(fourth_after_three("203.0.113.99"), 429);
    EXPECT_FALSE(hsts_when_forwarded_https());
    daemon_->Stop(SIGTERM);

    // On, from a proxy not on the list (ldisd's client here is 127.0.0.1): still ignored.
    StartDaemon({"http.sign_in_failures=3", "http.trust_forwarded=true",
                 "http.trusted_proxies=192.0.2.10"});
    EXPECT_EQ(fourth_after_three("203.0.113.99"), 429);
    EXPECT_FALSE(hsts_when_forwarded_https());
    daemon_->Stop(SIGTERM);

    // On, from the proxy on loopback: each forwarded client has its own count, and the
    // last address is the one the proxy saw (the first was the client's to write).
    StartDaemon({"http.sign_in_failures=3", "http.trust_forwarded=true"});
    EXPECT_EQ(fourth_after_three("203.0.113.99"), 401);
    const auto from = [&](const std::string& forwarded) {
        auto headers = Auth("ldis_guess");
        headers.push_back("X-Forwarded-For: " + forwarded);
        return HttpRequest("GET", url_ + "/api/v1/alerts", {}, headers).status;
    };
    for (int i = 0; i < 3; ++i) EXPECT_EQ(from("10.1.1.1, 203.0.113.7"), 401);
    EXPECT_EQ(from("10.9.9.9, 203.0.113.7"), 429);  // the proxy saw the same client
    EXPECT_EQ(from("10.1.1.1, 203.0.113.8"), 401);  // another client has its own count
    EXPECT_TRUE(hsts_when_forwarded_https());
    // Something that is not an address counts as the proxy's own.
    EXPECT_EQ(from("not-an-address"), 401);
}

// 20. Photos of a batch (issue 17 §3) are the first binary upload LDIS takes: a file that is
// not what it says, a decompression bomb, one too large, and reports that name photos they
// have no right to. Each is refused with its own words and nothing is kept; the larger body
// a photo may have is allowed on its path alone.
TEST_F(SecurityTest, HostilePhotosAndPhotoNamesAreRefusedAndNothingIsKept) {
    StartDaemon();
    const std::string submitter = Token("submitter");
    const auto upload = [&](const std::string& bytes, const std::string& type) {
        return HttpRequest("POST", url_ + "/api/v1/photos", bytes,
                           {"Authorization: Bearer " + submitter, "Content-Type: " + type});
    };
    const auto error = [](const ldis::test::HttpResponse& r) {
        return r.status == 0 ? std::string() : Str(ParseObject(r.body).at("detail"));
    };
    // A GIF called a JPEG, and an HTML page called a PNG: the bytes say what they are.
    const std::string gif = std::string("GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14);
    auto r = upload(gif, "image/jpeg");
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(error(r).find("JPEG or PNG"), std::string::npos) << r.body;
    r = upload("<html><script>alert(1)</script></html>", "image/png");
    EXPECT_EQ(r.status, 422);
    // A 60-byte PNG that says it is 60000 by 60000 pixels: refused from its header.
    r = upload(ldis::test::PngClaiming(60000, 60000), "image/png");
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(error(r).find("60000 by 60000"), std::string::npos) << r.body;
    // A JPEG cut short.
    const std::string jpeg = ldis::test::MakeJpeg(300, 200, ldis::test::ExifWithGps());
    r = upload(jpeg.substr(0, jpeg.size() / 2), "image/jpeg");
    EXPECT_EQ(r.status, 422);
    // Over 5 MB: 413 saying so; and no other path takes what a photo may be.
    r = upload(std::string(5 * 1024 * 1024 + 1, 'x'), "image/jpeg");
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(error(r).find("5 MB"), std::string::npos) << r.body;
    r = HttpRequest("POST", url_ + "/api/v1/reports", std::string(300 * 1024, ' '),
                    Auth(submitter));
    EXPECT_EQ(r.status, 413);
    // The report form takes three photos' worth only as multipart/form-data, and no more.
    const std::string multipart = "Content-Type: multipart/form-data; boundary=b0undary";
    r = HttpRequest("POST", url_ + "/report", "a=" + std::string(300 * 1024, 'x'), {kForm});
    EXPECT_EQ(r.status, 413);
    r = HttpRequest("POST", url_ + "/report", std::string(15 * 1024 * 1024 + 256 * 1024 + 1, 'x'),
                    {multipart});
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(error(r).find("the report with its photos is over 15 MB"), std::string::npos)
        << r.body;
    // A form cut short, or with no boundary, is a clear 400: nothing is kept.
    r = HttpRequest("POST", url_ + "/report",
                    "--b0undary\r\nContent-Disposition: form-data; name=\"photos\"; "
                    "filename=\"a.jpg\"\r\n\r\n" +
                        jpeg,
                    {multipart});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("its last boundary is missing"), std::string::npos) << r.body;
    r = HttpRequest("POST", url_ + "/report", "x", {"Content-Type: multipart/form-data"});
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("has no boundary"), std::string::npos) << r.body;
    // No token, no upload.
    EXPECT_EQ(
        HttpRequest("POST", url_ + "/api/v1/photos", jpeg, {"Content-Type: image/jpeg"}).status,
        401);

    // A report naming a photo never uploaded (or purged): 422, and the report is not kept.
    auto report = ldis::test::ValidReport(ldis::test::NewUuid());
    report["photos"] = json::array{json::value("ph-0123456789abcdef0123456789abcdef")};
    r = HttpRequest("POST", url_ + "/api/v1/reports", json::serialize(report), Auth(submitter));
    EXPECT_EQ(r.status, 422);
    EXPECT_EQ(Str(ParseObject(r.body).at("error")), "unknown_photo");
    // Four photos, or a name that is not a photo's: the schema refuses them.
    report["photos"] = json::array{"ph-1", "ph-2", "ph-3", "ph-4"};
    r = HttpRequest("POST", url_ + "/api/v1/reports", json::serialize(report), Auth(submitter));
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_NE(r.body.find("photos"), std::string::npos);
    // A photo another report has named is not this one's.
    r = upload(jpeg, "image/jpeg");
    ASSERT_EQ(r.status, 201) << r.body;
    const std::string id = Str(ParseObject(r.body).at("id"));
    auto first = ldis::test::ValidReport(ldis::test::NewUuid());
    first["photos"] = json::array{json::value(id)};
    Submit(json::serialize(first), submitter);
    auto second = ldis::test::ValidReport(ldis::test::NewUuid());
    second["photos"] = json::array{json::value(id)};
    r = HttpRequest("POST", url_ + "/api/v1/reports", json::serialize(second), Auth(submitter));
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(error(r).find("belongs to another report"), std::string::npos) << r.body;
    // The same report sent again (a retry) may name its own photo.
    r = HttpRequest("POST", url_ + "/api/v1/reports", json::serialize(first), Auth(submitter));
    EXPECT_EQ(r.status, 200) << r.body;
    // Nor may the open form take it, by naming it as a photo attached before.
    const auto form = ldis::test::OpenForm(url_ + "/report");
    const std::string fields[][2] = {{"csrf", form.csrf},          {"id", ldis::test::NewUuid()},
                                     {"source_type", "hospital"},  {"organisation", "A hospital"},
                                     {"authority", "Medway"},      {"district", "Medway"},
                                     {"substance", "heroin"},      {"cases", "1"},
                                     {"evidence", "professional"}, {"photo_id", id}};
    std::string body;
    for (const auto& [name, value] : fields)
        body += "--b0undary\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
                value + "\r\n";
    r = HttpRequest("POST", url_ + "/report", body + "--b0undary--", {form.cookie, multipart});
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(r.body.find("A photo attached before is no longer kept"), std::string::npos);
    EXPECT_EQ(r.body.find(id), std::string::npos) << "the page does not offer it to keep";

    // Kept: the one good photo, and the reports that were accepted; nothing else.
    auto store = Store();
    EXPECT_EQ(store.CountReports(), 1);
    const auto kept = store.FindPhoto(id, true);
    ASSERT_TRUE(kept.has_value());
    EXPECT_EQ(kept->first.report_id, Str(first.at("id")));
    EXPECT_EQ(ldis::test::Leftovers(kept->second), "");
}

// A body over the limit is answered with a 413 as soon as its header is read, while the client
// may still be sending it (curl sends up to 1 MB without waiting). ldisd reads and drops the
// rest before it closes: a socket closed with bytes still arriving answers them with a reset,
// the client's next write fails, and the 413 before it is never read (CI saw a status of 0).
TEST_F(SecurityTest, AClientStillSendingAnOversizedBodyReadsTheRefusal) {
    StartDaemon();
    const int fd = Connect(daemon_->http_port());
    ASSERT_GE(fd, 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::size_t size = 300 * 1024;
    const std::string head =
        "POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(size) + "\r\n\r\n";
    ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
    // The answer comes before the body; the client, slower, sends its body after it.
    pollfd readable{fd, POLLIN, 0};
    ASSERT_EQ(poll(&readable, 1, 10000), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::string chunk(4096, ' ');
    std::size_t sent = 0;
    int error = 0;
    while (sent < size) {
        const auto n = send(fd, chunk.data(), std::min(chunk.size(), size - sent), MSG_NOSIGNAL);
        if (n < 0) {
            error = errno;
            break;
        }
        sent += static_cast<std::size_t>(n);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    EXPECT_EQ(sent, size) << "the body could not all be sent: " << std::strerror(error);
    shutdown(fd, SHUT_WR);
    std::string response;
    char buffer[4096];
    for (;;) {
        const auto n = read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        response.append(buffer, static_cast<std::size_t>(n));
    }
    close(fd);
    EXPECT_EQ(StatusOf(response), 413) << response;
    EXPECT_NE(response.find("the body is over"), std::string::npos) << response;
    EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
}

}  // namespace
