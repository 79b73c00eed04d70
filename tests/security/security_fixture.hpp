// The attack suite's fixture and helpers (docs/security.md): each test performs one attack
// that a hostile review found to work, over real HTTP or MQTT against a real ldisd on loopback
// (with mosquitto, an SMTP server, HTTP receivers and SQLite on disk), and fails if the attack
// succeeds. The numbers are those of the review's items: 1-13 in security_test.cpp (the web
// and the files), 14-20 in security_intake_test.cpp (who may put what into LDIS).
#pragma once

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

namespace ldis::test::security {

namespace fs = std::filesystem;
namespace json = boost::json;

inline constexpr auto kWait = std::chrono::seconds(15);
inline const std::string kForm = "Content-Type: application/x-www-form-urlencoded";

// A connected TCP socket to ldisd's port, or -1.
inline int Connect(int port) {
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
inline std::string Raw(int port, const std::string& request) {
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

inline int StatusOf(const std::string& raw) {
    if (raw.size() < 12 || !raw.starts_with("HTTP/1.")) return 0;
    return std::stoi(raw.substr(9, 3));
}

inline std::string HeadOf(const std::string& raw) {
    return raw.substr(0, raw.find("\r\n\r\n"));
}

inline std::string RedReportText(const std::string& id) {
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

}  // namespace ldis::test::security
