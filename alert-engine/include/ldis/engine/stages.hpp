#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace ldis::engine {

// Where a report's milliseconds go (issue 14): one histogram per stage of the path from a
// report's arrival to its first partner's server, in /metrics (ldis_stage_seconds) and in
// bench/run's output. Process-wide, lock-free (relaxed atomics): observing costs a few
// nanoseconds on any thread.
enum class Stage {
    kValidate,     // the report checked: size, UTF-8, JSON, schema, areas
    kWriterQueue,  // waiting for the store's writer thread to take it
    kPipeline,     // in its transaction: stored, correlated, graded, versioned, routed
    kCommit,       // its batch's COMMIT: the write-ahead log written and synced
    kReceipt,      // committed -> the receipt handed to the broker client
    kHandoff,      // a commit that queued deliveries -> the dispatcher holds them (the claim)
    kRender,       // one message rendered (email, card, document)
    kSmtp,         // one SMTP transaction as curl times it (connection reused or new;
                   // one opened during its commit counts the wait for the commit too)
    kWebhook,      // one webhook POST as curl times it
    kCount
};

std::string_view StageName(Stage stage);

void Observe(Stage stage, std::chrono::steady_clock::duration took);

// The histograms in Prometheus' text format (# HELP, # TYPE, _bucket, _sum, _count).
std::string StagesPrometheus();

// Times a scope: observes `stage` when it ends.
class StageTimer {
public:
    explicit StageTimer(Stage stage) : stage_(stage), start_(std::chrono::steady_clock::now()) {}
    ~StageTimer() { Observe(stage_, std::chrono::steady_clock::now() - start_); }
    StageTimer(const StageTimer&) = delete;
    StageTimer& operator=(const StageTimer&) = delete;

private:
    Stage stage_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace ldis::engine
