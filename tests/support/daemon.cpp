#include "support/daemon.hpp"

#include <filesystem>

#include <fstream>

#include <signal.h>

#include <iostream>
#include <stdexcept>
#include <thread>

#include "support/mqtt_peer.hpp"
#include "support/reports.hpp"

namespace ldis::test {

bool Eventually(const std::function<bool()>& probe, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (probe()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return probe();
}

std::string ConfigWith(const TempDir& dir, const std::string& extra) {
    std::string text = ReadFile(SourcePath("config/ldisd.toml"));
    text = text.substr(0, text.find("[paths]"));
    text += "[paths]\ntemplates = \"" + SourcePath("templates") + "\"\nassets = \"" +
            SourcePath("node_modules/govuk-frontend/dist/govuk") + "\"\n";
    for (const char* name : {"partners", "rules", "substances", "areas"})
        text += std::string(name) + " = \"" + SourcePath(std::string("config/") + name + ".toml") +
                "\"\n";
    text += "schema = \"" + SourcePath("config/schema/report.schema.json") + "\"\n\n" + extra;
    const std::string path = dir / "ldisd.toml";
    std::ofstream(path) << text;
    return path;
}

Ldisd::Ldisd(const Mosquitto& broker, const TempDir& dir, std::vector<std::string> extra_sets,
             std::string config)
    : uri_(broker.uri()),
      dir_(dir),
      extra_sets_(std::move(extra_sets)),
      config_(config.empty() ? SourcePath("config/ldisd.toml") : std::move(config)),
      db_path_(dir / "ldis.db") {}

Ldisd::~Ldisd() {
    if (process_) process_->Stop(SIGKILL);
}

std::string Ldisd::Launch() {
    ++starts_;
    const std::string log_path = dir_ / ("ldisd-" + std::to_string(starts_) + ".log");
    std::vector<std::string> argv{LDISD_PATH, "--config", config_, "--set", "mqtt.uri=" + uri_,
                                  "--set", "store.path=" + db_path_, "--set",
                                  "mqtt.reconnect_min_s=1", "--set", "mqtt.reconnect_max_s=2",
                                  // Alerts from the shipped partners go to this test's folder,
                                  // not to example.org; a test may override both.
                                  "--set", "email.smtp_url=maildir:" + (dir_ / "mail"), "--set",
                                  "dispatch.channels=email,mqtt", "--set",
                                  "http.listen=127.0.0.1:0", "--set",
                                  "http.metrics_listen=127.0.0.1:0"};
    for (const auto& s : extra_sets_) {
        argv.push_back("--set");
        argv.push_back(s);
    }
    // Another Ldisd in the same folder (a test that starts a new one with other settings)
    // appends to the same file: this start's lines are those after what is there now.
    std::error_code size_error;
    const auto size = std::filesystem::file_size(log_path, size_error);
    log_from_ = size_error ? 0 : static_cast<std::size_t>(size);
    process_ = std::make_unique<Process>(argv, log_path);
    return log_path;
}

void Ldisd::Start() {
    const std::string log_path = Launch();
    const bool connected = Eventually(
        [&] {
            return ReadFile(log_path).find("mqtt connected") != std::string::npos ||
                   !process_->running();
        },
        std::chrono::seconds(20));
    if (!connected || !process_->running()) {
        throw std::runtime_error("ldisd did not connect; its log:\n" + ReadFile(log_path));
    }
    // "online" is published after SUBSCRIBE on the same connection: once it is seen,
    // the subscription is in place.
    const std::string probe_uri =
        probe_ca_file_.empty() ? uri_ : "ssl://" + uri_.substr(uri_.find("://") + 3);
    MqttPeer peer(probe_uri, "ldisd-start-probe-" + NewUuid().substr(0, 8), probe_username_,
                  probe_password_, probe_ca_file_);
    peer.Subscribe("ldis/v1/status/ldisd");
    if (!peer.WaitFor([](const Seen& s) { return s.payload == "online"; },
                      std::chrono::seconds(10))) {
        throw std::runtime_error("ldisd did not publish online; its log:\n" + ReadFile(log_path));
    }
}

int Ldisd::Stop(int signal) {
    if (!process_) return -1;
    const int code = process_->Stop(signal, std::chrono::seconds(20));
    if (code != 0 && signal == SIGTERM) {
        // An unexpected exit (a sanitizer's report ends in exit code 1): the log says why.
        const std::string text = log();
        std::cerr << "ldisd exited with " << code << " on SIGTERM; the end of its log:\n"
                  << text.substr(text.size() > 6000 ? text.size() - 6000 : 0) << '\n';
    }
    return code;
}

std::string Ldisd::CreateToken(const std::string& role, const std::string& name) const {
    static int n = 0;
    const std::string out = dir_ / ("token-" + std::to_string(++n) + ".txt");
    Process ctl(
        {LDISCTL_PATH, "tokens", "create", "--db", db_path_, "--role", role, "--name", name}, out);
    if (ctl.Wait(std::chrono::seconds(20)) != 0) return {};
    const std::string text = ReadFile(out);
    return text.substr(0, text.find('\n'));
}

int Ldisd::LoggedPort(std::string_view listener) const {
    const std::string path = dir_ / ("ldisd-" + std::to_string(starts_) + ".log");
    const std::string mark = std::string(listener) + " listening on 127.0.0.1:";
    // ldisd says "online" on the broker once it has subscribed, which can be before its
    // listeners are up (under the sanitizers, by most of a second): wait for the line.
    std::string log;
    const auto this_start = [&] {
        log = ReadFile(path);
        const auto at = log.rfind(mark);
        return at != std::string::npos && at >= log_from_ ? at : std::string::npos;
    };
    Eventually([&] { return this_start() != std::string::npos; }, std::chrono::seconds(20));
    const auto at = this_start();
    if (at == std::string::npos)
        throw std::runtime_error("ldisd did not say its " + std::string(listener) + " port:\n" +
                                 log);
    return std::stoi(log.substr(at + mark.size()));
}

int Ldisd::http_port() const {
    return LoggedPort("http");
}

int Ldisd::metrics_port() const {
    return LoggedPort("metrics");
}

bool Ldisd::RefusedTwice(std::chrono::milliseconds within) const {
    const bool twice = Eventually(
        [&] {
            const std::string lines = ThisStartsLog();
            const auto first = lines.find("mqtt cannot reach");
            return first != std::string::npos &&
                   lines.find("mqtt cannot reach", first + 1) != std::string::npos;
        },
        within);
    return twice && ThisStartsLog().find("mqtt connected") == std::string::npos;
}

std::string Ldisd::ThisStartsLog() const {
    const std::string all = ReadFile(dir_ / ("ldisd-" + std::to_string(starts_) + ".log"));
    return all.substr(std::min(log_from_, all.size()));
}

std::string Ldisd::log() const {
    std::string all;
    for (int i = 1; i <= starts_; ++i)
        all += ReadFile(dir_ / ("ldisd-" + std::to_string(i) + ".log"));
    return all;
}

}  // namespace ldis::test
