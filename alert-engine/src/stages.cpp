#include "ldis/engine/stages.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>

namespace ldis::engine {
namespace {

// Upper bounds in seconds: fine below a millisecond, where the path's stages live.
constexpr std::array<double, 14> kBounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002,
                                            0.003,   0.005,  0.01,    0.025,  0.05,  0.1,    1.0};

struct Histogram {
    std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets{};  // the last: +Inf
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_ns{0};
};

std::array<Histogram, static_cast<std::size_t>(Stage::kCount)>& Histograms() {
    static std::array<Histogram, static_cast<std::size_t>(Stage::kCount)> histograms;
    return histograms;
}

}  // namespace

std::string_view StageName(Stage stage) {
    switch (stage) {
        case Stage::kValidate:
            return "validate";
        case Stage::kWriterQueue:
            return "writer_queue";
        case Stage::kPipeline:
            return "pipeline";
        case Stage::kCommit:
            return "commit";
        case Stage::kReceipt:
            return "receipt";
        case Stage::kHandoff:
            return "handoff";
        case Stage::kRender:
            return "render";
        case Stage::kSmtp:
            return "smtp";
        case Stage::kWebhook:
            return "webhook";
        case Stage::kCount:
            break;
    }
    return "unknown";
}

void Observe(Stage stage, std::chrono::steady_clock::duration took) {
    if (stage >= Stage::kCount) return;
    auto& h = Histograms()[static_cast<std::size_t>(stage)];
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
    const double seconds = static_cast<double>(ns) / 1e9;
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    h.buckets[i].fetch_add(1, std::memory_order_relaxed);
    h.count.fetch_add(1, std::memory_order_relaxed);
    h.sum_ns.fetch_add(ns > 0 ? static_cast<std::uint64_t>(ns) : 0, std::memory_order_relaxed);
}

std::string StagesPrometheus() {
    std::string out =
        "# HELP ldis_stage_seconds Time spent in each stage of a report's path to the first "
        "partner (validate, writer_queue, pipeline, commit, receipt, handoff, render, smtp, "
        "webhook).\n# TYPE ldis_stage_seconds histogram\n";
    char line[160];
    for (std::size_t s = 0; s < static_cast<std::size_t>(Stage::kCount); ++s) {
        const auto& h = Histograms()[s];
        const std::string name(StageName(static_cast<Stage>(s)));
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i <= kBounds.size(); ++i) {
            cumulative += h.buckets[i].load(std::memory_order_relaxed);
            if (i < kBounds.size())
                std::snprintf(
                    line, sizeof line, "ldis_stage_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n",
                    name.c_str(), kBounds[i], static_cast<unsigned long long>(cumulative));
            else
                std::snprintf(line, sizeof line,
                              "ldis_stage_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n",
                              name.c_str(), static_cast<unsigned long long>(cumulative));
            out += line;
        }
        std::snprintf(line, sizeof line, "ldis_stage_seconds_sum{stage=\"%s\"} %.9f\n",
                      name.c_str(),
                      static_cast<double>(h.sum_ns.load(std::memory_order_relaxed)) / 1e9);
        out += line;
        // The +Inf bucket's count, so that the two agree within one scrape.
        std::snprintf(line, sizeof line, "ldis_stage_seconds_count{stage=\"%s\"} %llu\n",
                      name.c_str(), static_cast<unsigned long long>(cumulative));
        out += line;
    }
    return out;
}

}  // namespace ldis::engine
