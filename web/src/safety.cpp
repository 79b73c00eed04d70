#include "safety.hpp"

#include <algorithm>
#include <system_error>

namespace fs = std::filesystem;

namespace ldis::web {
namespace {

bool PathCharacter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '/';
}

}  // namespace

bool SafeHeaderValue(std::string_view value) {
    return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string LocalPath(std::string_view next) {
    if (next.empty() || next.front() != '/' || next.starts_with("//")) return "/";
    for (const char c : next) {
        if (!PathCharacter(c) && c != '?' && c != '=' && c != '&' && c != '%') return "/";
    }
    return std::string(next);
}

std::optional<fs::path> AssetFile(const fs::path& root, std::string_view relative) {
    // fs::path(root) / "/etc/passwd" is "/etc/passwd": an absolute path replaces the base.
    // So the name is checked as text first, then the result is checked as a place.
    if (relative.empty() || relative.front() == '/' || relative.find("..") != relative.npos ||
        relative.find("//") != relative.npos)
        return std::nullopt;
    if (!std::all_of(relative.begin(), relative.end(), PathCharacter)) return std::nullopt;
    std::error_code ec;
    const fs::path base = fs::canonical(root, ec);
    if (ec) return std::nullopt;
    const fs::path file = fs::canonical(base / fs::path(relative), ec);
    if (ec) return std::nullopt;
    // A symbolic link planted in the folder resolves to where it points: that must still
    // be inside.
    const auto [end, _] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
    if (end != base.end()) return std::nullopt;
    if (!fs::is_regular_file(file, ec) || ec) return std::nullopt;
    return file;
}

bool SameSecret(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff = static_cast<unsigned char>(
            diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
    return diff == 0;
}

std::string UrlEncode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    return out;
}

FailureLimit::FailureLimit(int limit, std::chrono::seconds window, std::size_t max_addresses)
    : limit_(limit), window_(window), max_addresses_(max_addresses) {}

int FailureLimit::Refused(const std::string& address) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(address);
    if (it == entries_.end() || it->second.count < limit_) return 0;
    const auto left = it->second.window_start + window_ - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
        entries_.erase(it);
        return 0;
    }
    return static_cast<int>(std::chrono::ceil<std::chrono::seconds>(left).count());
}

void FailureLimit::Count(const std::string& address) {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    auto it = entries_.find(address);
    if (it != entries_.end() && now - it->second.window_start >= window_) {
        entries_.erase(it);
        it = entries_.end();
    }
    if (it == entries_.end()) {
        if (entries_.size() >= max_addresses_) {
            // Forget the entries whose window has passed, then the oldest window.
            std::erase_if(entries_,
                          [&](const auto& e) { return now - e.second.window_start >= window_; });
            if (entries_.size() >= max_addresses_) {
                entries_.erase(std::min_element(
                    entries_.begin(), entries_.end(), [](const auto& x, const auto& y) {
                        return x.second.window_start < y.second.window_start;
                    }));
            }
        }
        it = entries_.emplace(address, Entry{now, 0}).first;
    }
    ++it->second.count;
}

}  // namespace ldis::web
