// ldis::broker::Client against a real mosquitto on loopback.
#include "ldis/broker/client.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "support/daemon.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"

using ldis::broker::Client;
using ldis::broker::ClientOptions;
using ldis::broker::Message;
using ldis::test::Eventually;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;

namespace {

ClientOptions Options(const Mosquitto& broker, const std::string& id) {
    ClientOptions o;
    o.uri = broker.uri();
    o.client_id = id;
    o.subscriptions = {"probe/#"};
    o.status_topic = "probe-status/" + id;
    o.session_expiry = std::chrono::seconds(300);
    return o;
}

// Runs broker_probe, a subscriber in its own process, sends it one message and waits
// for it to exit (see broker_probe.cpp for the modes).
void RunChildSubscriber(const Mosquitto& broker, const std::string& id, const std::string& mode) {
    ldis::test::TempDir dir;
    MqttPeer watcher(broker.uri(), "watcher-" + id);
    watcher.Subscribe("probe-status/" + id);
    ldis::test::Process probe({BROKER_PROBE_PATH, broker.uri(), id, mode}, dir / "probe.log");
    ASSERT_TRUE(watcher.WaitFor([](const ldis::test::Seen& s) { return s.payload == "online"; },
                                std::chrono::seconds(10)));
    MqttPeer publisher(broker.uri(), "publisher-" + id);
    ASSERT_TRUE(publisher.Publish("probe/1", "report-1"));
    EXPECT_EQ(probe.Wait(std::chrono::seconds(20)), 0) << ldis::test::ReadFile(dir / "probe.log");
}

// Counts what a fresh client with the same id (so the same session) receives.
int RedeliveredAfterRestart(const Mosquitto& broker, const std::string& id) {
    std::atomic<int> received{0};
    Client client(Options(broker, id), [&](const Message& m) {
        if (m.payload == "report-1") ++received;
    });
    client.Start();
    EXPECT_TRUE(client.WaitConnected(std::chrono::seconds(10)));
    Eventually([&] { return received.load() > 0; }, std::chrono::seconds(3));
    client.Stop(std::chrono::seconds(2));
    return received.load();
}

TEST(BrokerClientTest, MessageNotAcknowledgedUntilHandlerReturns) {
    Mosquitto broker;
    RunChildSubscriber(broker, "no-return", "no-return");
    EXPECT_EQ(RedeliveredAfterRestart(broker, "no-return"), 1)
        << "the broker did not redeliver: Paho acknowledged a message before its handler returned";
}

TEST(BrokerClientTest, MessageAcknowledgedOnceHandlerReturns) {
    // The control for the test above: when the handler returns, the message is gone.
    Mosquitto broker;
    RunChildSubscriber(broker, "returns", "returns");
    EXPECT_EQ(RedeliveredAfterRestart(broker, "returns"), 0);
}

TEST(BrokerClientTest, PersistentSessionKeepsMessagesWhileDisconnected) {
    Mosquitto broker;
    std::vector<std::string> got;
    std::mutex mutex;
    const auto handler = [&](const Message& m) {
        std::lock_guard lock(mutex);
        got.push_back(m.payload);
    };
    {
        MqttPeer watcher(broker.uri(), "watcher-session");
        watcher.Subscribe("probe-status/session");
        Client first(Options(broker, "session"), handler);
        first.Start();
        // "online" follows SUBSCRIBE on the same connection: the session has its subscription.
        ASSERT_TRUE(watcher.WaitFor([](const ldis::test::Seen& s) { return s.payload == "online"; },
                                    std::chrono::seconds(10)));
        first.Stop(std::chrono::seconds(2));
    }
    MqttPeer publisher(broker.uri(), "publisher-session");
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(publisher.Publish("probe/" + std::to_string(i), "m" + std::to_string(i)));
    Client second(Options(broker, "session"), handler);
    second.Start();
    EXPECT_TRUE(Eventually(
        [&] {
            std::lock_guard lock(mutex);
            return got.size() == 5;
        },
        std::chrono::seconds(10)));
    second.Stop(std::chrono::seconds(2));
}

TEST(BrokerClientTest, ReconnectsAndResubscribesWhenTheBrokerForgetsEverything) {
    Mosquitto broker(/*persistence=*/false);
    std::atomic<int> got{0};
    std::atomic<int> connects{0};
    Client client(
        Options(broker, "resub"),
        [&](const Message& m) {
            if (m.payload == "after") ++got;
        },
        [&](bool up) {
            if (up) ++connects;
        });
    client.Start();
    ASSERT_TRUE(client.WaitConnected(std::chrono::seconds(10)));
    broker.Restart();  // no persistence: the session and its subscription are gone
    ASSERT_TRUE(Eventually([&] { return connects.load() >= 2; }, std::chrono::seconds(20)));
    MqttPeer watcher(broker.uri(), "watcher-resub");
    watcher.Subscribe("probe-status/resub");
    ASSERT_TRUE(watcher.WaitFor([](const ldis::test::Seen& s) { return s.payload == "online"; },
                                std::chrono::seconds(10)));
    MqttPeer publisher(broker.uri(), "publisher-resub");
    ASSERT_TRUE(publisher.Publish("probe/x", "after"));
    EXPECT_TRUE(Eventually([&] { return got.load() == 1; }, std::chrono::seconds(10)));
    client.Stop(std::chrono::seconds(2));
}

TEST(BrokerClientTest, ConnectsWhenTheBrokerComesUpLater) {
    Mosquitto broker;
    broker.Stop();
    Client client(Options(broker, "late"), [](const Message&) {});
    client.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_FALSE(client.connected());
    broker.Start();
    EXPECT_TRUE(client.WaitConnected(std::chrono::seconds(15)));
    client.Stop(std::chrono::seconds(2));
}

TEST(BrokerClientTest, StopPublishesOfflineAndWillCoversACrash) {
    Mosquitto broker;
    MqttPeer watcher(broker.uri(), "watcher-status");
    watcher.Subscribe("probe-status/#");
    {
        Client client(Options(broker, "status"), [](const Message&) {});
        client.Start();
        ASSERT_TRUE(watcher.WaitFor([](const ldis::test::Seen& s) { return s.payload == "online"; },
                                    std::chrono::seconds(10)));
        EXPECT_TRUE(client.Stop(std::chrono::seconds(2)));
    }
    EXPECT_TRUE(watcher.WaitFor([](const ldis::test::Seen& s) { return s.payload == "offline"; },
                                std::chrono::seconds(5)));
    // A crash: the broker publishes the last will.
    ldis::test::TempDir dir;
    ldis::test::Process probe({BROKER_PROBE_PATH, broker.uri(), "crash", "crash"},
                              dir / "probe.log");
    ASSERT_TRUE(watcher.WaitFor(
        [](const ldis::test::Seen& s) {
            return s.topic == "probe-status/crash" && s.payload == "online";
        },
        std::chrono::seconds(10)));
    EXPECT_EQ(probe.Wait(std::chrono::seconds(10)), 128 + SIGKILL);
    EXPECT_TRUE(watcher.WaitFor(
        [](const ldis::test::Seen& s) {
            return s.topic == "probe-status/crash" && s.payload == "offline";
        },
        std::chrono::seconds(10)));
}

TEST(BrokerClientTest, PublishCarriesResponseTopicAndCorrelationData) {
    Mosquitto broker;
    MqttPeer watcher(broker.uri(), "watcher-props");
    watcher.Subscribe("answers/#");
    Client client(Options(broker, "props"), [](const Message&) {});
    client.Start();
    ASSERT_TRUE(client.WaitConnected(std::chrono::seconds(10)));
    Message m{"answers/1", "hello", "", std::string("\x00\x01corr", 6), 1, false, {}, {}};
    client.Publish(std::move(m));
    const auto seen = watcher.WaitForTopic("answers/1", std::chrono::seconds(5));
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->payload, "hello");
    EXPECT_EQ(seen->correlation_data, std::string("\x00\x01corr", 6));
    client.Stop(std::chrono::seconds(2));
}

// Federation's envelope travels as user properties (a name may repeat; order is kept), both
// ways through a real broker.
TEST(BrokerClientTest, UserPropertiesCrossTheBrokerInOrder) {
    Mosquitto broker;
    std::mutex mutex;
    std::condition_variable arrived;
    std::optional<Message> received;
    ClientOptions in = Options(broker, "props-in");
    in.subscriptions = {"fed/#"};
    Client receiver(in, [&](const Message& m) {
        std::lock_guard lock(mutex);
        received = m;
        arrived.notify_all();
    });
    receiver.Start();
    ASSERT_TRUE(receiver.WaitConnected(std::chrono::seconds(10)));
    Client sender(Options(broker, "props-out"), [](const Message&) {});
    sender.Start();
    ASSERT_TRUE(sender.WaitConnected(std::chrono::seconds(10)));
    Message m;
    m.topic = "fed/alerts";
    m.payload = "<alert/>";
    m.user_properties = {
        {"ldis-instance", "medway"}, {"ldis-sequence", "7"}, {"note", "a"}, {"note", "b"}};
    sender.Publish(m);
    std::unique_lock lock(mutex);
    ASSERT_TRUE(
        arrived.wait_for(lock, std::chrono::seconds(5), [&] { return received.has_value(); }));
    EXPECT_EQ(received->payload, "<alert/>");
    EXPECT_EQ(received->user_properties, m.user_properties);
    lock.unlock();
    sender.Stop(std::chrono::seconds(2));
    receiver.Stop(std::chrono::seconds(2));
}

// TCP_NODELAY on each of this process's sockets connected to `port`, in fd order.
std::vector<int> NoDelayTowards(int port) {
    std::vector<int> out;
    DIR* fds = opendir("/proc/self/fd");
    if (fds == nullptr) return out;
    while (const dirent* entry = readdir(fds)) {
        const int fd = std::atoi(entry->d_name);
        if (fd <= 2 || fd == dirfd(fds)) continue;
        sockaddr_in peer{};
        socklen_t length = sizeof peer;
        if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0 ||
            peer.sin_family != AF_INET || ntohs(peer.sin_port) != port)
            continue;
        int on = 0;
        length = sizeof on;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &length) == 0) out.push_back(on);
    }
    closedir(fds);
    return out;
}

// Paho C leaves Nagle's algorithm on. A receipt published just after a report's PUBACK then
// waited in the kernel for the broker's next packet (the next report): 20 ms at 50 reports/s
// (bench/run --only latency), later than the first email. The client turns it off.
TEST(BrokerClientTest, TheBrokerConnectionSendsSmallPacketsAtOnce) {
    Mosquitto broker;
    Client client(Options(broker, "nodelay"), [](const Message&) {});
    client.Start();
    ASSERT_TRUE(client.WaitConnected(std::chrono::seconds(10)));
    const auto sockets = NoDelayTowards(broker.port());
    ASSERT_EQ(sockets.size(), 1U) << "one connection to the broker";
    EXPECT_EQ(sockets.front(), 1) << "TCP_NODELAY is off on the broker connection";
    // The same after a reconnection, which is a new socket.
    broker.Restart();
    ASSERT_TRUE(Eventually([&] { return client.connected(); }, std::chrono::seconds(20)));
    const auto again = NoDelayTowards(broker.port());
    ASSERT_EQ(again.size(), 1U);
    EXPECT_EQ(again.front(), 1) << "TCP_NODELAY is off after the reconnection";
    client.Stop(std::chrono::seconds(2));
}

}  // namespace
