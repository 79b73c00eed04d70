#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/result.hpp"

namespace ldis::engine {

enum class ReceiptStatus { kAccepted, kDuplicate, kRejected };

std::string_view ToString(ReceiptStatus status);

// What a submitter is told about a report (DESIGN §5).
struct Receipt {
    std::string report_id;  // "" when the payload had no readable id
    std::string reference;  // the short number a reporter quotes, when stored
    ReceiptStatus status = ReceiptStatus::kRejected;
    std::vector<FieldError> errors;
    std::optional<std::string> level;
    std::optional<std::string> alert_id;

    // {"report_id","reference","status","errors":[{"path","message"}],"level","alert_id"}
    std::string ToJson() const;
};

// The document copied to ldis/v1/rejected: the raw payload (as text when it is UTF-8,
// else base64), where it came from, its size and its errors. Payloads over `max_copy`
// bytes are cut, and say so.
std::string RejectionJson(std::string_view topic, std::string_view payload,
                          const std::vector<FieldError>& errors, std::size_t max_copy = 64 * 1024);

}  // namespace ldis::engine
