#include "support/processes.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace ldis::test {

int FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        throw std::runtime_error("FreePort: bind failed");
    }
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ldis-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("TempDir: mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    if (std::getenv("LDIS_KEEP_TEST_DIRS") == nullptr) std::filesystem::remove_all(path_, ec);
}

Process::Process(std::vector<std::string> argv, std::string log_path)
    : log_path_(std::move(log_path)) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

Process::~Process() {
    if (!exited_ && pid_ > 0) Stop(SIGKILL, std::chrono::seconds(5));
}

bool Process::running() {
    if (exited_) return false;
    if (waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
    return !exited_;
}

int Process::Wait(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() > until) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (WIFEXITED(status_)) return WEXITSTATUS(status_);
    if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
    return -1;
}

int Process::Stop(int signal, std::chrono::milliseconds timeout) {
    if (running()) kill(pid_, signal);
    return Wait(timeout);
}

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(port));
        const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        close(fd);
        if (ok) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

Mosquitto::Mosquitto(bool persistence) : port_(FreePort()), persistence_(persistence) {
    Start();
}

Mosquitto::Mosquitto(std::string config)
    : port_(FreePort()), persistence_(false), config_(std::move(config)) {
    for (std::size_t at; (at = config_.find("{port}")) != std::string::npos;)
        config_.replace(at, 6, std::to_string(port_));
    for (std::size_t at; (at = config_.find("{dir}")) != std::string::npos;)
        config_.replace(at, 5, dir_.path().string());
    Start();
}

Mosquitto::~Mosquitto() {
    Stop();
}

void Mosquitto::Start() {
    // Started twice (the constructor starts it), the new broker raced the old one for the
    // port and could lose: stop the running one first.
    Stop();
    const std::string conf = dir_ / "mosquitto.conf";
    std::ofstream out(conf);
    if (!config_.empty()) {
        out << config_ << "\n";
    } else {
        out << "listener " << port_ << " 127.0.0.1\n"
            << "allow_anonymous true\n"
            << "max_queued_messages 0\n"  // keep every report for a stopped ldisd
            << "max_inflight_messages 100\n"
            << "set_tcp_nodelay true\n";
    }
    out << "log_dest stdout\n";
    // As root, mosquitto would switch to user "mosquitto", who cannot write into this
    // root-owned test folder: keep the identity it was started with.
    if (geteuid() == 0) out << "user root\n";
    if (persistence_) {
        out << "persistence true\n"
            << "persistence_location " << dir_.path().string() << "/\n"
            << "autosave_interval 1\n";
    }
    out.close();
    ++starts_;
    process_ =
        std::make_unique<Process>(std::vector<std::string>{"/usr/sbin/mosquitto", "-c", conf},
                                  dir_ / ("mosquitto-" + std::to_string(starts_) + ".log"));
    if (!WaitForPort(port_, std::chrono::seconds(10)))
        throw std::runtime_error(
            "mosquitto did not start:\n" +
            ReadFile(dir_ / ("mosquitto-" + std::to_string(starts_) + ".log")));
}

void Mosquitto::Stop() {
    if (process_) process_->Stop(SIGTERM);
    process_.reset();
}

void ReplaceOnce(std::string& text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
}

std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace ldis::test
