// The audit log's hash chain: appended with each batch, verified on demand.
#include "impl.hpp"

namespace ldis::engine {

Result<std::int64_t> ReportStore::Impl::VerifyAudit() const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(reader_->get(),
                       "SELECT seq, at_ms, actor, action, subject, detail, prev_hash, hash "
                       "FROM audit ORDER BY seq",
                       -1, &stmt, nullptr);
    AuditChainCheck chain;
    std::string problem;
    while (problem.empty() && sqlite3_step(stmt) == SQLITE_ROW) {
        problem = chain.Next(sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1),
                             ColumnText(stmt, 2), ColumnText(stmt, 3), ColumnText(stmt, 4),
                             ColumnText(stmt, 5), ColumnText(stmt, 6), ColumnText(stmt, 7));
    }
    sqlite3_finalize(stmt);
    if (!problem.empty()) return Error{problem};
    return chain.count();
}

void ReportStore::Impl::LoadLastAuditHash() {
    sqlite3_stmt* stmt = writer_.Cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    StatementUse use(stmt);
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        last_audit_seq_ = sqlite3_column_int64(stmt, 0);
        last_audit_hash_ = ColumnText(stmt, 1);
    } else {
        last_audit_seq_ = 0;
        last_audit_hash_ = std::string(64, '0');
    }
}

// Appends the transaction's audit entries to the hash chain. The chain's end is read
// inside the transaction, so another process (ldisctl) may append too.
int ReportStore::Impl::FlushAudit() {
    if (!audit_.empty()) LoadLastAuditHash();
    sqlite3_stmt* stmt = writer_.Cached(
        "INSERT INTO audit (seq, at_ms, actor, action, subject, detail, prev_hash, hash) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    for (const auto& e : audit_) {
        const std::int64_t seq = last_audit_seq_ + 1;
        const std::string hash =
            AuditHash(last_audit_hash_, seq, e.at_ms, e.actor, e.action, e.subject, e.detail);
        StatementUse use(stmt);
        sqlite3_bind_int64(stmt, 1, seq);
        sqlite3_bind_int64(stmt, 2, e.at_ms);
        BindText(stmt, 3, e.actor);
        BindText(stmt, 4, e.action);
        BindText(stmt, 5, e.subject);
        BindText(stmt, 6, e.detail);
        BindText(stmt, 7, last_audit_hash_);
        BindText(stmt, 8, hash);
        const int rc = sqlite3_step(stmt);
        if (rc != SQLITE_DONE) return rc;
        last_audit_seq_ = seq;
        last_audit_hash_ = hash;
    }
    audit_.clear();
    return SQLITE_OK;
}

}  // namespace ldis::engine
