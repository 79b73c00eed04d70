// Federation's envelope (issue 16): keys made by the openssl tool, as the two councils'
// operators make theirs, signatures checked by this code and by `openssl pkeyutl`, and every
// way a message can be refused performed.
#include "ldis/engine/federation.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "ldis/engine/codec.hpp"
#include "support/processes.hpp"

using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file

namespace {

std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void Write(const std::string& path, std::string_view text) {
    std::ofstream(path, std::ios::binary) << text;
}

void Shell(const std::string& command) {
    ASSERT_EQ(std::system((command + " 2>/dev/null").c_str()), 0) << command;
}

class FederationTest : public ::testing::Test {
protected:
    FederationTest() {
        for (const std::string name : {"kent", "medway", "thanet"}) {
            Shell("openssl genpkey -algorithm ed25519 -out " + dir_ / (name + ".key"));
            Shell("openssl pkey -in " + dir_ / (name + ".key") + " -pubout -out " +
                  dir_ / (name + ".pub"));
            chmod((dir_ / (name + ".key")).c_str(), 0600);
        }
    }

    SigningKey Key(const std::string& name) {
        auto key = SigningKey::LoadFile(dir_ / (name + ".key"));
        EXPECT_TRUE(key.ok()) << (key.ok() ? "" : key.error().message);
        return key.value();
    }

    // Kent's view: Medway is its one peer.
    PeerVerifier Kent() {
        auto v = PeerVerifier::Create({{"medway", Read(dir_ / "medway.pub")}}, "kent");
        EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
        return v.value();
    }

    ldis::test::TempDir dir_;
    const std::string cap_ =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"urn:"
        "oasis:names:tc:emergency:cap:1.2\"><identifier>KM-2026-0007-v2"
        "</identifier></alert>\n";
};

TEST_F(FederationTest, AVersionSignedByAPeerAndUnalteredIsAccepted) {
    const Envelope e = Key("medway").Sign("medway", 7, cap_);
    EXPECT_EQ(e.instance, "medway");
    EXPECT_EQ(e.sequence, 7u);
    const Verdict v = Kent().Check(e, cap_, 6);
    EXPECT_TRUE(v.accepted()) << v.reason;
    EXPECT_TRUE(Kent().Check(e, cap_, 0).accepted());
}

// A peer written in anything can check the signature: it is plain Ed25519 over SignedBytes.
TEST_F(FederationTest, TheSignatureIsPlainEd25519ThatOpensslVerifies) {
    const Envelope e = Key("medway").Sign("medway", 42, cap_);
    const auto raw = Base64UrlDecode(e.signature);
    ASSERT_TRUE(raw);
    Write(dir_ / "signed", SignedBytes("medway", 42, cap_));
    Write(dir_ / "sig", *raw);
    Shell("openssl pkeyutl -verify -pubin -inkey " + dir_ / "medway.pub" + " -rawin -in " +
          dir_ / "signed" + " -sigfile " + dir_ / "sig");
    // And the public half this code derives is the one openssl derived.
    EXPECT_EQ(Key("medway").PublicKeyPem(), Read(dir_ / "medway.pub"));
}

TEST_F(FederationTest, EveryAlterationIsRefusedWithItsReason) {
    const PeerVerifier kent = Kent();
    const Envelope good = Key("medway").Sign("medway", 9, cap_);

    const Verdict unsigned_ = kent.Check(std::nullopt, cap_, 0);
    EXPECT_EQ(unsigned_.refusal, Refusal::kUnsigned);
    EXPECT_NE(unsigned_.reason.find("unsigned"), std::string::npos);

    // A key Kent does not know, in its own name.
    const Verdict stranger = kent.Check(Key("thanet").Sign("thanet", 9, cap_), cap_, 0);
    EXPECT_EQ(stranger.refusal, Refusal::kUnknownPeer);
    EXPECT_NE(stranger.reason.find("\"thanet\""), std::string::npos) << stranger.reason;

    // A key Kent does not know, in Medway's name.
    const Verdict forged = kent.Check(Key("thanet").Sign("medway", 9, cap_), cap_, 0);
    EXPECT_EQ(forged.refusal, Refusal::kBadSignature) << forged.reason;

    // One character of the CAP changed on the way.
    std::string altered = cap_;
    altered[altered.find("0007")] = '9';
    EXPECT_EQ(kent.Check(good, altered, 0).refusal, Refusal::kBadSignature);
    // The sequence moved (to get past the replay check), or the signature cut or garbled.
    Envelope moved = good;
    moved.sequence = 10;
    EXPECT_EQ(kent.Check(moved, cap_, 9).refusal, Refusal::kBadSignature);
    Envelope cut = good;
    cut.signature.pop_back();
    EXPECT_EQ(kent.Check(cut, cap_, 0).refusal, Refusal::kBadSignature);
    Envelope garbled = good;
    garbled.signature = "not base64 at all!";
    EXPECT_EQ(kent.Check(garbled, cap_, 0).refusal, Refusal::kBadSignature);
    Envelope empty = good;
    empty.signature.clear();
    EXPECT_EQ(kent.Check(empty, cap_, 0).refusal, Refusal::kBadSignature);

    // The same message again, or an older one: a replay (or the bridge's second copy).
    const Verdict again = kent.Check(good, cap_, 9);
    EXPECT_EQ(again.refusal, Refusal::kReplayed);
    EXPECT_NE(again.reason.find("sequence 9"), std::string::npos) << again.reason;
    EXPECT_EQ(kent.Check(good, cap_, 12).refusal, Refusal::kReplayed);
    // And the untouched message still passes.
    EXPECT_TRUE(kent.Check(good, cap_, 8).accepted());
}

TEST_F(FederationTest, TheEnvelopeIsReadFromUserPropertiesStrictly) {
    using Props = std::vector<std::pair<std::string, std::string>>;
    const Props good = {{"ldis-instance", "medway"},
                        {"ldis-sequence", "12"},
                        {"ldis-signature", "abc"},
                        {"something-else", "kept out"}};
    const auto e = EnvelopeFrom(good);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->instance, "medway");
    EXPECT_EQ(e->sequence, 12u);
    EXPECT_EQ(e->signature, "abc");
    for (const std::string bad : {"", "0", "012", "-1", "1e3", "12 ", "99999999999999999999999"}) {
        Props p = good;
        p[1].second = bad;
        EXPECT_FALSE(EnvelopeFrom(p)) << "sequence \"" << bad << "\"";
    }
    EXPECT_FALSE(EnvelopeFrom({{"ldis-instance", "medway"}, {"ldis-sequence", "12"}}));
    Props twice = good;
    twice.push_back({"ldis-signature", "def"});
    EXPECT_FALSE(EnvelopeFrom(twice)) << "two signatures: which was meant?";
}

TEST_F(FederationTest, KeysAreRefusedWithTheReasonAndTheFix) {
    // Readable by others.
    chmod((dir_ / "kent.key").c_str(), 0644);
    auto open = SigningKey::LoadFile(dir_ / "kent.key");
    ASSERT_FALSE(open.ok());
    EXPECT_NE(open.error().message.find("mode 0644"), std::string::npos) << open.error().message;
    EXPECT_NE(open.error().message.find("chmod 600"), std::string::npos);
    // Not there; a public key where the private one belongs; an RSA key.
    EXPECT_NE(SigningKey::LoadFile(dir_ / "none.key").error().message.find("does not exist"),
              std::string::npos);
    EXPECT_NE(SigningKey::FromPem(Read(dir_ / "kent.pub")).error().message.find("genpkey"),
              std::string::npos);
    Shell("openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out " + dir_ / "rsa.key");
    Shell("openssl pkey -in " + dir_ / "rsa.key" + " -pubout -out " + dir_ / "rsa.pub");
    EXPECT_NE(SigningKey::FromPem(Read(dir_ / "rsa.key")).error().message.find("not an Ed25519"),
              std::string::npos);
    // Peers: an RSA key, nonsense, a bad name, this instance itself, one named twice.
    const auto peer = [&](const std::string& name, const std::string& pub) {
        return PeerKey{name, Read(dir_ / pub)};
    };
    const auto error = [&](const std::vector<PeerKey>& peers) {
        auto v = PeerVerifier::Create(peers, "kent");
        return v.ok() ? std::string("accepted") : v.error().message;
    };
    EXPECT_NE(error({peer("medway", "rsa.pub")}).find("not an Ed25519"), std::string::npos);
    EXPECT_NE(error({{"medway", "garbage"}}).find("not a PEM public key"), std::string::npos);
    EXPECT_NE(error({peer("Medway LDIS", "medway.pub")}).find("lower-case"), std::string::npos);
    EXPECT_NE(error({peer("kent", "kent.pub")}).find("own name"), std::string::npos);
    EXPECT_NE(error({peer("medway", "medway.pub"), peer("medway", "thanet.pub")}).find("twice"),
              std::string::npos);
    EXPECT_EQ(error({peer("medway", "medway.pub"), peer("thanet", "thanet.pub")}), "accepted");
}

TEST(FederationNames, InstancesAreTopicSafeNames) {
    for (const char* good : {"kent", "medway", "kent-2", "a"}) EXPECT_TRUE(ValidInstanceName(good));
    for (const char* bad : {"", "Kent", "kent/alerts", "+", "#", "-kent", "kent medway",
                            "a-name-that-is-far-too-long-for-a-topic"})
        EXPECT_FALSE(ValidInstanceName(bad)) << bad;
}

}  // namespace
