#include "support/grading.hpp"

#include <latch>
#include <thread>

#include "support/reports.hpp"

namespace ldis::test {

std::shared_ptr<const engine::GradingSetup> ShippedGrading() {
    auto setup = std::make_shared<engine::GradingSetup>();
    setup->substances = engine::Substances::LoadFile(SourcePath("config/substances.toml"));
    setup->rules = engine::Rules::LoadFile(SourcePath("config/rules.toml"), setup->substances);
    setup->templates = engine::AlertTemplates::LoadDir(SourcePath("templates/alert"));
    setup->public_url = "https://ldis.example.org";
    return setup;
}

void AtOnce(const std::function<void()>& first, const std::function<void()>& second) {
    std::latch start(2);
    std::thread a([&] {
        start.arrive_and_wait();
        first();
    });
    std::thread b([&] {
        start.arrive_and_wait();
        second();
    });
    a.join();
    b.join();
}

}  // namespace ldis::test
