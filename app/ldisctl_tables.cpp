// ldisctl's tables of what the database holds (ldisctl_output.hpp), and the grading
// panel's table run against the rules.
#include <iomanip>
#include <iostream>
#include <map>

#include "ldis/engine/panel.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/views.hpp"
#include "ldisctl_output.hpp"

namespace ldis::app::ctl {

int PrintReports(engine::Store& store, std::size_t limit, bool as_json) {
    const auto rows = store.Recent(limit);
    if (as_json) {
        boost::json::array out;
        for (const auto& row : rows) out.push_back(engine::ReportForCoordinators(row));
        std::cout << boost::json::serialize(out) << '\n';
        return 0;
    }
    std::cout << std::left << std::setw(12) << "REFERENCE" << std::setw(22) << "RECEIVED"
              << std::setw(8) << "VIA" << std::setw(16) << "SOURCE" << std::setw(20) << "DISTRICT"
              << "ID\n";
    for (const auto& row : rows) {
        std::cout << std::setw(12) << row.reference << std::setw(22)
                  << FormatTime(row.received_at_ms) << std::setw(8) << row.channel << std::setw(16)
                  << row.source_type << std::setw(20) << row.district << row.id << '\n';
    }
    std::cout << store.CountReports() << " report(s) stored\n";
    return 0;
}

int PrintStoredAlerts(engine::Store& store, bool as_json) {
    const auto rows = store.Alerts();
    if (as_json) {
        boost::json::array out;
        for (const auto& a : rows) {
            out.push_back({{"reference", a.reference},
                           {"status", ldis::engine::ToString(a.status)},
                           {"level", ldis::engine::ToString(a.level)},
                           {"version", a.version},
                           {"provisional", a.provisional},
                           {"confidence", a.confidence},
                           {"family", a.family},
                           {"district", a.district},
                           {"reports", a.reports},
                           {"scrubbed", a.scrubbed}});
        }
        std::cout << boost::json::serialize(out) << '\n';
        return 0;
    }
    std::cout << std::left << std::setw(14) << "REFERENCE" << std::setw(10) << "STATUS"
              << std::setw(7) << "LEVEL" << std::setw(5) << "VER" << std::setw(24) << "FAMILY"
              << std::setw(20) << "DISTRICT" << std::setw(9) << "REPORTS"
              << "SCRUBBED\n";
    for (const auto& a : rows) {
        std::cout << std::setw(14) << a.reference << std::setw(10)
                  << (std::string(ldis::engine::ToString(a.status)) + (a.provisional ? "*" : ""))
                  << std::setw(7) << ldis::engine::ToString(a.level) << std::setw(5) << a.version
                  << std::setw(24) << a.family << std::setw(20) << a.district << std::setw(9)
                  << a.reports << a.scrubbed << '\n';
    }
    std::cout << rows.size() << " alert(s); * issued provisionally, awaiting a coordinator\n";
    return 0;
}

int PrintTokens(engine::Store& store, bool as_json) {
    const auto rows = store.Tokens();
    if (as_json) {
        boost::json::array out;
        for (const auto& t : rows) {
            out.push_back(
                {{"id", t.id},
                 {"name", t.name},
                 {"role", t.role},
                 {"created", ldis::engine::IsoTimeMs(t.created_at_ms)},
                 {"revoked", t.revoked_at_ms > 0
                                 ? boost::json::value(ldis::engine::IsoTimeMs(t.revoked_at_ms))
                                 : boost::json::value(nullptr)},
                 {"sessions", t.sessions}});
        }
        std::cout << boost::json::serialize(out) << '\n';
        return 0;
    }
    std::cout << std::left << std::setw(5) << "ID" << std::setw(32) << "NAME" << std::setw(13)
              << "ROLE" << std::setw(27) << "CREATED" << std::setw(27) << "REVOKED"
              << "SESSIONS\n";
    for (const auto& t : rows) {
        std::cout << std::setw(5) << t.id << std::setw(32) << t.name << std::setw(13) << t.role
                  << std::setw(27) << ldis::engine::IsoTimeMs(t.created_at_ms) << std::setw(27)
                  << (t.revoked_at_ms > 0 ? ldis::engine::IsoTimeMs(t.revoked_at_ms) : "-")
                  << t.sessions << '\n';
    }
    std::cout << rows.size() << " token(s)\n";
    return 0;
}

int PrintDeliveries(engine::Store& store, const std::string& alert_reference, bool as_json) {
    const auto rows = store.Deliveries(alert_reference);
    if (as_json) {
        boost::json::array out;
        for (const auto& d : rows) {
            // The API's delivery, with the alert it belongs to and whether it was acknowledged.
            auto o = engine::DeliveryForCoordinators(d);
            o["alert"] = d.reference;
            o["acknowledged"] = d.acknowledged_at_ms > 0;
            out.push_back(std::move(o));
        }
        std::cout << boost::json::serialize(out) << '\n';
        return 0;
    }
    std::cout << std::left << std::setw(7) << "ID" << std::setw(14) << "ALERT" << std::setw(5)
              << "VER" << std::setw(12) << "KIND" << std::setw(36) << "RECIPIENT" << std::setw(13)
              << "CHANNEL" << std::setw(10) << "STATUS" << std::setw(6) << "TRIES" << std::setw(5)
              << "ACK"
              << "LAST ERROR\n";
    std::map<std::string, int> counts;
    for (const auto& d : rows) {
        ++counts[d.status];
        std::cout << std::setw(7) << d.id << std::setw(14) << d.reference << std::setw(5)
                  << d.version << std::setw(12) << d.kind << std::setw(36)
                  << (d.partner.empty() ? d.address : d.partner + "/" + d.contact) << std::setw(13)
                  << d.channel << std::setw(10) << d.status << std::setw(6) << d.attempts
                  << std::setw(5) << (d.acknowledged_at_ms > 0 ? "yes" : "-") << d.last_error
                  << '\n';
    }
    std::cout << rows.size() << " deliveries";
    for (const auto& [status, n] : counts) std::cout << "; " << n << " " << status;
    std::cout << '\n';
    return 0;
}

int RunPanelTable(const std::string& table_path, const engine::Substances& substances,
                  const engine::Rules& rules, const std::string& rules_path,
                  const std::string& substances_path) {
    ldis::engine::PanelTable table;
    try {
        table = ldis::engine::LoadPanelTable(table_path);
    } catch (const std::exception& e) {
        std::cerr << "ldisctl: " << e.what() << '\n';
        return 2;
    }
    const auto verdicts = ldis::engine::RunPanel(table, substances, rules);
    std::size_t agree = 0;
    for (const auto& v : verdicts) {
        if (v.agrees) {
            ++agree;
            continue;
        }
        std::cout << "DISAGREES  " << table_path << ":" << v.incident->line << "  "
                  << v.incident->name << "\n  the panel: " << v.incident->level << ", "
                  << v.incident->reason << "\n  the rules: " << v.difference << "\n";
    }
    std::cout << "grading: " << agree << " of " << verdicts.size()
              << " incidents agree with the panel (" << std::fixed << std::setprecision(1)
              << (verdicts.empty()
                      ? 100.0
                      : 100.0 * static_cast<double>(agree) / static_cast<double>(verdicts.size()))
              << "%), rules " << rules_path << ", substances " << substances_path << "\n";
    return agree == verdicts.size() ? 0 : 1;
}

}  // namespace ldis::app::ctl
