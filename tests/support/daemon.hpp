#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
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
    // Sends `signal` and waits for the exit; returns the exit code (128+signal if killed).
    int Stop(int signal);
    bool running() { return process_ && process_->running(); }
    const std::string& db_path() const { return db_path_; }
    std::string log() const;  // every log written by every start, in order
    pid_t pid() const { return process_ ? process_->pid() : -1; }
    // The HTTP port of the latest start (ldisd listens on a free port in tests).
    int http_port() const;
    std::string http_url() const { return "http://127.0.0.1:" + std::to_string(http_port()); }

private:
    std::string uri_;
    const TempDir& dir_;
    std::vector<std::string> extra_sets_;
    std::string config_;
    std::string db_path_;
    std::unique_ptr<Process> process_;
    int starts_ = 0;
};

// Polls `probe` every 20 ms until it is true or `timeout` passes.
bool Eventually(const std::function<bool()>& probe, std::chrono::milliseconds timeout);

}  // namespace ldis::test
