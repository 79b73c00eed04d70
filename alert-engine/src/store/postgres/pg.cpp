#include "pg.hpp"

#include <charconv>

namespace ldis::engine::pg {

std::string FirstLine(const char* message) {
    std::string s = message != nullptr ? message : "";
    if (const auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
    return s.empty() ? "no message from libpq" : s;
}

namespace {

Result<Rows> Answer(PGconn* c, PGresult* r, std::string_view what) {
    Rows rows(r);
    const ExecStatusType status = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return rows;
    const char* message = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(c);
    return Error{"cannot " + std::string(what) + ": " + FirstLine(message)};
}

}  // namespace

long long Rows::integer(int row, int col) const {
    const std::string_view s = text(row, col);
    long long v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

Result<Connection> Connect(const std::string& url, const std::string& where) {
    // Keywords before dbname are defaults the URL may override; fallback_application_name
    // names ldisd in pg_stat_activity unless the URL names it otherwise.
    const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
    const char* values[] = {"10", "ldisd", url.c_str(), nullptr};
    Connection c(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
    if (!c) return Error{"cannot connect to PostgreSQL at " + where + ": out of memory"};
    if (PQstatus(c.get()) != CONNECTION_OK)
        return Error{"cannot connect to PostgreSQL at " + where + ": " +
                     FirstLine(PQerrorMessage(c.get()))};
    return c;
}

// A connection lost (the server restarted, a failover, the network) is made again before
// the next statement, not after every one: outside a transaction, which the loss ended.
void Reconnect(PGconn* c) {
    if (PQstatus(c) != CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_INTRANS) PQreset(c);
}

Result<Rows> Exec(PGconn* c, std::string_view what, const std::string& sql,
                  const std::vector<std::optional<std::string>>& params) {
    Reconnect(c);
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PGresult* r = PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0);
    return Answer(c, r, what);
}

Result<Rows> ExecScript(PGconn* c, std::string_view what, const std::string& sql) {
    Reconnect(c);
    return Answer(c, PQexec(c, sql.c_str()), what);
}

}  // namespace ldis::engine::pg
