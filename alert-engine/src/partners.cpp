#include "ldis/engine/partners.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "ldis/engine/lifecycle.hpp"
#include "ldis/engine/text.hpp"
#include "toml_file.hpp"

namespace ldis::engine {
namespace {

constexpr std::pair<Channel, std::string_view> kChannels[] = {
    {Channel::kEmail, "email"},
    {Channel::kWebhook, "webhook"},
    {Channel::kNotifySms, "notify_sms"},
    {Channel::kNotifyEmail, "notify_email"},
    {Channel::kMqtt, "mqtt"},
};

const std::vector<std::string> kSectors = {"clinical",         "treatment", "harm_reduction",
                                           "criminal_justice", "prison",    "youth",
                                           "public_health"};
const std::vector<std::string> kFormats = {"teams", "slack", "json"};

std::vector<std::string> Words(std::initializer_list<const char*> list) {
    return {list.begin(), list.end()};
}

class Reader {
public:
    Reader(std::string origin, std::string base_dir, const Areas* areas)
        : origin_(std::move(origin)), base_dir_(std::move(base_dir)), areas_(areas) {}

    [[noreturn]] void Fail(const toml::node& node, const std::string& problem) const {
        throw std::runtime_error(detail::Where(origin_, node) + ": " + problem);
    }

    void OnlyKeys(const toml::table& table, const std::string& what,
                  const std::vector<std::string>& keys) const {
        for (const auto& [key, value] : table) {
            const std::string k(key.str());
            if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
                Fail(value, "unknown key \"" + k + "\" in " + what + DidYouMean(k, keys));
            }
        }
    }

    std::string String(const toml::table& table, const std::string& key, const std::string& what,
                       bool required) const {
        const auto* node = table.get(key);
        if (node == nullptr) {
            if (required) Fail(table, what + " needs " + key);
            return {};
        }
        if (!node->is_string()) Fail(*node, what + "." + key + " must be a string");
        return node->as_string()->get();
    }

    std::vector<std::string> List(const toml::table& table, const std::string& key,
                                  const std::string& what,
                                  const std::vector<std::string>& allowed = {}) const {
        std::vector<std::string> out;
        const auto* node = table.get(key);
        if (node == nullptr) return out;
        const auto* array = node->as_array();
        if (array == nullptr) Fail(*node, what + "." + key + " must be a list of strings");
        for (const auto& item : *array) {
            if (!item.is_string()) Fail(item, what + "." + key + " must be a list of strings");
            std::string word = item.as_string()->get();
            if (!allowed.empty() &&
                std::find(allowed.begin(), allowed.end(), word) == allowed.end()) {
                std::string choices;
                for (const auto& a : allowed) choices += (choices.empty() ? "" : ", ") + a;
                Fail(item, what + "." + key + ": unknown \"" + word + "\"" +
                               DidYouMean(word, allowed) + "; choose from " + choices);
            }
            out.push_back(std::move(word));
        }
        return out;
    }

    Contact ReadContact(const toml::table& t, const std::string& what) const {
        OnlyKeys(t, what,
                 Words({"name", "channel", "address", "url", "format", "secret_file", "insecure"}));
        Contact c;
        c.name = String(t, "name", what, true);
        const std::string channel = String(t, "channel", what, true);
        if (!ParseChannel(channel, c.channel) || c.channel == Channel::kMqtt) {
            Fail(
                *t.get("channel"),
                what + ".channel: unknown \"" + channel + "\"" +
                    DidYouMean(channel, Words({"email", "webhook", "notify_sms", "notify_email"})) +
                    "; choose from email, webhook, notify_sms, notify_email");
        }
        if (c.channel == Channel::kWebhook) {
            c.address = String(t, "url", what, true);
            if (const auto* insecure = t.get("insecure")) {
                if (!insecure->is_boolean())
                    Fail(*insecure, what + ".insecure must be true or false");
                c.insecure = insecure->as_boolean()->get();
            }
            // Alert text and HMAC-signed bodies cross the network: in clear text only when
            // the partner entry says so, for a receiver on the same host or a test.
            if (!c.address.starts_with("https://") &&
                !(c.insecure && c.address.starts_with("http://")))
                Fail(*t.get("url"), what +
                                        ".url must start with https:// (http:// only with "
                                        "insecure = true, for a receiver on this host)");
            c.format = String(t, "format", what, false);
            if (c.format.empty()) c.format = "json";
            if (std::find(kFormats.begin(), kFormats.end(), c.format) == kFormats.end())
                Fail(*t.get("format"), what + ".format must be teams, slack or json");
            const std::string secret_file = String(t, "secret_file", what, false);
            if (!secret_file.empty()) {
                std::filesystem::path p(secret_file);
                if (p.is_relative()) p = std::filesystem::path(base_dir_) / p;
                std::string secret = detail::ReadTextFile(p.string(), "webhook secret");
                while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
                    secret.pop_back();
                c.secret = std::move(secret);
            }
        } else {
            c.address = String(t, "address", what, true);
            if (t.get("url") || t.get("format") || t.get("secret_file") || t.get("insecure"))
                Fail(t, what + ": url, format, secret_file and insecure are for webhooks only");
            const bool phone = c.channel == Channel::kNotifySms;
            if (phone) {
                const bool ok = c.address.size() >= 10 && c.address.size() <= 16 &&
                                (c.address[0] == '+' || c.address[0] == '0') &&
                                c.address.find_first_not_of("+0123456789 ") == std::string::npos;
                if (!ok) Fail(*t.get("address"), what + ".address must be a phone number");
            } else if (c.address.find('@') == std::string::npos ||
                       c.address.find_first_of(" <>\r\n") != std::string::npos) {
                Fail(*t.get("address"), what + ".address must be an email address");
            }
        }
        return c;
    }

    Subscription ReadSubscription(const toml::table& t, const std::string& what,
                                  const Partner& p) const {
        OnlyKeys(t, what, Words({"levels", "authorities", "districts", "audiences", "contacts"}));
        Subscription s;
        for (const auto& l : List(t, "levels", what, Words({"red", "amber", "green"}))) {
            Level level;
            ParseLevel(l, level);
            s.levels.insert(level);
        }
        for (const auto& a : List(t, "authorities", what)) {
            if (areas_ && !areas_->HasAuthority(a))
                Fail(*t.get("authorities"), what + ".authorities: unknown authority \"" + a + "\"");
            s.authorities.insert(a);
        }
        for (const auto& d : List(t, "districts", what)) {
            if (areas_ && !areas_->AuthorityOf(d))
                Fail(*t.get("districts"), what + ".districts: unknown district \"" + d + "\"");
            s.districts.insert(d);
        }
        for (const auto& a : List(t, "audiences", what, Audiences())) s.audiences.insert(a);
        s.contacts = List(t, "contacts", what);
        for (const auto& c : s.contacts) {
            if (!p.FindContact(c))
                Fail(*t.get("contacts"), what + " names unknown contact \"" + c + "\"");
        }
        return s;
    }

    Partner ReadPartner(const toml::table& t, std::size_t index) const {
        std::string what = "partner " + std::to_string(index + 1);
        Partner p;
        p.id = String(t, "id", what, true);
        what = "partner \"" + p.id + "\"";
        OnlyKeys(
            t, what,
            Words({"id", "name", "sector", "contact", "subscription", "escalation", "fallback"}));
        p.name = String(t, "name", what, true);
        p.sector = String(t, "sector", what, false);
        if (!p.sector.empty() &&
            std::find(kSectors.begin(), kSectors.end(), p.sector) == kSectors.end()) {
            Fail(*t.get("sector"),
                 what + ".sector: unknown \"" + p.sector + "\"" + DidYouMean(p.sector, kSectors));
        }
        const auto tables = [&](const char* key) {
            std::vector<const toml::table*> out;
            const auto* node = t.get(key);
            if (node == nullptr) return out;
            const auto* array = node->as_array();
            if (array == nullptr || !array->is_array_of_tables())
                Fail(*node, what + "." + key + " must be [[partner." + key + "]] tables");
            for (const auto& item : *array) out.push_back(item.as_table());
            return out;
        };
        std::set<std::string> names;  // not FindContact: a fan-out list has thousands
        for (const auto* c : tables("contact")) {
            Contact contact = ReadContact(*c, what + " contact");
            if (!names.insert(contact.name).second)
                Fail(*c, what + " has two contacts named \"" + contact.name + "\"");
            p.contacts.push_back(std::move(contact));
        }
        p.IndexContacts();
        p.escalation = String(t, "escalation", what, false);
        if (!p.escalation.empty() && !p.FindContact(p.escalation))
            Fail(*t.get("escalation"),
                 what + ".escalation names unknown contact \"" + p.escalation + "\"");
        p.fallback = List(t, "fallback", what);
        for (const auto& f : p.fallback) {
            if (!p.FindContact(f))
                Fail(*t.get("fallback"), what + ".fallback names unknown contact \"" + f + "\"");
        }
        for (const auto* s : tables("subscription"))
            p.subscriptions.push_back(ReadSubscription(*s, what + " subscription", p));
        return p;
    }

private:
    std::string origin_;
    std::string base_dir_;
    const Areas* areas_;
};

bool Matches(const Subscription& s, const RouteInput& a) {
    return (s.levels.empty() || s.levels.contains(a.level)) &&
           (s.authorities.empty() || s.authorities.contains(a.authority)) &&
           (s.districts.empty() || s.districts.contains(a.district)) &&
           (s.audiences.empty() ? a.audience == "professionals" : s.audiences.contains(a.audience));
}

}  // namespace

std::string_view ToString(Channel channel) {
    for (const auto& [c, name] : kChannels) {
        if (c == channel) return name;
    }
    return "email";
}

bool ParseChannel(std::string_view text, Channel& out) {
    for (const auto& [c, name] : kChannels) {
        if (name == text) {
            out = c;
            return true;
        }
    }
    return false;
}

// A partner may have thousands of contacts (a fan-out list), and the dispatcher looks one
// up per delivery: linear search made a 10,000-email fan-out quadratic.
const Contact* Partner::FindContact(std::string_view contact_name) const {
    if (const auto it = contact_index_.find(std::string(contact_name));
        it != contact_index_.end()) {
        if (it->second < contacts.size() && contacts[it->second].name == contact_name)
            return &contacts[it->second];
    }
    for (const auto& c : contacts) {
        if (c.name == contact_name) return &c;
    }
    return nullptr;
}

void Partner::IndexContacts() {
    contact_index_.clear();
    for (std::size_t i = 0; i < contacts.size(); ++i) contact_index_.emplace(contacts[i].name, i);
}

Partners Partners::LoadFile(const std::string& path, const Areas* areas) {
    return Parse(detail::ReadTextFile(path, "partners"), path,
                 std::filesystem::path(path).parent_path().string(), areas);
}

Partners Partners::Parse(std::string_view toml_text, const std::string& origin,
                         const std::string& base_dir, const Areas* areas) {
    const toml::table root = detail::ParseToml(toml_text, origin);
    Reader reader(origin, base_dir.empty() ? "." : base_dir, areas);
    reader.OnlyKeys(root, "partners.toml", Words({"coordinators", "partner"}));
    Partners out;
    if (const auto* node = root.get("partner")) {
        const auto* array = node->as_array();
        if (array == nullptr || !array->is_array_of_tables())
            reader.Fail(*node, "partner must be [[partner]] tables");
        for (std::size_t i = 0; i < array->size(); ++i) {
            Partner p = reader.ReadPartner(*array->get(i)->as_table(), i);
            if (out.Find(p.id))
                reader.Fail(*array->get(i), "two partners have the id \"" + p.id + "\"");
            out.partners_.push_back(std::move(p));
            out.partners_.back().IndexContacts();
        }
    }
    if (const auto* node = root.get("coordinators")) {
        const auto* table = node->as_table();
        if (table == nullptr) reader.Fail(*node, "coordinators must be a [coordinators] table");
        reader.OnlyKeys(*table, "[coordinators]", Words({"partner"}));
        out.coordinators_ = reader.String(*table, "partner", "[coordinators]", true);
        if (!out.Find(out.coordinators_)) {
            std::vector<std::string> ids;
            for (const auto& p : out.partners_) ids.push_back(p.id);
            reader.Fail(*table->get("partner"), "[coordinators] partner \"" + out.coordinators_ +
                                                    "\" is not a partner" +
                                                    DidYouMean(out.coordinators_, ids));
        }
    }
    return out;
}

const Partner* Partners::Find(std::string_view id) const {
    for (const auto& p : partners_) {
        if (p.id == id) return &p;
    }
    return nullptr;
}

std::vector<Recipient> Partners::Route(const RouteInput& alert,
                                       const std::set<Channel>& enabled) const {
    std::vector<Recipient> out;
    std::set<std::string> slots;
    const auto usable = [&](const Partner& p, const std::string& contact) {
        const Contact* c = p.FindContact(contact);
        return c != nullptr && enabled.contains(c->channel);
    };
    // Earlier recipients keep the contact that reached them last time.
    for (const auto& r : alert.earlier) {
        const Partner* p = Find(r.partner);
        if (p == nullptr || !usable(*p, r.contact) || !slots.insert(r.slot).second) continue;
        out.push_back(r);
    }
    if (alert.cancellation) return out;
    for (const auto& p : partners_) {
        for (const auto& s : p.subscriptions) {
            if (!Matches(s, alert)) continue;
            std::vector<std::string> names = s.contacts;
            if (names.empty()) {
                // Escalation and fallback contacts are kept for when they are needed.
                for (const auto& c : p.contacts) {
                    if (c.name != p.escalation &&
                        std::find(p.fallback.begin(), p.fallback.end(), c.name) == p.fallback.end())
                        names.push_back(c.name);
                }
            }
            for (const auto& name : names) {
                const std::string slot = p.id + "/" + name;
                if (!usable(p, name) || slots.contains(slot)) continue;
                slots.insert(slot);
                out.push_back({p.id, name, slot});
            }
        }
    }
    return out;
}

std::optional<std::string> Partners::Fallback(std::string_view partner, std::string_view failed,
                                              const std::set<std::string>& used,
                                              const std::set<Channel>& enabled) const {
    const Partner* p = Find(partner);
    if (p == nullptr) return std::nullopt;
    for (const auto& name : p->fallback) {
        const Contact* c = p->FindContact(name);
        if (name != failed && !used.contains(name) && c && enabled.contains(c->channel))
            return name;
    }
    return std::nullopt;
}

}  // namespace ldis::engine
