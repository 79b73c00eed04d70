// The attack suite, items 1-13: the web (paths, headers, sign-in, drafts, links, limits,
// sessions), the channels' text and transports, the files at rest. The fixture and the
// other items: security_fixture.hpp, security_intake_test.cpp.
#include "security/security_fixture.hpp"

namespace ldis::test::security {

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
    const std::string ref = StringOf(receipt.at("alert_id"));
    ASSERT_FALSE(ref.empty()) << json::serialize(receipt);
    ASSERT_EQ(
        StringOf(ParseObject(
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
    EXPECT_EQ(StringOf(ParseObject(rejected->payload).at("source")), "hospital");
    // The receipt went to the source's receipts topic, not the alerts topic named.
    EXPECT_TRUE(watcher.WaitForTopic("ldis/v1/receipts/hospital", kWait));
    // 7b. What a submitter typed where the schema wants a UUID or a field's name went out
    // too: "id" (a patient's number in place of the report's) and an unknown field's key.
    auto named = ldis::test::ValidReport("NHS 943 476 5919");
    named["source"].as_object()["Callum Whitehead"] = "friend";
    ASSERT_TRUE(hospital.Publish("ldis/v1/reports/hospital", json::serialize(named)));
    const auto second = watcher.WaitForTopic("ldis/v1/rejected", kWait);
    ASSERT_TRUE(second);
    for (const char* sent : {"943 476 5919", "Callum"})
        EXPECT_EQ(second->payload.find(sent), std::string::npos) << second->payload;
    EXPECT_TRUE(ParseObject(second->payload).at("report_id").is_null()) << second->payload;
    const auto own = watcher.WaitForTopic("ldis/v1/receipts/hospital", kWait);
    ASSERT_TRUE(own);  // the sender is told where, in its own words
    EXPECT_NE(own->payload.find("/source/Callum Whitehead"), std::string::npos) << own->payload;
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
    for (const char* sent : {"Jane Doe", "943 476 5919", "Callum"})
        EXPECT_EQ(daemon_->log().find(sent), std::string::npos) << sent;
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
    texts(json::parse(StringOf(hooks.Requests("/slack").front().at("body"))), texts, slack);
    texts(json::parse(StringOf(hooks.Requests("/teams").front().at("body"))), texts, teams);
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
    daemon.Launch();
    EXPECT_TRUE(daemon.RefusedTwice()) << daemon.log();
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
        if (StringOf(t.at("name")) == "Dr Revoked") {
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
        if (StringOf(t.at("name")) == "Busy ED") {
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
            if (StringOf(Submit(json::serialize(r), submitter)["alert_id"]) != "") ++made;
        }
    }
    ASSERT_GT(made, 20);
    const auto page =
        HttpRequest("GET", url_ + "/?since=2020-01-01%26status%3Dcancelled", {}, {cookie});
    ASSERT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("since=2020-01-01%26status%3Dcancelled"), std::string::npos)
        << page.body.substr(page.body.find("govuk-pagination"), 800);
}

}  // namespace ldis::test::security
