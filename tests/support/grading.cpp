#include "support/grading.hpp"

#include <gtest/gtest.h>

#include <latch>
#include <thread>

#include "support/reports.hpp"

namespace ldis::test {

engine::OutboxItem RedAlertItem() {
    engine::OutboxItem it;
    it.id = 42;
    it.kind = "alert";
    it.partner = "ed";
    it.contact = "desk";
    it.address = "desk@example.org";
    it.reference = "KM-2026-0007";
    it.version = 2;
    it.status = "updated";
    it.level = "red";
    it.authority = "Medway";
    it.district = "Medway";
    it.family = "nitazene";
    it.family_label = "nitazenes (high-potency synthetic opioids)";
    it.body = boost::json::serialize(boost::json::object{
        {"summary", "Drug Alert KM-2026-0007 v2: nitazenes in Medway. <b>3</b> affected."},
        {"what", "Brown powder, <b>3</b> bags\n"},
        {"harms", std::string(5000, 'x')}});
    return it;
}

std::shared_ptr<const engine::GradingSetup> ShippedGrading() {
    auto setup = std::make_shared<engine::GradingSetup>();
    setup->substances = engine::Substances::LoadFile(SourcePath("config/substances.toml"));
    setup->rules = engine::Rules::LoadFile(SourcePath("config/rules.toml"), setup->substances);
    setup->templates = engine::AlertTemplates::LoadDir(SourcePath("templates/alert"));
    setup->public_url = "https://ldis.example.org";
    return setup;
}

engine::Validation ValidateShipped(const boost::json::object& report) {
    static const auto validator = engine::LoadReportValidator(
        SourcePath("config/schema/report.schema.json"), SourcePath("config/areas.toml"));
    return validator->Validate(boost::json::serialize(report));
}

engine::StoredReport SubmitRed(engine::Store& store) {
    auto r = ValidReport(NewUuid());
    r["harms"].as_object()["deaths"] = 1;
    const auto v = ValidateShipped(r);
    EXPECT_TRUE(v.ok()) << (v.errors.empty() ? "" : v.errors[0].path + " " + v.errors[0].message);
    if (!v.ok()) return {};
    auto stored = store.Insert(*v.report, "mqtt");
    EXPECT_TRUE(stored.ok()) << (stored.ok() ? "" : stored.error().message);
    return stored.ok() ? stored.value() : engine::StoredReport{};
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
