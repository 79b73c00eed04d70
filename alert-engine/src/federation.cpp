#include "ldis/engine/federation.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "ldis/engine/codec.hpp"

namespace ldis::engine {
namespace {

constexpr std::size_t kSignatureBytes = 64;  // Ed25519

std::shared_ptr<void> Own(EVP_PKEY* key) {
    return std::shared_ptr<void>(key, [](void* k) { EVP_PKEY_free(static_cast<EVP_PKEY*>(k)); });
}

EVP_PKEY* Key(const std::shared_ptr<void>& k) {
    return static_cast<EVP_PKEY*>(k.get());
}

// Reads a PEM key with `read` (PEM_read_bio_PrivateKey or PEM_read_bio_PUBKEY); null when
// the text holds no such key.
template <typename Read>
EVP_PKEY* ReadPem(std::string_view pem, Read read) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (bio == nullptr) return nullptr;
    EVP_PKEY* key = read(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return key;
}

bool IsEd25519(EVP_PKEY* key) {
    return key != nullptr && EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
}

}  // namespace

std::string SignedBytes(std::string_view instance, std::uint64_t sequence,
                        std::string_view payload) {
    std::string out = "ldis-federation/1\n";
    out += instance;
    out += '\n';
    out += std::to_string(sequence);
    out += '\n';
    out += payload;
    return out;
}

bool ValidInstanceName(std::string_view name) {
    if (name.empty() || name.size() > 32 || name.front() == '-') return false;
    for (char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    return true;
}

Result<SigningKey> SigningKey::LoadFile(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return Error{"the federation key " + path + " cannot be read: it does not exist"};
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return Error{"the federation key " + path + " can be read by other users (mode " + mode +
                     "): anyone who reads it can sign alerts in this instance's name; chmod 600 "
                     "it"};
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return Error{"the federation key " + path + " cannot be read"};
    std::ostringstream text;
    text << in.rdbuf();
    return FromPem(text.str(), "the federation key " + path);
}

Result<SigningKey> SigningKey::FromPem(std::string_view pem, std::string_view what) {
    EVP_PKEY* key = ReadPem(pem, PEM_read_bio_PrivateKey);
    if (key == nullptr)
        return Error{std::string(what) +
                     " is not a PEM private key (make one with: openssl "
                     "genpkey -algorithm ed25519 -out federation.key)"};
    if (!IsEd25519(key)) {
        EVP_PKEY_free(key);
        return Error{std::string(what) +
                     " is not an Ed25519 key (make one with: openssl genpkey "
                     "-algorithm ed25519 -out federation.key)"};
    }
    SigningKey out;
    out.key_ = Own(key);
    return out;
}

Envelope SigningKey::Sign(std::string_view instance, std::uint64_t sequence,
                          std::string_view payload) const {
    const std::string bytes = SignedBytes(instance, sequence, payload);
    std::string signature(kSignatureBytes, '\0');
    std::size_t length = signature.size();
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok =
        ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, Key(key_)) == 1 &&
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &length,
                       reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) == 1;
    EVP_MD_CTX_free(ctx);
    // Ed25519 signing cannot fail with a valid key and a buffer of 64 bytes; were it to, an
    // empty signature is refused by every peer rather than sent wrong.
    if (!ok) signature.clear();
    signature.resize(ok ? length : 0);
    return {std::string(instance), sequence, Base64Url(signature)};
}

std::string SigningKey::PublicKeyPem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    std::string out;
    if (bio != nullptr && PEM_write_bio_PUBKEY(bio, Key(key_)) == 1) {
        char* data = nullptr;
        const long n = BIO_get_mem_data(bio, &data);
        out.assign(data, static_cast<std::size_t>(n));
    }
    BIO_free(bio);
    return out;
}

Result<PeerVerifier> PeerVerifier::Create(const std::vector<PeerKey>& peers,
                                          std::string_view self) {
    PeerVerifier out;
    for (const auto& peer : peers) {
        if (!ValidInstanceName(peer.instance))
            return Error{"federation peer \"" + peer.instance +
                         "\": an instance is named with 1 to 32 lower-case letters, digits and "
                         "hyphens"};
        if (peer.instance == self)
            return Error{"federation peer \"" + peer.instance +
                         "\" is this instance's own name: a peer is another LDIS"};
        if (out.keys_.count(peer.instance) != 0)
            return Error{"federation peer \"" + peer.instance + "\" is named twice"};
        EVP_PKEY* key = ReadPem(peer.public_key_pem, PEM_read_bio_PUBKEY);
        if (key == nullptr)
            return Error{"federation peer \"" + peer.instance +
                         "\": its public key is not a PEM public key"};
        if (!IsEd25519(key)) {
            EVP_PKEY_free(key);
            return Error{"federation peer \"" + peer.instance +
                         "\": its public key is not an Ed25519 key"};
        }
        out.keys_[peer.instance] = Own(key);
    }
    return out;
}

Verdict PeerVerifier::Check(const std::optional<Envelope>& envelope, std::string_view payload,
                            std::uint64_t last_sequence) const {
    if (!envelope)
        return {Refusal::kUnsigned,
                "unsigned: it lacks the ldis-instance, ldis-sequence and ldis-signature user "
                "properties, or one of them is malformed"};
    const auto key = keys_.find(envelope->instance);
    if (key == keys_.end())
        return {Refusal::kUnknownPeer, "signed as \"" + envelope->instance.substr(0, 64) +
                                           "\", which is not one of this instance's peers"};
    const auto signature = Base64UrlDecode(envelope->signature);
    bool valid = false;
    if (signature && signature->size() == kSignatureBytes) {
        const std::string bytes = SignedBytes(envelope->instance, envelope->sequence, payload);
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        valid = ctx != nullptr &&
                EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, Key(key->second)) == 1 &&
                EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature->data()),
                                 signature->size(),
                                 reinterpret_cast<const unsigned char*>(bytes.data()),
                                 bytes.size()) == 1;
        EVP_MD_CTX_free(ctx);
    }
    if (!valid)
        return {Refusal::kBadSignature,
                "the signature is not " + envelope->instance +
                    "'s over these bytes: altered on the way, or signed with another key"};
    if (envelope->sequence <= last_sequence)
        return {Refusal::kReplayed,
                "sequence " + std::to_string(envelope->sequence) + " from " + envelope->instance +
                    " is not after the last one accepted (" + std::to_string(last_sequence) +
                    "): a replay, or a copy already received"};
    return {};
}

std::optional<Envelope> EnvelopeFrom(
    const std::vector<std::pair<std::string, std::string>>& properties) {
    std::optional<std::string> instance, sequence, signature;
    for (const auto& [name, value] : properties) {
        std::optional<std::string>* slot = name == kFederationInstanceProperty    ? &instance
                                           : name == kFederationSequenceProperty  ? &sequence
                                           : name == kFederationSignatureProperty ? &signature
                                                                                  : nullptr;
        if (slot == nullptr) continue;
        if (*slot) return std::nullopt;  // repeated: which one was signed?
        *slot = value;
    }
    if (!instance || !sequence || !signature) return std::nullopt;
    std::uint64_t n = 0;
    const char* end = sequence->data() + sequence->size();
    const auto [at, ec] = std::from_chars(sequence->data(), end, n);
    if (ec != std::errc() || at != end || n == 0 || sequence->front() == '0') return std::nullopt;
    return Envelope{*instance, n, *signature};
}

}  // namespace ldis::engine
