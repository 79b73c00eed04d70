// The sections of ldisd.toml with their own shape: [[feeds]] and [federation] (each a
// table, or tables, of keys that LoadConfig's flat key list does not describe).
#include "config_sections.hpp"

#include "ldis/engine/federation.hpp"
#include "ldis/engine/grading.hpp"
#include "ldis/engine/text.hpp"

namespace fs = std::filesystem;

namespace ldis::app {

std::string Absolute(const fs::path& base, const std::string& value) {
    if (value.empty()) return value;
    fs::path p(value);
    if (p.is_relative()) p = base / p;
    return p.lexically_normal().string();
}

// [[feeds]] (issue 16 §3): the feeds LDIS expects to hear from, each at least once in its
// longest normal silence.
void ReadFeeds(const toml::node& node, const std::string& path,
               std::vector<engine::FeedSpec>& feeds, std::vector<ConfigError>& errors) {
    const auto* list = node.as_array();
    const auto line = [](const toml::node& n) { return static_cast<int>(n.source().begin.line); };
    if (list == nullptr || !list->is_array_of_tables()) {
        errors.push_back({path, line(node),
                          "feeds must be [[feeds]] tables, each with source_type, organisation "
                          "and max_silence_s"});
        return;
    }
    for (const auto& item : *list) {
        const auto& t = *item.as_table();
        engine::FeedSpec feed;
        bool ok = true;
        for (const auto& [key, value] : t) {
            const std::string k(key.str());
            if (k == "source_type" && value.is_string()) {
                feed.source_type = value.as_string()->get();
            } else if (k == "organisation" && value.is_string()) {
                feed.organisation = value.as_string()->get();
            } else if (k == "max_silence_s" && value.is_integer()) {
                feed.max_silence_ms = value.as_integer()->get() * 1000;
            } else {
                errors.push_back(
                    {path, line(value),
                     k == "source_type" || k == "organisation" || k == "max_silence_s"
                         ? "feeds." + k + " must be " +
                               (k == "max_silence_s" ? "a whole number" : "a string")
                         : "unknown key feeds." + k +
                               " (a feed has source_type, organisation and max_silence_s)"});
                ok = false;
            }
        }
        const bool type_ok =
            !feed.source_type.empty() &&
            feed.source_type.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos;
        if (ok && !type_ok) {
            errors.push_back({path, line(item),
                              "feeds.source_type must be a report's source.type, such as "
                              "\"custody\" (got \"" +
                                  feed.source_type + "\")"});
            ok = false;
        }
        if (ok && (feed.organisation.empty() || feed.organisation.size() > 200 ||
                   feed.organisation.find_first_of("/+#") != std::string::npos)) {
            errors.push_back({path, line(item),
                              "feeds.organisation must be 1 to 200 characters without '/', '+' "
                              "or '#' (it is a level of the heartbeat topic), as the feed's "
                              "reports spell source.organisation"});
            ok = false;
        }
        if (ok && (feed.max_silence_ms < 1000 || feed.max_silence_ms > 90LL * 86400 * 1000)) {
            errors.push_back({path, line(item),
                              "feeds.max_silence_s must be 1 to 7776000 seconds (90 days): the "
                              "longest silence that is normal for this feed"});
            ok = false;
        }
        for (const auto& other : feeds) {
            if (ok && other.source_type == feed.source_type &&
                other.organisation == feed.organisation) {
                errors.push_back({path, line(item),
                                  "the feed " + feed.source_type + "/" + feed.organisation +
                                      " is listed twice"});
                ok = false;
            }
        }
        if (ok) feeds.push_back(std::move(feed));
    }
}

// [federation] (issue 16 §1): instance, key_file, offer, [federation.policy] and
// [[federation.peers]]. Paths resolve against the config file's folder.
void ReadFederation(const toml::node& node, const std::string& path, const fs::path& base,
                    Config& c, std::vector<ConfigError>& errors) {
    const auto line = [](const toml::node& n) { return static_cast<int>(n.source().begin.line); };
    const auto* table = node.as_table();
    if (table == nullptr) {
        errors.push_back({path, line(node), "\"federation\" must be a [section]"});
        return;
    }
    const auto fail = [&](const toml::node& n, std::string message) {
        errors.push_back({path, line(n), std::move(message)});
    };
    for (const auto& [key, value] : *table) {
        const std::string k(key.str());
        if (k == "instance" && value.is_string()) {
            c.federation_instance = value.as_string()->get();
            if (!engine::ValidInstanceName(c.federation_instance))
                fail(value,
                     "federation.instance must be 1 to 32 lower-case letters, digits and "
                     "hyphens (it is a topic level), such as \"medway\"");
        } else if (k == "key_file" && value.is_string()) {
            c.federation_key_file = Absolute(base, value.as_string()->get());
        } else if (k == "offer" && value.is_array()) {
            c.federation_offer.clear();
            for (const auto& item : *value.as_array()) {
                engine::Level level = engine::Level::kNone;
                if (!item.is_string() || !engine::ParseLevel(item.as_string()->get(), level) ||
                    level == engine::Level::kNone)
                    fail(item, "federation.offer lists levels: \"red\", \"amber\", \"green\"");
                else
                    c.federation_offer.insert(level);
            }
        } else if (k == "offer_districts" && value.is_table()) {
            // [federation.offer_districts] amber = ["Gravesham", ...]: only there.
            for (const auto& [lk, lv] : *value.as_table()) {
                engine::Level level = engine::Level::kNone;
                if (!engine::ParseLevel(lk.str(), level) || level == engine::Level::kNone ||
                    !lv.is_array()) {
                    fail(lv, "federation.offer_districts." + std::string(lk.str()) +
                                 " must be a level (red, amber, green) with a list of districts");
                    continue;
                }
                auto& districts = c.federation_offer_districts[level];
                for (const auto& d : *lv.as_array()) {
                    if (d.is_string() && !d.as_string()->get().empty())
                        districts.insert(d.as_string()->get());
                    else
                        fail(d,
                             "federation.offer_districts lists district names, such as "
                             "\"Gravesham\"");
                }
            }
        } else if (k == "policy" && value.is_table()) {
            for (const auto& [lk, lv] : *value.as_table()) {
                engine::Level level = engine::Level::kNone;
                engine::FederatedPolicy policy{};
                if (!engine::ParseLevel(lk.str(), level) || level == engine::Level::kNone) {
                    fail(lv, "unknown key federation.policy." + std::string(lk.str()) +
                                 " (the levels are red, amber and green)");
                } else if (!lv.is_string() ||
                           !engine::ParseFederatedPolicy(lv.as_string()->get(), policy)) {
                    fail(lv, "federation.policy." + std::string(lk.str()) +
                                 " must be \"forward\", \"review\" or \"record\"");
                } else {
                    c.federation_policy[static_cast<int>(level)] = policy;
                }
            }
        } else if (k == "peers" && value.is_array_of_tables()) {
            for (const auto& item : *value.as_array()) {
                Config::FederationPeer peer;
                for (const auto& [pk, pv] : *item.as_table()) {
                    const std::string p(pk.str());
                    if (p == "instance" && pv.is_string())
                        peer.instance = pv.as_string()->get();
                    else if (p == "name" && pv.is_string())
                        peer.name = pv.as_string()->get();
                    else if (p == "public_key_file" && pv.is_string())
                        peer.public_key_file = Absolute(base, pv.as_string()->get());
                    else
                        fail(pv, "unknown key federation.peers." + p +
                                     " (a peer has instance, name and public_key_file, strings)");
                }
                if (!engine::ValidInstanceName(peer.instance) || peer.public_key_file.empty()) {
                    fail(item,
                         "each [[federation.peers]] needs instance (its name, such as "
                         "\"kent\") and public_key_file");
                    continue;
                }
                if (peer.name.empty()) {
                    peer.name = peer.instance;
                    peer.name[0] = static_cast<char>(std::toupper(peer.name[0]));
                    peer.name += " LDIS";
                }
                c.federation_peers.push_back(std::move(peer));
            }
        } else {
            fail(value, "unknown or mistyped key federation." + k +
                            " (federation has instance, key_file, offer, "
                            "[federation.offer_districts], [federation.policy] and "
                            "[[federation.peers]])");
        }
    }
    if (!c.federation_instance.empty() && c.federation_key_file.empty())
        fail(node,
             "federation.key_file is needed with federation.instance: this instance signs "
             "what it offers");
}

}  // namespace ldis::app
