#pragma once
// Federation's envelope (DESIGN §5, issue 16): an alert version offered to a peer instance
// (Kent, Medway) crosses as CAP 1.2, with the issuing instance's name, a sequence number and
// an Ed25519 signature over the exact bytes, carried as MQTT 5 user properties beside the
// payload. The receiving side checks all three before anything of the message reaches a
// partner: unsigned, signed by a key it does not know, altered, or replayed (a sequence not
// above the last one it accepted from that peer) is refused with the reason.
//
// OpenSSL stays inside federation.cpp; the keys are opaque here. Thread-safe once built.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/result.hpp"

namespace ldis::engine {

// The user properties of a federation publish.
inline constexpr std::string_view kFederationInstanceProperty = "ldis-instance";
inline constexpr std::string_view kFederationSequenceProperty = "ldis-sequence";
inline constexpr std::string_view kFederationSignatureProperty = "ldis-signature";

// Who signed, which of the signer's messages this is, and the signature (base64).
struct Envelope {
    std::string instance;
    std::uint64_t sequence = 0;
    std::string signature;
};

// What is signed: a label, the instance, the sequence and the payload, each delimited, so
// that no part can be moved to another message or another sender.
std::string SignedBytes(std::string_view instance, std::uint64_t sequence,
                        std::string_view payload);

// An instance names itself with lower-case letters, digits and hyphens (it is a topic
// level: ldis/v1/federation/{instance}/alerts), 1 to 32 of them.
bool ValidInstanceName(std::string_view name);

// This instance's private key (Ed25519, PEM). Copyable; shares the key.
class SigningKey {
public:
    // The key file must be readable by its owner only (0600 or stricter): anyone who can read
    // it can issue alerts in this instance's name to every peer.
    static Result<SigningKey> LoadFile(const std::string& path);
    static Result<SigningKey> FromPem(std::string_view pem, std::string_view what = "the key");

    Envelope Sign(std::string_view instance, std::uint64_t sequence,
                  std::string_view payload) const;
    // The public half, PEM (SubjectPublicKeyInfo), as a peer puts it in its configuration.
    std::string PublicKeyPem() const;

private:
    std::shared_ptr<void> key_;  // EVP_PKEY
};

// A peer as this instance's configuration names it.
struct PeerKey {
    std::string instance;
    std::string public_key_pem;
};

// Why a message was refused.
enum class Refusal { kNone, kUnsigned, kUnknownPeer, kBadSignature, kReplayed };

struct Verdict {
    Refusal refusal = Refusal::kNone;
    std::string reason;  // a sentence for the log; empty when accepted
    bool accepted() const { return refusal == Refusal::kNone; }
};

// The peers' public keys, and the check each received message passes.
class PeerVerifier {
public:
    // Refuses a key that is not an Ed25519 public key, an invalid instance name, a peer named
    // twice, and `self` (this instance) among its own peers.
    static Result<PeerVerifier> Create(const std::vector<PeerKey>& peers, std::string_view self);

    // Checks one message: `envelope` is what its user properties gave (nullopt when any of
    // the three is missing or the sequence is not a number), `last_sequence` the highest this
    // instance accepted from that peer before (0: none). Records nothing.
    Verdict Check(const std::optional<Envelope>& envelope, std::string_view payload,
                  std::uint64_t last_sequence) const;

    bool Knows(std::string_view instance) const { return keys_.count(std::string(instance)) > 0; }

private:
    std::map<std::string, std::shared_ptr<void>> keys_;  // instance -> EVP_PKEY
};

// The envelope from a publish's user properties (name, value pairs); nullopt when any of
// the three is missing, repeated, or the sequence is not a positive decimal number.
std::optional<Envelope> EnvelopeFrom(
    const std::vector<std::pair<std::string, std::string>>& properties);

}  // namespace ldis::engine
