#pragma once
// The rules every request-derived value passes before it reaches a header, a redirect or
// the file system, and the per-address limits on the unauthenticated (docs/security.md).
// Pure functions and one small thread-safe class; no Beast. Private to web/.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace ldis::web {

// True when `value` may stand in an HTTP header: no CR, LF or NUL, which would end the
// header and start another (response splitting). Every header the server sends passes it.
// Pure.
bool SafeHeaderValue(std::string_view value);

// `next` when it is a path on this site ("/" then letters, digits, "/", "-", "_", ".",
// "?", "=", "&", "%"; never "//" or a backslash, which browsers read as another host),
// else "/". Pure.
std::string LocalPath(std::string_view next);

// The regular file `relative` names under `root`, or nullopt. Refused: an empty or
// absolute path, "..", a backslash, "%" (encoded separators and NUL), any character but
// letters, digits, "-", "_", ".", "/", and anything whose canonical path (symbolic links
// resolved) lies outside the canonical `root`. Reads the file system; thread-safe.
std::optional<std::filesystem::path> AssetFile(const std::filesystem::path& root,
                                               std::string_view relative);

// Compares two secrets in time that depends only on their lengths. Pure.
bool SameSecret(std::string_view a, std::string_view b);

// Percent-encodes everything but unreserved characters (RFC 3986). Pure.
std::string UrlEncode(std::string_view text);

// Failures per client address in a sliding window: a sign-in with a wrong key, a bad
// bearer token, an open form posted too often. Once an address has `limit` failures in
// `window`, Refused() says how long until the oldest ages out. Holds at most `max_addresses`
// addresses (the oldest are forgotten first), so a flood of addresses cannot grow it
// without bound. Thread-safe.
class FailureLimit {
public:
    FailureLimit(int limit, std::chrono::seconds window, std::size_t max_addresses = 10000);
    // Seconds until `address` may try again, or 0 when it may now.
    int Refused(const std::string& address);
    // Counts one failure (or one use, for a form limited per address).
    void Count(const std::string& address);

private:
    struct Entry {
        std::chrono::steady_clock::time_point window_start;
        int count = 0;
    };
    const int limit_;
    const std::chrono::seconds window_;
    const std::size_t max_addresses_;
    std::mutex mutex_;
    std::map<std::string, Entry> entries_;
};

}  // namespace ldis::web
