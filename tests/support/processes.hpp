#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace ldis::test {

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// A folder under /tmp removed with everything in it at destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// A child process with stdout and stderr sent to a log file; killed at destruction.
class Process {
public:
    Process(std::vector<std::string> argv, std::string log_path);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    bool running();
    // Sends `signal` and waits up to `timeout` for the exit; returns the exit status
    // (as from waitpid), or -1 if it did not exit in time.
    int Stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Waits for the process to exit by itself; returns its exit code, or -1 on timeout,
    // or 128+signal if killed.
    int Wait(std::chrono::milliseconds timeout);
    const std::string& log_path() const { return log_path_; }

private:
    pid_t pid_ = -1;
    int status_ = 0;
    bool exited_ = false;
    std::string log_path_;
};

// True once something accepts TCP connections on 127.0.0.1:port.
bool WaitForPort(int port, std::chrono::milliseconds timeout);

// A mosquitto broker on a free loopback port, with its own folder; stopped at destruction.
class Mosquitto {
public:
    // `persistence` keeps sessions and queued messages across Restart().
    explicit Mosquitto(bool persistence = true);
    // A broker on `config` instead of the open test listener: every "{port}" in it is
    // replaced by the port chosen, "{dir}" by the broker's folder.
    explicit Mosquitto(std::string config);
    ~Mosquitto();
    int port() const { return port_; }
    std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
    const TempDir& dir() const { return dir_; }
    void Stop();  // SIGTERM: mosquitto saves its persistence file
    void Start();
    void Restart() {
        Stop();
        Start();
    }

private:
    TempDir dir_;
    int port_;
    bool persistence_;
    std::string config_;
    std::unique_ptr<Process> process_;
    int starts_ = 0;
};

// The whole text of a file ("" if missing).
std::string ReadFile(const std::string& path);

// Replaces the first `from` in `text` with `to`; a test failure when there is none.
void ReplaceOnce(std::string& text, const std::string& from, const std::string& to);

}  // namespace ldis::test
