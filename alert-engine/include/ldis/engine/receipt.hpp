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

// The document published on ldis/v1/rejected for operators: the topic and source it came
// from, the report's id when one could be read, and where its errors are; never the
// payload, which holds the reporter's contact and free text, nor the error messages,
// which can quote it. Pure.
std::string RejectionJson(std::string_view topic, std::string_view report_id,
                          const std::vector<FieldError>& errors);

}  // namespace ldis::engine
