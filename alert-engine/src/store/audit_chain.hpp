#pragma once
// The audit log's hash chain, whatever holds it (SQLite or PostgreSQL): what an entry's
// hash covers, and the check `ldisctl audit verify` and `ldisctl migrate` make, entry by
// entry, in the order of seq.
#include <cstdint>
#include <string>
#include <string_view>

#include "ldis/engine/codec.hpp"

namespace ldis::engine {

// What an audit entry's hash covers: every field, and the hash of the entry before.
inline std::string AuditHash(const std::string& prev_hash, std::int64_t seq, std::int64_t at_ms,
                             std::string_view actor, std::string_view action,
                             std::string_view subject, std::string_view detail) {
    const std::string seq_text = std::to_string(seq);
    const std::string at_text = std::to_string(at_ms);
    std::string data = prev_hash;
    for (const std::string_view part :
         {std::string_view(seq_text), std::string_view(at_text), actor, action, subject, detail}) {
        data.push_back('\x1f');
        data.append(part);
    }
    return Sha256Hex(data);
}

// Walks the chain from its first entry: Next() with each entry in seq order says what is
// wrong with it, if anything (the first problem is the one to report).
class AuditChainCheck {
public:
    std::string Next(std::int64_t seq, std::int64_t at_ms, std::string_view actor,
                     std::string_view action, std::string_view subject, std::string_view detail,
                     std::string_view prev_hash, std::string_view hash) {
        const std::string name = "audit entry " + std::to_string(seq) + " (" + std::string(action) +
                                 " " + std::string(subject) + ")";
        std::string problem;
        if (seq != expected_seq_) {
            problem = "audit entry " + std::to_string(expected_seq_) + " is missing (the next is " +
                      std::to_string(seq) + ")";
        } else if (prev_hash != prev_) {
            problem = name + " does not follow the entry before it: its prev_hash was changed";
        } else if (AuditHash(prev_, seq, at_ms, actor, action, subject, detail) != hash) {
            problem = name + " does not match its hash: it was changed after it was written";
        }
        prev_ = std::string(hash);
        ++expected_seq_;
        ++count_;
        return problem;
    }
    std::int64_t count() const { return count_; }

private:
    std::string prev_ = std::string(64, '0');
    std::int64_t expected_seq_ = 1;
    std::int64_t count_ = 0;
};

}  // namespace ldis::engine
