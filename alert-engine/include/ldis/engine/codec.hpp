#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ldis::engine {

// Byte codecs and keyed hashes on OpenSSL. Pure; thread-safe.
std::string Base64(std::string_view bytes);     // RFC 4648 §4, padded
std::string Base64Url(std::string_view bytes);  // RFC 4648 §5, unpadded (JWT)
std::optional<std::string> Base64UrlDecode(std::string_view text);
std::string Hex(std::string_view bytes);  // lower case
std::string Sha256Hex(std::string_view data);
std::string Sha1Hex(std::string_view data);  // only where a standard asks for it (CAP 1.2)
std::string HmacSha256(std::string_view key, std::string_view data);  // 32 raw bytes
// Cryptographically random bytes; throws std::runtime_error if none can be had.
std::string RandomBytes(std::size_t n);

}  // namespace ldis::engine
