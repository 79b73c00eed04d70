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

// True for a lower- or upper-case UUID in its 36-character form.
bool LooksLikeUuid(std::string_view id);

// Where an error is, said without the sender's words, for those who are not the sender (the
// rejected topic, the log): an unknown field's own name, a key the sender chose and could
// have filled with anything, is "*" ("/source/*"); a path of the schema's own names and
// indices (a JSON pointer; "" for the whole document) is as it is.
std::string ShareablePath(const FieldError& error);

// The document published on ldis/v1/rejected for operators: the topic and source it came
// from, the report's id when it is a UUID (a submitter may have put a patient's number
// there), and where its errors are (ShareablePath); never the payload, which holds the
// reporter's contact and free text, nor the error messages, which can quote it. Pure.
std::string RejectionJson(std::string_view topic, std::string_view report_id,
                          const std::vector<FieldError>& errors);

}  // namespace ldis::engine
