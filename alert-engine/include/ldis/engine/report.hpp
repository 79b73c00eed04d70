#pragma once

#include <string>
#include <vector>

namespace ldis::engine {

// A validated report: the fields the store indexes, and the document itself as compact JSON.
// The document is kept whole inside the store; `source.contact` never leaves it.
// Whether a report's source is known: a submitter key bound to an organisation or a broker
// user bound to a source type (trusted), or the open form (unverified). An unverified
// report is graded as usual, but its alert always waits for a coordinator.
enum class Trust { kTrusted, kUnverified };

// Whether a report, and the signal and alert it makes, is real or a rehearsal (issue 16 §2;
// CAP 1.2's <status> Actual, Exercise or Test): the report's "drill". A drill's reports never
// join a real signal, its alerts are marked first and unmistakably in every rendering
// (DrillMarking, lifecycle.hpp), and it never counts in live figures.
enum class Drill { kNone, kExercise, kTest };

struct Report {
    std::string id;            // lower-case UUID
    std::string submitted_at;  // RFC 3339 as submitted
    std::string observed_at;   // RFC 3339 or ""
    std::string source_type;
    std::string organisation;
    std::string authority;
    std::string district;
    std::string ward;           // as configured (canonical spelling) or ""
    std::string ward_current;   // the ward of today for a former ward, else == ward
    std::string establishment;  // canonical name or ""
    std::string evidence;
    std::string document;             // the whole report, serialised
    std::vector<std::string> photos;  // the uploaded photos it names (ids), at most three
    Trust trust = Trust::kTrusted;
    Drill drill = Drill::kNone;
};

}  // namespace ldis::engine
