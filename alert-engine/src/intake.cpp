#include "ldis/engine/intake.hpp"

#include <chrono>

#include "ldis/engine/receipt.hpp"
#include "ldis/engine/stages.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

namespace ldis::engine {
namespace {

// The id of a payload that failed validation, when one can be read, so that the
// submitter can match the receipt to what it sent.
std::string ReadableId(std::string_view payload) {
    if (payload.size() > ReportValidator::kMaxPayloadBytes || !IsValidUtf8(payload)) return {};
    boost::json::error_code ec;
    const auto doc = boost::json::parse(payload, ec);
    if (ec || !doc.is_object()) return {};
    const auto* id = doc.as_object().if_contains("id");
    if (id == nullptr || !id->is_string() || id->as_string().size() > 64) return {};
    return std::string(id->as_string());
}

}  // namespace

Intake::Intake(std::shared_ptr<const ReportValidator> validator, ReportIntake& store)
    : validator_(std::move(validator)), store_(store) {}

void Intake::SetValidator(std::shared_ptr<const ReportValidator> validator) {
    std::lock_guard lock(validator_mutex_);
    validator_ = std::move(validator);
}

std::shared_ptr<const ReportValidator> Intake::validator() const {
    std::lock_guard lock(validator_mutex_);
    return validator_;
}

Result<IntakeOutcome> Intake::Submit(std::string_view payload, std::string_view channel,
                                     std::string_view topic_source, Trust trust) {
    const auto v = validator();
    const auto validating = std::chrono::steady_clock::now();
    Validation validation = v->Validate(payload, topic_source);
    Observe(Stage::kValidate, std::chrono::steady_clock::now() - validating);
    IntakeOutcome outcome;
    if (!validation.ok()) {
        counters_.rejected.fetch_add(1, std::memory_order_relaxed);
        outcome.receipt.report_id = ReadableId(payload);
        outcome.receipt.status = ReceiptStatus::kRejected;
        outcome.receipt.errors = std::move(validation.errors);
        // Only where the errors are, never what was sent: a message can quote a value, and
        // a rejected report's free text is as personal as an accepted one's.
        std::string paths;
        for (const auto& e : outcome.receipt.errors) {
            if (paths.size() > 200) break;
            const std::string where = ShareablePath(e);
            paths += (paths.empty() ? "" : ",") + (where.empty() ? "/" : where);
        }
        spdlog::warn("report rejected id={} channel={} bytes={} errors={} at={}",
                     LooksLikeUuid(outcome.receipt.report_id) ? outcome.receipt.report_id : "-",
                     channel, payload.size(), outcome.receipt.errors.size(), paths);
        return outcome;
    }
    validation.report->trust = trust;
    const Report& report = *validation.report;
    auto stored = store_.Insert(report, channel);
    if (!stored) {
        counters_.store_failures.fetch_add(1, std::memory_order_relaxed);
        spdlog::error("report not stored id={} channel={}: {}", report.id, channel,
                      stored.error().message);
        return stored.error();
    }
    outcome.receipt.report_id = report.id;
    outcome.receipt.reference = stored.value().reference;
    if (!stored.value().level.empty()) outcome.receipt.level = stored.value().level;
    if (!stored.value().alert_reference.empty())
        outcome.receipt.alert_id = stored.value().alert_reference;
    if (stored.value().duplicate) {
        counters_.duplicate.fetch_add(1, std::memory_order_relaxed);
        outcome.receipt.status = ReceiptStatus::kDuplicate;
        spdlog::info("report duplicate id={} reference={} channel={}", report.id,
                     outcome.receipt.reference, channel);
    } else {
        counters_.accepted.fetch_add(1, std::memory_order_relaxed);
        outcome.receipt.status = ReceiptStatus::kAccepted;
        spdlog::info(
            "report accepted id={} reference={} channel={} source={} district=\"{}\" level={} "
            "alert={}",
            report.id, outcome.receipt.reference, channel, report.source_type, report.district,
            stored.value().level.empty() ? "-" : stored.value().level,
            stored.value().alert_reference.empty() ? "-" : stored.value().alert_reference);
    }
    if (on_report_) on_report_(report);
    return outcome;
}

}  // namespace ldis::engine
