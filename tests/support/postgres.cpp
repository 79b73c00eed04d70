#include "support/postgres.hpp"

#include <glob.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace ldis::test {
namespace {

// /usr/lib/postgresql/<version>/bin/<name>, the newest version installed.
std::string PgBin(const std::string& name) {
    glob_t g{};
    std::vector<std::string> found;
    if (glob(("/usr/lib/postgresql/*/bin/" + name).c_str(), 0, nullptr, &g) == 0) {
        for (std::size_t i = 0; i < g.gl_pathc; ++i) found.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
    if (found.empty())
        throw std::runtime_error("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/" +
                                 name + "): scripts/setup installs postgresql-15");
    std::sort(found.begin(), found.end());
    return found.back();
}

std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// As root, the command runs as `postgres`; otherwise as whoever runs the tests. setpriv
// execs the command in its own place (runuser would stay as its parent and ignore the
// SIGINT that asks the server for a fast shutdown).
std::vector<std::string> AsServerUser(std::vector<std::string> argv) {
    if (geteuid() != 0) return argv;
    std::vector<std::string> out = {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres",
                                    "--init-groups", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

}  // namespace

PostgresServer::PostgresServer(std::string password) : password_(std::move(password)) {
    data_ = dir_ / "data";
    socket_dir_ = dir_.path().string();
    if (geteuid() == 0) {
        const passwd* pw = getpwnam("postgres");
        if (pw == nullptr)
            throw std::runtime_error("no user `postgres` to run PostgreSQL as (root cannot)");
        if (chown(socket_dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
            throw std::runtime_error("cannot give " + socket_dir_ + " to postgres");
    }
    std::vector<std::string> argv = {
        PgBin("initdb"),    "-D", data_, "-U", "ldis", "-E", "UTF8", "--locale=C", "--no-sync",
        "--no-instructions"};
    if (password_.empty()) {
        argv.insert(argv.end(), {"-A", "trust"});
    } else {
        const std::string pwfile = dir_ / "pwfile";
        std::ofstream(pwfile) << password_ << "\n";
        if (geteuid() == 0) {
            const passwd* pw = getpwnam("postgres");
            if (chown(pwfile.c_str(), pw->pw_uid, pw->pw_gid) != 0)
                throw std::runtime_error("cannot give " + pwfile + " to postgres");
        }
        argv.insert(argv.end(), {"-A", "scram-sha-256", "--pwfile=" + pwfile});
    }
    Process initdb(AsServerUser(argv), dir_ / "initdb.log");
    if (initdb.Wait(std::chrono::seconds(120)) != 0)
        throw std::runtime_error("initdb failed:\n" + Slurp(dir_ / "initdb.log"));
    Start();
}

PostgresServer::~PostgresServer() {
    if (process_) process_->Stop(SIGINT, std::chrono::seconds(30));
}

void PostgresServer::Start() {
    ++starts_;
    const std::string log = dir_ / ("postgres-" + std::to_string(starts_) + ".log");
    // No TCP listener (listen_addresses empty): only the socket in the test's folder.
    // fsync off: a test's database need not survive the machine; locking, transactions and
    // visibility are PostgreSQL's own either way.
    std::vector<std::string> argv = {PgBin("postgres"),   "-D", data_,       "-k",
                                     socket_dir_,         "-c", "fsync=off", "-c",
                                     "max_connections=60"};
    if (tls_port_ == 0) {
        argv.insert(argv.end(), {"-c", "listen_addresses="});
    } else {
        argv.insert(argv.end(), {"-c", "listen_addresses=127.0.0.1", "-p",
                                 std::to_string(tls_port_), "-c", "ssl=on", "-c",
                                 "ssl_cert_file=" + tls_cert_, "-c", "ssl_key_file=" + tls_key_});
    }
    process_ = std::make_unique<Process>(AsServerUser(argv), log);
    const std::string conninfo = AdminConnInfo();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (PQping(conninfo.c_str()) != PQPING_OK) {
        if (!process_->running() || std::chrono::steady_clock::now() > until)
            throw std::runtime_error("PostgreSQL did not start:\n" + Slurp(log));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

void PostgresServer::Stop() {
    if (process_) process_->Stop(SIGINT, std::chrono::seconds(30));
    process_.reset();
}

void PostgresServer::Restart() {
    Stop();
    Start();
}

std::string PostgresServer::url(const std::string& name) const {
    return "postgresql:///" + name + "?host=" + socket_dir_ + "&user=ldis" +
           (tls_port_ != 0 ? "&port=" + std::to_string(tls_port_) : std::string());
}

void PostgresServer::EnableTls(const std::string& cert, const std::string& key) {
    // The key must be the server user's alone, or PostgreSQL refuses to start.
    tls_cert_ = dir_ / "server-cert.pem";
    tls_key_ = dir_ / "server-key.pem";
    std::filesystem::copy_file(cert, tls_cert_, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(key, tls_key_, std::filesystem::copy_options::overwrite_existing);
    chmod(tls_key_.c_str(), 0600);
    if (geteuid() == 0) {
        const passwd* pw = getpwnam("postgres");
        for (const auto& f : {tls_cert_, tls_key_}) {
            if (chown(f.c_str(), pw->pw_uid, pw->pw_gid) != 0)
                throw std::runtime_error("cannot give " + f + " to postgres");
        }
    }
    tls_port_ = FreePort();
    Restart();
}

std::string PostgresServer::AdminConnInfo() const {
    return "host=" + socket_dir_ + " user=ldis dbname=postgres" +
           (tls_port_ != 0 ? " port=" + std::to_string(tls_port_) : std::string()) +
           (password_.empty() ? std::string() : " password=" + password_);
}

std::string PostgresServer::CreateDatabase(const std::string& name) {
    const std::string conninfo = AdminConnInfo();
    PGconn* c = PQconnectdb(conninfo.c_str());
    PGresult* r = PQexec(c, ("CREATE DATABASE \"" + name + "\"").c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const std::string error = PQerrorMessage(c);
    PQclear(r);
    PQfinish(c);
    if (!ok) throw std::runtime_error("CREATE DATABASE " + name + ": " + error);
    return url(name);
}

std::vector<std::string> PgRows(const std::string& url, const std::string& sql) {
    PGconn* c = PQconnectdb(url.c_str());
    PGresult* r = PQexec(c, sql.c_str());
    std::vector<std::string> out;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        for (int i = 0; i < PQntuples(r); ++i) {
            std::string row;
            for (int j = 0; j < PQnfields(r); ++j)
                row += (j ? "\t" : "") + std::string(PQgetvalue(r, i, j));
            out.push_back(row);
        }
    } else if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        ADD_FAILURE() << sql << ": " << PQerrorMessage(c);
    }
    PQclear(r);
    PQfinish(c);
    return out;
}

std::string PgOne(const std::string& url, const std::string& sql) {
    PGconn* c = PQconnectdb(url.c_str());
    PGresult* r = PQexec(c, sql.c_str());
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                          ? PQgetvalue(r, 0, 0)
                          : "error: " + std::string(PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return out;
}

}  // namespace ldis::test
