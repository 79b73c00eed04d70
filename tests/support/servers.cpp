#include "support/servers.hpp"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "support/reports.hpp"

namespace ldis::test {

std::vector<boost::json::object> ReadJsonLines(const std::string& path) {
    std::vector<boost::json::object> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        boost::system::error_code ec;
        auto v = boost::json::parse(line, ec);
        if (!ec && v.is_object()) out.push_back(std::move(v.as_object()));
    }
    return out;
}

SmtpSink::SmtpSink(int delay_ms, std::string auth, std::string tls_cert, std::string tls_key)
    : port_(FreePort()),
      delay_ms_(delay_ms),
      auth_(std::move(auth)),
      tls_cert_(std::move(tls_cert)),
      tls_key_(std::move(tls_key)) {}

std::pair<std::string, std::string> MakeLoopbackCertificate(const TempDir& dir) {
    return MakeCertificate(dir, "IP:127.0.0.1", "");
}

std::unique_ptr<Mosquitto> StartProductionBroker(
    const TempDir& files, const std::vector<std::pair<std::string, std::string>>& users,
    bool persistence) {
    MakeLoopbackCertificate(files);
    std::filesystem::copy_file(SourcePath("packaging/mosquitto/acl"), files / "acl");
    const std::string passwords = files / "passwords";
    std::ofstream(passwords).close();  // mosquitto_passwd -b adds to an existing file
    for (const auto& [user, password] : users) {
        Process p({"/usr/bin/mosquitto_passwd", "-b", passwords, user, password},
                  files / "passwd.log");
        if (p.Wait(std::chrono::seconds(10)) != 0)
            throw std::runtime_error("mosquitto_passwd: " + ReadFile(files / "passwd.log"));
    }
    std::string config = ReadFile(SourcePath("packaging/mosquitto/ldis.conf"));
    const auto replace = [&](const std::string& from, const std::string& to) {
        const auto at = config.find(from);
        if (at == std::string::npos)
            throw std::runtime_error("packaging/mosquitto/ldis.conf has no \"" + from + "\"");
        config.replace(at, from.size(), to);
    };
    for (std::size_t at; (at = config.find("/etc/mosquitto/ldis/")) != std::string::npos;)
        config.replace(at, 20, files.path().string() + "/");
    replace("server.crt", "cert.pem");
    replace("server.key", "key.pem");
    replace("listener 8883", "listener {port} 127.0.0.1");
    replace("persistence true",
            persistence ? "persistence true\npersistence_location {dir}/" : "persistence false");
    return std::make_unique<Mosquitto>(config);
}

std::pair<std::string, std::string> MakeCertificate(const TempDir& dir, const std::string& san,
                                                    const std::string& name) {
    const std::string cert = dir / (name + "cert.pem"), key = dir / (name + "key.pem");
    const std::string cn = san.substr(san.find(':') + 1);
    Process openssl(
        {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=" + cn, "-addext", "subjectAltName=" + san, "-keyout", key, "-out", cert},
        dir / "openssl.log");
    if (openssl.Wait(std::chrono::seconds(30)) != 0)
        throw std::runtime_error("openssl could not make a certificate: " +
                                 ReadFile(dir / "openssl.log"));
    return {cert, key};
}

namespace {

void RunOpenssl(const TempDir& dir, std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    Process openssl(args, dir / "openssl.log");
    if (openssl.Wait(std::chrono::seconds(30)) != 0)
        throw std::runtime_error("openssl failed: " + ReadFile(dir / "openssl.log"));
}

}  // namespace

TestCa MakeCa(const TempDir& dir, const std::string& name) {
    TestCa ca{dir / (name + "ca.pem"), dir / (name + "ca-key.pem")};
    RunOpenssl(
        dir, {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
              "/CN=LDIS test CA " + name, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
              "keyUsage=critical,keyCertSign,cRLSign", "-keyout", ca.key, "-out", ca.cert});
    return ca;
}

std::pair<std::string, std::string> MakeSignedCertificate(const TempDir& dir, const TestCa& ca,
                                                          const std::string& san,
                                                          const std::string& name) {
    const std::string cert = dir / (name + "cert.pem"), key = dir / (name + "key.pem"),
                      request = dir / (name + "csr.pem"), extensions = dir / (name + "ext.cnf");
    RunOpenssl(dir, {"req", "-newkey", "rsa:2048", "-nodes", "-subj",
                     "/CN=" + san.substr(san.find(':') + 1), "-keyout", key, "-out", request});
    std::ofstream(extensions) << "basicConstraints=CA:FALSE\nsubjectAltName=" << san
                              << "\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                                 "extendedKeyUsage=serverAuth,clientAuth\n";
    RunOpenssl(dir, {"x509", "-req", "-in", request, "-CA", ca.cert, "-CAkey", ca.key,
                     "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", cert});
    return {cert, key};
}

SmtpSink::~SmtpSink() {
    Stop();
}

void SmtpSink::Start() {
    std::vector<std::string> argv{"/usr/bin/python3",
                                  SourcePath("tests/servers/smtp_sink.py"),
                                  "--port",
                                  std::to_string(port_),
                                  "--out",
                                  dir_ / "messages.jsonl",
                                  "--delay-ms",
                                  std::to_string(delay_ms_),
                                  "--rcpts",
                                  dir_ / "rcpts.jsonl"};
    if (!auth_.empty()) argv.insert(argv.end(), {"--auth", auth_});
    if (!tls_cert_.empty())
        argv.insert(argv.end(), {"--tls-cert", tls_cert_, "--tls-key", tls_key_});
    if (implicit_tls_) argv.push_back("--implicit-tls");
    process_ = std::make_unique<Process>(argv, dir_ / "smtp.log");
    if (!WaitForPort(port_, std::chrono::seconds(15)))
        throw std::runtime_error("the SMTP sink did not start: " + ReadFile(dir_ / "smtp.log"));
}

void SmtpSink::Stop() {
    if (process_) process_->Stop(SIGTERM);
    process_.reset();
}

std::vector<boost::json::object> SmtpSink::Messages() const {
    return ReadJsonLines(dir_ / "messages.jsonl");
}

std::vector<std::string> SmtpSink::Recipients() const {
    std::vector<std::string> out;
    for (const auto& line : ReadJsonLines(dir_ / "rcpts.jsonl"))
        out.emplace_back(line.at("rcpt").as_string());
    return out;
}

HttpReceiver::HttpReceiver(std::vector<std::string> plans, std::string secret,
                           std::string notify_key)
    : port_(FreePort()) {
    std::vector<std::string> argv{"/usr/bin/python3",
                                  SourcePath("tests/servers/http_receiver.py"),
                                  "--port",
                                  std::to_string(port_),
                                  "--out",
                                  dir_ / "requests.jsonl"};
    for (const auto& p : plans) {
        argv.push_back("--plan");
        argv.push_back(p);
    }
    if (!secret.empty()) argv.insert(argv.end(), {"--secret", secret});
    if (!notify_key.empty()) argv.insert(argv.end(), {"--notify-key", notify_key});
    process_ = std::make_unique<Process>(argv, dir_ / "http.log");
    if (!WaitForPort(port_, std::chrono::seconds(15)))
        throw std::runtime_error("the HTTP receiver did not start: " + ReadFile(dir_ / "http.log"));
}

HttpReceiver::~HttpReceiver() {
    if (process_) process_->Stop(SIGKILL);
}

std::vector<boost::json::object> HttpReceiver::Requests(const std::string& path) const {
    auto all = ReadJsonLines(dir_ / "requests.jsonl");
    if (path.empty()) return all;
    std::vector<boost::json::object> out;
    for (auto& r : all) {
        if (r.at("path").as_string() == path) out.push_back(std::move(r));
    }
    return out;
}

}  // namespace ldis::test
