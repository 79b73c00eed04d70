#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/grading.hpp"
#include "ldis/engine/substances.hpp"

namespace ldis::engine {

// A grading panel's record (tests/grading/panel.toml, docs/grading.md): incidents, each
// with the reports that made it and the level and reason a panel gave. Coordinators add
// to it; `ldisctl grading test` runs it against the shipped or a proposed rules file.
struct PanelIncident {
    std::string name;
    std::string level;                              // none, green, amber, red
    std::string reason;                             // the panel's, in a sentence
    std::optional<std::vector<std::string>> rules;  // every rule that must fire, if given
    std::string confidence;                         // "" when not checked
    int signals = 0;                                // how many signals; 0 when not checked
    std::vector<std::string> reports;               // each the JSON text of a whole report
    int line = 0;                                   // where it starts in the file
};

struct PanelTable {
    int window_days = 7;  // correlation window, as ldisd's grading.window_days
    std::vector<PanelIncident> incidents;
};

// Throws std::runtime_error "FILE:LINE: problem". Each report is [base] with the
// top-level fields the report gives put in its place.
PanelTable LoadPanelTable(const std::string& path);
PanelTable ParsePanelTable(std::string_view toml_text, const std::string& origin);

// The word reports are correlated on: the family of the most dangerous substance named,
// or "other:NAME" from the first substance's name when no family matches. Pure.
std::string CorrelationFamily(std::string_view report_document, const Substances& substances);

// One signal of an incident: reports of one family and district within the window.
struct PanelSignal {
    std::string family;
    std::string district;
    std::vector<std::string> reports;
    Grade grade;
};

// Correlates an incident's reports as ldisd does (family and district, each report within
// the window of the signal's first and last sighting) and grades each signal. Pure.
std::vector<PanelSignal> GradeReports(const std::vector<std::string>& reports,
                                      const Substances& substances, const Rules& rules,
                                      std::int64_t window_ms);

// What the rules gave for one incident, against what the panel gave.
struct PanelVerdict {
    const PanelIncident* incident = nullptr;
    std::string level;               // the highest of its signals
    std::vector<std::string> fired;  // rules that fired in any signal, sorted
    std::string confidence;          // of the highest signal
    int signals = 0;
    bool agrees = false;
    std::string difference;  // "" when it agrees, else what differs, for a person
};

std::vector<PanelVerdict> RunPanel(const PanelTable& table, const Substances& substances,
                                   const Rules& rules);

// A replay: every stored signal graded again with other rules or substances, without
// writing anything, before a panel changes them (ldisctl grading replay; POST
// /api/v1/grading/replay for admins).
// One signal as stored (ReportStore::ReadSignals).
struct StoredSignal {
    std::int64_t id = 0;
    std::string family, authority, district;
    std::string level;                   // as graded when its last report came
    std::vector<std::string> documents;  // its reports, oldest first
    std::string alert_reference;         // its live alert (draft, issued, updated), if any
    std::string alert_status, alert_level;
};

struct ReplayChange {
    std::int64_t signal = 0;
    std::string family, district;
    std::string now, then;           // the level stored; the level the new files give
    std::vector<std::string> fired;  // the rules that fire with the new files
    std::string alert_reference, alert_status;
    bool lowers_live_red = false;  // an issued red alert would come down
};

struct ReplayResult {
    int signals = 0;
    std::vector<ReplayChange> changes;
    std::map<std::string, int> now_by_level, then_by_level;
    int lowered_live_reds = 0;
};

ReplayResult Replay(const std::vector<StoredSignal>& signals, const Substances& substances,
                    const Rules& rules);
// The result as JSON (the API's answer), and as lines for a person (ldisctl).
std::string ReplayToJson(const ReplayResult& result);
std::string ReplayToText(const ReplayResult& result);

}  // namespace ldis::engine
