#include "config.hpp"

#include "ldis/engine/lifecycle.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/processes.hpp"
#include "support/reports.hpp"

using ldis::app::CheckConfig;
using ldis::app::LoadConfig;
using ldis::test::SourcePath;
using ldis::test::TempDir;

namespace {

std::string Errors(const ldis::app::ConfigLoad& load) {
    std::string all;
    for (const auto& e : load.errors) all += e.ToString() + "\n";
    return all;
}

std::string Write(const TempDir& dir, const std::string& name, const std::string& text) {
    const std::string path = dir / name;
    std::ofstream(path) << text;
    return path;
}

TEST(ConfigTest, ShippedConfigurationIsValid) {
    const auto load =
        CheckConfig(SourcePath("config/ldisd.toml"), {"store.path=/tmp/ldis-config-test.db"});
    EXPECT_TRUE(load.ok()) << Errors(load);
    const auto& c = load.config;
    EXPECT_EQ(c.mqtt_uri, "tcp://127.0.0.1:1883");
    EXPECT_EQ(c.mqtt_client_id, "ldisd");
    EXPECT_EQ(c.store_synchronous, ldis::engine::Synchronous::kFull);
    EXPECT_EQ(c.path_areas, SourcePath("config/areas.toml"));
    EXPECT_EQ(c.path_schema, SourcePath("config/schema/report.schema.json"));
    EXPECT_EQ(c.ReportFilter(), "ldis/v1/reports/+");
}

TEST(ConfigTest, RelativePathsResolveAgainstTheConfigFolder) {
    TempDir dir;
    std::filesystem::create_directories(dir.path() / "etc");
    const auto path = Write(dir, "etc/ldisd.toml",
                            "[store]\npath = \"../data/ldis.db\"\n[paths]\nareas = \"a.toml\"\n");
    const auto load = LoadConfig(path, {});
    ASSERT_TRUE(load.ok()) << Errors(load);
    EXPECT_EQ(load.config.store_path, (dir.path() / "data/ldis.db").string());
    EXPECT_EQ(load.config.path_areas, (dir.path() / "etc/a.toml").string());
}

// Issue 16 §3: the feeds LDIS expects, each checked, with the line of a wrong one.
TEST(ConfigTest, FeedsAreReadAndAWrongOneNamesItsLine) {
    TempDir dir;
    const auto good = Write(dir, "good.toml",
                            "[mqtt]\nclient_id = \"x\"\n\n[[feeds]]\nsource_type = \"custody\"\n"
                            "organisation = \"Medway custody\"\nmax_silence_s = 3600\n\n"
                            "[[feeds]]\nsource_type = \"hospital\"\norganisation = \"Medway NHS "
                            "Foundation Trust\"\nmax_silence_s = 86400\n");
    const auto load = LoadConfig(good, {});
    ASSERT_TRUE(load.ok()) << Errors(load);
    ASSERT_EQ(load.config.feeds.size(), 2u);
    EXPECT_EQ(load.config.feeds[0].source_type, "custody");
    EXPECT_EQ(load.config.feeds[0].organisation, "Medway custody");
    EXPECT_EQ(load.config.feeds[0].max_silence_ms, 3600000);
    EXPECT_TRUE(LoadConfig(SourcePath("config/ldisd.toml"), {}).config.feeds.empty());

    const auto bad = Write(dir, "bad.toml",
                           "[[feeds]]\nsource_type = \"Custody Suite\"\norganisation = \"A\"\n"
                           "max_silence_s = 60\n\n"  // 1-4
                           "[[feeds]]\nsource_type = \"custody\"\norganisation = \"a/b\"\n"
                           "max_silence_s = 60\n\n"  // 6-9
                           "[[feeds]]\nsource_type = \"custody\"\norganisation = \"A\"\n"
                           "max_silence_s = 0\n\n"  // 11-14
                           "[[feeds]]\nsource_type = \"custody\"\norganisation = \"A\"\n"
                           "max_silence = 60\n\n"  // 16-19
                           "[[feeds]]\nsource_type = \"custody\"\norganisation = \"B\"\n"
                           "max_silence_s = 60\n\n"  // 21-24
                           "[[feeds]]\nsource_type = \"custody\"\norganisation = \"B\"\n"
                           "max_silence_s = 90\n");  // 26-29
    const auto refused = LoadConfig(bad, {});
    const std::string all = Errors(refused);
    EXPECT_NE(all.find(bad + ":1: feeds.source_type must be a report's source.type"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find(bad + ":6: feeds.organisation must be 1 to 200 characters without '/'"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find(bad + ":11: feeds.max_silence_s must be 1 to 7776000 seconds"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find(bad + ":19: unknown key feeds.max_silence (a feed has"), std::string::npos)
        << all;
    EXPECT_NE(all.find(bad + ":26: the feed custody/B is listed twice"), std::string::npos) << all;
    EXPECT_EQ(refused.errors.size(), 5u) << all;
    const auto not_tables = Write(dir, "flat.toml", "feeds = \"custody\"\n");
    EXPECT_NE(Errors(LoadConfig(not_tables, {})).find("feeds must be [[feeds]] tables"),
              std::string::npos);
}

TEST(ConfigTest, UnknownKeyNamesFileLineAndSuggestion) {
    TempDir dir;
    const auto path = Write(dir, "ldisd.toml", "[mqtt]\nclient_id = \"x\"\nurI = \"tcp://h:1\"\n");
    const auto load = LoadConfig(path, {});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_EQ(load.errors[0].ToString(),
              path + ":3: unknown key mqtt.urI (did you mean mqtt.uri?)");
}

TEST(ConfigTest, SyntaxErrorNamesFileAndLine) {
    TempDir dir;
    const auto path = Write(dir, "ldisd.toml", "[mqtt]\nuri = \"tcp://h:1\"\n\n[store\npath = 1\n");
    const auto load = LoadConfig(path, {});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_EQ(load.errors[0].line, 4);
    EXPECT_EQ(load.errors[0].file, path);
}

TEST(ConfigTest, WrongTypeAndBadValueNameTheLine) {
    TempDir dir;
    const auto path =
        Write(dir, "ldisd.toml",
              "[mqtt]\nkeepalive_s = \"thirty\"\n[store]\nsynchronous = \"sometimes\"\n");
    const auto load = LoadConfig(path, {});
    ASSERT_EQ(load.errors.size(), 2u) << Errors(load);
    EXPECT_EQ(load.errors[0].ToString(), path + ":2: mqtt.keepalive_s must be a whole number");
    EXPECT_EQ(
        load.errors[1].ToString(),
        path + ":4: store.synchronous must be one of off, normal, full, extra (got \"sometimes\")");
}

TEST(ConfigTest, SetOverridesAnyKey) {
    const auto load =
        LoadConfig(SourcePath("config/ldisd.toml"),
                   {"store.synchronous=normal", "mqtt.keepalive_s=5", "mqtt.uri=tcp://127.0.0.1:1",
                    "store.path=rel/x.db", "mqtt.shared_group=ldisd", "mqtt.intake_connections=4"});
    ASSERT_TRUE(load.ok()) << Errors(load);
    EXPECT_EQ(load.config.store_synchronous, ldis::engine::Synchronous::kNormal);
    EXPECT_EQ(load.config.mqtt_keepalive.count(), 5);
    EXPECT_EQ(load.config.mqtt_uri, "tcp://127.0.0.1:1");
    EXPECT_EQ(load.config.store_path, (std::filesystem::current_path() / "rel/x.db").string());
    EXPECT_EQ(load.config.ReportFilter(), "$share/ldisd/ldis/v1/reports/+");
    EXPECT_EQ(load.config.mqtt_intake_connections, 4);
}

TEST(ConfigTest, BadSetIsNamed) {
    const auto load = LoadConfig(SourcePath("config/ldisd.toml"),
                                 {"mqtt.keepalive_s=soon", "mqtt.nothing=1", "no-equals"});
    ASSERT_EQ(load.errors.size(), 3u) << Errors(load);
    EXPECT_EQ(load.errors[0].ToString(),
              "--set: mqtt.keepalive_s must be a whole number, not \"soon\"");
    EXPECT_EQ(load.errors[1].ToString().rfind("--set: unknown key mqtt.nothing", 0), 0u);
    EXPECT_EQ(load.errors[2].ToString(),
              "--set: \"no-equals\" is not of the form section.key=value");
}

TEST(ConfigTest, SecretsAreRefusedOnTheCommandLineWithoutEchoingThem) {
    const auto load = LoadConfig(SourcePath("config/ldisd.toml"), {"mqtt.password=hunter2-secret"});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_NE(load.errors[0].message.find("secrets cannot be given on the command line"),
              std::string::npos);
    EXPECT_EQ(Errors(load).find("hunter2-secret"), std::string::npos);
}

TEST(ConfigTest, SecretsAreRefusedInTheFile) {
    TempDir dir;
    const auto path = Write(dir, "ldisd.toml", "[mqtt]\npassword = \"hunter2-secret\"\n");
    const auto load = LoadConfig(path, {});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_EQ(load.errors[0].ToString(), path +
                                             ":2: secrets are not kept in the config file: use "
                                             "mqtt.password_file, or the environment");
}

TEST(ConfigTest, SecretsComeFromFileOrEnvironment) {
    TempDir dir;
    Write(dir, "mqtt.secret", "from-file\n");
    const auto path = Write(dir, "ldisd.toml", "[mqtt]\npassword_file = \"mqtt.secret\"\n");
    auto load = LoadConfig(path, {});
    ASSERT_TRUE(load.ok()) << Errors(load);
    EXPECT_EQ(load.config.mqtt_password, "from-file");
    setenv("LDIS_MQTT_PASSWORD", "from-env", 1);
    load = LoadConfig(path, {});
    unsetenv("LDIS_MQTT_PASSWORD");
    EXPECT_EQ(load.config.mqtt_password, "from-env");
    const auto missing = Write(dir, "missing.toml", "[mqtt]\npassword_file = \"nope.secret\"\n");
    load = LoadConfig(missing, {});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_EQ(load.errors[0].line, 2);
}

TEST(ConfigTest, PolicyPerLevel) {
    auto load = LoadConfig(SourcePath("config/ldisd.toml"), {});
    ASSERT_TRUE(load.ok()) << Errors(load);
    EXPECT_TRUE(load.config.policy.issue_at_once[static_cast<int>(ldis::engine::Level::kRed)]);
    EXPECT_FALSE(load.config.policy.issue_at_once[static_cast<int>(ldis::engine::Level::kAmber)]);
    load = LoadConfig(SourcePath("config/ldisd.toml"), {"policy.amber=issue", "policy.red=draft"});
    ASSERT_TRUE(load.ok()) << Errors(load);
    EXPECT_TRUE(load.config.policy.issue_at_once[static_cast<int>(ldis::engine::Level::kAmber)]);
    EXPECT_FALSE(load.config.policy.issue_at_once[static_cast<int>(ldis::engine::Level::kRed)]);
    const auto amber = ldis::engine::DecidePolicy(ldis::engine::Level::kAmber, "professionals",
                                                  load.config.policy);
    EXPECT_EQ(amber.status, ldis::engine::AlertStatus::kIssued);
    load = LoadConfig(SourcePath("config/ldisd.toml"), {"policy.green=sometimes"});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_NE(load.errors[0].message.find("policy.green must be"), std::string::npos);
}

TEST(ConfigTest, SeveralConnectionsNeedASharedGroup) {
    const auto load = LoadConfig(SourcePath("config/ldisd.toml"), {"mqtt.intake_connections=4"});
    ASSERT_EQ(load.errors.size(), 1u);
    EXPECT_NE(load.errors[0].message.find("needs mqtt.shared_group"), std::string::npos);
}

TEST(ConfigTest, CheckConfigLoadsAreasAndSchema) {
    TempDir dir;
    Write(dir, "areas.toml",
          "[authorities]\nKent = [\"Swale\"]\n\n[[establishments]]\nname = \"X\"\nkind = \"zoo\"\n"
          "district = \"Swale\"\n");
    const auto path = Write(dir, "ldisd.toml",
                            "[paths]\nareas = \"areas.toml\"\nschema = \"" +
                                SourcePath("config/schema/report.schema.json") + "\"\nrules = \"" +
                                SourcePath("config/rules.toml") + "\"\nsubstances = \"" +
                                SourcePath("config/substances.toml") + "\"\ntemplates = \"" +
                                SourcePath("templates") + "\"\n[store]\npath = \"x.db\"\n");
    const auto load = CheckConfig(path, {});
    ASSERT_EQ(load.errors.size(), 1u) << Errors(load);
    EXPECT_EQ(
        load.errors[0].ToString(),
        (dir / "areas.toml") +
            ":4: establishment \"X\" has kind \"zoo\" (expected prison, custody or hospital)");
}

TEST(ConfigTest, CheckConfigLoadsRulesAndSubstances) {
    TempDir dir;
    Write(dir, "rules.toml",
          "[[rule]]\nid = \"nitazene-harm\"\nlevel = \"red\"\nreason = \"r\"\nwhen = [\"family == "
          "nitazine\"]\n");
    const auto path = Write(
        dir, "ldisd.toml",
        "[paths]\nrules = \"rules.toml\"\nsubstances = \"" + SourcePath("config/substances.toml") +
            "\"\nareas = \"" + SourcePath("config/areas.toml") + "\"\nschema = \"" +
            SourcePath("config/schema/report.schema.json") + "\"\n[store]\npath = \"x.db\"\n");
    const auto load = CheckConfig(path, {});
    ASSERT_EQ(load.errors.size(), 1u) << Errors(load);
    EXPECT_EQ(load.errors[0].ToString(),
              (dir / "rules.toml") +
                  ":5: rule \"nitazene-harm\" names unknown family \"nitazine\" "
                  "(did you mean \"nitazene\"?)");
}

TEST(ConfigTest, CheckConfigLoadsPartners) {
    TempDir dir;
    Write(dir, "partners.toml",
          "[[partner]]\nid = \"ed\"\nname = \"ED\"\n  [[partner.subscription]]\n"
          "  districts = [\"Medwya\"]\n");
    const auto path = Write(
        dir, "ldisd.toml",
        "[paths]\npartners = \"partners.toml\"\nrules = \"" + SourcePath("config/rules.toml") +
            "\"\nsubstances = \"" + SourcePath("config/substances.toml") + "\"\nareas = \"" +
            SourcePath("config/areas.toml") + "\"\nschema = \"" +
            SourcePath("config/schema/report.schema.json") + "\"\ntemplates = \"" +
            SourcePath("templates") + "\"\n[store]\npath = \"x.db\"\n");
    const auto load = CheckConfig(path, {});
    ASSERT_EQ(load.errors.size(), 1u) << Errors(load);
    EXPECT_EQ(load.errors[0].ToString(),
              (dir / "partners.toml") +
                  ":5: partner \"ed\" subscription.districts: unknown district \"Medwya\"");
}

}  // namespace
