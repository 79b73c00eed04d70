// ldis_sink: the benchmark's timestamping SMTP and HTTP servers, and the clients that
// measure their own acceptance rate. Written in C++ on Asio so that the server is never
// the slow side of a benchmark (the Python sink of the tests parses every message with
// the email package and manages ~400 messages/s).
//   ldis_sink smtp --out FILE            SMTP server: 250 for every message; one JSON line per
//                                        message accepted: {"at","conn","rcpt","alert",
//                                        "version","kind","message_id","bytes"}; --sample FILE
//                                        keeps the first alert email's bytes for smtp-blast
//   ldis_sink http --out FILE            HTTP/1.1 server: 200 for every POST; one JSON line per
//                                        request: {"at","conn","path","key","bytes"}
//   ldis_sink smtp-blast --port P --count N --connections C --message FILE
//   ldis_sink http-blast --port P --count N --connections C --message FILE
//                                        the same protocol round trips as libcurl (no
//                                        pipelining), flat out; prints {"count","seconds",
//                                        "per_second","first_at","last_at"}
// Servers listen on 127.0.0.1 (--port 0: a free port), print {"port":P} on stdout once
// listening, flush their lines every 20 ms, and stop on SIGTERM/SIGINT. "at" is the Unix
// time in seconds (microsecond resolution) when the reply was queued.
#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;
constexpr auto kNoThrow = net::as_tuple(use_awaitable);

double Now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The value of header `name` in the header block `head`, or "".
std::string Header(std::string_view head, std::string_view name) {
    std::size_t pos = 0;
    while (pos < head.size()) {
        auto end = head.find("\r\n", pos);
        if (end == std::string_view::npos) end = head.size();
        const auto line = head.substr(pos, end - pos);
        if (line.size() > name.size() && line[name.size()] == ':') {
            bool same = true;
            for (std::size_t i = 0; i < name.size() && same; ++i)
                same = std::tolower(static_cast<unsigned char>(line[i])) ==
                       std::tolower(static_cast<unsigned char>(name[i]));
            if (same) {
                auto value = line.substr(name.size() + 1);
                while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
                return std::string(value);
            }
        }
        pos = end + 2;
    }
    return {};
}

std::string Quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out + '"';
}

// Buffered JSON lines, written out by a timer so that a reader polling the file sees
// each message within ~20 ms without a write per message.
class Journal {
public:
    Journal(net::io_context& io, const std::string& path) : out_(path, std::ios::app), timer_(io) {}
    void Add(std::string line) {
        pending_ += line;
        pending_ += '\n';
    }
    awaitable<void> FlushLoop() {
        for (;;) {
            timer_.expires_after(std::chrono::milliseconds(20));
            auto [ec] = co_await timer_.async_wait(kNoThrow);
            Flush();
            if (ec) co_return;
        }
    }
    void Flush() {
        if (pending_.empty()) return;
        out_ << pending_;
        out_.flush();
        pending_.clear();
    }
    void Stop() { timer_.cancel(); }

private:
    std::ofstream out_;
    std::string pending_;
    net::steady_timer timer_;
};

// --sample: where to save the first message of kind "alert", as received (CRLF, dot-stuffed,
// with its terminating line), so that smtp-blast can send the same bytes.
std::string sample_path;  // NOLINT: set once by main before the server starts

awaitable<void> SmtpSession(tcp::socket socket, Journal& journal, int conn) {
    socket.set_option(tcp::no_delay(true));
    std::string in;
    std::string out = "220 ldis-sink ESMTP\r\n";
    std::string rcpt;
    bool in_data = false;
    for (;;) {
        if (!out.empty()) {
            auto [ec, n] = co_await net::async_write(socket, net::buffer(out), kNoThrow);
            if (ec) co_return;
            out.clear();
        }
        // Answer every complete command in the buffer (so pipelining clients work too).
        const auto [ec, n] = co_await net::async_read_until(
            socket, net::dynamic_buffer(in), in_data ? "\r\n.\r\n" : "\r\n", kNoThrow);
        if (ec) co_return;
        while (true) {
            if (in_data) {
                const auto end = in.find("\r\n.\r\n");
                if (end == std::string::npos) break;
                const auto head_end = in.find("\r\n\r\n");
                const std::string_view head(in.data(),
                                            head_end == std::string::npos ? end : head_end);
                std::string line = "{\"at\":" + std::to_string(Now()) +
                                   ",\"conn\":" + std::to_string(conn) +
                                   ",\"rcpt\":" + Quoted(rcpt) +
                                   ",\"alert\":" + Quoted(Header(head, "X-LDIS-Alert")) +
                                   ",\"version\":" + Quoted(Header(head, "X-LDIS-Version")) +
                                   ",\"kind\":" + Quoted(Header(head, "X-LDIS-Kind")) +
                                   ",\"message_id\":" + Quoted(Header(head, "Message-ID")) +
                                   ",\"bytes\":" + std::to_string(end) + "}";
                journal.Add(std::move(line));
                if (!sample_path.empty() && Header(head, "X-LDIS-Kind") == "alert") {
                    std::ofstream(sample_path, std::ios::binary) << in.substr(0, end + 5);
                    sample_path.clear();
                }
                in.erase(0, end + 5);
                in_data = false;
                out += "250 2.0.0 accepted\r\n";
                continue;
            }
            const auto eol = in.find("\r\n");
            if (eol == std::string::npos) break;
            std::string command = in.substr(0, eol);
            in.erase(0, eol + 2);
            std::string verb = command.substr(0, 4);
            for (auto& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            if (verb == "EHLO") {
                out += "250-ldis-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 52428800\r\n";
            } else if (verb == "HELO" || verb == "NOOP") {
                out += "250 ok\r\n";
            } else if (verb == "MAIL" || verb == "RSET") {
                rcpt.clear();
                out += "250 2.1.0 ok\r\n";
            } else if (verb == "RCPT") {
                const auto lt = command.find('<');
                const auto gt = command.find('>');
                if (lt != std::string::npos && gt != std::string::npos && gt > lt) {
                    if (!rcpt.empty()) rcpt += ',';
                    rcpt += command.substr(lt + 1, gt - lt - 1);
                }
                out += "250 2.1.5 ok\r\n";
            } else if (verb == "DATA") {
                in_data = true;
                out += "354 end with <CRLF>.<CRLF>\r\n";
            } else if (verb == "QUIT") {
                out += "221 bye\r\n";
                co_await net::async_write(socket, net::buffer(out), kNoThrow);
                co_return;
            } else {
                out += "502 5.5.2 not implemented\r\n";
            }
        }
    }
}

awaitable<void> HttpSession(tcp::socket socket, Journal& journal, int conn) {
    socket.set_option(tcp::no_delay(true));
    std::string in;
    for (;;) {
        const auto [ec, head_size] =
            co_await net::async_read_until(socket, net::dynamic_buffer(in), "\r\n\r\n", kNoThrow);
        if (ec) co_return;
        const std::string head = in.substr(0, head_size);
        const std::size_t length =
            std::strtoul(Header(head, "Content-Length").c_str(), nullptr, 10);
        if (in.size() < head_size + length) {
            const auto [ec2, n] = co_await net::async_read(
                socket, net::dynamic_buffer(in),
                net::transfer_exactly(head_size + length - in.size()), kNoThrow);
            if (ec2) co_return;
        }
        const auto sp1 = head.find(' ');
        const auto sp2 = head.find(' ', sp1 + 1);
        const std::string path = head.substr(sp1 + 1, sp2 - sp1 - 1);
        journal.Add("{\"at\":" + std::to_string(Now()) + ",\"conn\":" + std::to_string(conn) +
                    ",\"path\":" + Quoted(path) +
                    ",\"key\":" + Quoted(Header(head, "Idempotency-Key")) +
                    ",\"bytes\":" + std::to_string(length) + "}");
        in.erase(0, head_size + length);
        static const std::string kReply =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        const auto [ec3, n3] = co_await net::async_write(socket, net::buffer(kReply), kNoThrow);
        if (ec3) co_return;
    }
}

int Serve(const std::string& protocol, unsigned short port, const std::string& out_path) {
    net::io_context io;
    Journal journal(io, out_path);
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    std::cout << "{\"port\":" << acceptor.local_endpoint().port() << "}" << std::endl;
    net::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code&, int) {
        acceptor.close();
        journal.Stop();
        journal.Flush();
        io.stop();
    });
    net::co_spawn(io, journal.FlushLoop(), net::detached);
    net::co_spawn(
        io,
        [&]() -> awaitable<void> {
            int conn = 0;
            for (;;) {
                auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
                if (ec) co_return;
                ++conn;
                if (protocol == "smtp")
                    net::co_spawn(io, SmtpSession(std::move(socket), journal, conn), net::detached);
                else
                    net::co_spawn(io, HttpSession(std::move(socket), journal, conn), net::detached);
            }
        },
        net::detached);
    io.run();
    journal.Flush();
    return 0;
}

// One client connection doing `count` transactions, each with the round trips libcurl
// makes (SMTP: MAIL, RCPT, DATA, message; HTTP: one keep-alive POST).
awaitable<void> Blast(const std::string& protocol, tcp::endpoint to, int count,
                      const std::string& message, double& last_at, int& done) {
    tcp::socket socket(co_await net::this_coro::executor);
    co_await socket.async_connect(to, use_awaitable);
    socket.set_option(tcp::no_delay(true));
    std::string in;
    auto expect = [&](std::string_view code) -> awaitable<void> {
        // Read one whole reply (multi-line replies end with "NNN ").
        for (;;) {
            const auto n = co_await net::async_read_until(socket, net::dynamic_buffer(in), "\r\n",
                                                          use_awaitable);
            const std::string line = in.substr(0, n);
            in.erase(0, n);
            if (line.size() < 4 || line.compare(0, 3, code) != 0)
                throw std::runtime_error("unexpected reply: " + line);
            if (line[3] == ' ') co_return;
        }
    };
    if (protocol == "smtp") {
        co_await expect("220");
        co_await net::async_write(socket, net::buffer(std::string("EHLO blast\r\n")),
                                  use_awaitable);
        co_await expect("250");
        for (int i = 0; i < count; ++i) {
            co_await net::async_write(socket,
                                      net::buffer(std::string("MAIL FROM:<ldis@example.org>\r\n")),
                                      use_awaitable);
            co_await expect("250");
            co_await net::async_write(
                socket, net::buffer(std::string("RCPT TO:<r@example.org>\r\n")), use_awaitable);
            co_await expect("250");
            co_await net::async_write(socket, net::buffer(std::string("DATA\r\n")), use_awaitable);
            co_await expect("354");
            co_await net::async_write(socket, net::buffer(message), use_awaitable);
            co_await expect("250");
            last_at = Now();
            ++done;
        }
        co_await net::async_write(socket, net::buffer(std::string("QUIT\r\n")), use_awaitable);
    } else {
        const std::string request =
            "POST /blast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            "application/json\r\nContent-Length: " +
            std::to_string(message.size()) + "\r\n\r\n" + message;
        for (int i = 0; i < count; ++i) {
            co_await net::async_write(socket, net::buffer(request), use_awaitable);
            const auto n = co_await net::async_read_until(socket, net::dynamic_buffer(in),
                                                          "\r\n\r\n", use_awaitable);
            const std::size_t length =
                std::strtoul(Header(in.substr(0, n), "Content-Length").c_str(), nullptr, 10);
            if (in.size() < n + length)
                co_await net::async_read(socket, net::dynamic_buffer(in),
                                         net::transfer_exactly(n + length - in.size()),
                                         use_awaitable);
            in.erase(0, n + length);
            last_at = Now();
            ++done;
        }
    }
}

int BlastMain(const std::string& protocol, unsigned short port, int count, int connections,
              const std::string& message_path) {
    std::ifstream file(message_path, std::ios::binary);
    std::stringstream raw;
    raw << file.rdbuf();
    std::string message = raw.str();
    if (protocol == "smtp" && !message.ends_with("\r\n.\r\n")) {
        // CRLF line ends, dot-stuffed, terminated: what libcurl sends for the same file.
        std::string crlf;
        std::size_t line_start = 0;
        for (std::size_t i = 0; i <= message.size(); ++i) {
            if (i == message.size() || message[i] == '\n') {
                std::string line = message.substr(line_start, i - line_start);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                if (!line.empty() && line.front() == '.') crlf += '.';
                crlf += line + "\r\n";
                line_start = i + 1;
            }
        }
        message = crlf + ".\r\n";
    }
    net::io_context io;
    const tcp::endpoint to(net::ip::make_address("127.0.0.1"), port);
    double last_at = 0;
    int done = 0;
    const double start = Now();
    std::string error;
    for (int c = 0; c < connections; ++c) {
        const int share = count / connections + (c < count % connections ? 1 : 0);
        net::co_spawn(io, Blast(protocol, to, share, message, last_at, done),
                      [&](std::exception_ptr e) {
                          if (!e) return;
                          try {
                              std::rethrow_exception(e);
                          } catch (const std::exception& ex) {
                              error = ex.what();
                          }
                      });
    }
    io.run();
    if (!error.empty()) {
        std::cerr << "ldis_sink: " << protocol << "-blast: " << error << "\n";
        return 1;
    }
    const double seconds = last_at - start;
    std::printf(
        "{\"count\":%d,\"connections\":%d,\"bytes\":%zu,\"seconds\":%.4f,\"per_second\":%.1f,"
        "\"first_at\":%.6f,\"last_at\":%.6f}\n",
        done, connections, message.size(), seconds, done / seconds, start, last_at);
    return done == count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"ldis_sink: timestamping SMTP/HTTP sink and its own-rate clients"};
    cli.require_subcommand(1);
    unsigned short port = 0;
    std::string out = "/dev/null";
    int count = 10000;
    int connections = 4;
    std::string message;
    for (const char* name : {"smtp", "http"}) {
        auto* sub = cli.add_subcommand(name, std::string(name) + " server");
        sub->add_option("--port", port);
        sub->add_option("--out", out, "JSON lines, one per message accepted")->required();
        if (std::string(name) == "smtp")
            sub->add_option("--sample", sample_path, "save the first alert email here");
    }
    for (const char* name : {"smtp-blast", "http-blast"}) {
        auto* sub = cli.add_subcommand(name, "send flat out and report the rate");
        sub->add_option("--port", port)->required();
        sub->add_option("--count", count);
        sub->add_option("--connections", connections);
        sub->add_option("--message", message, "the message (SMTP) or body (HTTP) to send")
            ->required()
            ->check(CLI::ExistingFile);
    }
    CLI11_PARSE(cli, argc, argv);
    const std::string which = cli.get_subcommands().front()->get_name();
    try {
        if (which == "smtp" || which == "http") return Serve(which, port, out);
        return BlastMain(which.substr(0, 4), port, count, connections, message);
    } catch (const std::exception& e) {
        std::cerr << "ldis_sink: " << e.what() << "\n";
        return 1;
    }
}
