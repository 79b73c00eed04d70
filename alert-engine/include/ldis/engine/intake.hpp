#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "ldis/engine/receipt.hpp"
#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/result.hpp"
#include "ldis/engine/store.hpp"

namespace ldis::engine {

// Counts of what intake has seen since start. Read with relaxed ordering.
struct IntakeCounters {
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> duplicate{0};
    std::atomic<std::uint64_t> rejected{0};
    std::atomic<std::uint64_t> store_failures{0};
};

// What intake decided about one payload. `stored` is false only for a rejection.
struct IntakeOutcome {
    Receipt receipt;
    bool rejected() const { return receipt.status == ReceiptStatus::kRejected; }
};

// The one path every report takes, whatever it came in on: decode, validate, store
// durably, and answer with a receipt. Thread-safe.
class Intake {
public:
    Intake(std::shared_ptr<const ReportValidator> validator, ReportIntake& store);

    // Validates and stores one payload; blocks until it is committed. Returns an Error
    // when a valid report could not be stored: it must not be acknowledged.
    // `channel` is "mqtt", "http" or "web-open"; `topic_source` is the {source} of the
    // MQTT topic; `trust` says whether the sender was authenticated (DecidePolicy).
    Result<IntakeOutcome> Submit(std::string_view payload, std::string_view channel,
                                 std::string_view topic_source = {}, Trust trust = Trust::kTrusted);

    // Replaces the validator (configuration reload). Thread-safe.
    void SetValidator(std::shared_ptr<const ReportValidator> validator);
    std::shared_ptr<const ReportValidator> validator() const;

    const IntakeCounters& counters() const { return counters_; }

    // Called with every valid report once it is stored (or found stored before: a
    // duplicate), on the submitting thread: the silent-feed watch hears from its feed. Must
    // not block. Set before the first Submit.
    void SetOnReport(std::function<void(const Report&)> on_report) {
        on_report_ = std::move(on_report);
    }

private:
    std::function<void(const Report&)> on_report_;
    mutable std::mutex validator_mutex_;
    std::shared_ptr<const ReportValidator> validator_;
    ReportIntake& store_;
    IntakeCounters counters_;
};

}  // namespace ldis::engine
