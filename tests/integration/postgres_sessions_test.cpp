// Tokens, web sessions and settings on PostgreSQL (issue 15): one table of each for every
// instance, so any instance serves any signed-in coordinator, a token revoked at one ends
// its sessions at all, and a restart signs no one out.
#include <gtest/gtest.h>

#include "ldis/engine/codec.hpp"
#include "ldis/engine/postgres.hpp"
#include "ldis/engine/text.hpp"
#include "support/postgres.hpp"

namespace {

using ldis::engine::PostgresDatabase;
using ldis::engine::PostgresStore;
using ldis::engine::WebSession;

std::unique_ptr<PostgresStore> SessionsInstance(const std::string& url) {
    PostgresStore::Options o;
    o.url = url;
    auto opened = PostgresStore::Open(o);
    EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
    return opened.ok() ? std::move(opened).value() : nullptr;
}

TEST(PostgresSessionsTest, AnyInstanceServesASessionAndARevocationEndsItEverywhere) {
    ldis::test::PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    auto a = SessionsInstance(url);
    auto b = SessionsInstance(url);
    ASSERT_TRUE(a && b);
    const auto secret = a->CreateToken("coordinator@kent.example", "coordinator");
    ASSERT_TRUE(secret.ok()) << secret.error().message;
    const auto who = b->FindToken(secret.value());
    ASSERT_TRUE(who);
    EXPECT_EQ(who->role, "coordinator");
    EXPECT_FALSE(b->FindToken(secret.value() + "x"));

    // Signed in at A; B serves the same session.
    const std::int64_t now = ldis::engine::NowMs();
    const WebSession session{ldis::engine::Sha256Hex("session-1"), *who, "csrf-1", now,
                             now + 3600000};
    ASSERT_TRUE(a->CreateSession(session, 5, 100).ok());
    const auto at_b = b->FindSession(session.id_hash, now + 1000);
    ASSERT_TRUE(at_b);
    EXPECT_EQ(at_b->who.name, "coordinator@kent.example");
    EXPECT_EQ(at_b->csrf, "csrf-1");
    EXPECT_FALSE(b->FindSession(session.id_hash, now + 3600000));  // expired by then

    // A restart of A signs no one out.
    a.reset();
    a = SessionsInstance(url);
    ASSERT_TRUE(a);
    EXPECT_TRUE(a->FindSession(session.id_hash, now + 1000));

    // One key on many browsers: the oldest beyond the limit end first.
    for (int i = 2; i <= 4; ++i) {
        const WebSession more{ldis::engine::Sha256Hex("session-" + std::to_string(i)), *who, "csrf",
                              now + i, now + 3600000};
        ASSERT_TRUE(b->CreateSession(more, 3, 100).ok());
    }
    EXPECT_FALSE(a->FindSession(session.id_hash, now + 1000));
    const auto tokens = a->Tokens();
    ASSERT_EQ(tokens.size(), 1u);
    EXPECT_EQ(tokens[0].sessions, 3);

    // Revoked at B: every session of the key ends at A too, and the audit says so.
    const auto ended = b->RevokeToken(who->id, "admin@kent.example");
    ASSERT_TRUE(ended.ok()) << ended.error().message;
    EXPECT_EQ(ended.value(), 3);
    EXPECT_FALSE(a->FindSession(ldis::engine::Sha256Hex("session-4"), now + 1000));
    EXPECT_FALSE(a->FindToken(secret.value()));
    const auto again = a->RevokeToken(who->id, "admin@kent.example");
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().message.find("no live token"), std::string::npos);
    auto db = PostgresDatabase::Open(url);
    ASSERT_TRUE(db.ok());
    const auto chain = db.value()->VerifyAudit();
    ASSERT_TRUE(chain.ok()) << chain.error().message;
    EXPECT_EQ(chain.value(), 2);  // token.created, token.revoked
}

TEST(PostgresSessionsTest, SettingsAreSharedAndTheAcknowledgementKeyIsOne) {
    ldis::test::PostgresServer server;
    const std::string url = server.CreateDatabase("ldis");
    auto a = SessionsInstance(url);
    auto b = SessionsInstance(url);
    ASSERT_TRUE(a && b);
    // Links signed by one instance are verified by the other.
    EXPECT_EQ(a->AckKey(), b->AckKey());
    EXPECT_EQ(a->AckKey().size(), 64u);
    EXPECT_EQ(b->Setting("mqtt.client_ids"), "");
    ASSERT_TRUE(a->SetSetting("mqtt.client_ids", "ldisd-a\n").ok());
    EXPECT_EQ(b->Setting("mqtt.client_ids"), "ldisd-a\n");
    ASSERT_TRUE(b->SetSetting("mqtt.client_ids", "ldisd-a\nldisd-b\n").ok());
    EXPECT_EQ(a->Setting("mqtt.client_ids"), "ldisd-a\nldisd-b\n");
}

}  // namespace
