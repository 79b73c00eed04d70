#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ldis/engine/areas.hpp"
#include "ldis/engine/grading.hpp"

namespace ldis::engine {

// The ways a message can reach a partner (DESIGN §7). MQTT is not a partner's channel:
// every issued version is published once to ldis/v1/alerts/{level}/{authority}.
enum class Channel { kEmail, kWebhook, kNotifySms, kNotifyEmail, kMqtt };
std::string_view ToString(Channel channel);
bool ParseChannel(std::string_view text, Channel& out);

// One way to reach one partner: an email address, a webhook, a phone or email address
// through GOV.UK Notify.
struct Contact {
    std::string name;  // unique within its partner
    Channel channel = Channel::kEmail;
    std::string address;    // email address, phone number (+44...) or webhook URL
    std::string format;     // webhooks: "teams", "slack" or "json"
    std::string secret;     // webhooks: the HMAC key, read from secret_file; never logged
    bool insecure = false;  // webhooks: http:// allowed (partners.toml insecure = true)
};

// Which alerts a partner wants, and where. An empty list means "any".
struct Subscription {
    std::set<Level> levels;
    std::set<std::string> authorities;
    std::set<std::string> districts;
    std::set<std::string> audiences;    // professionals, services, public
    std::vector<std::string> contacts;  // names of the partner's contacts; empty: all
};

struct Partner {
    std::string id;
    std::string name;
    std::string sector;  // clinical, treatment, harm_reduction, criminal_justice, ...
    std::vector<Contact> contacts;
    std::vector<Subscription> subscriptions;
    std::string escalation;             // contact for unacknowledged alerts, or ""
    std::vector<std::string> fallback;  // contacts tried in order after a permanent failure

    // The contact called `name`, or nullptr. Fast (indexed) once IndexContacts has run;
    // always correct, even after contacts changed. Pure.
    const Contact* FindContact(std::string_view name) const;
    void IndexContacts();

private:
    std::unordered_map<std::string, std::size_t> contact_index_;  // name -> position
};

// One recipient of an alert version. `slot` names the contact the subscription chose
// ("partner/contact"); `contact` is the one used, which differs after a fallback.
struct Recipient {
    std::string partner;
    std::string contact;
    std::string slot;
    bool operator==(const Recipient&) const = default;
};

// What routing needs to know of one alert version.
struct RouteInput {
    Level level = Level::kNone;
    std::string authority;
    std::string district;
    std::string audience = "professionals";
    bool cancellation = false;
    // Recipients of the alert's earlier versions, with the contact last used for each slot.
    std::vector<Recipient> earlier;
};

// config/partners.toml: partners, their contacts and subscriptions, and who the
// coordinators are. Immutable once loaded; thread-safe to read.
class Partners {
public:
    // Throws std::runtime_error "FILE:LINE: problem" for a file that does not parse, an
    // unknown key, channel, level, authority or district, a contact named twice or a
    // subscription naming a contact that does not exist. Relative secret_file paths
    // resolve against the file's folder.
    // `areas`, when given, checks authorities and districts.
    static Partners LoadFile(const std::string& path, const Areas* areas = nullptr);
    static Partners Parse(std::string_view toml_text, const std::string& origin,
                          const std::string& base_dir = ".", const Areas* areas = nullptr);

    const std::vector<Partner>& partners() const { return partners_; }
    const Partner* Find(std::string_view id) const;
    // The partner whose contacts receive approval requests, pages and failure notices.
    const Partner* coordinators() const { return Find(coordinators_); }

    // The recipients of one alert version (pure). A cancellation reaches exactly the
    // earlier recipients. An update reaches the earlier recipients through the contact
    // used last time (so a fallback sticks), and any subscriber who matches now.
    // Contacts on a channel for which `enabled` is false are skipped.
    std::vector<Recipient> Route(const RouteInput& alert, const std::set<Channel>& enabled) const;

    // The contact to try after `failed` failed for good: the first of the partner's
    // fallback list that is not `failed` and not in `used`. Pure.
    std::optional<std::string> Fallback(std::string_view partner, std::string_view failed,
                                        const std::set<std::string>& used,
                                        const std::set<Channel>& enabled) const;

private:
    std::vector<Partner> partners_;
    std::string coordinators_;
};

}  // namespace ldis::engine
