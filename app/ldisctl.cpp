// ldisctl: the LDIS command-line client (DESIGN §9). Most commands talk to the HTTP API
// (--server, --token or LDIS_SERVER, LDIS_TOKEN); the admin commands, and any command given
// --db, work on the database file on the host.
#include <CLI/CLI.hpp>

#include <sys/stat.h>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "api_client.hpp"
#include "ldis/engine/charts.hpp"
#include "ldis/engine/panel.hpp"
#include "ldis/engine/report_store.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/views.hpp"
#include "ldisctl_output.hpp"
#include "ldisctl_store.hpp"

using ldis::app::ctl::Encode;
using ldis::app::ctl::OpenStore;
using ldis::app::ctl::PrintAlerts;
using ldis::app::ctl::Report;
using ldis::app::ctl::Str;

int main(int argc, char** argv) {
    ::umask(077);  // a database ldisctl creates is for its owner alone, as ldisd's are
    CLI::App cli{"ldisctl: the LDIS command-line client"};
    cli.require_subcommand(1);
    cli.footer(
        "Exit codes: 0 done; 2 the request was refused as invalid (a rejected report); 3 the "
        "database file cannot be used; 4 not found; 5 refused by the alert's state, or the "
        "audit log is broken; 6 no answer from the server, or a server error; 7 not signed in "
        "or not allowed (check --token); 8 a grading replay would lower a live red alert.");
    std::string server =
        std::getenv("LDIS_SERVER") ? std::getenv("LDIS_SERVER") : "http://127.0.0.1:8080";
    std::string token = std::getenv("LDIS_TOKEN") ? std::getenv("LDIS_TOKEN") : "";
    cli.add_option("--server", server, "the LDIS HTTP API (or LDIS_SERVER)")->capture_default_str();
    cli.add_option("--token", token, "a bearer token (or LDIS_TOKEN)");

    std::string file;
    auto* submit =
        cli.add_subcommand("submit", "send a report (a JSON file, or - for standard input)");
    submit->add_option("file", file, "the report, ldis.report/1")->required();
    bool submit_json = false;
    submit->add_flag("--json", submit_json, "print the receipt as JSON");

    auto* reports = cli.add_subcommand("reports", "stored reports (read from the database file)");
    reports->require_subcommand(1);
    std::string db;
    bool as_json = false;
    std::size_t limit = 20;
    auto* list = reports->add_subcommand("list", "the newest reports, newest first");
    list->add_option("--db", db, "the SQLite file (store.path) or postgresql://... (store.url)")
        ->required();
    list->add_option("--limit", limit, "how many")->capture_default_str();
    list->add_flag("--json", as_json, "print JSON instead of a table");
    std::string id;
    auto* show = reports->add_subcommand("show", "one report, by id or reference");
    show->add_option("id", id, "report id (UUID) or reference (KM-R000042)")->required();
    show->add_option("--db", db,
                     "read the SQLite file (store.path) or postgresql://... instead of the API");
    auto* alerts = cli.add_subcommand("alerts", "alerts: list, show, approve, update, cancel");
    alerts->require_subcommand(1);
    auto* alerts_list = alerts->add_subcommand("list", "alerts, newest first, with filters");
    alerts_list->add_option(
        "--db", db, "read the SQLite file (store.path) or postgresql://... instead of the API");
    alerts_list->add_flag("--json", as_json, "print JSON instead of a table");
    std::map<std::string, std::string> filters;
    for (const char* f : {"level", "status", "authority", "district", "substance", "since", "until",
                          "q", "limit", "offset"}) {
        alerts_list->add_option(std::string("--") + f, filters[f], std::string("filter: ") + f);
    }
    std::string alert_id;
    auto* alerts_show =
        alerts->add_subcommand("show", "one alert with its versions, deliveries and audit");
    alerts_show->add_option("id", alert_id, "the reference, KM-2026-0007")->required();
    alerts_show->add_flag("--json", as_json, "print JSON");
    std::map<std::string, CLI::App*> actions;
    for (const char* a : {"approve", "update", "cancel"}) {
        actions[a] = alerts->add_subcommand(a, std::string(a) + " an alert (coordinator)");
        actions[a]->add_option("id", alert_id, "the reference, KM-2026-0007")->required();
    }
    std::string override_level, override_reason;
    bool override_lift = false;
    auto* alerts_override = alerts->add_subcommand(
        "override",
        "set the level of an alert's signal by hand, with a reason, or --lift it "
        "(coordinator); it holds over new reports until lifted");
    alerts_override->add_option("id", alert_id, "the reference, KM-2026-0007")->required();
    alerts_override->add_option("--level", override_level, "red, amber, green or none")
        ->check(CLI::IsMember({"red", "amber", "green", "none"}));
    alerts_override->add_option("--reason", override_reason, "why, 10 to 500 characters; audited")
        ->required();
    alerts_override->add_flag("--lift", override_lift, "give the level back to the rules");
    auto* partners = cli.add_subcommand("partners", "partners and their subscriptions");
    partners->require_subcommand(1);
    auto* partners_list = partners->add_subcommand("list", "every partner (coordinator)");
    partners_list->add_flag("--json", as_json, "print JSON");

    auto* audit = cli.add_subcommand("audit", "the tamper-evident audit log");
    audit->require_subcommand(1);
    auto* verify =
        audit->add_subcommand("verify", "check the hash chain; name the first broken entry");
    verify->add_option("--db", db, "the SQLite file (store.path) or postgresql://... (store.url)")
        ->required();
    auto* deliveries =
        cli.add_subcommand("deliveries", "the outbox: who was sent what, and how it went");
    deliveries->require_subcommand(1);
    auto* deliveries_list = deliveries->add_subcommand(
        "list", "every delivery, oldest first, with status and last error");
    deliveries_list
        ->add_option("--db", db, "the SQLite file (store.path) or postgresql://... (store.url)")
        ->required();
    std::string alert_reference;
    deliveries_list->add_option("--alert", alert_reference, "only this alert (KM-2026-0007)");
    deliveries_list->add_flag("--json", as_json, "print JSON instead of a table");
    auto* report =
        cli.add_subcommand("report", "reports on what happened (read from the database)");
    report->require_subcommand(1);
    auto* quarterly = report->add_subcommand(
        "quarterly", "a quarter's reports, alerts, times to alert and acknowledgements (2026-Q4)");
    std::string quarter_name, report_format = "csv";
    quarterly->add_option("quarter", quarter_name, "the quarter, as 2026-Q4")->required();
    quarterly->add_option("--format", report_format, "csv (the default) or html (prints on A4)")
        ->check(CLI::IsMember({"csv", "html"}));
    quarterly
        ->add_option("--db", db, "the SQLite file (store.path) or postgresql://... (store.url)")
        ->required();
    auto* purge = cli.add_subcommand(
        "purge",
        "remove the free text and contact of every report received before a date "
        "(what ldisd does daily after store.retention_days)");
    purge->add_option("--db", db, "the SQLite file (store.path) or postgresql://... (store.url)")
        ->required();
    std::string purge_before;
    purge->add_option("--before", purge_before, "a date, 2024-11-29: reports received before it")
        ->required();
    auto* tokens = cli.add_subcommand("tokens", "API bearer tokens (stored as hashes)");
    tokens->require_subcommand(1);
    auto* tokens_create =
        tokens->add_subcommand("create", "make a token and print it once: keep it safe");
    tokens_create
        ->add_option("--db", db, "the SQLite file (store.path) or postgresql://... (store.url)")
        ->required();
    std::string role, name;
    tokens_create->add_option("--role", role, "submitter, coordinator or admin")
        ->required()
        ->check(CLI::IsMember({"submitter", "coordinator", "admin"}));
    tokens_create->add_option("--name", name, "who or what uses it, e.g. \"Medway ED form\"")
        ->required();
    auto* tokens_list =
        tokens->add_subcommand("list", "every token: id, name, role, created, revoked, sessions");
    tokens_list
        ->add_option("--db", db, "the SQLite file (store.path) or postgresql://... (store.url)")
        ->required();
    tokens_list->add_flag("--json", as_json, "print JSON instead of a table");
    auto* tokens_revoke = tokens->add_subcommand(
        "revoke", "revoke a token: its API calls and every web session signed in with it end now");
    tokens_revoke
        ->add_option("--db", db, "the SQLite file (store.path) or postgresql://... (store.url)")
        ->required();
    std::int64_t token_id = 0;
    tokens_revoke->add_option("id", token_id, "the token's id (ldisctl tokens list)")->required();
    std::string backup_to, restore_from;
    auto* backup = cli.add_subcommand(
        "backup", "a consistent copy of the database while ldisd runs (SQLite's online backup)");
    backup->add_option("--db", db, "the SQLite file (store.path)")->required();
    backup->add_option("--to", backup_to, "the backup file to write (0600)")->required();
    auto* restore = cli.add_subcommand(
        "restore",
        "check a backup (integrity, schema, audit chain), then put it in place of the "
        "database; stop ldisd first");
    restore->add_option("--from", restore_from, "the backup file")->required();
    restore->add_option("--db", db, "the SQLite file to replace (store.path)")->required();
    auto* grading = cli.add_subcommand(
        "grading", "check grading rules before they change: a panel's table, a replay");
    grading->require_subcommand(1);
    std::string rules_path = "config/rules.toml", substances_path = "config/substances.toml";
    std::string table_path;
    auto* grading_test = grading->add_subcommand(
        "test",
        "grade every incident of a panel's table (tests/grading/panel.toml) and print "
        "the agreement; exit 1 when any incident disagrees");
    grading_test->add_option("file", table_path, "the table, TOML")->required();
    auto* replay = grading->add_subcommand(
        "replay",
        "grade every stored signal again with new rules, writing nothing, and print what would "
        "change; exit 8 when a live red alert would come down");
    replay->add_option("--db", db, "the SQLite file (store.path); read only")->required();
    replay->add_flag("--json", as_json, "print JSON");
    for (auto* sub : {grading_test, replay}) {
        sub->add_option("--rules", rules_path, "the rules file, shipped or proposed")
            ->capture_default_str();
        sub->add_option("--substances", substances_path, "the substances file")
            ->capture_default_str();
    }
    std::string migrate_from, migrate_to;
    auto* migrate = cli.add_subcommand(
        "migrate", "copy a whole SQLite history into an empty PostgreSQL database (admin)");
    migrate->add_option("--from", migrate_from, "sqlite:PATH, the SQLite file (store.path)")
        ->required();
    migrate
        ->add_option("--to", migrate_to,
                     "postgresql://... (store.url); the password in a passfile, not here")
        ->required();
    CLI11_PARSE(cli, argc, argv);

    try {
        if (migrate->parsed()) return ldis::app::ctl::Migrate(migrate_from, migrate_to);
        while (!server.empty() && server.back() == '/') server.pop_back();
        if (submit->parsed()) {
            std::string body;
            if (file == "-") {
                body.assign(std::istreambuf_iterator<char>(std::cin),
                            std::istreambuf_iterator<char>());
            } else {
                std::ifstream in(file, std::ios::binary);
                if (!in) {
                    std::cerr << "ldisctl: cannot read " << file << '\n';
                    return 2;
                }
                body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
            }
            const auto r = ldis::app::CallApi("POST", server + "/api/v1/reports", token, body);
            const int code = Report(r);
            if (r.status == 200 || r.status == 202) {
                if (submit_json) {
                    std::cout << r.body << '\n';
                } else {
                    const auto v = boost::json::parse(r.body).as_object();
                    std::cout << Str(v.at("status")) << ": reference " << Str(v.at("reference"))
                              << ", level " << Str(v.at("level"));
                    if (!Str(v.at("alert_id")).empty())
                        std::cout << ", alert " << Str(v.at("alert_id"));
                    std::cout << '\n';
                }
            }
            return code;
        }
        if (alerts_list->parsed() && db.empty()) {
            std::string query;
            for (const auto& [k, v] : filters) {
                if (!v.empty()) query += (query.empty() ? "?" : "&") + k + "=" + Encode(v);
            }
            const auto r = ldis::app::CallApi("GET", server + "/api/v1/alerts" + query, token);
            if (r.status != 200) return Report(r);
            if (as_json) {
                std::cout << r.body << '\n';
                return 0;
            }
            const auto v = boost::json::parse(r.body).as_object();
            PrintAlerts(v.at("alerts").as_array());
            std::cout << v.at("alerts").as_array().size() << " of " << Str(v.at("total"))
                      << " alert(s); * issued provisionally, awaiting a coordinator\n";
            return 0;
        }
        if (alerts_show->parsed()) {
            const auto r =
                ldis::app::CallApi("GET", server + "/api/v1/alerts/" + Encode(alert_id), token);
            if (r.status != 200) return Report(r);
            if (as_json) {
                std::cout << r.body << '\n';
                return 0;
            }
            const auto v = boost::json::parse(r.body).as_object();
            PrintAlerts(boost::json::array{v});
            std::cout << "\n" << Str(v.at("sections").at("summary")) << "\n\n";
            std::cout << v.at("versions").as_array().size() << " version(s), "
                      << v.at("linked_reports").as_array().size() << " report(s), "
                      << v.at("deliveries").as_array().size() << " deliveries, "
                      << v.at("acknowledgements").as_array().size() << " acknowledgement(s), "
                      << v.at("audit").as_array().size() << " audit entries\n";
            return 0;
        }
        if (alerts_override->parsed()) {
            if (override_lift == !override_level.empty()) {
                std::cerr << "ldisctl: give --level LEVEL, or --lift\n";
                return 2;
            }
            boost::json::object body{{"reason", override_reason}};
            if (override_lift)
                body["lift"] = true;
            else
                body["level"] = override_level;
            const auto r = ldis::app::CallApi(
                "POST", server + "/api/v1/alerts/" + Encode(alert_id) + "/override", token,
                boost::json::serialize(body));
            if (r.status != 200) return Report(r);
            const auto v = boost::json::parse(r.body).as_object();
            std::cout << "signal " << Str(v.at("signal")) << " is now " << Str(v.at("level"))
                      << (v.at("override").is_null()
                              ? " (set by the rules)"
                              : " (set by hand; the rules give " + Str(v.at("rules_level")) + ")");
            if (v.at("alert").is_object())
                std::cout << "; alert " << Str(v.at("alert").at("reference")) << " version "
                          << Str(v.at("alert").at("version")) << ", "
                          << Str(v.at("alert").at("status"));
            std::cout << '\n';
            return 0;
        }
        for (const auto& [action, command] : actions) {
            if (!command->parsed()) continue;
            const auto r = ldis::app::CallApi(
                "POST", server + "/api/v1/alerts/" + Encode(alert_id) + "/" + action, token);
            if (r.status != 200) return Report(r);
            const auto v = boost::json::parse(r.body).as_object();
            std::cout << Str(v.at("reference")) << " is now " << Str(v.at("status")) << " (version "
                      << Str(v.at("version")) << ")\n";
            return 0;
        }
        if (partners_list->parsed()) {
            const auto r = ldis::app::CallApi("GET", server + "/api/v1/partners", token);
            if (r.status != 200) return Report(r);
            if (as_json) {
                std::cout << r.body << '\n';
                return 0;
            }
            const auto v = boost::json::parse(r.body).as_object();
            std::cout << std::left << std::setw(22) << "ID" << std::setw(56) << "NAME"
                      << "CONTACTS\n";
            for (const auto& p : v.at("partners").as_array()) {
                std::string contacts;
                for (const auto& c : p.at("contacts").as_array())
                    contacts += (contacts.empty() ? "" : ", ") + Str(c.at("name")) + " (" +
                                Str(c.at("channel")) + ")";
                std::cout << std::setw(22) << Str(p.at("id")) << std::setw(56) << Str(p.at("name"))
                          << contacts << '\n';
            }
            std::cout << v.at("partners").as_array().size()
                      << " partner(s); coordinators: " << Str(v.at("coordinators")) << '\n';
            return 0;
        }
        if (show->parsed() && db.empty()) {
            const auto r =
                ldis::app::CallApi("GET", server + "/api/v1/reports/" + Encode(id), token);
            if (r.status != 200) return Report(r);
            std::cout << r.body << '\n';
            return 0;
        }
        if (list->parsed()) return ldis::app::ctl::PrintReports(*OpenStore(db), limit, as_json);
        if (alerts_list->parsed())  // with --db
            return ldis::app::ctl::PrintStoredAlerts(*OpenStore(db), as_json);
        if (tokens_create->parsed()) {
            auto store = OpenStore(db);
            const auto created = store->CreateToken(name, role);
            if (!created.ok()) {
                std::cerr << "ldisctl: " << created.error().message << '\n';
                return 3;
            }
            std::cout << created.value() << '\n';
            std::cerr << "ldisctl: token for \"" << name << "\" (" << role
                      << ") created; it is shown only now\n";
            return 0;
        }
        if (quarterly->parsed()) {
            const auto quarter = ldis::engine::ParseQuarter(quarter_name);
            if (!quarter.ok()) {
                std::cerr << "ldisctl: " << quarter.error().message << '\n';
                return 2;
            }
            auto store = OpenStore(db);
            const auto data = store->ReadInsight(quarter.value().from_ms, quarter.value().to_ms);
            const auto tables = ldis::engine::QuarterlyTables(data);
            const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            std::cout << (report_format == "html"
                              ? ldis::engine::QuarterlyHtml(quarter.value(), tables, data,
                                                            "LDIS Kent and Medway", now)
                              : ldis::engine::QuarterlyCsv(quarter.value(), tables));
            return 0;
        }
        if (purge->parsed()) {
            std::tm tm{};
            std::istringstream in(purge_before);
            in >> std::get_time(&tm, "%Y-%m-%d");
            if (in.fail() || purge_before.size() != 10) {
                std::cerr << "ldisctl: --before takes a date as 2024-11-29, not \"" << purge_before
                          << "\"\n";
                return 2;
            }
            const std::int64_t before =
                ldis::engine::DaysFromCivil(tm.tm_year + 1900, static_cast<unsigned>(tm.tm_mon + 1),
                                            static_cast<unsigned>(tm.tm_mday)) *
                86400000LL;
            auto store = OpenStore(db);
            const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            const auto purged = store->PurgeFreeText(before, now, "ldisctl purge");
            if (!purged.ok()) {
                std::cerr << "ldisctl: " << purged.error().message << '\n';
                return 3;
            }
            std::cout << purged.value() << " report(s) received before " << purge_before
                      << " lost their free text and contact\n";
            return 0;
        }
        if (tokens_list->parsed()) return ldis::app::ctl::PrintTokens(*OpenStore(db), as_json);
        if (tokens_revoke->parsed()) {
            auto store = OpenStore(db);
            const auto revoked = store->RevokeToken(token_id, "ldisctl");
            if (!revoked.ok()) {
                std::cerr << "ldisctl: " << revoked.error().message << '\n';
                return 3;
            }
            std::cout << "token " << token_id << " revoked; " << revoked.value()
                      << " web session(s) ended\n";
            return 0;
        }
        if (deliveries_list->parsed())
            return ldis::app::ctl::PrintDeliveries(*OpenStore(db), alert_reference, as_json);
        if ((backup->parsed() || restore->parsed()) && ldis::app::ctl::IsPostgres(db)) {
            std::cerr << "ldisctl: backup and restore are SQLite's; a PostgreSQL database is "
                         "backed up with pg_dump or pg_basebackup (docs/postgresql.md)\n";
            return 2;
        }
        if (backup->parsed()) {
            const auto copied = ldis::engine::ReportStore::Backup(db, backup_to);
            std::cout << "backed up " << db << " to " << backup_to << ": " << copied
                      << " reports\n";
            return 0;
        }
        if (restore->parsed()) {
            const auto done = ldis::engine::ReportStore::Restore(restore_from, db);
            std::cout << "restored " << restore_from << " to " << db << ": " << done.reports
                      << " reports, audit chain intact (" << done.audit_entries
                      << " entries), schema " << done.schema_from;
            if (done.schema_from != ldis::engine::ReportStore::kSchemaVersion)
                std::cout << " migrated to " << ldis::engine::ReportStore::kSchemaVersion;
            std::cout << '\n';
            if (!done.kept_previous.empty())
                std::cout << "the file it replaced is kept as " << done.kept_previous << '\n';
            return 0;
        }
        if (grading_test->parsed() || replay->parsed()) {
            ldis::engine::Substances substances;
            std::optional<ldis::engine::Rules> rules;
            try {
                substances = ldis::engine::Substances::LoadFile(substances_path);
                rules = ldis::engine::Rules::LoadFile(rules_path, substances);
            } catch (const std::exception& e) {
                std::cerr << "ldisctl: " << e.what() << '\n';
                return 2;
            }
            if (replay->parsed()) {
                const auto result = ldis::engine::Replay(
                    ldis::app::ctl::IsPostgres(db) ? OpenStore(db)->Signals()
                                                   : ldis::engine::ReportStore::ReadSignals(db),
                    substances, *rules);
                std::cout << (as_json ? ldis::engine::ReplayToJson(result) + "\n"
                                      : ldis::engine::ReplayToText(result));
                return result.lowered_live_reds > 0 ? 8 : 0;
            }
            return ldis::app::ctl::RunPanelTable(table_path, substances, *rules, rules_path,
                                                 substances_path);
        }
        if (verify->parsed()) {
            auto store = OpenStore(db);
            const auto result = store->VerifyAudit();
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
            const auto row = store->Find(id);
            if (!row) {
                std::cerr << "ldisctl: no report with id or reference " << id << " in " << db
                          << '\n';
                return 4;
            }
            std::cout << boost::json::serialize(ldis::engine::ReportForCoordinators(*row)) << '\n';
            return 0;
        }
    } catch (const std::exception& e) {
        std::cerr << "ldisctl: " << e.what() << '\n';
        return 3;
    }
    return 0;
}
