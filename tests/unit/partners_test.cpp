// partners.toml and routing: pure, no sockets.
#include <gtest/gtest.h>

#include "ldis/engine/partners.hpp"
#include "support/reports.hpp"

using ldis::engine::Channel;
using ldis::engine::Level;
using ldis::engine::Partners;
using ldis::engine::Recipient;
using ldis::engine::RouteInput;

namespace {

const std::set<Channel> kAll{Channel::kEmail, Channel::kWebhook, Channel::kNotifySms,
                             Channel::kNotifyEmail, Channel::kMqtt};

const char* kPartners = R"toml(
[coordinators]
partner = "coord"

[[partner]]
id = "coord"
name = "Coordinators"
  [[partner.contact]]
  name = "team"
  channel = "email"
  address = "team@example.org"

[[partner]]
id = "ed"
name = "Medway ED"
escalation = "boss"
fallback = ["sms", "backup"]
  [[partner.contact]]
  name = "desk"
  channel = "email"
  address = "desk@example.org"
  [[partner.contact]]
  name = "boss"
  channel = "email"
  address = "boss@example.org"
  [[partner.contact]]
  name = "sms"
  channel = "notify_sms"
  address = "+447700900001"
  [[partner.contact]]
  name = "backup"
  channel = "email"
  address = "backup@example.org"
  [[partner.subscription]]
  levels = ["red"]
  authorities = ["Medway"]

[[partner]]
id = "swale"
name = "Swale service"
  [[partner.contact]]
  name = "mail"
  channel = "email"
  address = "swale@example.org"
  [[partner.subscription]]
  levels = ["red", "amber"]
  districts = ["Swale"]

[[partner]]
id = "public"
name = "Public channel"
  [[partner.contact]]
  name = "mail"
  channel = "email"
  address = "public@example.org"
  [[partner.subscription]]
  audiences = ["public"]
)toml";

Partners Load() {
    return Partners::Parse(kPartners, "partners.toml");
}

std::vector<std::string> Slots(const std::vector<Recipient>& recipients) {
    std::vector<std::string> out;
    for (const auto& r : recipients)
        out.push_back(r.slot +
                      (r.contact != r.slot.substr(r.slot.find('/') + 1) ? "->" + r.contact : ""));
    return out;
}

TEST(PartnersTest, ShippedFileLoadsWithEveryAreaChecked) {
    const auto areas = ldis::engine::Areas::LoadFile(ldis::test::SourcePath("config/areas.toml"));
    const auto partners =
        Partners::LoadFile(ldis::test::SourcePath("config/partners.toml"), &areas);
    EXPECT_GE(partners.partners().size(), 15u);
    ASSERT_NE(partners.coordinators(), nullptr);
    EXPECT_EQ(partners.coordinators()->name, "Medway Council Public Health");
    for (const auto& p : partners.partners()) {
        for (const auto& c : p.contacts) {
            const bool fictitious = c.address.find("@example.org") != std::string::npos ||
                                    c.address.starts_with("+447700900") ||
                                    c.address.starts_with("https://hooks.example.org/");
            EXPECT_TRUE(fictitious) << p.id << "/" << c.name << ": " << c.address;
        }
    }
}

TEST(PartnersTest, RoutesByLevelAuthorityDistrictAndAudience) {
    const auto p = Load();
    RouteInput red_medway{Level::kRed, "Medway", "Medway", "professionals", false, {}};
    EXPECT_EQ(Slots(p.Route(red_medway, kAll)), (std::vector<std::string>{"ed/desk"}));
    RouteInput amber_medway{Level::kAmber, "Medway", "Medway", "professionals", false, {}};
    EXPECT_TRUE(p.Route(amber_medway, kAll).empty());
    RouteInput amber_swale{Level::kAmber, "Kent", "Swale", "professionals", false, {}};
    EXPECT_EQ(Slots(p.Route(amber_swale, kAll)), (std::vector<std::string>{"swale/mail"}));
    RouteInput public_swale{Level::kGreen, "Kent", "Swale", "public", false, {}};
    EXPECT_EQ(Slots(p.Route(public_swale, kAll)), (std::vector<std::string>{"public/mail"}));
}

TEST(PartnersTest, DisabledChannelsAreSkipped) {
    const auto p = Load();
    RouteInput red{Level::kRed, "Medway", "Medway", "professionals", false, {}};
    EXPECT_TRUE(p.Route(red, {Channel::kWebhook}).empty());
}

TEST(PartnersTest, UpdatesKeepTheContactThatReachedEachSlotAndCancellationsReachOnlyThem) {
    const auto p = Load();
    // v1 reached ed/desk through its fallback, the SMS.
    const std::vector<Recipient> earlier = {{"ed", "sms", "ed/desk"}};
    RouteInput update{Level::kRed, "Medway", "Medway", "professionals", false, earlier};
    EXPECT_EQ(Slots(p.Route(update, kAll)), (std::vector<std::string>{"ed/desk->sms"}));
    // The signal spread to Swale's subscription? A cancellation still reaches only v1's.
    RouteInput cancel{Level::kRed, "Kent", "Swale", "professionals", true, earlier};
    EXPECT_EQ(Slots(p.Route(cancel, kAll)), (std::vector<std::string>{"ed/desk->sms"}));
    // An update that now matches a new subscriber reaches it as well.
    RouteInput grown{Level::kRed, "Kent", "Swale", "professionals", false, earlier};
    EXPECT_EQ(Slots(p.Route(grown, kAll)),
              (std::vector<std::string>{"ed/desk->sms", "swale/mail"}));
}

TEST(PartnersTest, FallbackTakesTheNextUnusedContact) {
    const auto p = Load();
    EXPECT_EQ(p.Fallback("ed", "desk", {"desk"}, kAll).value_or(""), "sms");
    EXPECT_EQ(p.Fallback("ed", "sms", {"desk", "sms"}, kAll).value_or(""), "backup");
    EXPECT_FALSE(p.Fallback("ed", "backup", {"desk", "sms", "backup"}, kAll));
    EXPECT_EQ(p.Fallback("ed", "desk", {"desk"}, {Channel::kEmail}).value_or(""), "backup");
    EXPECT_FALSE(p.Fallback("swale", "mail", {"mail"}, kAll));
}

void ExpectError(const std::string& toml, const std::string& expected) {
    try {
        Partners::Parse(toml, "partners.toml");
        ADD_FAILURE() << "accepted: " << toml;
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
}

TEST(PartnersTest, ProblemsNameTheFileLineAndFix) {
    ExpectError(
        "[[partner]]\nid = \"a\"\nname = \"A\"\n[[partner.contact]]\nname = \"x\"\n"
        "channel = \"emial\"\naddress = \"a@example.org\"\n",
        "partners.toml:6: partner \"a\" contact.channel: unknown \"emial\" (did you mean "
        "\"email\"?)");
    ExpectError(
        "[[partner]]\nid = \"a\"\nname = \"A\"\n[[partner.subscription]]\nlevels = [\"rde\"]\n",
        "partners.toml:5: partner \"a\" subscription.levels: unknown \"rde\"");
    ExpectError(
        "[[partner]]\nid = \"a\"\nname = \"A\"\n[[partner.subscription]]\ncontacts = "
        "[\"nobody\"]\n",
        "names unknown contact \"nobody\"");
    ExpectError("[[partner]]\nid = \"a\"\nname = \"A\"\nescalaton = \"x\"\n",
                "unknown key \"escalaton\" in partner \"a\" (did you mean \"escalation\"?)");
    ExpectError(
        "[[partner]]\nid = \"a\"\nname = \"A\"\n[[partner.contact]]\nname = \"x\"\n"
        "channel = \"email\"\naddress = \"not an address\"\n",
        "must be an email address");
    ExpectError("[coordinators]\npartner = \"nobody\"\n", "is not a partner");
    // Webhooks are https:// unless the entry says insecure = true.
    ExpectError(
        "[[partner]]\nid = \"a\"\nname = \"A\"\n[[partner.contact]]\nname = \"x\"\n"
        "channel = \"webhook\"\nurl = \"http://hooks.example.org/a\"\n",
        "partners.toml:7: partner \"a\" contact.url must start with https://");
    ExpectError(
        "[[partner]]\nid = \"a\"\nname = \"A\"\n[[partner.contact]]\nname = \"x\"\n"
        "channel = \"email\"\naddress = \"a@example.org\"\ninsecure = true\n",
        "are for webhooks only");
    ExpectError("[[partner]]\nid = \"a\"\nname = \"A\"\n[[partner]]\nid = \"a\"\nname = \"B\"\n",
                "two partners have the id \"a\"");
    const auto areas = ldis::engine::Areas::LoadFile(ldis::test::SourcePath("config/areas.toml"));
    try {
        Partners::Parse(
            "[[partner]]\nid = \"a\"\nname = \"A\"\n[[partner.subscription]]\n"
            "districts = [\"Gotham\"]\n",
            "partners.toml", ".", &areas);
        ADD_FAILURE() << "unknown district accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("unknown district \"Gotham\""), std::string::npos);
    }
}

}  // namespace
