// The keys ldisd.toml may hold, and reading one (config_keys.hpp).
#include "config_keys.hpp"

#include <fstream>
#include <iterator>

#include "ldis/engine/text.hpp"

namespace ldis::app {
namespace {

// Every key ldisd.toml may hold. Keys for later parts (templates, partners, rules,
// substances, http, email) are accepted now so that one file serves every release.
const KeySpec kKeys[] = {
    {"log.level", Kind::kString, "info"},
    {"mqtt.uri", Kind::kString, "tcp://127.0.0.1:1883"},
    {"mqtt.client_id", Kind::kString, "ldisd"},
    {"mqtt.shared_group", Kind::kString, ""},
    {"mqtt.username", Kind::kString, ""},
    {"mqtt.password_file", Kind::kString, "", Flag::kSecretFile},
    {"mqtt.ca_file", Kind::kString, "", Flag::kPath},
    {"mqtt.cert_file", Kind::kString, "", Flag::kPath},
    {"mqtt.key_file", Kind::kString, "", Flag::kPath},
    {"mqtt.session_expiry_s", Kind::kInt, "604800"},
    {"mqtt.keepalive_s", Kind::kInt, "30"},
    {"mqtt.reconnect_min_s", Kind::kInt, "1"},
    {"mqtt.reconnect_max_s", Kind::kInt, "30"},
    {"mqtt.intake_connections", Kind::kInt, "1"},
    {"mqtt.heartbeat_s", Kind::kInt, "60"},
    {"store.path", Kind::kString, "ldis.db", Flag::kPath},
    {"store.synchronous", Kind::kString, "full"},
    {"store.max_batch", Kind::kInt, "512"},
    {"store.retention_days", Kind::kInt, "730"},
    {"store.url", Kind::kString, ""},
    {"store.lease_s", Kind::kInt, "300"},
    {"http.listen", Kind::kString, "127.0.0.1:8080"},
    {"http.public_url", Kind::kString, "http://127.0.0.1:8080"},
    {"http.metrics_listen", Kind::kString, "127.0.0.1:9464"},
    {"http.max_connections", Kind::kInt, "512"},
    {"http.timeout_s", Kind::kInt, "10"},
    {"http.sign_in_failures", Kind::kInt, "10"},
    {"http.open_reports_per_hour", Kind::kInt, "20"},
    {"http.tls_cert_file", Kind::kString, "", Flag::kPath},
    {"http.tls_key_file", Kind::kString, "", Flag::kPath},
    {"http.trust_forwarded", Kind::kBool, "false"},
    {"http.trusted_proxies", Kind::kString, "127.0.0.1,::1"},
    {"email.smtp_url", Kind::kString, "maildir:mail"},
    {"email.from", Kind::kString, "LDIS Kent and Medway <ldis@example.org>"},
    {"email.password_file", Kind::kString, "", Flag::kSecretFile},
    {"email.username", Kind::kString, ""},
    {"email.starttls", Kind::kBool, "false"},
    {"email.allow_plaintext_auth", Kind::kBool, "false"},
    {"email.ca_file", Kind::kString, "", Flag::kPath},
    {"email.connections", Kind::kInt, "4"},
    {"email.envelope_before_commit", Kind::kBool, "true"},
    {"notify.base_url", Kind::kString, "https://api.notifications.service.gov.uk"},
    {"notify.api_key_file", Kind::kString, "", Flag::kSecretFile},
    {"notify.sms_template_id", Kind::kString, ""},
    {"notify.email_template_id", Kind::kString, ""},
    {"dispatch.channels", Kind::kString, "email,webhook,notify,mqtt"},
    {"dispatch.max_attempts", Kind::kInt, "10"},
    {"dispatch.retry_base_ms", Kind::kInt, "2000"},
    {"dispatch.retry_max_ms", Kind::kInt, "600000"},
    {"dispatch.max_in_flight", Kind::kInt, "128"},
    {"dispatch.timeout_ms", Kind::kInt, "15000"},
    {"dispatch.update_interval_s", Kind::kInt, "900"},
    {"escalation.red_ack_s", Kind::kInt, "14400"},
    {"escalation.amber_ack_s", Kind::kInt, "86400"},
    {"escalation.check_s", Kind::kInt, "30"},
    {"alerts.reference_prefix", Kind::kString, "KM"},
    {"alerts.valid_days", Kind::kInt, "365"},
    {"grading.window_days", Kind::kInt, "7"},
    {"policy.red", Kind::kString, "issue"},
    {"policy.amber", Kind::kString, "draft"},
    {"policy.green", Kind::kString, "draft"},
    {"policy.untrusted_sources", Kind::kString, "public,other"},
    {"paths.templates", Kind::kString, "../templates", Flag::kPath},
    {"paths.assets", Kind::kString, "../node_modules/govuk-frontend/dist/govuk", Flag::kPath},
    {"paths.partners", Kind::kString, "partners.toml", Flag::kPath},
    {"paths.rules", Kind::kString, "rules.toml", Flag::kPath},
    {"paths.substances", Kind::kString, "substances.toml", Flag::kPath},
    {"paths.areas", Kind::kString, "areas.toml", Flag::kPath},
    {"paths.schema", Kind::kString, "schema/report.schema.json", Flag::kPath},
};

}  // namespace

const KeySpec* FindKey(std::string_view name) {
    for (const auto& k : kKeys) {
        if (name == k.name) return &k;
    }
    return nullptr;
}

std::string Suggest(std::string_view name) {
    const KeySpec* best = nullptr;
    std::size_t best_distance = 4;
    for (const auto& k : kKeys) {
        const auto d = engine::EditDistance(name, k.name);
        if (d < best_distance) {
            best = &k;
            best_distance = d;
        }
    }
    return best ? std::string(" (did you mean ") + best->name + "?)" : std::string();
}

bool LooksSecret(std::string_view key) {
    for (std::string_view word : {"password", "secret", "token", "api_key"}) {
        if (key.find(word) != std::string_view::npos && !key.ends_with("_file")) return true;
    }
    return false;
}

std::string KindName(Kind k) {
    switch (k) {
        case Kind::kString:
            return "a string";
        case Kind::kInt:
            return "a whole number";
        case Kind::kBool:
            return "true or false";
    }
    return "a value";
}

bool Matches(const toml::node& node, Kind kind) {
    switch (kind) {
        case Kind::kString:
            return node.is_string();
        case Kind::kInt:
            return node.is_integer();
        case Kind::kBool:
            return node.is_boolean();
    }
    return false;
}

Setting FromNode(const toml::node& node) {
    Setting s;
    if (const auto* v = node.as_string()) s.text = v->get();
    if (const auto* v = node.as_integer()) s.number = v->get();
    if (const auto* v = node.as_boolean()) s.flag = v->get();
    return s;
}

std::optional<std::string> ReadSecretFile(const std::string& path, std::string& problem) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        problem = "cannot read the secret file " + path;
        return std::nullopt;
    }
    std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    return secret;
}

}  // namespace ldis::app
