#include "ldis/engine/views.hpp"

#include <boost/json.hpp>

#include "ldis/engine/scrubber.hpp"
#include "ldis/engine/text.hpp"

namespace ldis::engine {

namespace json = boost::json;

json::object ReportForCoordinators(const StoredReportRow& row) {
    json::error_code ec;
    auto doc = json::parse(row.document, ec);
    if (!ec && doc.is_object()) {
        auto& r = doc.as_object();
        // Every field a person typed is scrubbed, not the description alone: a coordinator
        // reads the facts, and the scrubber's markers say where something was removed.
        const auto scrub = [](json::value* v) {
            if (v && v->is_string()) *v = Scrub(std::string(v->as_string())).text;
        };
        if (auto* source = r.if_contains("source"); source && source->is_object()) {
            auto& s = source->as_object();
            s.erase("contact");  // internal: never leaves the system
            for (const char* key : {"organisation", "role"}) scrub(s.if_contains(key));
        }
        scrub(r.if_contains("description"));
        if (auto* list = r.if_contains("symptoms"); list && list->is_array())
            for (auto& item : list->as_array()) scrub(&item);
        if (auto* list = r.if_contains("substances"); list && list->is_array()) {
            for (auto& item : list->as_array()) {
                if (!item.is_object()) continue;
                for (const char* key : {"name", "sold_as", "appearance", "markings"})
                    scrub(item.as_object().if_contains(key));
            }
        }
    }
    return {{"id", row.id},
            {"reference", row.reference},
            {"received_at", IsoTimeMs(row.received_at_ms)},
            {"channel", row.channel},
            {"report", ec ? json::value(nullptr) : std::move(doc)}};
}

json::object DeliveryForCoordinators(const DeliveryRow& d) {
    return {{"id", d.id},
            {"version", d.version},
            {"kind", d.kind},
            {"partner", d.partner},
            {"contact", d.contact},
            {"channel", d.channel},
            {"status", d.status},
            {"attempts", d.attempts},
            {"fallback_of", d.fallback_of},
            {"delivered_at", IsoTimeMs(d.delivered_at_ms)},  // "" until delivered
            {"last_error", d.last_error}};
}

}  // namespace ldis::engine
