#pragma once
// The photos' queries, written once for both stores (issue 17 §3); each store adds its
// WHERE with its own placeholders.

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "ldis/engine/store.hpp"

namespace ldis::engine::photos_sql {

// A PhotoRow's columns, in its order.
inline constexpr const char* kColumns =
    "p.id, coalesce(p.report_id, ''), p.uploaded_by, p.sha256, p.sha1, p.width, p.height, "
    "p.bytes, p.created_at_ms";
// The photos of the reports of an alert's signal (the alert is `a`).
inline constexpr const char* kOfAlerts =
    " FROM photos p JOIN reports r ON r.id = p.report_id JOIN signal_reports sr ON "
    "sr.report_seq = r.seq JOIN alerts a ON a.signal_id = sr.signal_id ";

// Retention: the photos of reports received before ?1, and uploads no report named that were
// made before ?2 (a day after their upload).
inline constexpr const char* kPurge =
    "DELETE FROM photos WHERE (report_id IS NULL AND created_at_ms < ?2) OR report_id IN "
    "(SELECT id FROM reports WHERE received_at_ms < ?1)";
inline constexpr std::int64_t kUnnamedForMs = 24LL * 3600 * 1000;

// What a version keeps of the photos chosen for it (alert_versions.photos): enough for CAP's
// <resource> and the email's parts without reading the photos' rows again.
inline std::string VersionPhotos(const std::vector<PhotoRow>& chosen) {
    boost::json::array out;
    for (const auto& p : chosen)
        out.push_back({{"id", p.id},
                       {"sha1", p.sha1},
                       {"bytes", p.bytes},
                       {"width", p.width},
                       {"height", p.height}});
    return boost::json::serialize(out);
}

// Why a coordinator's choice cannot be: a photo not of this alert's reports.
inline Error NotOfTheAlert(const std::string& id, const std::string& reference) {
    return Error{"the photo " + id + " is not from a report of " + reference +
                 ": choose from the photos its record shows"};
}

}  // namespace ldis::engine::photos_sql
