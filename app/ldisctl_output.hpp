#pragma once
// ldisctl's output (ldisctl_output.cpp).

#include <boost/json.hpp>
#include <cstdint>
#include <string>

#include "api_client.hpp"
#include "ldis/engine/store.hpp"

namespace ldis::app::ctl {

// "2026-11-30 03:04:55Z" from milliseconds since the epoch.
std::string FormatTime(std::int64_t ms);
// A stored report as JSON, without the reporter's contact, which stays inside the system.
boost::json::object RowJson(const ldis::engine::StoredReportRow& row);
// Prints what the API said and returns the exit code for it.
int Report(const ldis::app::ApiResponse& r);
// A JSON value as text: a string's characters, "" for null, else the JSON.
std::string Str(const boost::json::value& v);
// The alerts as a table.
void PrintAlerts(const boost::json::array& alerts);
// Percent-encoding for a query value.
std::string Encode(const std::string& text);

}  // namespace ldis::app::ctl
