// Federation (issue 16 §1): this instance's signed versions offered to its peers, the peers'
// versions and acknowledgement counts taken in. Part of Daemon::Impl (daemon_impl.hpp).
#include "daemon_impl.hpp"

namespace ldis::app {

// Federation (issue 16 §1): this instance's key and its peers'. An Error names the file.
engine::Result<bool> Daemon::Impl::StartFederation() {
    if (config_.federation_instance.empty()) return true;
    auto key = engine::SigningKey::LoadFile(config_.federation_key_file);
    if (!key.ok()) return key.error();
    signing_key_ = std::make_unique<engine::SigningKey>(std::move(key).value());
    std::vector<engine::PeerKey> peers;
    for (const auto& peer : config_.federation_peers) {
        std::ifstream in(peer.public_key_file, std::ios::binary);
        if (!in)
            return engine::Error{peer.public_key_file + ": cannot read " + peer.instance +
                                 "'s public key"};
        std::ostringstream pem;
        pem << in.rdbuf();
        peers.push_back({peer.instance, pem.str()});
        peer_names_[peer.instance] = peer.name;
    }
    auto verifier = engine::PeerVerifier::Create(peers, config_.federation_instance);
    if (!verifier.ok()) return verifier.error();
    verifier_ = std::make_unique<engine::PeerVerifier>(std::move(verifier).value());
    // Strictly increasing across restarts: the send time in microseconds, or one more.
    last_sequence_ = static_cast<std::uint64_t>(WallMs()) * 1000;
    spdlog::info("federation: {} offers {} level(s) on {}; {} peer(s)", config_.federation_instance,
                 config_.federation_offer.size(),
                 engine::wire::FederationTopic(config_.federation_instance),
                 config_.federation_peers.size());
    return true;
}

// The signed CAP of a version offered to the peers; on the io thread.
engine::Result<engine::FederationMessage> Daemon::Impl::SignOffer(const engine::OutboxItem& item) {
    const auto record = store_.FindAlertRecord(item.reference);
    if (!record) return engine::Error{"no alert " + item.reference};
    const std::string cap = web::CapDocument(
        *record, item.version, engine::EmailAddressOf(config_.email_from), config_.http_public_url);
    if (cap.empty())
        return engine::Error{"no version " + std::to_string(item.version) + " of " +
                             item.reference};
    const std::uint64_t sequence =
        std::max(last_sequence_ + 1, static_cast<std::uint64_t>(WallMs()) * 1000);
    last_sequence_ = sequence;
    const auto envelope = signing_key_->Sign(config_.federation_instance, sequence, cap);
    return engine::FederationMessage{
        cap,
        {{std::string(engine::kFederationInstanceProperty), envelope.instance},
         {std::string(engine::kFederationSequenceProperty), std::to_string(sequence)},
         {std::string(engine::kFederationSignatureProperty), envelope.signature}}};
}

// A peer's message on ldis/v1/federation/{peer}/alerts; on Paho's callback thread, like a
// report: it returns once the version is stored or refused.
void Daemon::Impl::OnFederation(const broker::Message& m, std::string_view topic_instance) {
    if (topic_instance == config_.federation_instance) return;  // our own, from the broker
    if (!verifier_) return;
    std::optional<engine::Envelope> envelope;
    if (const auto refused = CheckEnvelope(
            m, topic_instance, "federation:last:" + std::string(topic_instance), envelope);
        !refused.empty()) {
        spdlog::warn("federation: refused a message on {}: {}", m.topic, refused);
        return;
    }
    auto version = engine::ReadCap(m.payload);
    if (!version.ok()) {
        spdlog::warn("federation: refused {}'s message {}: {}", topic_instance, envelope->sequence,
                     version.error().message);
        return;
    }
    engine::FederatedVersion v = std::move(version).value();
    v.peer = std::string(topic_instance);
    v.sequence = envelope->sequence;
    const auto policy = config_.federation_policy[static_cast<int>(v.level)];
    for (auto delay = std::chrono::milliseconds(100);;
         delay = std::min(delay * 2, std::chrono::milliseconds(5000))) {
        const auto stored = store_.ReceiveFederated(v, policy, peer_names_[v.peer], WallMs());
        if (stored.ok()) {
            spdlog::info("federation: {} {} from {}: {}{} ({} delivery(ies))", v.identifier,
                         v.msg_type, v.peer, stored.value().stored ? "" : "already had it; ",
                         stored.value().decision, stored.value().deliveries);
            return;
        }
        if (stopping_.load()) {
            spdlog::critical(
                "stopping with a federation message that cannot be stored ({}); "
                "exiting unacknowledged",
                stored.error().message);
            spdlog::default_logger()->flush();
            std::_Exit(75);
        }
        spdlog::error("federation: {} not stored ({}); trying again", v.identifier,
                      stored.error().message);
        std::this_thread::sleep_for(delay);
    }
}

// The envelope's check for a peer's message on `topic_instance`'s topics: "" when it
// passes, else why not. `last_key` is the setting holding the last sequence accepted on
// that topic (each topic's messages arrive in order; two topics' need not).
std::string Daemon::Impl::CheckEnvelope(const broker::Message& m, std::string_view topic_instance,
                                        const std::string& last_key,
                                        std::optional<engine::Envelope>& envelope) {
    envelope = engine::EnvelopeFrom(m.user_properties);
    if (envelope && envelope->instance != topic_instance)
        return "signed as " + envelope->instance.substr(0, 64) +
               ", but the topic names another instance";
    std::uint64_t last = 0;
    const std::string kept = store_.Setting(last_key);
    std::from_chars(kept.data(), kept.data() + kept.size(), last);
    const auto verdict = verifier_->Check(envelope, m.payload, last);
    return verdict.accepted() ? std::string() : verdict.reason;
}

// Every 5 s: the acknowledgement counts of the peers' alerts forwarded here, sent back to
// them when they changed (counts only), signed like an offer; on the io thread.
void Daemon::Impl::SendAcks(net::steady_timer& timer) {
    if (!signing_key_) return;
    acks_timer_ = &timer;
    for (const auto& acks : store_.ForwardedAcknowledgements(WallMs())) {
        const std::string key = acks.peer + "/" + acks.reference;
        if (acks_sent_[key] == acks || !clients_.front()->connected()) continue;
        const std::string payload = engine::AcksJson(acks);
        const std::uint64_t sequence =
            std::max(last_sequence_ + 1, static_cast<std::uint64_t>(WallMs()) * 1000);
        last_sequence_ = sequence;
        const auto envelope = signing_key_->Sign(config_.federation_instance, sequence, payload);
        broker::Message m;
        m.topic = engine::wire::FederationAcksTopic(config_.federation_instance);
        m.payload = payload;
        m.qos = 1;
        m.user_properties = {
            {std::string(engine::kFederationInstanceProperty), envelope.instance},
            {std::string(engine::kFederationSequenceProperty), std::to_string(sequence)},
            {std::string(engine::kFederationSignatureProperty), envelope.signature}};
        clients_.front()->Publish(std::move(m));
        acks_sent_[key] = acks;
    }
    timer.expires_after(std::chrono::seconds(5));
    timer.async_wait([this, &timer](const boost::system::error_code& ec) {
        if (!ec && !stopping_.load()) SendAcks(timer);
    });
}

// A peer's counts of this instance's alert; on Paho's callback thread. Kept as the setting
// "federation:acks:{reference}": {peer: {"name", "partners", "acknowledged", "at_ms"}}.
void Daemon::Impl::OnFederationAcks(const broker::Message& m, std::string_view topic_instance) {
    if (topic_instance == config_.federation_instance || !verifier_) return;
    const std::string last_key = "federation:last-acks:" + std::string(topic_instance);
    std::optional<engine::Envelope> envelope;
    if (const auto refused = CheckEnvelope(m, topic_instance, last_key, envelope);
        !refused.empty()) {
        spdlog::warn("federation: refused counts on {}: {}", m.topic, refused);
        return;
    }
    auto acks = engine::ParseAcks(m.payload);
    if (!acks.ok() || acks.value().peer != config_.federation_instance) {
        spdlog::warn("federation: refused counts from {}: {}", topic_instance,
                     acks.ok() ? "they are for another instance" : acks.error().message);
        return;
    }
    const std::string key = "federation:acks:" + acks.value().reference;
    boost::json::error_code ec;
    auto kept = boost::json::parse(store_.Setting(key), ec);
    boost::json::object all = !ec && kept.is_object() ? kept.as_object() : boost::json::object{};
    all[std::string(topic_instance)] =
        boost::json::object{{"name", peer_names_[std::string(topic_instance)]},
                            {"partners", acks.value().partners},
                            {"acknowledged", acks.value().acknowledged},
                            {"at_ms", WallMs()}};
    if (!store_.SetSetting(key, boost::json::serialize(all)).ok() ||
        !store_.SetSetting(last_key, std::to_string(envelope->sequence)).ok())
        spdlog::error("federation: counts from {} not stored", topic_instance);
}

}  // namespace ldis::app
