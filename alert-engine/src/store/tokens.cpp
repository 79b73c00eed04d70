// API bearer tokens (kept as hashes) and web sessions, and the key that signs links.
#include "impl.hpp"

namespace ldis::engine {

Result<std::string> ReportStore::Impl::CreateToken(const std::string& name,
                                                   const std::string& role) {
    return OnWriter<std::string>([&]() -> Result<std::string> {
        const std::string secret = "ldis_" + Base64Url(RandomBytes(32));
        const std::int64_t now = NowMs();
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        sqlite3_stmt* stmt = writer_.Cached(
            "INSERT INTO tokens (name, role, hash, created_at_ms) VALUES (?1, ?2, ?3, ?4)");
        {
            StatementUse use(stmt);
            BindText(stmt, 1, name);
            BindText(stmt, 2, role);
            const std::string hash = Sha256Hex(secret);
            BindText(stmt, 3, hash);
            sqlite3_bind_int64(stmt, 4, now);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
        }
        audit_.push_back({now, "ldisctl", "token.created", name,
                          boost::json::serialize(boost::json::object{{"role", role}})});
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return secret;
    });
}

std::optional<ApiToken> ReportStore::Impl::FindToken(std::string_view secret) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(reader_->get(),
                       "SELECT id, name, role FROM tokens WHERE hash = ?1 AND revoked_at_ms IS "
                       "NULL",
                       -1, &stmt, nullptr);
    const std::string hash = Sha256Hex(secret);
    BindText(stmt, 1, hash);
    std::optional<ApiToken> out;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        out = ApiToken{sqlite3_column_int64(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2)};
    sqlite3_finalize(stmt);
    return out;
}

std::vector<TokenRow> ReportStore::Impl::Tokens() const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(reader_->get(),
                       "SELECT t.id, t.name, t.role, t.created_at_ms, "
                       "coalesce(t.revoked_at_ms, 0), (SELECT count(*) FROM sessions s "
                       "WHERE s.token_id = t.id AND s.expires_at_ms > ?1) "
                       "FROM tokens t ORDER BY t.id",
                       -1, &stmt, nullptr);
    sqlite3_bind_int64(stmt, 1, NowMs());
    std::vector<TokenRow> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        out.push_back({sqlite3_column_int64(stmt, 0), ColumnText(stmt, 1), ColumnText(stmt, 2),
                       sqlite3_column_int64(stmt, 3), sqlite3_column_int64(stmt, 4),
                       sqlite3_column_int(stmt, 5)});
    }
    sqlite3_finalize(stmt);
    return out;
}

Result<int> ReportStore::Impl::RevokeToken(std::int64_t id, const std::string& actor) {
    return OnWriter<int>([&]() -> Result<int> {
        const std::int64_t now = NowMs();
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        std::string name;
        {
            sqlite3_stmt* stmt = writer_.Cached(
                "UPDATE tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS "
                "NULL RETURNING name");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, id);
            sqlite3_bind_int64(stmt, 2, now);
            const int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE)
                return Error{"there is no live token " + std::to_string(id) +
                             " (ldisctl tokens list shows them)"};
            if (rc != SQLITE_ROW) return Error{options_.path + ": " + writer_.Describe(rc)};
            name = ColumnText(stmt, 0);
        }
        int ended = 0;
        {
            sqlite3_stmt* stmt = writer_.Cached("DELETE FROM sessions WHERE token_id = ?1");
            StatementUse use(stmt);
            sqlite3_bind_int64(stmt, 1, id);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
            ended = sqlite3_changes(writer_.get());
        }
        audit_.push_back({now, actor, "token.revoked", name,
                          boost::json::serialize(
                              boost::json::object{{"token", id}, {"sessions_ended", ended}})});
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return ended;
    });
}

Result<int> ReportStore::Impl::CreateSession(const WebSession& session, std::size_t max_per_token,
                                             std::size_t max_total) {
    return OnWriter<int>([&]() -> Result<int> {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        const auto run = [&](const char* sql, auto bind) -> int {
            sqlite3_stmt* stmt = writer_.Cached(sql);
            StatementUse use(stmt);
            bind(stmt);
            return sqlite3_step(stmt);
        };
        int rc = run("DELETE FROM sessions WHERE expires_at_ms <= ?1",
                     [&](sqlite3_stmt* st) { sqlite3_bind_int64(st, 1, session.created_at_ms); });
        if (rc == SQLITE_DONE)
            rc =
                run("INSERT INTO sessions (id_hash, token_id, csrf, created_at_ms, expires_at_ms) "
                    "VALUES (?1, ?2, ?3, ?4, ?5)",
                    [&](sqlite3_stmt* st) {
                        BindText(st, 1, session.id_hash);
                        sqlite3_bind_int64(st, 2, session.who.id);
                        BindText(st, 3, session.csrf);
                        sqlite3_bind_int64(st, 4, session.created_at_ms);
                        sqlite3_bind_int64(st, 5, session.expires_at_ms);
                    });
        // The table stays bounded: one key signed in on many browsers, or many keys,
        // end their oldest sessions first.
        if (rc == SQLITE_DONE)
            rc =
                run("DELETE FROM sessions WHERE token_id = ?1 AND id_hash NOT IN (SELECT id_hash "
                    "FROM sessions WHERE token_id = ?1 ORDER BY created_at_ms DESC LIMIT ?2)",
                    [&](sqlite3_stmt* st) {
                        sqlite3_bind_int64(st, 1, session.who.id);
                        sqlite3_bind_int64(st, 2, static_cast<std::int64_t>(max_per_token));
                    });
        if (rc == SQLITE_DONE)
            rc =
                run("DELETE FROM sessions WHERE id_hash NOT IN (SELECT id_hash FROM sessions "
                    "ORDER BY created_at_ms DESC LIMIT ?1)",
                    [&](sqlite3_stmt* st) {
                        sqlite3_bind_int64(st, 1, static_cast<std::int64_t>(max_total));
                    });
        if (rc != SQLITE_DONE) return Error{options_.path + ": " + writer_.Describe(rc)};
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return 1;
    });
}

std::optional<WebSession> ReportStore::Impl::FindSession(std::string_view id_hash,
                                                         std::int64_t now) const {
    std::lock_guard lock(reader_mutex_);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(reader_->get(),
                       "SELECT s.id_hash, t.id, t.name, t.role, s.csrf, s.created_at_ms, "
                       "s.expires_at_ms FROM sessions s JOIN tokens t ON t.id = s.token_id "
                       "WHERE s.id_hash = ?1 AND s.expires_at_ms > ?2 AND t.revoked_at_ms IS "
                       "NULL",
                       -1, &stmt, nullptr);
    BindText(stmt, 1, id_hash);
    sqlite3_bind_int64(stmt, 2, now);
    std::optional<WebSession> out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        out = WebSession{
            ColumnText(stmt, 0),
            ApiToken{sqlite3_column_int64(stmt, 1), ColumnText(stmt, 2), ColumnText(stmt, 3)},
            ColumnText(stmt, 4), sqlite3_column_int64(stmt, 5), sqlite3_column_int64(stmt, 6)};
    }
    sqlite3_finalize(stmt);
    return out;
}

Result<int> ReportStore::Impl::EndSession(const std::string& id_hash, std::int64_t now) {
    return OnWriter<int>([&]() -> Result<int> {
        Transaction tx(writer_);
        if (tx.begun() != SQLITE_OK)
            return Error{options_.path + ": " + writer_.Describe(tx.begun())};
        sqlite3_stmt* stmt =
            writer_.Cached("DELETE FROM sessions WHERE id_hash = ?1 OR expires_at_ms <= ?2");
        int changed = 0;
        {
            StatementUse use(stmt);
            BindText(stmt, 1, id_hash);
            sqlite3_bind_int64(stmt, 2, now);
            if (const int rc = sqlite3_step(stmt); rc != SQLITE_DONE)
                return Error{options_.path + ": " + writer_.Describe(rc)};
            changed = sqlite3_changes(writer_.get());
        }
        if (auto failed = Finish(tx, SQLITE_OK)) return *failed;
        return changed;
    });
}

void ReportStore::Impl::LoadAckKey() {
    sqlite3_stmt* stmt = writer_.Cached("SELECT value FROM settings WHERE key = 'ack_key'");
    {
        StatementUse use(stmt);
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            ack_key_ = ColumnText(stmt, 0);
            return;
        }
    }
    ack_key_ = Hex(RandomBytes(32));
    sqlite3_stmt* insert =
        writer_.Cached("INSERT INTO settings (key, value) VALUES ('ack_key', ?1)");
    StatementUse use(insert);
    BindText(insert, 1, ack_key_);
    if (const int rc = sqlite3_step(insert); rc != SQLITE_DONE)
        throw StoreError(options_.path + ": " + writer_.Describe(rc));
}

}  // namespace ldis::engine
