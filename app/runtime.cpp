// The configuration's files loaded whole into one immutable Runtime (at start and on SIGHUP),
// and --check-config's reading of every file the configuration names.
#include <algorithm>
#include <filesystem>

#include "config.hpp"
#include "ldis/engine/areas.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/partners.hpp"
#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/substances.hpp"

namespace fs = std::filesystem;

namespace ldis::app {

std::shared_ptr<const engine::GradingSetup> LoadGrading(const Config& config) {
    auto substances = engine::Substances::LoadFile(config.path_substances);
    auto rules = engine::Rules::LoadFile(config.path_rules, substances);
    auto setup = std::make_shared<engine::GradingSetup>();
    setup->substances = std::move(substances);
    setup->rules = std::move(rules);
    setup->window_ms = static_cast<std::int64_t>(config.grading_window_days) * 24 * 3600 * 1000;
    setup->valid_for_ms = static_cast<std::int64_t>(config.alert_valid_days) * 24 * 3600 * 1000;
    setup->templates = engine::AlertTemplates::LoadDir(config.path_templates + "/alert");
    setup->public_url = config.http_public_url;
    setup->policy = config.policy;
    const auto areas = engine::Areas::LoadFile(config.path_areas);
    setup->partners = std::make_shared<const engine::Partners>(
        engine::Partners::LoadFile(config.path_partners, &areas));
    setup->dispatch = config.dispatch;
    return setup;
}

std::shared_ptr<const Runtime> LoadRuntime(const Config& config) {
    auto runtime = std::make_shared<Runtime>();
    runtime->validator = engine::LoadReportValidator(config.path_schema, config.path_areas);
    runtime->grading = LoadGrading(config);
    runtime->email_templates = engine::MessageTemplates::LoadDir(config.path_templates);
    return runtime;
}

ConfigLoad CheckConfig(const std::string& path, const std::vector<std::string>& overrides) {
    ConfigLoad load = LoadConfig(path, overrides);
    if (!load.ok()) return load;
    try {
        engine::LoadReportValidator(load.config.path_schema, load.config.path_areas);
    } catch (const std::exception& e) {
        // The message already reads "FILE[:LINE]: problem".
        const std::string what = e.what();
        load.errors.push_back({"", 0, what});
    }
    try {
        LoadGrading(load.config);
        engine::MessageTemplates::LoadDir(load.config.path_templates);
    } catch (const std::exception& e) {
        // LoadGrading reads areas.toml again, for partners: say a problem once.
        const bool said = std::any_of(load.errors.begin(), load.errors.end(),
                                      [&](const ConfigError& c) { return c.message == e.what(); });
        if (!said) load.errors.push_back({"", 0, e.what()});
    }
    const fs::path store_dir = fs::path(load.config.store_path).parent_path();
    if (!store_dir.empty() && !fs::is_directory(store_dir)) {
        load.errors.push_back(
            {path, 0, "store.path: the folder " + store_dir.string() + " does not exist"});
    }
    return load;
}

}  // namespace ldis::app
