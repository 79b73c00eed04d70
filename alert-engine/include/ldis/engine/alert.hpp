#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ldis/engine/grading.hpp"
#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/pipeline.hpp"

namespace ldis::engine {

// An alert and its versions as values (issue 14): what the store reads back and the API,
// the pages, CAP and Atom show. The closed lists of the schema (status, level) are their
// enums, so that a comparison with a misspelt word cannot compile; ToString gives the
// wire's word (lifecycle.hpp, grading.hpp).

// One alert, with its latest version's grade and text.
struct Alert {
    std::string reference;  // KM-2026-0007
    std::int64_t signal_id = 0;
    AlertStatus status = AlertStatus::kDraft;
    int version = 0;
    bool provisional = false;  // issued at once, before a coordinator read it
    // The latest version's grade.
    Level level = Level::kNone;
    std::string confidence;
    std::vector<std::string> rules;  // ids of the rules that fired
    std::string audience;
    // What and where: the signal's.
    std::string family;
    std::string authority;
    std::string district;
    int reports = 0;
    // The latest version's sections as JSON {"summary": ..., ...}, and how many pieces of
    // personal data were removed from them (a count only).
    std::string body;
    int scrubbed = 0;
    std::int64_t created_at_ms = 0;
    std::int64_t updated_at_ms = 0;
    std::int64_t issued_at_ms = 0;    // 0 while a draft
    std::int64_t valid_until_ms = 0;  // 0 while a draft
    SignalOverride override;          // its signal's override; level "" when none
    Drill drill = Drill::kNone;       // an exercise's or a test's: marked first everywhere
};

// One version of an alert, as it was written.
struct AlertVersion {
    int version = 0;
    AlertStatus status = AlertStatus::kDraft;
    Level level = Level::kNone;
    std::string confidence;
    std::string rules;  // JSON [{"id","level","reason"}]
    std::string body;   // JSON sections
    std::int64_t created_at_ms = 0;
    // The photos a coordinator chose for it: JSON [{"id", "sha1", "bytes", "width",
    // "height"}], "" for none (never in an automatic version).
    std::string photos;
};

}  // namespace ldis::engine
