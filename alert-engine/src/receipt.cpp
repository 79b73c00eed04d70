#include "ldis/engine/receipt.hpp"

#include <boost/json.hpp>
#include <cctype>
#include <chrono>

#include "ldis/engine/codec.hpp"
#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/wire.hpp"

namespace json = boost::json;

namespace ldis::engine {
namespace {

json::array ErrorsJson(const std::vector<FieldError>& errors) {
    json::array out;
    for (const auto& e : errors)
        out.push_back(json::object{{"path", e.path}, {"message", e.message}});
    return out;
}

}  // namespace

bool LooksLikeUuid(std::string_view id) {
    if (id.size() != 36) return false;
    for (std::size_t i = 0; i < id.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash != (id[i] == '-')) return false;
        if (!dash && !std::isxdigit(static_cast<unsigned char>(id[i]))) return false;
    }
    return true;
}

std::string ShareablePath(const FieldError& error) {
    if (!error.sent_key) return error.path;
    // An unknown field's path is its parent's and its own key: "/source/<key>", "/<key>".
    return error.path.substr(0, error.path.rfind('/')) + "/*";
}

std::string_view ToString(ReceiptStatus status) {
    switch (status) {
        case ReceiptStatus::kAccepted:
            return "accepted";
        case ReceiptStatus::kDuplicate:
            return "duplicate";
        case ReceiptStatus::kRejected:
            return "rejected";
    }
    return "rejected";
}

std::string Receipt::ToJson() const {
    json::object out;
    out["report_id"] = report_id.empty() ? json::value(nullptr) : json::value(report_id);
    out["reference"] = reference.empty() ? json::value(nullptr) : json::value(reference);
    out["status"] = ToString(status);
    out["errors"] = ErrorsJson(errors);
    out["level"] = level ? json::value(*level) : json::value(nullptr);
    out["alert_id"] = alert_id ? json::value(*alert_id) : json::value(nullptr);
    return json::serialize(out);
}

std::string RejectionJson(std::string_view topic, std::string_view report_id,
                          const std::vector<FieldError>& errors) {
    json::object out;
    out["topic"] = topic;
    out["source"] = wire::ReportSource(topic);
    out["report_id"] = LooksLikeUuid(report_id) ? json::value(report_id) : json::value(nullptr);
    // Where the errors are, not what they say: a message can quote the value sent
    // ("got \"Jane Doe's flat\""), and the submitter has the messages in its receipt.
    json::array paths;
    for (const auto& e : errors) paths.emplace_back(ShareablePath(e));
    out["error_paths"] = std::move(paths);
    out["received_at_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    return json::serialize(out);
}

}  // namespace ldis::engine
