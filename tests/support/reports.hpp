#pragma once

#include <boost/json.hpp>
#include <string>

namespace ldis::test {

// A random version 4 UUID.
std::string NewUuid();

// A small valid report (Medway hospital, heroin, two cases) with the given id, as a
// JSON object that a test may change before serialising.
boost::json::object ValidReport(const std::string& id);
std::string ValidReportText(const std::string& id);

// Paths of shipped files.
std::string SourcePath(const std::string& relative);

// Parses a receipt or other JSON text (throws on bad JSON).
boost::json::object ParseObject(const std::string& text);

// A JSON string's text, or "" when `v` is not a string.
std::string StringOf(const boost::json::value& v);

}  // namespace ldis::test
