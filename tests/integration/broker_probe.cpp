// A subscriber process for broker_client_test: `broker_probe URI ID MODE`.
//   no-return: on the first message, exit from inside the handler, never returning
//   returns:   let the handler return, then exit 300 ms later
//   crash:     connect, then die by SIGKILL
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <string>
#include <thread>

#include "ldis/broker/client.hpp"

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: broker_probe URI ID MODE\n";
        return 2;
    }
    const std::string mode = argv[3];
    ldis::broker::ClientOptions o;
    o.uri = argv[1];
    o.client_id = argv[2];
    o.subscriptions = {"probe/#"};
    o.status_topic = std::string("probe-status/") + argv[2];
    o.session_expiry = std::chrono::seconds(300);
    std::atomic<bool> handled{false};
    ldis::broker::Client client(o, [&](const ldis::broker::Message&) {
        if (mode == "no-return") _exit(0);
        handled = true;
    });
    client.Start();
    if (!client.WaitConnected(std::chrono::seconds(10))) return 3;
    if (mode == "crash") {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        kill(getpid(), SIGKILL);
    }
    for (int i = 0; i < 3000 && !handled; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    _exit(handled ? 0 : 4);
}
