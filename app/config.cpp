#include "config.hpp"

#include "config_keys.hpp"
#include "config_sections.hpp"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "ldis/engine/federation.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/partners.hpp"
#include "ldis/engine/postgres.hpp"
#include "ldis/engine/report_validator.hpp"
#include "ldis/engine/substances.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"

namespace fs = std::filesystem;

namespace ldis::app {
namespace {

// An IPv4 or IPv6 address written as the HTTP server writes a peer's ("::1", not "0::1"),
// or "" when `text` is not one.
std::string CanonicalAddress(const std::string& text) {
    unsigned char raw[16];
    char out[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, text.c_str(), raw) == 1)
        return inet_ntop(AF_INET, raw, out, sizeof out) ? out : "";
    if (inet_pton(AF_INET6, text.c_str(), raw) == 1)
        return inet_ntop(AF_INET6, raw, out, sizeof out) ? out : "";
    return {};
}

}  // namespace

std::string ConfigError::ToString() const {
    if (file.empty()) return message;
    std::ostringstream out;
    out << file;
    if (line > 0) out << ':' << line;
    out << ": " << message;
    return out.str();
}

std::string Config::ReportFilter() const {
    const std::string filter(engine::wire::kReportFilter);
    return mqtt_shared_group.empty() ? filter : "$share/" + mqtt_shared_group + "/" + filter;
}

ConfigLoad LoadConfig(const std::string& path, const std::vector<std::string>& overrides) {
    ConfigLoad load;
    auto& errors = load.errors;
    const fs::path file = fs::absolute(path).lexically_normal();
    load.config.file = file.string();
    const fs::path base = file.parent_path();

    toml::table root;
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        errors.push_back(
            {path, static_cast<int>(e.source().begin.line), std::string(e.description())});
        return load;
    }

    std::map<std::string, Setting> settings;
    for (const auto& [section, node] : root) {
        if (section.str() == "feeds") {
            ReadFeeds(node, path, load.config.feeds, errors);
            continue;
        }
        if (section.str() == "federation") {
            ReadFederation(node, path, base, load.config, errors);
            continue;
        }
        const auto* table = node.as_table();
        if (table == nullptr) {
            errors.push_back({path, static_cast<int>(node.source().begin.line),
                              "\"" + std::string(section.str()) + "\" must be a [section]"});
            continue;
        }
        for (const auto& [key, value] : *table) {
            const std::string name = std::string(section.str()) + "." + std::string(key.str());
            const int line = static_cast<int>(value.source().begin.line);
            const KeySpec* spec = FindKey(name);
            if (spec == nullptr) {
                if (LooksSecret(key.str())) {
                    errors.push_back({path, line,
                                      "secrets are not kept in the config file: use " + name +
                                          "_file, or the environment"});
                } else {
                    errors.push_back({path, line, "unknown key " + name + Suggest(name)});
                }
                continue;
            }
            if (!Matches(value, spec->kind)) {
                errors.push_back({path, line, name + " must be " + KindName(spec->kind)});
                continue;
            }
            Setting s = FromNode(value);
            if (spec->flag != Flag::kNone) s.text = Absolute(base, s.text);
            settings[name] = std::move(s);
        }
    }

    for (const auto& item : overrides) {
        const auto eq = item.find('=');
        const std::string name = item.substr(0, eq);
        if (eq == std::string::npos || name.empty()) {
            errors.push_back({"--set", 0, "\"" + item + "\" is not of the form section.key=value"});
            continue;
        }
        const std::string text = item.substr(eq + 1);
        const KeySpec* spec = FindKey(name);
        if (spec == nullptr) {
            if (LooksSecret(name)) {
                errors.push_back({"--set", 0,
                                  "secrets cannot be given on the command line: use " + name +
                                      "_file in the config file, or the environment"});
            } else {
                errors.push_back({"--set", 0, "unknown key " + name + Suggest(name)});
            }
            continue;
        }
        Setting s;
        s.from_command_line = true;
        if (spec->kind == Kind::kString) {
            s.text = spec->flag != Flag::kNone ? Absolute(fs::current_path(), text) : text;
        } else if (spec->kind == Kind::kInt) {
            try {
                std::size_t used = 0;
                s.number = std::stoll(text, &used);
                if (used != text.size()) throw std::invalid_argument(text);
            } catch (const std::exception&) {
                errors.push_back(
                    {"--set", 0, name + " must be a whole number, not \"" + text + "\""});
                continue;
            }
        } else {
            if (text != "true" && text != "false") {
                errors.push_back(
                    {"--set", 0, name + " must be true or false, not \"" + text + "\""});
                continue;
            }
            s.flag = text == "true";
        }
        settings[name] = std::move(s);
    }

    const auto get = [&](const char* name) -> Setting {
        if (auto it = settings.find(name); it != settings.end()) return it->second;
        const KeySpec* spec = FindKey(name);
        Setting s;
        if (spec->kind == Kind::kInt)
            s.number = std::stoll(spec->fallback);
        else if (spec->kind == Kind::kBool)
            s.flag = std::string_view(spec->fallback) == "true";
        else
            s.text = spec->flag != Flag::kNone ? Absolute(base, spec->fallback) : spec->fallback;
        return s;
    };
    const auto line_of = [&](const std::string& name) {
        const auto dot = name.find('.');
        const auto* node = root[name.substr(0, dot)][name.substr(dot + 1)].node();
        return node ? static_cast<int>(node->source().begin.line) : 0;
    };
    const auto fail = [&](const std::string& name, const std::string& message) {
        const auto it = settings.find(name);
        if (it != settings.end() && it->second.from_command_line)
            errors.push_back({"--set", 0, message});
        else
            errors.push_back({path, line_of(name), message});
    };

    Config& c = load.config;
    c.log_level = get("log.level").text;
    if (c.log_level != "trace" && c.log_level != "debug" && c.log_level != "info" &&
        c.log_level != "warn" && c.log_level != "error") {
        fail("log.level", "log.level must be one of trace, debug, info, warn, error (got \"" +
                              c.log_level + "\")");
    }
    c.mqtt_uri = get("mqtt.uri").text;
    if (!(c.mqtt_uri.starts_with("tcp://") || c.mqtt_uri.starts_with("ssl://") ||
          c.mqtt_uri.starts_with("mqtt://") || c.mqtt_uri.starts_with("mqtts://"))) {
        fail("mqtt.uri", "mqtt.uri must start with tcp:// or ssl:// (got \"" + c.mqtt_uri + "\")");
    }
    c.mqtt_client_id = get("mqtt.client_id").text;
    if (c.mqtt_client_id.empty() || c.mqtt_client_id.size() > 64) {
        fail("mqtt.client_id",
             "mqtt.client_id must be 1 to 64 characters, the same at every start");
    }
    c.mqtt_shared_group = get("mqtt.shared_group").text;
    if (c.mqtt_shared_group.find_first_of("/+#") != std::string::npos) {
        fail("mqtt.shared_group", "mqtt.shared_group must not contain '/', '+' or '#'");
    }
    c.mqtt_username = get("mqtt.username").text;
    c.mqtt_ca_file = get("mqtt.ca_file").text;
    // A certificate and its key: both or neither.
    const auto certificate = [&](const std::string& cert_key, const std::string& key_key,
                                 std::string& cert, std::string& key, const std::string& purpose) {
        cert = get(cert_key.c_str()).text;
        key = get(key_key.c_str()).text;
        if (cert.empty() != key.empty())
            fail(cert.empty() ? cert_key : key_key, cert_key + " and " + key_key +
                                                        " go together: set both for " + purpose +
                                                        ", or neither");
    };
    certificate("mqtt.cert_file", "mqtt.key_file", c.mqtt_cert_file, c.mqtt_key_file,
                "a client certificate");
    if (!c.mqtt_cert_file.empty() && !c.mqtt_uri.starts_with("ssl://"))
        fail("mqtt.cert_file", "a client certificate needs TLS: mqtt.uri must start with ssl://");
    c.mqtt_session_expiry = std::chrono::seconds(get("mqtt.session_expiry_s").number);
    c.mqtt_keepalive = std::chrono::seconds(get("mqtt.keepalive_s").number);
    c.mqtt_reconnect_min = std::chrono::seconds(get("mqtt.reconnect_min_s").number);
    c.mqtt_reconnect_max = std::chrono::seconds(get("mqtt.reconnect_max_s").number);
    if (c.mqtt_session_expiry.count() < 60) {
        fail("mqtt.session_expiry_s",
             "mqtt.session_expiry_s must be at least 60, so that reports published "
             "while ldisd restarts are kept for it");
    }
    if (c.mqtt_reconnect_min.count() < 1 || c.mqtt_reconnect_max < c.mqtt_reconnect_min) {
        fail("mqtt.reconnect_min_s",
             "mqtt.reconnect_min_s must be at least 1 and no more than reconnect_max_s");
    }
    c.mqtt_heartbeat_s = static_cast<int>(get("mqtt.heartbeat_s").number);
    if (c.mqtt_heartbeat_s != 0 && (c.mqtt_heartbeat_s < 1 || c.mqtt_heartbeat_s > 3600))
        fail("mqtt.heartbeat_s", "mqtt.heartbeat_s must be 1 to 3600 seconds, or 0 for none");
    c.mqtt_intake_connections = static_cast<int>(get("mqtt.intake_connections").number);
    if (c.mqtt_intake_connections < 1 || c.mqtt_intake_connections > 32) {
        fail("mqtt.intake_connections", "mqtt.intake_connections must be 1 to 32");
    } else if (c.mqtt_intake_connections > 1 && c.mqtt_shared_group.empty()) {
        fail("mqtt.intake_connections",
             "mqtt.intake_connections above 1 needs mqtt.shared_group, or every "
             "connection would receive every report");
    }

    c.store_path = get("store.path").text;
    const std::string sync = get("store.synchronous").text;
    if (auto s = engine::ParseSynchronous(sync)) {
        c.store_synchronous = *s;
    } else {
        fail("store.synchronous",
             "store.synchronous must be one of off, normal, full, extra (got \"" + sync + "\")");
    }
    // PostgreSQL, for several ldisd sharing one history (docs/postgresql.md); store.path
    // (SQLite) otherwise.
    c.store_url = get("store.url").text;
    if (!c.store_url.empty()) {
        if (auto checked = engine::CheckPostgresUrl(c.store_url); !checked.ok())
            fail("store.url", checked.error().message);
    }
    c.store_lease_s = static_cast<int>(get("store.lease_s").number);
    if (c.store_lease_s < 10 || c.store_lease_s > 86400)
        fail("store.lease_s",
             "store.lease_s must be 10 to 86400 seconds, and longer than a "
             "delivery can take (dispatch.timeout_s)");
    c.store_max_batch = static_cast<int>(get("store.max_batch").number);
    if (c.store_max_batch < 1 || c.store_max_batch > 100000) {
        fail("store.max_batch", "store.max_batch must be 1 to 100000");
    }

    c.store_retention_days = static_cast<int>(get("store.retention_days").number);
    if (c.store_retention_days != 0 &&
        (c.store_retention_days < 30 || c.store_retention_days > 36500))
        fail("store.retention_days",
             "store.retention_days must be 30 to 36500 (0 keeps free text for ever)");
    c.http_listen = get("http.listen").text;
    c.http_public_url = get("http.public_url").text;
    c.http_metrics_listen = get("http.metrics_listen").text;
    c.http_max_connections = static_cast<int>(get("http.max_connections").number);
    if (c.http_max_connections < 8 || c.http_max_connections > 100000)
        fail("http.max_connections", "http.max_connections must be 8 to 100000");
    c.http_timeout_s = static_cast<int>(get("http.timeout_s").number);
    if (c.http_timeout_s < 1 || c.http_timeout_s > 300)
        fail("http.timeout_s", "http.timeout_s must be 1 to 300");
    c.http_sign_in_failures = static_cast<int>(get("http.sign_in_failures").number);
    if (c.http_sign_in_failures < 1 || c.http_sign_in_failures > 10000)
        fail("http.sign_in_failures", "http.sign_in_failures must be 1 to 10000");
    c.http_open_reports_per_hour = static_cast<int>(get("http.open_reports_per_hour").number);
    if (c.http_open_reports_per_hour < 0 || c.http_open_reports_per_hour > 100000)
        fail("http.open_reports_per_hour",
             "http.open_reports_per_hour must be 0 (the open form is closed) to 100000");
    certificate("http.tls_cert_file", "http.tls_key_file", c.http_tls_cert_file,
                c.http_tls_key_file, "HTTPS");
    if (!c.http_tls_cert_file.empty() && !c.http_public_url.starts_with("https://"))
        fail("http.public_url",
             "http.public_url must start with https:// when ldisd serves HTTPS (got \"" +
                 c.http_public_url + "\")");
    c.http_trust_forwarded = get("http.trust_forwarded").flag;
    c.http_trusted_proxies.clear();
    {
        const std::string list = get("http.trusted_proxies").text;
        std::size_t at = 0;
        while (at <= list.size()) {
            const auto comma = std::min(list.find(',', at), list.size());
            std::string item = list.substr(at, comma - at);
            item.erase(0, item.find_first_not_of(' '));
            item.erase(item.find_last_not_of(' ') + 1);
            if (!item.empty()) {
                const std::string address = CanonicalAddress(item);
                if (address.empty())
                    fail("http.trusted_proxies", "http.trusted_proxies: \"" + item +
                                                     "\" is not an IP address (a list such as "
                                                     "\"127.0.0.1,::1\")");
                else
                    c.http_trusted_proxies.push_back(address);
            }
            at = comma + 1;
        }
    }
    c.email_smtp_url = get("email.smtp_url").text;
    if (c.email_smtp_url.starts_with("maildir:")) {
        c.email_smtp_url = "maildir:" + Absolute(base, c.email_smtp_url.substr(8));
    }
    c.email_from = get("email.from").text;
    if (!c.email_smtp_url.starts_with("maildir:") && !c.email_smtp_url.starts_with("smtp://") &&
        !c.email_smtp_url.starts_with("smtps://")) {
        fail("email.smtp_url",
             "email.smtp_url must start with smtp://, smtps:// or maildir: (got \"" +
                 c.email_smtp_url + "\")");
    }
    if (c.email_from.find('@') == std::string::npos)
        fail("email.from", "email.from must hold an email address, as \"LDIS <ldis@example.org>\"");
    c.email_username = get("email.username").text;
    c.email_starttls = get("email.starttls").flag;
    c.email_allow_plaintext_auth = get("email.allow_plaintext_auth").flag;
    if (!c.email_username.empty() && c.email_smtp_url.starts_with("smtp://") && !c.email_starttls &&
        !c.email_allow_plaintext_auth) {
        fail("email.username",
             "email.username is set but email.starttls is false: the SMTP password would cross "
             "the network in clear text. Set email.starttls = true or use smtps://; "
             "email.allow_plaintext_auth = true only for a relay on this host");
    }
    c.email_ca_file = get("email.ca_file").text;
    c.email_connections = static_cast<int>(get("email.connections").number);
    if (c.email_connections < 1 || c.email_connections > 64)
        fail("email.connections", "email.connections must be 1 to 64");
    c.email_envelope_before_commit = get("email.envelope_before_commit").flag;
    c.notify_base_url = get("notify.base_url").text;
    if (!c.notify_base_url.starts_with("https://") && !c.notify_base_url.starts_with("http://"))
        fail("notify.base_url", "notify.base_url must start with https:// or http://");
    while (c.notify_base_url.ends_with("/")) c.notify_base_url.pop_back();
    c.notify_sms_template_id = get("notify.sms_template_id").text;
    c.notify_email_template_id = get("notify.email_template_id").text;
    {
        const std::string channels = get("dispatch.channels").text;
        std::stringstream words(channels);
        std::string word;
        while (std::getline(words, word, ',')) {
            word.erase(0, word.find_first_not_of(' '));
            word.erase(word.find_last_not_of(' ') + 1);
            if (word.empty()) continue;
            engine::Channel channel;
            if (word == "notify") {
                c.dispatch.enabled.insert(engine::Channel::kNotifySms);
                c.dispatch.enabled.insert(engine::Channel::kNotifyEmail);
            } else if (engine::ParseChannel(word, channel)) {
                c.dispatch.enabled.insert(channel);
            } else {
                fail("dispatch.channels", "dispatch.channels: unknown channel \"" + word +
                                              "\"; choose from email, webhook, notify, mqtt");
            }
        }
    }
    c.dispatch.max_attempts = static_cast<int>(get("dispatch.max_attempts").number);
    if (c.dispatch.max_attempts < 1 || c.dispatch.max_attempts > 100)
        fail("dispatch.max_attempts", "dispatch.max_attempts must be 1 to 100");
    c.dispatch.retry_base_ms = get("dispatch.retry_base_ms").number;
    c.dispatch.retry_max_ms = get("dispatch.retry_max_ms").number;
    if (c.dispatch.retry_base_ms < 10 || c.dispatch.retry_max_ms < c.dispatch.retry_base_ms)
        fail("dispatch.retry_base_ms",
             "dispatch.retry_base_ms must be at least 10 and no more than retry_max_ms");
    c.dispatch_max_in_flight = static_cast<int>(get("dispatch.max_in_flight").number);
    if (c.dispatch_max_in_flight < 1 || c.dispatch_max_in_flight > 10000)
        fail("dispatch.max_in_flight", "dispatch.max_in_flight must be 1 to 10000");
    c.dispatch_timeout_ms = static_cast<int>(get("dispatch.timeout_ms").number);
    if (c.dispatch_timeout_ms < 100)
        fail("dispatch.timeout_ms", "dispatch.timeout_ms must be at least 100");
    c.dispatch.update_interval_ms = get("dispatch.update_interval_s").number * 1000;
    if (c.dispatch.update_interval_ms < 0)
        fail("dispatch.update_interval_s", "dispatch.update_interval_s must be 0 or more");
    c.dispatch.red_ack_ms = get("escalation.red_ack_s").number * 1000;
    c.dispatch.amber_ack_ms = get("escalation.amber_ack_s").number * 1000;
    if (c.dispatch.red_ack_ms < 1000 || c.dispatch.amber_ack_ms < 1000)
        fail("escalation.red_ack_s", "escalation.red_ack_s and amber_ack_s must be at least 1");
    c.escalation_check_s = static_cast<int>(get("escalation.check_s").number);
    if (c.escalation_check_s < 1)
        fail("escalation.check_s", "escalation.check_s must be at least 1");
    c.reference_prefix = get("alerts.reference_prefix").text;
    if (c.reference_prefix.empty() || c.reference_prefix.size() > 8 ||
        !std::all_of(c.reference_prefix.begin(), c.reference_prefix.end(), [](unsigned char ch) {
            return std::isupper(ch) != 0 || std::isdigit(ch) != 0;
        })) {
        fail("alerts.reference_prefix",
             "alerts.reference_prefix must be 1 to 8 capital letters or digits");
    }
    c.grading_window_days = static_cast<int>(get("grading.window_days").number);
    if (c.grading_window_days < 1 || c.grading_window_days > 365) {
        fail("grading.window_days", "grading.window_days must be 1 to 365");
    }
    for (const auto& [key, level] : {std::pair{"policy.red", engine::Level::kRed},
                                     std::pair{"policy.amber", engine::Level::kAmber},
                                     std::pair{"policy.green", engine::Level::kGreen}}) {
        const std::string value = get(key).text;
        if (value != "issue" && value != "draft") {
            fail(key,
                 std::string(key) +
                     " must be \"issue\" (at once) or \"draft\" (wait for a coordinator), not \"" +
                     value + "\"");
        }
        c.policy.issue_at_once[static_cast<int>(level)] = value == "issue";
    }
    {
        c.policy.untrusted_sources.clear();
        std::stringstream words(get("policy.untrusted_sources").text);
        for (std::string word; std::getline(words, word, ',');) {
            word.erase(0, word.find_first_not_of(' '));
            word.erase(word.find_last_not_of(' ') + 1);
            if (word.empty()) continue;
            if (word.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
                fail("policy.untrusted_sources",
                     "policy.untrusted_sources is a list of source types, as \"public,other\" "
                     "(got \"" +
                         word + "\")");
            c.policy.untrusted_sources.insert(word);
        }
    }
    c.alert_valid_days = static_cast<int>(get("alerts.valid_days").number);
    if (c.alert_valid_days < 1 || c.alert_valid_days > 3650) {
        fail("alerts.valid_days", "alerts.valid_days must be 1 to 3650");
    }
    c.path_templates = get("paths.templates").text;
    c.path_assets = get("paths.assets").text;
    c.path_partners = get("paths.partners").text;
    c.path_rules = get("paths.rules").text;
    c.path_substances = get("paths.substances").text;
    c.path_areas = get("paths.areas").text;
    c.path_schema = get("paths.schema").text;

    const auto secret = [&](const char* key, const char* env, std::string& out) {
        if (const char* value = std::getenv(env); value != nullptr && *value != '\0') {
            out = value;
            return;
        }
        const std::string file_name = get(key).text;
        if (file_name.empty()) return;
        std::string problem;
        if (auto value = ReadSecretFile(file_name, problem))
            out = *value;
        else
            fail(key, std::string(key) + ": " + problem);
    };
    secret("mqtt.password_file", "LDIS_MQTT_PASSWORD", c.mqtt_password);
    secret("email.password_file", "LDIS_SMTP_PASSWORD", c.email_password);
    secret("notify.api_key_file", "LDIS_NOTIFY_API_KEY", c.notify_api_key);
    // What this instance offers its peers rides with the dispatch policy (PlanDeliveries).
    if (!c.federation_instance.empty()) {
        c.dispatch.federation_topic = engine::wire::FederationTopic(c.federation_instance);
        c.dispatch.federation_offer = c.federation_offer;
        c.dispatch.federation_offer_districts = c.federation_offer_districts;
    }
    return load;
}

}  // namespace ldis::app
