#pragma once
// What coordinators read of a stored report and of a delivery, as JSON: one encoding for the
// API (GET /api/v1/reports/{id}, an alert's linked_reports and deliveries) and for ldisctl's
// --db commands, so that reading the database on the host shows no more than the API does
// (docs/privacy.md, "Who sees what").

#include <boost/json/object.hpp>

#include "ldis/engine/delivery.hpp"
#include "ldis/engine/store.hpp"

namespace ldis::engine {

// {id, reference, received_at, channel, report}: the report without the reporter's contact,
// which never leaves the system, and with every field a person typed (organisation, role,
// description, symptoms, and a substance's name, "sold as", appearance and markings) passed
// through Scrub. "report" is null when the stored document is not JSON.
boost::json::object ReportForCoordinators(const StoredReportRow& row);

// {id, version, kind, partner, contact, channel, status, attempts, fallback_of,
// delivered_at, last_error}: who was sent what and how it went; never the address.
boost::json::object DeliveryForCoordinators(const DeliveryRow& row);

}  // namespace ldis::engine
