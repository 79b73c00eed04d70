// TLS end to end (issue 13), with certificates the test makes with openssl: HTTPS served by
// ldisd itself (TLS 1.2 and later, HSTS, keep-alive, a renewed certificate read on SIGHUP
// without dropping the connections in hand), and MQTT to a broker that asks for a client
// certificate.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/processes.hpp"
#include "support/servers.hpp"

namespace {

namespace fs = std::filesystem;
using ldis::test::Eventually;
using ldis::test::Ldisd;
using ldis::test::Mosquitto;
using ldis::test::TempDir;

constexpr auto kTlsWait = std::chrono::seconds(15);

// An HTTPS client as a browser is one: it trusts `ca` alone, checks the host name, and keeps
// its connection from one request to the next.
class TlsClient {
public:
    explicit TlsClient(std::string ca) : ca_(std::move(ca)), curl_(curl_easy_init()) {}
    ~TlsClient() { curl_easy_cleanup(curl_); }
    TlsClient(const TlsClient&) = delete;
    TlsClient& operator=(const TlsClient&) = delete;

    struct Got {
        long status = 0;  // 0: no response (curl's reason in `error`)
        std::string error;
        std::string hsts;          // Strict-Transport-Security, "" if absent
        long new_connections = 0;  // 0: the request went on a connection kept alive
    };

    // `tls_1_1_only` offers TLS 1.1 and nothing later (and lets OpenSSL offer it at all).
    Got Get(const std::string& url, bool tls_1_1_only = false) {
        Got got;
        std::string body, headers;
        curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl_, CURLOPT_CAINFO, ca_.c_str());
        curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Append);
        curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &Append);
        curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &headers);
        curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 20L);
        curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
        if (tls_1_1_only) {
            // CURL_SSLVERSION_TLSv1_1 | CURL_SSLVERSION_MAX_TLSv1_1, the maximum being the
            // version shifted left by 16 (curl.h), without mixing curl's enums.
            const long tls_1_1 = CURL_SSLVERSION_TLSv1_1;
            curl_easy_setopt(curl_, CURLOPT_SSLVERSION, tls_1_1 | (tls_1_1 << 16));
            curl_easy_setopt(curl_, CURLOPT_SSL_CIPHER_LIST, "DEFAULT:@SECLEVEL=0");
        }
        const CURLcode rc = curl_easy_perform(curl_);
        if (rc != CURLE_OK) {
            got.error = curl_easy_strerror(rc);
            return got;
        }
        curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &got.status);
        curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &got.new_connections);
        const std::string mark = "strict-transport-security: ";
        std::string lower = headers;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (const auto at = lower.find(mark); at != std::string::npos)
            got.hsts = headers.substr(at + mark.size(), headers.find('\r', at) - at - mark.size());
        return got;
    }

private:
    static std::size_t Append(char* data, std::size_t size, std::size_t n, void* out) {
        static_cast<std::string*>(out)->append(data, size * n);
        return size * n;
    }

    std::string ca_;
    CURL* curl_;
};

class TlsTest : public ::testing::Test {
protected:
    void TearDown() override {
        if (HasFailure() && daemon_) std::cerr << "ldisd log:\n" << daemon_->log();
        if (daemon_ && daemon_->running()) daemon_->Stop(SIGTERM);
    }

    // ldisd serving HTTPS with the certificate and key at these paths.
    void StartHttps(const std::string& cert, const std::string& key) {
        daemon_ = std::make_unique<Ldisd>(
            broker_, dir_,
            std::vector<std::string>{"http.tls_cert_file=" + cert, "http.tls_key_file=" + key,
                                     "http.public_url=https://127.0.0.1"});
        daemon_->Start();
        url_ = "https://127.0.0.1:" + std::to_string(daemon_->http_port());
    }

    TempDir dir_;
    TempDir certs_;
    Mosquitto broker_;
    std::unique_ptr<Ldisd> daemon_;
    std::string url_;
};

TEST_F(TlsTest, ServesHttpsWithHstsKeepAliveAndTls12OrLaterOnly) {
    const auto ca = ldis::test::MakeCa(certs_, "council-");
    const auto [cert, key] = ldis::test::MakeSignedCertificate(certs_, ca, "IP:127.0.0.1", "");
    StartHttps(cert, key);
    EXPECT_NE(daemon_->log().find("(HTTPS, TLS 1.2 and later)"), std::string::npos);

    TlsClient browser(ca.cert);
    const auto first = browser.Get(url_ + "/healthz");
    ASSERT_EQ(first.status, 200) << first.error;
    EXPECT_EQ(first.hsts, "max-age=31536000");
    EXPECT_EQ(first.new_connections, 1);
    const auto second = browser.Get(url_ + "/api/v1/schema/report");
    EXPECT_EQ(second.status, 200) << second.error;
    EXPECT_EQ(second.new_connections, 0) << "HTTP/1.1 keep-alive over TLS";

    // Plain HTTP on the HTTPS port gets no answer.
    EXPECT_NE(ldis::test::HttpRequest(
                  "GET", "http://127.0.0.1:" + std::to_string(daemon_->http_port()) + "/healthz")
                  .status,
              200);
    // A client that offers TLS 1.1 at most is refused; the same client offering TLS 1.2
    // is served, so it is the version that was refused.
    TlsClient old(ca.cert);
    const auto refused = old.Get(url_ + "/healthz", true);
    EXPECT_EQ(refused.status, 0);
    EXPECT_FALSE(refused.error.empty());
    TlsClient current(ca.cert);
    EXPECT_EQ(current.Get(url_ + "/healthz").status, 200);
    // A client that does not trust the certificate's signer stops at the handshake.
    const auto other = ldis::test::MakeCa(certs_, "other-");
    TlsClient stranger(other.cert);
    EXPECT_EQ(stranger.Get(url_ + "/healthz").status, 0);
    // /metrics stays on its own plain listener (loopback by default).
    EXPECT_EQ(ldis::test::HttpRequest("GET", daemon_->metrics_url() + "/metrics").status, 200);
}

TEST_F(TlsTest, ARenewedCertificateIsReadOnSighupWithoutDroppingConnections) {
    // The renewed certificate comes from another CA, so a client can tell which it got.
    const auto old_ca = ldis::test::MakeCa(certs_, "old-"),
               new_ca = ldis::test::MakeCa(certs_, "new-");
    const auto [old_cert, old_key] =
        ldis::test::MakeSignedCertificate(certs_, old_ca, "IP:127.0.0.1", "old-");
    const auto [new_cert, new_key] =
        ldis::test::MakeSignedCertificate(certs_, new_ca, "IP:127.0.0.1", "new-");
    // The files ldisd is configured with, as certbot or an operator would renew them.
    const std::string cert = dir_ / "https.pem", key = dir_ / "https.key";
    fs::copy_file(old_cert, cert);
    fs::copy_file(old_key, key);
    StartHttps(cert, key);

    TlsClient kept(old_ca.cert);  // one connection, opened before the renewal
    ASSERT_EQ(kept.Get(url_ + "/healthz").status, 200);

    fs::copy_file(new_cert, cert, fs::copy_options::overwrite_existing);
    fs::copy_file(new_key, key, fs::copy_options::overwrite_existing);
    ASSERT_EQ(kill(daemon_->pid(), SIGHUP), 0);
    ASSERT_TRUE(Eventually(
        [&] { return daemon_->log().find("https: certificate reloaded") != std::string::npos; },
        kTlsWait))
        << daemon_->log();

    // The connection in hand goes on with the certificate it began with.
    const auto again = kept.Get(url_ + "/healthz");
    EXPECT_EQ(again.status, 200) << again.error;
    EXPECT_EQ(again.new_connections, 0) << "the reload dropped a connection";
    // New connections get the renewed certificate.
    TlsClient trusts_old(old_ca.cert), trusts_new(new_ca.cert);
    EXPECT_EQ(trusts_old.Get(url_ + "/healthz").status, 0);
    EXPECT_EQ(trusts_new.Get(url_ + "/healthz").status, 200);

    // A renewal gone wrong (a key that is not the certificate's) changes nothing, and says so.
    fs::copy_file(old_key, key, fs::copy_options::overwrite_existing);
    ASSERT_EQ(kill(daemon_->pid(), SIGHUP), 0);
    ASSERT_TRUE(Eventually(
        [&] {
            return daemon_->log().find("https: kept the certificate in use: http.tls_key_file") !=
                   std::string::npos;
        },
        kTlsWait))
        << daemon_->log();
    TlsClient after(new_ca.cert);
    EXPECT_EQ(after.Get(url_ + "/healthz").status, 200);
    EXPECT_TRUE(daemon_->running());
}

TEST_F(TlsTest, AKeyThatIsNotTheCertificatesStopsTheStartWithTheReason) {
    const auto [cert, key] = ldis::test::MakeLoopbackCertificate(certs_);
    const auto [other, other_key] = ldis::test::MakeCertificate(certs_, "IP:127.0.0.1", "other-");
    daemon_ = std::make_unique<Ldisd>(
        broker_, dir_,
        std::vector<std::string>{"http.tls_cert_file=" + cert, "http.tls_key_file=" + other_key,
                                 "http.public_url=https://127.0.0.1"});
    // The broker connection may come up before HTTPS is tried (it does under the
    // sanitizers): what counts is that ldisd stops, with exit status 2 and the reason.
    daemon_->Launch();
    EXPECT_TRUE(Eventually([&] { return !daemon_->running(); }, kTlsWait));
    EXPECT_EQ(daemon_->Stop(SIGTERM), 2);
    EXPECT_NE(daemon_->log().find("is not the key of the certificate in " + cert),
              std::string::npos)
        << daemon_->log();
}

// A broker that asks every client for a certificate its CA signed: ldisd presents
// mqtt.cert_file; without one it is refused, and its log says what to check.
TEST(MqttTlsTest, ClientCertificatesAreOfferedToABrokerThatAsksForThem) {
    TempDir certs, dir;
    const auto ca = ldis::test::MakeCa(certs, "council-");
    const auto [server_cert, server_key] =
        ldis::test::MakeSignedCertificate(certs, ca, "IP:127.0.0.1", "broker-");
    const auto [client_cert, client_key] =
        ldis::test::MakeSignedCertificate(certs, ca, "DNS:ldisd.example", "client-");
    // A client certificate from a CA the broker does not trust is refused too.
    const auto stranger_ca = ldis::test::MakeCa(certs, "stranger-");
    const auto [stranger_cert, stranger_key] =
        ldis::test::MakeSignedCertificate(certs, stranger_ca, "DNS:ldisd.example", "stranger-");
    const int tls_port = ldis::test::FreePort();
    // The plain listener is for the test's own start probe; ldisd goes to the TLS one.
    Mosquitto broker(
        "per_listener_settings false\nallow_anonymous true\n"
        "listener {port} 127.0.0.1\n"
        "listener " +
        std::to_string(tls_port) +
        " 127.0.0.1\n"
        "certfile " +
        server_cert + "\nkeyfile " + server_key + "\ncafile " + ca.cert +
        "\nrequire_certificate true\n");
    const std::string uri = "mqtt.uri=ssl://127.0.0.1:" + std::to_string(tls_port);

    // Refused, ldisd retries every second or two and says each time what to check.
    Ldisd refused(broker, dir, {uri, "mqtt.ca_file=" + ca.cert});
    refused.Launch();
    EXPECT_TRUE(refused.RefusedTwice()) << refused.log();
    EXPECT_NE(refused.log().find("mqtt.cert_file if the broker asks for a client certificate"),
              std::string::npos)
        << refused.log();
    refused.Stop(SIGKILL);

    TempDir dir2;
    Ldisd untrusted(broker, dir2,
                    {uri, "mqtt.ca_file=" + ca.cert, "mqtt.cert_file=" + stranger_cert,
                     "mqtt.key_file=" + stranger_key});
    untrusted.Launch();
    EXPECT_TRUE(untrusted.RefusedTwice()) << untrusted.log();
    untrusted.Stop(SIGKILL);

    TempDir dir3;
    Ldisd accepted(broker, dir3,
                   {uri, "mqtt.ca_file=" + ca.cert, "mqtt.cert_file=" + client_cert,
                    "mqtt.key_file=" + client_key});
    EXPECT_NO_THROW(accepted.Start()) << accepted.log();  // connected, subscribed, "online"
    EXPECT_EQ(accepted.Stop(SIGTERM), 0);
}

}  // namespace
