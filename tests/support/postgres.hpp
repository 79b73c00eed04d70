#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/processes.hpp"

namespace ldis::test {

// A real PostgreSQL (Debian's postgresql-15) for one test: initdb into a temporary folder,
// the server on a Unix socket in that folder (no TCP port at all), stopped and removed at
// destruction. PostgreSQL refuses to run as root, so as root both run as the `postgres`
// user (setpriv), who owns the folder. Trust authentication for the role `ldis`: the
// socket's folder is private to the test.
class PostgresServer {
public:
    // With `password`, the role `ldis` has it and the server asks for it (SCRAM), on the
    // socket too; without, trust.
    explicit PostgresServer(std::string password = {});
    ~PostgresServer();
    PostgresServer(const PostgresServer&) = delete;
    PostgresServer& operator=(const PostgresServer&) = delete;

    // Makes an empty database and returns its store.url.
    std::string CreateDatabase(const std::string& name);
    // The store.url of database `name` (which may not exist).
    std::string url(const std::string& name) const;
    const std::string& socket_dir() const { return socket_dir_; }
    // Stops the server (fast shutdown: open connections are ended) and starts it again on
    // the same folder.
    void Restart();
    // Restarts the server listening on 127.0.0.1 too (a free port, tls_port()), with TLS
    // from this certificate and key, as a council's database server would.
    void EnableTls(const std::string& cert, const std::string& key);
    int tls_port() const { return tls_port_; }
    // The two halves of Restart, for an outage of a chosen length.
    void Stop();
    void Start();

private:
    std::string AdminConnInfo() const;
    TempDir dir_;
    std::string password_;
    std::string data_;
    std::string socket_dir_;
    int starts_ = 0;
    int tls_port_ = 0;
    std::string tls_cert_, tls_key_;
    std::unique_ptr<Process> process_;
};

// The rows of `sql` run with libpq on `url`, each as its fields joined by tabs; a
// statement that fails is a test failure (and no rows).
std::vector<std::string> PgRows(const std::string& url, const std::string& sql);
// The first field of the first row of `sql`, or "error: " and the server's message.
std::string PgOne(const std::string& url, const std::string& sql);

}  // namespace ldis::test
