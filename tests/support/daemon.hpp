#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/processes.hpp"

namespace ldis::test {

// The real ldisd binary, run with the shipped configuration pointed at a test broker
// and a database in a test folder.
class Ldisd {
public:
    Ldisd(const Mosquitto& broker, const TempDir& dir, std::vector<std::string> extra_sets = {},
          std::string config = {});
    ~Ldisd();

    // Starts ldisd and waits until it is connected and subscribed.
    void Start();
    // Starts ldisd without waiting for anything (a start meant to fail); returns its log's
    // path.
    std::string Launch();
    // After Launch against a broker that will not have it (a TLS handshake that fails):
    // true once the log shows the connection refused twice, the first try and its retry
    // (reconnect_min_s=1 in tests), and never connected, in this start's lines alone. Start
    // would wait its 20 s for a connection that cannot come.
    bool RefusedTwice(std::chrono::milliseconds within = std::chrono::seconds(20)) const;
    // The credentials the start probe uses on a broker that requires them (ssl:// URIs
    // need `ca_file`).
    void SetProbeLogin(std::string username, std::string password, std::string ca_file) {
        probe_username_ = std::move(username);
        probe_password_ = std::move(password);
        probe_ca_file_ = std::move(ca_file);
    }
    // Sends `signal` and waits for the exit; returns the exit code (128+signal if killed).
    int Stop(int signal);
    bool running() { return process_ && process_->running(); }
    const std::string& db_path() const { return db_path_; }
    std::string log() const;  // every log written by every start, in order
    pid_t pid() const { return process_ ? process_->pid() : -1; }
    // The HTTP port of the latest start (ldisd listens on a free port in tests).
    int http_port() const;
    std::string http_url() const { return "http://127.0.0.1:" + std::to_string(http_port()); }
    // A bearer token made the way an operator makes one (ldisctl tokens create on the
    // database file); "" if ldisctl failed.
    std::string CreateToken(const std::string& role, const std::string& name) const;
    // The metrics listener of the latest start (http.metrics_listen, a free port in tests).
    int metrics_port() const;
    std::string metrics_url() const { return "http://127.0.0.1:" + std::to_string(metrics_port()); }

private:
    int LoggedPort(std::string_view listener) const;  // from "<listener> listening on ..."

    std::string uri_;
    const TempDir& dir_;
    std::vector<std::string> extra_sets_;
    std::string config_;
    std::string db_path_;
    std::unique_ptr<Process> process_;
    int starts_ = 0;
    std::size_t log_from_ = 0;          // where this start's lines begin in its log
    std::string ThisStartsLog() const;  // the lines of the latest start alone
    std::string probe_username_, probe_password_, probe_ca_file_;
};

// The shipped configuration (config/ldisd.toml) with its paths made absolute, and `extra`
// (TOML: tables such as [[feeds]]) after it, written to `dir`/ldisd.toml; returns its path.
std::string ConfigWith(const TempDir& dir, const std::string& extra);

// How many times slower this build runs ldisd than a release build: AddressSanitizer's
// build (CI's second pass) is about three times slower, so a test whose wait is set by
// throughput rather than by a promise (a backlog of thousands of reports) multiplies by it.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LDIS_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LDIS_TEST_SANITIZED 1
#endif
#ifdef LDIS_TEST_SANITIZED
inline constexpr int kSlowdown = 3;
#else
inline constexpr int kSlowdown = 1;
#endif

// Polls `probe` every 20 ms until it is true or `timeout` passes.
bool Eventually(const std::function<bool()>& probe, std::chrono::milliseconds timeout);

}  // namespace ldis::test
