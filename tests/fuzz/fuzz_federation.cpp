// libFuzzer: what a peer instance sends (issue 16 §1), whole: the CAP document (ReadCap,
// libxml2 against the OASIS schema), the acknowledgement counts (ParseAcks) and the
// envelope's user properties (EnvelopeFrom, then the signature check). None may crash or
// leak; a document read must be consistent with what it says.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ldis/engine/cap.hpp"
#include "ldis/engine/federated.hpp"
#include "ldis/engine/federation.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 300000) return 0;
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (const auto v = ldis::engine::ReadCap(text); v.ok()) {
        const auto& got = v.value();
        if (got.version < 1 || got.identifier != got.reference + "-v" + std::to_string(got.version))
            __builtin_trap();
    }
    if (const auto a = ldis::engine::ParseAcks(text); a.ok()) {
        if (a.value().acknowledged > a.value().partners || a.value().acknowledged < 0)
            __builtin_trap();
    }
    // The input cut into name=value properties, one per line.
    std::vector<std::pair<std::string, std::string>> properties;
    std::size_t start = 0;
    while (start < text.size() && properties.size() < 8) {
        const auto end = text.find('\n', start);
        const std::string line =
            text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        const auto eq = line.find('=');
        if (eq != std::string::npos)
            properties.emplace_back(line.substr(0, eq), line.substr(eq + 1));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    static const auto verifier = [] {
        // A fixed peer key (RFC 8032 test 1's public key): whatever the input, the check ends.
        const std::string pem =
            "-----BEGIN PUBLIC KEY-----\n"
            "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
            "-----END PUBLIC KEY-----\n";
        return ldis::engine::PeerVerifier::Create({{"medway", pem}}, "kent").value();
    }();
    const auto envelope = ldis::engine::EnvelopeFrom(properties);
    verifier.Check(envelope, text, 0);
    return 0;
}
