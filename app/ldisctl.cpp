// ldisctl: the LDIS command-line client. This release has the commands that work on the
// database file on the host; the HTTP commands of DESIGN §9 come with the HTTP API.
#include <CLI/CLI.hpp>

#include <boost/json.hpp>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <map>

#include "ldis/engine/report_store.hpp"

namespace {

std::string FormatTime(std::int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    std::ostringstream out;
    out << std::put_time(&utc, "%Y-%m-%d %H:%M:%SZ");
    return out.str();
}

boost::json::object RowJson(const ldis::engine::StoredReportRow& row) {
    boost::json::error_code ec;
    auto document = boost::json::parse(row.document, ec);
    // The reporter's contact stays inside the system.
    if (!ec && document.is_object()) {
        if (auto* source = document.as_object().if_contains("source");
            source && source->is_object()) {
            source->as_object().erase("contact");
        }
    }
    return {{"id", row.id},
            {"reference", row.reference},
            {"received_at_ms", row.received_at_ms},
            {"channel", row.channel},
            {"source_type", row.source_type},
            {"authority", row.authority},
            {"district", row.district},
            {"report", ec ? boost::json::value(nullptr) : document}};
}

ldis::engine::ReportStore OpenStore(const std::string& path) {
    ldis::engine::StoreOptions options;
    options.path = path;
    return ldis::engine::ReportStore(options);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"ldisctl: the LDIS command-line client"};
    cli.require_subcommand(1);

    auto* reports = cli.add_subcommand("reports", "stored reports (read from the database file)");
    reports->require_subcommand(1);
    std::string db;
    bool as_json = false;
    std::size_t limit = 20;
    auto* list = reports->add_subcommand("list", "the newest reports, newest first");
    list->add_option("--db", db, "the SQLite file (store.path)")->required();
    list->add_option("--limit", limit, "how many")->capture_default_str();
    list->add_flag("--json", as_json, "print JSON instead of a table");
    std::string id;
    auto* show = reports->add_subcommand("show", "one report, by id or reference");
    show->add_option("id", id, "report id (UUID) or reference (KM-R000042)")->required();
    show->add_option("--db", db, "the SQLite file (store.path)")->required();
    auto* alerts = cli.add_subcommand("alerts", "alerts (read from the database file)");
    alerts->require_subcommand(1);
    auto* alerts_list = alerts->add_subcommand("list", "every alert, newest first");
    alerts_list->add_option("--db", db, "the SQLite file (store.path)")->required();
    alerts_list->add_flag("--json", as_json, "print JSON instead of a table");

    auto* audit = cli.add_subcommand("audit", "the tamper-evident audit log");
    audit->require_subcommand(1);
    auto* verify =
        audit->add_subcommand("verify", "check the hash chain; name the first broken entry");
    verify->add_option("--db", db, "the SQLite file (store.path)")->required();
    auto* deliveries =
        cli.add_subcommand("deliveries", "the outbox: who was sent what, and how it went");
    deliveries->require_subcommand(1);
    auto* deliveries_list = deliveries->add_subcommand(
        "list", "every delivery, oldest first, with status and last error");
    deliveries_list->add_option("--db", db, "the SQLite file (store.path)")->required();
    std::string alert_reference;
    deliveries_list->add_option("--alert", alert_reference, "only this alert (KM-2026-0007)");
    deliveries_list->add_flag("--json", as_json, "print JSON instead of a table");
    auto* tokens = cli.add_subcommand("tokens", "API bearer tokens (stored as hashes)");
    tokens->require_subcommand(1);
    auto* tokens_create =
        tokens->add_subcommand("create", "make a token and print it once: keep it safe");
    tokens_create->add_option("--db", db, "the SQLite file (store.path)")->required();
    std::string role, name;
    tokens_create->add_option("--role", role, "submitter, coordinator or admin")
        ->required()
        ->check(CLI::IsMember({"submitter", "coordinator", "admin"}));
    tokens_create->add_option("--name", name, "who or what uses it, e.g. \"Medway ED form\"")
        ->required();
    CLI11_PARSE(cli, argc, argv);

    try {
        if (list->parsed()) {
            auto store = OpenStore(db);
            const auto rows = store.Recent(limit);
            if (as_json) {
                boost::json::array out;
                for (const auto& row : rows) out.push_back(RowJson(row));
                std::cout << boost::json::serialize(out) << '\n';
                return 0;
            }
            std::cout << std::left << std::setw(12) << "REFERENCE" << std::setw(22) << "RECEIVED"
                      << std::setw(8) << "VIA" << std::setw(16) << "SOURCE" << std::setw(20)
                      << "DISTRICT"
                      << "ID\n";
            for (const auto& row : rows) {
                std::cout << std::setw(12) << row.reference << std::setw(22)
                          << FormatTime(row.received_at_ms) << std::setw(8) << row.channel
                          << std::setw(16) << row.source_type << std::setw(20) << row.district
                          << row.id << '\n';
            }
            std::cout << store.CountReports() << " report(s) stored\n";
            return 0;
        }
        if (alerts_list->parsed()) {
            auto store = OpenStore(db);
            const auto rows = store.Alerts();
            if (as_json) {
                boost::json::array out;
                for (const auto& a : rows) {
                    out.push_back({{"reference", a.reference},
                                   {"status", a.status},
                                   {"level", a.level},
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
                      << std::setw(7) << "LEVEL" << std::setw(5) << "VER" << std::setw(24)
                      << "FAMILY" << std::setw(20) << "DISTRICT" << std::setw(9) << "REPORTS"
                      << "SCRUBBED\n";
            for (const auto& a : rows) {
                std::cout << std::setw(14) << a.reference << std::setw(10)
                          << (a.status + (a.provisional ? "*" : "")) << std::setw(7) << a.level
                          << std::setw(5) << a.version << std::setw(24) << a.family << std::setw(20)
                          << a.district << std::setw(9) << a.reports << a.scrubbed << '\n';
            }
            std::cout << rows.size()
                      << " alert(s); * issued provisionally, awaiting a coordinator\n";
            return 0;
        }
        if (tokens_create->parsed()) {
            auto store = OpenStore(db);
            const auto token = store.CreateToken(name, role);
            if (!token.ok()) {
                std::cerr << "ldisctl: " << token.error().message << '\n';
                return 3;
            }
            std::cout << token.value() << '\n';
            std::cerr << "ldisctl: token for \"" << name << "\" (" << role
                      << ") created; it is shown only now\n";
            return 0;
        }
        if (deliveries_list->parsed()) {
            auto store = OpenStore(db);
            const auto rows = store.Deliveries(alert_reference);
            if (as_json) {
                boost::json::array out;
                for (const auto& d : rows) {
                    out.push_back({{"id", d.id},
                                   {"alert", d.reference},
                                   {"version", d.version},
                                   {"kind", d.kind},
                                   {"partner", d.partner},
                                   {"contact", d.contact},
                                   {"channel", d.channel},
                                   {"status", d.status},
                                   {"attempts", d.attempts},
                                   {"fallback_of", d.fallback_of},
                                   {"acknowledged", d.acknowledged_at_ms > 0},
                                   {"last_error", d.last_error}});
                }
                std::cout << boost::json::serialize(out) << '\n';
                return 0;
            }
            std::cout << std::left << std::setw(7) << "ID" << std::setw(14) << "ALERT"
                      << std::setw(5) << "VER" << std::setw(12) << "KIND" << std::setw(36)
                      << "RECIPIENT" << std::setw(13) << "CHANNEL" << std::setw(10) << "STATUS"
                      << std::setw(6) << "TRIES" << std::setw(5) << "ACK"
                      << "LAST ERROR\n";
            std::map<std::string, int> counts;
            for (const auto& d : rows) {
                ++counts[d.status];
                std::cout << std::setw(7) << d.id << std::setw(14) << d.reference << std::setw(5)
                          << d.version << std::setw(12) << d.kind << std::setw(36)
                          << (d.partner.empty() ? d.address : d.partner + "/" + d.contact)
                          << std::setw(13) << d.channel << std::setw(10) << d.status << std::setw(6)
                          << d.attempts << std::setw(5) << (d.acknowledged_at_ms > 0 ? "yes" : "-")
                          << d.last_error << '\n';
            }
            std::cout << rows.size() << " deliveries";
            for (const auto& [status, n] : counts) std::cout << "; " << n << " " << status;
            std::cout << '\n';
            return 0;
        }
        if (verify->parsed()) {
            auto store = OpenStore(db);
            const auto result = store.VerifyAudit();
            if (!result.ok()) {
                std::cerr << "ldisctl: audit log of " << db
                          << " is broken: " << result.error().message << '\n';
                return 5;
            }
            std::cout << "audit log OK: " << result.value() << " entries, hash chain intact\n";
            return 0;
        }
        if (show->parsed()) {
            auto store = OpenStore(db);
            const auto row = store.Find(id);
            if (!row) {
                std::cerr << "ldisctl: no report with id or reference " << id << " in " << db
                          << '\n';
                return 4;
            }
            std::cout << boost::json::serialize(RowJson(*row)) << '\n';
            return 0;
        }
    } catch (const std::exception& e) {
        std::cerr << "ldisctl: " << e.what() << '\n';
        return 3;
    }
    return 0;
}
