#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ldis/engine/feeds.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/pipeline.hpp"
#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/store.hpp"

namespace ldis::app {

// One problem with the configuration: where (file and line, or "--set") and what.
struct ConfigError {
    std::string file;
    int line = 0;
    std::string message;
    // "config/ldisd.toml:12: unknown key mqtt.urI (did you mean mqtt.uri?)"
    std::string ToString() const;
};

// Everything ldisd reads from config/ldisd.toml (DESIGN §9), with paths made absolute.
// Secrets are read from *_file keys or the environment, never the command line.
struct Config {
    std::string file;  // the config file, absolute

    std::string log_level = "info";

    std::string mqtt_uri;
    std::string mqtt_client_id;
    std::string mqtt_shared_group;
    std::string mqtt_username;
    std::string mqtt_password;  // secret, from mqtt.password_file or LDIS_MQTT_PASSWORD
    std::string mqtt_ca_file;
    std::string mqtt_cert_file;  // a client certificate (PEM), with mqtt_key_file
    std::string mqtt_key_file;
    std::chrono::seconds mqtt_session_expiry{0};
    std::chrono::seconds mqtt_keepalive{0};
    std::chrono::seconds mqtt_reconnect_min{0};
    std::chrono::seconds mqtt_reconnect_max{0};
    int mqtt_intake_connections = 1;
    int mqtt_heartbeat_s = 60;  // ldisd's own heartbeat (wire::kHeartbeatTopicPrefix); 0: none

    std::string store_path;
    engine::Synchronous store_synchronous = engine::Synchronous::kFull;
    int store_max_batch = 512;
    std::string store_url;    // postgresql://...: the PostgreSQL store; "" for SQLite (store_path)
    int store_lease_s = 300;  // PostgreSQL: how long a claimed delivery is this instance's
    int store_retention_days = 730;  // then a report's free text and contact go; 0: never

    std::string http_listen;
    std::string http_public_url;
    std::string http_metrics_listen;  // host:port for /metrics alone, or "" for none
    int http_max_connections = 512;   // beyond: 503
    int http_timeout_s = 10;          // to read a request or write a response
    int http_sign_in_failures = 10;   // per address per 10 minutes, then 429
    std::string http_tls_cert_file;   // HTTPS when set, with http_tls_key_file
    std::string http_tls_key_file;
    bool http_trust_forwarded = false;  // X-Forwarded-For/-Proto from trusted proxies
    std::vector<std::string> http_trusted_proxies;
    int http_open_reports_per_hour = 20;  // per address on the open form; 0 closes it

    std::string email_smtp_url;
    std::string email_from;
    std::string email_password;  // secret, from email.password_file or LDIS_SMTP_PASSWORD
    std::string email_username;
    bool email_starttls = false;
    bool email_allow_plaintext_auth = false;  // AUTH over smtp:// without STARTTLS
    std::string email_ca_file;
    int email_connections = 4;
    bool email_envelope_before_commit = true;

    std::string notify_base_url;
    std::string notify_api_key;  // secret, from notify.api_key_file or LDIS_NOTIFY_API_KEY
    std::string notify_sms_template_id;
    std::string notify_email_template_id;

    // Channels from dispatch.channels (none until read); retries; ack times; federation.
    engine::DispatchPolicy dispatch = [] {
        engine::DispatchPolicy p;
        p.enabled.clear();
        return p;
    }();
    int dispatch_max_in_flight = 256;
    int dispatch_timeout_ms = 15000;
    int escalation_check_s = 30;

    std::string reference_prefix;
    int alert_valid_days = 365;
    int grading_window_days = 7;
    engine::Policy policy;

    std::string path_templates;
    std::string path_assets;  // GOV.UK Frontend's dist/govuk (npm), served under /assets/
    std::string path_partners;
    std::string path_rules;
    std::string path_substances;
    std::string path_areas;
    std::string path_schema;

    // [[feeds]]: the feeds expected to send (issue 16 §3), watched for silence.
    std::vector<engine::FeedSpec> feeds;

    // [federation] (issue 16 §1, docs/federation.md): this instance's name among its peers
    // ("" when it has none), its signing key, the levels it offers, what it does with each
    // level it receives, and its peers with their public keys.
    struct FederationPeer {
        std::string instance;
        std::string name;  // as partners read it: "Medway LDIS"
        std::string public_key_file;
    };
    std::string federation_instance;
    std::string federation_key_file;
    std::set<engine::Level> federation_offer{engine::Level::kRed};
    std::map<engine::Level, std::set<std::string>> federation_offer_districts;
    engine::FederatedPolicy federation_policy[4] = {
        engine::FederatedPolicy::kRecord, engine::FederatedPolicy::kRecord,
        engine::FederatedPolicy::kReview, engine::FederatedPolicy::kForward};  // by Level
    std::vector<FederationPeer> federation_peers;

    // The MQTT topic filter for reports, through $share/{group}/ when a group is set.
    std::string ReportFilter() const;
};

// Reads the config file and applies `overrides` ("section.key=value"). Returns every
// error found, not only the first. Relative paths in the file resolve against the file's
// folder; relative paths given with --set resolve against the working directory.
struct ConfigLoad {
    Config config;
    std::vector<ConfigError> errors;
    bool ok() const { return errors.empty(); }
};
ConfigLoad LoadConfig(const std::string& path, const std::vector<std::string>& overrides);

// Loads substances.toml and rules.toml for the store. Throws std::runtime_error
// "FILE:LINE: problem".
std::shared_ptr<const engine::GradingSetup> LoadGrading(const Config& config);

// Everything ldisd reads from the files the configuration names, each read once, and
// immutable: the schema and areas (the validator), substances, rules, partners and the
// alert templates (the grading setup, which holds the partners), the email templates.
// At start and on every SIGHUP a whole new one is loaded and swapped in at once
// (Daemon::Apply): there is no moment at which the store grades with one partners file and
// the dispatcher sends with another.
struct Runtime {
    std::shared_ptr<const engine::ReportValidator> validator;
    std::shared_ptr<const engine::GradingSetup> grading;  // grading->partners: the partners
    engine::MessageTemplates email_templates;
};
// Throws std::runtime_error "FILE[:LINE]: problem" for the first file that does not load.
std::shared_ptr<const Runtime> LoadRuntime(const Config& config);

// As LoadConfig, then loads every file the configuration names (schema, areas,
// substances, rules) the way ldisd would, adding their errors. What `ldisd --check-config` runs.
ConfigLoad CheckConfig(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace ldis::app
