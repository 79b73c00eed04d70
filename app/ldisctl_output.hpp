#pragma once
// ldisctl's output (ldisctl_output.cpp).

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "api_client.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/store.hpp"
#include "ldis/engine/substances.hpp"

namespace ldis::app::ctl {

// "2026-11-30 03:04:55Z" from milliseconds since the epoch.
std::string FormatTime(std::int64_t ms);
// Prints what the API said and returns the exit code for it.
int Report(const ldis::app::ApiResponse& r);
// A JSON value as text: a string's characters, "" for null, else the JSON.
std::string Str(const boost::json::value& v);
// The alerts as a table.
void PrintAlerts(const boost::json::array& alerts);
// Percent-encoding for a query value.
std::string Encode(const std::string& text);

// What the database holds, as a table, or as JSON with `as_json`, on standard output
// (ldisctl_tables.cpp); each returns ldisctl's exit code. The newest `limit` reports:
int PrintReports(engine::Store& store, std::size_t limit, bool as_json);
// Every alert:
int PrintStoredAlerts(engine::Store& store, bool as_json);
// Every API token, with its sessions (never the token itself):
int PrintTokens(engine::Store& store, bool as_json);
// Every delivery, or one alert's (`alert_reference`, "" for all), with a count by status:
int PrintDeliveries(engine::Store& store, const std::string& alert_reference, bool as_json);

// ldisctl grading test: every incident of the panel's table (TOML) graded by `rules`;
// prints each disagreement and the agreement; 0 when all agree, 1 when any disagrees, 2
// when the table cannot be read.
int RunPanelTable(const std::string& table_path, const engine::Substances& substances,
                  const engine::Rules& rules, const std::string& rules_path,
                  const std::string& substances_path);

}  // namespace ldis::app::ctl
