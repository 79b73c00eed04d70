// The attack suite, items 14-20: who may put what into LDIS (the broker's access list, feeds'
// heartbeats, the open form and trusted sources, forwarded headers, photos, oversized
// bodies). The fixture: security_fixture.hpp.
#include "security/security_fixture.hpp"

namespace ldis::test::security {

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
    EXPECT_EQ(StringOf(ParseObject(receipt->payload).at("status")), "accepted");
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
    EXPECT_EQ(StringOf(open_alert.at("status")), "draft");
    // The coordinators are asked at once; no partner is sent anything.
    auto store = Store();
    ASSERT_TRUE(Eventually(
        [&] {
            for (const auto& d : store.Deliveries(StringOf(open_alert.at("reference"))))
                if (d.kind == "approval") return true;
            return false;
        },
        kWait));
    for (const auto& d : store.Deliveries(StringOf(open_alert.at("reference"))))
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
    const auto public_ref = StringOf(ParseObject(public_receipt->payload).at("alert_id"));
    EXPECT_EQ(StringOf(ParseObject(HttpRequest("GET", url_ + "/api/v1/alerts/" + public_ref, {},
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
        StringOf(ParseObject(HttpRequest("GET",
                                         url_ + "/api/v1/alerts/" + StringOf(issued.at("alert_id")),
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
        return r.status == 0 ? std::string() : StringOf(ParseObject(r.body).at("detail"));
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
    EXPECT_EQ(StringOf(ParseObject(r.body).at("error")), "unknown_photo");
    // Four photos, or a name that is not a photo's: the schema refuses them.
    report["photos"] = json::array{"ph-1", "ph-2", "ph-3", "ph-4"};
    r = HttpRequest("POST", url_ + "/api/v1/reports", json::serialize(report), Auth(submitter));
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_NE(r.body.find("photos"), std::string::npos);
    // A photo another report has named is not this one's.
    r = upload(jpeg, "image/jpeg");
    ASSERT_EQ(r.status, 201) << r.body;
    const std::string id = StringOf(ParseObject(r.body).at("id"));
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
    EXPECT_EQ(kept->first.report_id, StringOf(first.at("id")));
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

}  // namespace ldis::test::security
