// API bearer tokens (kept as hashes), web sessions and settings on PostgreSQL: one table of
// each for every instance.
#include <boost/json.hpp>

#include "ldis/engine/codec.hpp"
#include "store_impl.hpp"

namespace ldis::engine {

using pgstore::Int;

Result<std::string> PostgresStore::CreateToken(std::string_view name, std::string_view role) {
    const std::string secret = "ldis_" + Base64Url(RandomBytes(32));
    const std::string who(name), what(role);
    const std::int64_t now = NowMs();
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            impl_->intake->Run("store the token",
                               "INSERT INTO tokens (name, role, hash, created_at_ms) VALUES "
                               "($1, $2, $3, $4)",
                               {who, what, Sha256Hex(secret), Int(now)});
            impl_->intake->Audit("ldisctl", "token.created", who,
                                 boost::json::serialize(boost::json::object{{"role", what}}));
        },
        now);
    if (!done.ok()) return done.error();
    return secret;
}

std::optional<ApiToken> PostgresStore::FindToken(std::string_view secret) const {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "find the token",
                      "SELECT id, name, role FROM tokens WHERE hash = $1 AND revoked_at_ms IS NULL",
                      {Sha256Hex(secret)});
    if (!r.ok() || r.value().size() == 0) return std::nullopt;
    const auto& row = r.value();
    return ApiToken{row.integer(0, 0), std::string(row.text(0, 1)), std::string(row.text(0, 2))};
}

std::vector<TokenRow> PostgresStore::Tokens() const {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "list the tokens",
                      "SELECT t.id, t.name, t.role, t.created_at_ms, coalesce(t.revoked_at_ms, 0), "
                      "(SELECT count(*) FROM sessions s WHERE s.token_id = t.id AND "
                      "s.expires_at_ms > $1) FROM tokens t ORDER BY t.id",
                      {Int(NowMs())});
    std::vector<TokenRow> out;
    if (!r.ok()) return out;
    const auto& rows = r.value();
    for (int i = 0; i < rows.size(); ++i) {
        out.push_back({rows.integer(i, 0), std::string(rows.text(i, 1)),
                       std::string(rows.text(i, 2)), rows.integer(i, 3), rows.integer(i, 4),
                       static_cast<int>(rows.integer(i, 5))});
    }
    return out;
}

Result<int> PostgresStore::RevokeToken(std::int64_t id, std::string_view actor) {
    const std::int64_t now = NowMs();
    const std::string who(actor);
    int ended = 0;
    std::optional<Error> refused;
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            const auto revoked = impl_->intake->Run(
                "revoke the token",
                "UPDATE tokens SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL "
                "RETURNING name",
                {Int(id), Int(now)});
            if (revoked.size() == 0) {
                refused = Error{"there is no live token " + Int(id) +
                                " (ldisctl tokens list shows them)"};
                return;
            }
            ended = static_cast<int>(impl_->intake
                                         ->Run("end the token's sessions",
                                               "DELETE FROM sessions WHERE token_id = $1 "
                                               "RETURNING 1",
                                               {Int(id)})
                                         .size());
            impl_->intake->Audit(who, "token.revoked", std::string(revoked.text(0, 0)),
                                 boost::json::serialize(boost::json::object{
                                     {"token", id}, {"sessions_ended", ended}}));
        },
        now);
    if (!done.ok()) return done.error();
    if (refused) return *refused;
    return ended;
}

Result<int> PostgresStore::CreateSession(const WebSession& session, std::size_t max_per_token,
                                         std::size_t max_total) {
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            auto& w = *impl_->intake;
            w.Run("end expired sessions", "DELETE FROM sessions WHERE expires_at_ms <= $1",
                  {Int(session.created_at_ms)});
            w.Run("store the session",
                  "INSERT INTO sessions (id_hash, token_id, csrf, created_at_ms, expires_at_ms) "
                  "VALUES ($1, $2, $3, $4, $5)",
                  {session.id_hash, Int(session.who.id), session.csrf, Int(session.created_at_ms),
                   Int(session.expires_at_ms)});
            // The table stays bounded: one key signed in on many browsers, or many keys, end
            // their oldest sessions first.
            w.Run("end a key's oldest sessions",
                  "DELETE FROM sessions WHERE token_id = $1 AND id_hash NOT IN (SELECT id_hash "
                  "FROM sessions WHERE token_id = $1 ORDER BY created_at_ms DESC LIMIT $2)",
                  {Int(session.who.id), Int(static_cast<std::int64_t>(max_per_token))});
            w.Run("end the oldest sessions",
                  "DELETE FROM sessions WHERE id_hash NOT IN (SELECT id_hash FROM sessions "
                  "ORDER BY created_at_ms DESC LIMIT $1)",
                  {Int(static_cast<std::int64_t>(max_total))});
        },
        session.created_at_ms);
    if (!done.ok()) return done.error();
    return 1;
}

std::optional<WebSession> PostgresStore::FindSession(std::string_view id_hash,
                                                     std::int64_t now_ms) const {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "find the session",
                      "SELECT s.id_hash, t.id, t.name, t.role, s.csrf, s.created_at_ms, "
                      "s.expires_at_ms FROM sessions s JOIN tokens t ON t.id = s.token_id WHERE "
                      "s.id_hash = $1 AND s.expires_at_ms > $2 AND t.revoked_at_ms IS NULL",
                      {std::string(id_hash), Int(now_ms)});
    if (!r.ok() || r.value().size() == 0) return std::nullopt;
    const auto& row = r.value();
    return WebSession{
        std::string(row.text(0, 0)),
        ApiToken{row.integer(0, 1), std::string(row.text(0, 2)), std::string(row.text(0, 3))},
        std::string(row.text(0, 4)), row.integer(0, 5), row.integer(0, 6)};
}

Result<int> PostgresStore::EndSession(std::string_view id_hash, std::int64_t now_ms) {
    std::lock_guard lock(impl_->intake->mutex());
    int ended = 0;
    auto done = impl_->intake->Transaction(
        [&] {
            ended = impl_->intake
                        ->Run("end the session",
                              "DELETE FROM sessions WHERE id_hash = $1 OR expires_at_ms <= $2 "
                              "RETURNING 1",
                              {std::string(id_hash), Int(now_ms)})
                        .size();
        },
        now_ms);
    if (!done.ok()) return done.error();
    return ended;
}

std::string PostgresStore::Setting(const std::string& key) {
    std::lock_guard lock(impl_->reader->mutex());
    auto r = pg::Exec(impl_->reader->c(), "read a setting",
                      "SELECT value FROM settings WHERE key = $1", {key});
    if (!r.ok() || r.value().size() == 0) return {};
    return std::string(r.value().text(0, 0));
}

Result<int> PostgresStore::SetSetting(const std::string& key, const std::string& value) {
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            impl_->intake->Run("write a setting",
                               "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT "
                               "(key) DO UPDATE SET value = excluded.value",
                               {key, value});
        },
        NowMs());
    if (!done.ok()) return done.error();
    return 1;
}

Result<int> PostgresStore::QueueNotice(const Notice& notice, std::int64_t now_ms) {
    const auto g = impl_->CurrentGrading();
    const std::vector<Delivery> notices =
        g ? CoordinatorNotices(g->partners.get(), g->dispatch.enabled, notice.kind, notice.detail)
          : std::vector<Delivery>{};
    std::lock_guard lock(impl_->intake->mutex());
    auto done = impl_->intake->Transaction(
        [&] {
            for (const auto& d : notices) impl_->intake->InsertDelivery(0, 0, d, now_ms);
            if (!notice.setting_key.empty())
                impl_->intake->Run("write the feed's state",
                                   "INSERT INTO settings (key, value) VALUES ($1, $2) ON "
                                   "CONFLICT (key) DO UPDATE SET value = excluded.value",
                                   {notice.setting_key, notice.setting_value});
            impl_->intake->Audit("ldisd", notice.audit_action, notice.subject, notice.detail);
        },
        now_ms);
    if (!done.ok()) return done.error();
    return static_cast<int>(notices.size());
}

}  // namespace ldis::engine
