#pragma once
// libpq, held by RAII and answered in Results: the PostgreSQL store's one way to the
// server. Every statement goes through Exec, which names the statement's purpose and the
// server's own message when it fails.
#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ldis/engine/result.hpp"

namespace ldis::engine::pg {

struct ConnectionDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
struct RowsDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Connection = std::unique_ptr<PGconn, ConnectionDeleter>;

// A statement's answer; rows and columns by index, values as text (libpq's text format).
class Rows {
public:
    explicit Rows(PGresult* r) : r_(r) {}
    int size() const { return PQntuples(r_.get()); }
    bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
    std::string_view text(int row, int col) const {
        return {PQgetvalue(r_.get(), row, col),
                static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
    }
    long long integer(int row, int col) const;

private:
    std::unique_ptr<PGresult, RowsDeleter> r_;
};

// libpq's messages end in a newline and may run to several lines (DETAIL, HINT): the
// first line is the one a person needs in a log line.
std::string FirstLine(const char* message);

// Connects to `url` (checked by CheckPostgresUrl first). libpq reads the password from
// the passfile the URL or PGPASSFILE names, and does TLS as `sslmode` says.
Result<Connection> Connect(const std::string& url, const std::string& where);

// Makes a lost connection again (PQreset), unless it is in a transaction.
void Reconnect(PGconn* c);

// Runs `sql` with text parameters ($1, $2, ...; nullopt is NULL). `what` says what the
// statement was for, in the error: "cannot <what>: <the server's first line>".
Result<Rows> Exec(PGconn* c, std::string_view what, const std::string& sql,
                  const std::vector<std::optional<std::string>>& params = {});

// Runs a script of several statements with no parameters (a schema).
Result<Rows> ExecScript(PGconn* c, std::string_view what, const std::string& sql);

}  // namespace ldis::engine::pg
