#pragma once

#include <string>
#include <vector>

#include "config.hpp"

namespace ldis::app {

// ldisd's wiring: store, intake, MQTT connections and signals on one io_context.
// Run() blocks until SIGTERM or SIGINT, then stops cleanly: in-flight reports are
// finished, "offline" is published, and the connections close. SIGHUP reloads the
// configuration (areas, schema and log level; MQTT and store settings need a restart).
class Daemon {
public:
    Daemon(Config config, std::string config_path, std::vector<std::string> overrides);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Returns the process exit code: 0 after a clean stop, non-zero when start-up failed.
    int Run();

private:
    class Impl;
    Config config_;
    std::string config_path_;
    std::vector<std::string> overrides_;
};

// Applies log.level to the default spdlog logger. Unknown names mean "info".
void ApplyLogLevel(const std::string& level);

}  // namespace ldis::app
