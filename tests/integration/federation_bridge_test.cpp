// The federation's transport (issue 16): Kent's production broker (packaging/mosquitto/
// ldis.conf and acl, TLS and passwords) and Medway's broker with the shipped bridge
// (packaging/mosquitto/federation-bridge.conf), both started here on loopback. Signed
// versions published at Medway reach Kent's ldisd user with their envelope intact and pass
// Kent's check; nothing but federation topics crosses; the bridge's user can write nothing
// else at Kent; and what Medway publishes while Kent's broker is down arrives, once each and
// in order, when it is back.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <condition_variable>
#include <mutex>

#include "ldis/broker/client.hpp"
#include "ldis/engine/federation.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

using ldis::broker::Client;
using ldis::broker::ClientOptions;
using ldis::broker::Message;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::ReadFile;
using ldis::test::ReplaceOnce;
using ldis::test::SourcePath;
using ldis::test::TempDir;
using namespace ldis::engine;  // NOLINT(google-build-using-namespace): a test file

namespace {

constexpr auto kBridgeWait = std::chrono::seconds(15);

void Shell(const std::string& command) {
    ASSERT_EQ(std::system((command + " >/dev/null 2>&1").c_str()), 0) << command;
}

// Kent's ldisd, as far as federation goes: a persistent session on Kent's broker that keeps
// every message on Medway's federation topic, with its user properties.
class Receiver {
public:
    Receiver(const std::string& uri, const std::string& ca) {
        ClientOptions o;
        o.uri = uri;
        o.ca_file = ca;
        o.client_id = "ldisd-kent-federation";
        o.username = "ldisd";
        o.password = "ldisd-pass";
        o.subscriptions = {"ldis/v1/federation/medway/#", "ldis/v1/reports/+"};
        o.session_expiry = std::chrono::seconds(600);
        client_ = std::make_unique<Client>(o, [this](const Message& m) {
            std::lock_guard lock(mutex_);
            seen_.push_back(m);
            changed_.notify_all();
        });
        client_->Start();
    }
    ~Receiver() { client_->Stop(std::chrono::seconds(2)); }
    bool connected(std::chrono::seconds wait) { return client_->WaitConnected(wait); }

    // Waits until `n` messages have arrived; returns them all.
    std::vector<Message> WaitFor(std::size_t n) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, kBridgeWait, [&] { return seen_.size() >= n; });
        return seen_;
    }

    // Waits until the message signed with `sequence` has arrived; returns them all.
    std::vector<Message> WaitForSequence(std::uint64_t sequence) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, kBridgeWait, [&] {
            return std::any_of(seen_.begin(), seen_.end(), [&](const Message& m) {
                const auto e = EnvelopeFrom(m.user_properties);
                return e && e->sequence == sequence;
            });
        });
        return seen_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Message> seen_;
    std::unique_ptr<Client> client_;
};

class FederationBridgeTest : public ::testing::Test {
protected:
    FederationBridgeTest() {
        // Kent's broker: the production configuration, as tests/security runs it, keeping
        // ldisd's session while it is stopped.
        kent_ = ldis::test::StartProductionBroker(
            files_, {{"ldisd", "ldisd-pass"}, {"federation-medway", "bridge-pass"}}, true);
        cert_ = files_ / "cert.pem";
        kent_uri_ = "ssl://127.0.0.1:" + std::to_string(kent_->port());

        // Medway's broker: an open test listener and the shipped bridge to Kent's.
        std::string bridge = ReadFile(SourcePath("packaging/mosquitto/federation-bridge.conf"));
        ReplaceOnce(bridge, "kent-ldis.example.org:8883",
                    "127.0.0.1:" + std::to_string(kent_->port()));
        ReplaceOnce(bridge, "/etc/mosquitto/ldis/federation-ca.pem", cert_);
        ReplaceOnce(bridge, "remote_password change-me", "remote_password bridge-pass");
        medway_ = std::make_unique<Mosquitto>(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            "persistence_location {dir}/\n" +
            bridge);

        for (const std::string name : {"medway", "thanet"}) {
            Shell("openssl genpkey -algorithm ed25519 -out " + files_ / (name + ".key"));
            chmod((files_ / (name + ".key")).c_str(), 0600);
        }
        medway_key_ = SigningKey::LoadFile(files_ / "medway.key").value();
        thanet_key_ = SigningKey::LoadFile(files_ / "thanet.key").value();
        kent_verifier_ =
            PeerVerifier::Create({{"medway", medway_key_->PublicKeyPem()}}, "kent").value();
    }

    // Publishes a signed CAP document at Medway's broker, as Medway's ldisd would.
    void Offer(std::uint64_t sequence, const SigningKey& key) {
        Message m;
        m.topic = "ldis/v1/federation/medway/alerts";
        m.payload = Cap(sequence);
        const Envelope e = key.Sign("medway", sequence, m.payload);
        m.user_properties = {{std::string(kFederationInstanceProperty), e.instance},
                             {std::string(kFederationSequenceProperty), std::to_string(e.sequence)},
                             {std::string(kFederationSignatureProperty), e.signature}};
        medway_client_->Publish(std::move(m));
    }

    static std::string Cap(std::uint64_t sequence) {
        return "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>KM-2026-0007-v" +
               std::to_string(sequence) + "</identifier></alert>";
    }

    void StartMedwayClient() {
        ClientOptions o;
        o.uri = medway_->uri();
        o.client_id = "ldisd-medway";
        medway_client_ = std::make_unique<Client>(o, [](const Message&) {});
        medway_client_->Start();
        ASSERT_TRUE(medway_client_->WaitConnected(kBridgeWait));
    }

    TempDir files_;
    std::string cert_;
    std::unique_ptr<Mosquitto> kent_, medway_;
    std::string kent_uri_;
    std::unique_ptr<Client> medway_client_;
    std::optional<SigningKey> medway_key_, thanet_key_;
    std::optional<PeerVerifier> kent_verifier_;
};

TEST_F(FederationBridgeTest, SignedVersionsCrossAndNothingElseDoesEvenWhenKentsBrokerIsDown) {
    Receiver kent(kent_uri_, cert_);
    ASSERT_TRUE(kent.connected(kBridgeWait));
    StartMedwayClient();
    MqttPeer medway_reporter(medway_->uri(), "medway-ed");
    ASSERT_TRUE(medway_reporter.connected());

    // The bridge is up once a first offer arrives (it connects on its own schedule).
    std::uint64_t sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + kBridgeWait;
    while (kent.WaitFor(0).empty() && std::chrono::steady_clock::now() < deadline) {
        Offer(++sent, *medway_key_);
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ASSERT_FALSE(kent.WaitFor(0).empty()) << ReadFile(medway_->dir() / "mosquitto-1.log");
    // A report published at Medway stays at Medway.
    ASSERT_TRUE(medway_reporter.Publish("ldis/v1/reports/hospital",
                                        ldis::test::ValidReportText(ldis::test::NewUuid())));
    // A forgery: Medway's topic and name, another key. It crosses (the bridge carries bytes);
    // Kent's check refuses it.
    Offer(++sent, *thanet_key_);
    const std::uint64_t forged = sent;

    // Kent's broker goes down; Medway keeps offering; Kent comes back.
    kent_->Stop();
    const std::uint64_t first_while_down = sent + 1;
    for (int i = 0; i < 10; ++i) Offer(++sent, *medway_key_);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    kent_->Start();

    // QoS 1 is at least once: an offer in flight when Kent's broker stopped comes again after
    // it. The sequence check makes each one version: every offer accepted once, in order.
    const auto got = kent.WaitForSequence(sent);
    std::uint64_t last = 0;
    std::vector<std::uint64_t> accepted, refused, order;
    for (const auto& m : got) {
        ASSERT_EQ(m.topic, "ldis/v1/federation/medway/alerts") << "only federation topics cross";
        const auto envelope = EnvelopeFrom(m.user_properties);
        ASSERT_TRUE(envelope) << "the envelope lost its user properties on the way";
        order.push_back(envelope->sequence);
        const Verdict v = kent_verifier_->Check(envelope, m.payload, last);
        if (v.accepted()) {
            last = envelope->sequence;
            accepted.push_back(envelope->sequence);
        } else if (envelope->sequence == forged) {
            EXPECT_EQ(v.refusal, Refusal::kBadSignature) << v.reason;
        } else {
            EXPECT_EQ(v.refusal, Refusal::kReplayed) << v.reason;  // a second copy
            refused.push_back(envelope->sequence);
        }
    }
    std::vector<std::uint64_t> expected;
    for (std::uint64_t s = 1; s <= sent; ++s) {
        if (s != forged) expected.push_back(s);
    }
    EXPECT_EQ(accepted, expected) << "received in this order: " << ::testing::PrintToString(order);
    EXPECT_TRUE(std::find(accepted.begin(), accepted.end(), first_while_down) != accepted.end());
    // Second copies are QoS 1's: only what was in flight at the outage.
    EXPECT_LE(refused.size(), 3u) << ::testing::PrintToString(order);
    // The same message again (a replay, or the bridge's second copy) is refused.
    const auto envelope = EnvelopeFrom(got.back().user_properties);
    EXPECT_EQ(kent_verifier_->Check(envelope, got.back().payload, last).refusal,
              Refusal::kReplayed);
}

// The bridge's user at Kent can deliver Medway's federation messages and nothing else: not a
// report, not Kent's own federation topic.
TEST_F(FederationBridgeTest, TheBridgesUserWritesOnlyItsOwnFederationTopic) {
    for (const std::string topic : {"ldis/v1/reports/hospital", "ldis/v1/federation/kent/alerts",
                                    "ldis/v1/alerts/red/kent"}) {
        // (On its own connection: Paho C drops a connection whose publish was refused.)
        MqttPeer bridge(kent_uri_, "bridge-" + ldis::test::NewUuid().substr(0, 8),
                        "federation-medway", "bridge-pass", cert_);
        ASSERT_TRUE(bridge.connected());
        EXPECT_FALSE(bridge.Publish(topic, "x")) << topic;
    }
    MqttPeer bridge(kent_uri_, "bridge-ok", "federation-medway", "bridge-pass", cert_);
    ASSERT_TRUE(bridge.connected());
    EXPECT_TRUE(bridge.Publish("ldis/v1/federation/medway/alerts", "x"));
}

}  // namespace
