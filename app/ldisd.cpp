// ldisd: the LDIS daemon. Parses flags, loads the configuration, wires the parts.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "config.hpp"
#include "daemon.hpp"

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
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
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
