// Google Benchmark for the hot in-process paths: decode + validation, grading, alert text,
// email rendering, and the scrubber. Run: build/bench/ldis_micro (or bench/run).
#include <benchmark/benchmark.h>
#include <boost/json.hpp>

#include <fstream>
#include <sstream>

#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/scrubber.hpp"

namespace {

std::string Source(const std::string& relative) {
    return std::string(LDIS_SOURCE_DIR) + "/" + relative;
}

std::string Sample() {
    std::ifstream in(Source("config/samples/01-medway-ed-nitazene.json"));
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    s.replace(s.find("__ID__"), 6, "0b7f3c1e-8a52-4d6e-9f3a-2c1d5e6f7a8b");
    for (auto at = s.find("__NOW__"); at != std::string::npos; at = s.find("__NOW__"))
        s.replace(at, 7, "2026-11-23T09:30:00Z");
    return s;
}

const auto& Validator() {
    static const auto v = ldis::engine::LoadReportValidator(
        Source("config/schema/report.schema.json"), Source("config/areas.toml"));
    return *v;
}

const auto& Setup() {
    static const auto substances =
        ldis::engine::Substances::LoadFile(Source("config/substances.toml"));
    static const auto rules =
        ldis::engine::Rules::LoadFile(Source("config/rules.toml"), substances);
    static const auto templates = ldis::engine::AlertTemplates::LoadDir(Source("templates/alert"));
    struct S {
        const ldis::engine::Substances& substances;
        const ldis::engine::Rules& rules;
        const ldis::engine::AlertTemplates& templates;
    };
    static const S s{substances, rules, templates};
    return s;
}

void DecodeAndValidate(benchmark::State& state) {
    const std::string report = Sample();
    for (auto _ : state) {
        auto v = Validator().Validate(report, "hospital");
        benchmark::DoNotOptimize(v);
        if (!v.ok()) state.SkipWithError("the sample did not validate");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(DecodeAndValidate);

void GradeOneReport(benchmark::State& state) {
    const auto v = Validator().Validate(Sample(), "hospital");
    const std::vector<std::string> docs = {v.report->document};
    for (auto _ : state) {
        const auto facts = ldis::engine::FactsOf(docs, Setup().substances);
        auto grade = Setup().rules.Apply(facts);
        benchmark::DoNotOptimize(grade);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(GradeOneReport);

void RenderAlertText(benchmark::State& state) {
    const auto v = Validator().Validate(Sample(), "hospital");
    const std::vector<std::string> docs(static_cast<std::size_t>(state.range(0)),
                                        v.report->document);
    const auto facts = ldis::engine::FactsOf(docs, Setup().substances);
    const auto grade = Setup().rules.Apply(facts);
    ldis::engine::AlertMeta meta;
    meta.reference = "KM-2026-0007";
    meta.district = "Medway";
    meta.authority = "Medway";
    for (auto _ : state) {
        auto text = ldis::engine::RenderAlert(Setup().templates, meta, docs, facts, grade,
                                              Setup().substances);
        benchmark::DoNotOptimize(text);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(RenderAlertText)->Arg(1)->Arg(20);

void RenderEmail(benchmark::State& state) {
    static const auto templates = ldis::engine::MessageTemplates::LoadDir(Source("templates"));
    const auto v = Validator().Validate(Sample(), "hospital");
    const std::vector<std::string> docs = {v.report->document};
    const auto facts = ldis::engine::FactsOf(docs, Setup().substances);
    const auto grade = Setup().rules.Apply(facts);
    ldis::engine::AlertMeta meta;
    meta.reference = "KM-2026-0007";
    meta.district = "Medway";
    ldis::engine::OutboxItem item;
    item.id = 42;
    item.kind = "alert";
    item.reference = "KM-2026-0007";
    item.version = 1;
    item.status = "issued";
    item.level = "red";
    item.district = "Medway";
    item.body =
        ldis::engine::RenderAlert(Setup().templates, meta, docs, facts, grade, Setup().substances)
            .ToJson();
    ldis::engine::MessageContext context;
    context.public_url = "https://ldis.example.org";
    context.from = "LDIS <ldis@example.org>";
    context.ack_url = "https://ldis.example.org/ack/42.1.x";
    for (auto _ : state) {
        const auto m = ldis::engine::RenderEmail(templates, item, context);
        auto mime = m.ToMime(context.from, "desk@example.org", 0);
        benchmark::DoNotOptimize(mime);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(RenderEmail);

void ScrubDescription(benchmark::State& state) {
    std::string text;
    while (text.size() < static_cast<std::size_t>(state.range(0)))
        text +=
            "Seen at Medway Maritime after using brown; 2 doses of naloxone, phone 07700 900123. ";
    for (auto _ : state) {
        auto s = ldis::engine::Scrub(text);
        benchmark::DoNotOptimize(s);
    }
    state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(ScrubDescription)->Arg(200)->Arg(4000);

}  // namespace

BENCHMARK_MAIN();
