// ldisd: the LDIS daemon. Parses flags, loads the configuration, wires the parts.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "config.hpp"
#include "daemon.hpp"

namespace {

// %* in a log pattern: the syslog priority of the message's level, as journald reads it.
class JournalPriority : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        const char* p = "6";  // info
        switch (msg.level) {
            case spdlog::level::critical:
                p = "2";
                break;
            case spdlog::level::err:
                p = "3";
                break;
            case spdlog::level::warn:
                p = "4";
                break;
            case spdlog::level::debug:
            case spdlog::level::trace:
                p = "7";
                break;
            default:
                break;
        }
        dest.append(p, p + 1);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JournalPriority>();
    }
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"ldisd: the Local Drug Information System daemon for Kent and Medway"};
    std::string config_path = "config/ldisd.toml";
    std::vector<std::string> overrides;
    bool check_only = false;
    cli.add_option("-c,--config", config_path, "the configuration file")->capture_default_str();
    cli.add_option("--set", overrides, "override a key: section.key=value (not for secrets)")
        ->allow_extra_args(false);
    cli.add_flag(
        "--check-config", check_only,
        "validate every file ldisd would load, print each problem as FILE:LINE: problem, and exit");
    CLI11_PARSE(cli, argc, argv);

    auto logger = spdlog::stderr_logger_mt("ldisd");
    if (std::getenv("JOURNAL_STREAM") != nullptr) {
        // Under systemd, stderr goes to the journal, which stamps the time itself and reads
        // a syslog priority from a "<N>" prefix (sd-daemon.h): no second timestamp, and
        // `journalctl -p warning` finds warnings.
        logger->set_formatter([] {
            auto f = std::make_unique<spdlog::pattern_formatter>();
            f->add_flag<JournalPriority>('*').set_pattern("<%*>%v");
            return f;
        }());
    } else {
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
    }
    spdlog::set_default_logger(logger);
    spdlog::flush_on(spdlog::level::info);

    try {
        auto load = check_only ? ldis::app::CheckConfig(config_path, overrides)
                               : ldis::app::LoadConfig(config_path, overrides);
        if (!load.ok()) {
            for (const auto& e : load.errors) std::cerr << e.ToString() << '\n';
            std::cerr << "ldisd: " << load.errors.size() << " problem(s) in the configuration\n";
            return 1;
        }
        if (check_only) {
            std::cout << "ldisd: configuration OK (" << load.config.file << ")\n";
            return 0;
        }
        ldis::app::ApplyLogLevel(load.config.log_level);
        ldis::app::Daemon daemon(load.config, config_path, overrides);
        return daemon.Run();
    } catch (const std::exception& e) {
        spdlog::critical("ldisd: {}", e.what());
        return 1;
    }
}
