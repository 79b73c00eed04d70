// ldisd under systemd (Type=notify): the test plays systemd's part, with a NOTIFY_SOCKET
// it reads and WATCHDOG_USEC set. READY=1 comes only once the broker has granted the
// report subscription (never while the broker is unreachable), then WATCHDOG=1 from the
// event loop, then STOPPING=1 on SIGTERM.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/processes.hpp"
#include "support/reports.hpp"

using ldis::test::Mosquitto;
using ldis::test::Process;
using ldis::test::TempDir;

namespace {

// The datagram socket systemd gives a Type=notify service, bound in a test folder.
class NotifySocket {
public:
    explicit NotifySocket(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        path.copy(addr.sun_path, sizeof addr.sun_path - 1);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        timeval tv{0, 100000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~NotifySocket() { ::close(fd_); }

    // Every message received within `wait`, in order.
    std::vector<std::string> Read(std::chrono::milliseconds wait) {
        const auto until = std::chrono::steady_clock::now() + wait;
        while (std::chrono::steady_clock::now() < until) {
            char buffer[4096];
            const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
            if (n > 0) messages_.emplace_back(buffer, static_cast<std::size_t>(n));
        }
        return messages_;
    }
    // Reads until a message holds `line`, or `wait` passes; true if one did.
    bool WaitFor(const std::string& line, std::chrono::milliseconds wait) {
        const auto until = std::chrono::steady_clock::now() + wait;
        while (std::chrono::steady_clock::now() < until) {
            if (Has(line)) return true;
            Read(std::chrono::milliseconds(100));
        }
        return Has(line);
    }
    bool Has(const std::string& line) const { return Index(line) >= 0; }
    // The position of the first message holding `line`, or -1.
    int Index(const std::string& line) const {
        for (std::size_t i = 0; i < messages_.size(); ++i) {
            if (("\n" + messages_[i] + "\n").find("\n" + line + "\n") != std::string::npos)
                return static_cast<int>(i);
        }
        return -1;
    }
    std::string All() const {
        std::string out;
        for (const auto& m : messages_) out += "[" + m + "] ";
        return out;
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
    std::vector<std::string> messages_;
};

int FreePort() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::unique_ptr<Process> StartLdisd(const TempDir& dir, const NotifySocket& notify,
                                    const std::string& mqtt_uri, const std::string& log,
                                    const std::string& journal = "JOURNAL_STREAM_UNSET=1") {
    return std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/env",
                                 "NOTIFY_SOCKET=" + notify.path(),
                                 "WATCHDOG_USEC=1000000",
                                 journal,
                                 LDISD_PATH,
                                 "--config",
                                 ldis::test::SourcePath("config/ldisd.toml"),
                                 "--set",
                                 "mqtt.uri=" + mqtt_uri,
                                 "--set",
                                 "store.path=" + dir / "ldis.db",
                                 "--set",
                                 "mqtt.reconnect_min_s=1",
                                 "--set",
                                 "mqtt.reconnect_max_s=2",
                                 "--set",
                                 "email.smtp_url=maildir:" + dir / "mail",
                                 "--set",
                                 "dispatch.channels=email,mqtt",
                                 "--set",
                                 "http.listen=127.0.0.1:0",
                                 "--set",
                                 "http.metrics_listen=127.0.0.1:0"},
        log);
}

}  // namespace

TEST(SystemdTest, NoReadyWhileTheBrokerIsUnreachable) {
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    auto ldisd =
        // As under systemd, stderr is a journal stream.
        StartLdisd(dir, notify, "tcp://127.0.0.1:" + std::to_string(FreePort()), dir / "ldisd.log",
                   "JOURNAL_STREAM=8:12345");
    // The event loop turns (keep-alives come), but ldisd is not ready to take reports.
    EXPECT_TRUE(notify.WaitFor("WATCHDOG=1", std::chrono::seconds(10))) << notify.All();
    notify.Read(std::chrono::seconds(3));
    EXPECT_FALSE(notify.Has("READY=1")) << notify.All();
    EXPECT_EQ(ldisd->Stop(SIGTERM, std::chrono::seconds(20)), 0)
        << ldis::test::ReadFile(dir / "ldisd.log");
    notify.Read(std::chrono::milliseconds(300));
    EXPECT_TRUE(notify.Has("STOPPING=1")) << notify.All();
    // Journal lines: a syslog priority, no timestamp of ldisd's own (journald adds one).
    const std::string log = ldis::test::ReadFile(dir / "ldisd.log");
    EXPECT_NE(log.find("<4>mqtt cannot reach tcp://127.0.0.1:"), std::string::npos) << log;
    EXPECT_NE(log.find("<6>ldisd stopping on signal 15"), std::string::npos) << log;
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);)
        EXPECT_TRUE(line.size() > 3 && line[0] == '<' && line[2] == '>') << line;
}

TEST(SystemdTest, ReadyThenWatchdogThenStopping) {
    Mosquitto broker;
    TempDir dir;
    NotifySocket notify(dir / "notify.sock");
    auto ldisd = StartLdisd(dir, notify, broker.uri(), dir / "ldisd.log");
    ASSERT_TRUE(notify.WaitFor("READY=1", std::chrono::seconds(20)))
        << notify.All() << ldis::test::ReadFile(dir / "ldisd.log");
    const int ready = notify.Index("READY=1");
    // STATUS= says what systemctl status shows.
    EXPECT_NE(notify.All().find("STATUS=broker connected; outbox backlog 0"), std::string::npos)
        << notify.All();
    // Keep-alives after READY, at half of WatchdogSec (1 s here).
    notify.Read(std::chrono::milliseconds(1500));
    int watchdogs_after_ready = 0;
    std::vector<std::string> all = notify.Read(std::chrono::milliseconds(0));
    for (std::size_t i = static_cast<std::size_t>(ready) + 1; i < all.size(); ++i)
        if (all[i].find("WATCHDOG=1") != std::string::npos) ++watchdogs_after_ready;
    EXPECT_GE(watchdogs_after_ready, 2) << notify.All();
    EXPECT_EQ(ldisd->Stop(SIGTERM, std::chrono::seconds(20)), 0);
    notify.Read(std::chrono::milliseconds(300));
    ASSERT_TRUE(notify.Has("STOPPING=1")) << notify.All();
    EXPECT_GT(notify.Index("STOPPING=1"), ready);
}
