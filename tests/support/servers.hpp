#pragma once

#include <boost/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "support/processes.hpp"

namespace ldis::test {

// Every line of a JSON-lines file, parsed (a torn last line is skipped).
std::vector<boost::json::object> ReadJsonLines(const std::string& path);

// tests/servers/smtp_sink.py: a real SMTP server (aiosmtpd) on a free loopback port that
// parses each message with Python's MIME parser and records it. Stopped at destruction.
class SmtpSink {
public:
    // `auth` "user:password" requires AUTH; `tls_cert`/`tls_key` (PEM) require STARTTLS.
    explicit SmtpSink(int delay_ms = 0, std::string auth = {}, std::string tls_cert = {},
                      std::string tls_key = {});
    ~SmtpSink();
    void Start();
    void Stop();
    // With a certificate: TLS from the first byte (smtps://) instead of STARTTLS. Before Start.
    void ImplicitTls() { implicit_tls_ = true; }
    int port() const { return port_; }
    std::string url() const {
        return (implicit_tls_ ? "smtps://127.0.0.1:" : "smtp://127.0.0.1:") + std::to_string(port_);
    }
    // Every message accepted so far: {"conn", "mail_from", "rcpt_tos", "headers", "parts"}.
    std::vector<boost::json::object> Messages() const;
    // Every recipient the server accepted so far, in order, whether or not its message came.
    std::vector<std::string> Recipients() const;

private:
    TempDir dir_;
    int port_;
    int delay_ms_;
    std::string auth_;
    std::string tls_cert_;
    std::string tls_key_;
    bool implicit_tls_ = false;
    std::unique_ptr<Process> process_;
};

// A self-signed certificate and key for 127.0.0.1, made with openssl in `dir`: returns
// {cert, key} paths.
std::pair<std::string, std::string> MakeLoopbackCertificate(const TempDir& dir);
// The same for another name (`san` as openssl writes it: "DNS:wrong.example"), in files
// named after `name`.
std::pair<std::string, std::string> MakeCertificate(const TempDir& dir, const std::string& san,
                                                    const std::string& name);

// A certificate authority as a council runs one: its certificate (what clients and brokers
// trust, `ca_file`) and its key, in files named after `name` in `dir`.
struct TestCa {
    std::string cert;
    std::string key;
};
TestCa MakeCa(const TempDir& dir, const std::string& name);
// A certificate the CA signs for `san` ("IP:127.0.0.1", "DNS:ldisd.example"), good for a
// server and a client, not itself a CA: returns {cert, key}.
std::pair<std::string, std::string> MakeSignedCertificate(const TempDir& dir, const TestCa& ca,
                                                          const std::string& san,
                                                          const std::string& name);

// The production broker as shipped (packaging/mosquitto/ldis.conf and acl) on a free loopback
// port: TLS with a new certificate for 127.0.0.1 in `files` (cert.pem, key.pem; clients trust
// cert.pem), a password file holding `users` (name, password). `persistence` keeps sessions
// and queued messages across Restart().
std::unique_ptr<Mosquitto> StartProductionBroker(
    const TempDir& files, const std::vector<std::pair<std::string, std::string>>& users,
    bool persistence = false);

// tests/servers/http_receiver.py: webhooks and a Notify-compatible API with scripted
// answers per path ("/teams=500,200"). Stopped at destruction.
class HttpReceiver {
public:
    HttpReceiver(std::vector<std::string> plans, std::string secret = {},
                 std::string notify_key = {});
    ~HttpReceiver();
    int port() const { return port_; }
    std::string url(const std::string& path = {}) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    // Every request so far, or only those to `path`.
    std::vector<boost::json::object> Requests(const std::string& path = {}) const;

private:
    TempDir dir_;
    int port_;
    std::unique_ptr<Process> process_;
};

}  // namespace ldis::test
