// ldis_loadgen: publishes reports at QoS 1 and measures how fast they come back.
//   --mode intake        distinct reports to ldis/v1/reports/hospital; counts receipts
//                        (ldisd sends one only after the report is committed)
//   --mode broker-alone  messages of the same size to a topic this process subscribes to,
//                        QoS 1 both ways: what the broker carries with no ldisd
// Prints one JSON object: {"mode","count","seconds","per_second","p50_ms","p99_ms"}.
#include <mqtt/async_client.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::string Uuid(std::mt19937_64& rng) {
    const auto a = rng();
    const auto b = rng();
    char out[37];
    std::snprintf(out, sizeof out, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFF),
                  static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3FFF)),
                  static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
    return out;
}

std::string Report(const std::string& id) {
    return R"({"schema":"ldis.report/1","id":")" + id +
           R"(","submitted_at":"2026-11-23T09:30:00Z","source":{"type":"hospital","organisation":"Medway NHS Foundation Trust","role":"ED nurse"},"area":{"authority":"Medway","district":"Medway","ward":"Gillingham North","establishment":"Medway Maritime Hospital"},"setting":"community","substances":[{"name":"heroin","sold_as":"brown","form":"powder"}],"route":"injected","harms":{"cases":2,"hospitalisations":2,"naloxone_doses":3},"symptoms":["pinpoint pupils","slow breathing"],"description":"Two people in the ED after using brown bought in Gillingham.","evidence":"professional"})";
}

double Percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"ldis_loadgen"};
    std::string uri = "tcp://127.0.0.1:1883";
    std::string mode = "intake";
    int count = 10000;
    int window = 100;
    double timeout_s = 120;
    cli.add_option("--uri", uri);
    cli.add_option("--mode", mode)->check(CLI::IsMember({"intake", "broker-alone"}));
    cli.add_option("--count", count);
    cli.add_option("--window", window, "publishes awaiting PUBACK at most");
    cli.add_option("--timeout", timeout_s);
    CLI11_PARSE(cli, argc, argv);

    std::mt19937_64 rng{std::random_device{}()};
    const std::string tag = Uuid(rng).substr(0, 8);
    std::vector<std::string> ids;
    std::vector<std::string> payloads;
    ids.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        ids.push_back(Uuid(rng));
        payloads.push_back(Report(ids.back()));
    }
    const std::string topic = mode == "intake" ? "ldis/v1/reports/hospital" : "bench/alone/" + tag;
    const std::string listen = mode == "intake" ? "ldis/v1/receipts/hospital" : topic;

    std::unordered_map<std::string, Clock::time_point> sent_at;
    sent_at.reserve(static_cast<std::size_t>(count));
    std::mutex mutex;
    std::condition_variable done;
    std::vector<double> latencies_ms;
    std::atomic<int> received{0};

    mqtt::async_client listener(uri, "loadgen-listen-" + tag,
                                mqtt::create_options(MQTTVERSION_5, 1000000), nullptr);
    listener.set_message_callback([&](mqtt::const_message_ptr msg) {
        const auto now = Clock::now();
        const std::string& body = msg->get_payload_str();
        const std::string key = mode == "intake" ? "\"report_id\":\"" : "\"id\":\"";
        const auto at = body.find(key);
        if (at == std::string::npos) return;
        const std::string id = body.substr(at + key.size(), 36);
        std::lock_guard lock(mutex);
        if (auto it = sent_at.find(id); it != sent_at.end()) {
            latencies_ms.push_back(
                std::chrono::duration<double, std::milli>(now - it->second).count());
            sent_at.erase(it);
            if (++received == count) done.notify_all();
        }
    });
    listener
        .connect(mqtt::connect_options_builder()
                     .mqtt_version(MQTTVERSION_5)
                     .clean_start(true)
                     .finalize())
        ->wait();
    listener.subscribe(listen, 1, mqtt::subscribe_options(), mqtt::properties())->wait();

    mqtt::async_client publisher(uri, "loadgen-publish-" + tag,
                                 mqtt::create_options(MQTTVERSION_5, 1000000), nullptr);
    publisher
        .connect(mqtt::connect_options_builder()
                     .mqtt_version(MQTTVERSION_5)
                     .clean_start(true)
                     .finalize())
        ->wait();

    const auto start = Clock::now();
    std::deque<mqtt::delivery_token_ptr> pending;
    for (int i = 0; i < count; ++i) {
        {
            std::lock_guard lock(mutex);
            sent_at.emplace(ids[static_cast<std::size_t>(i)], Clock::now());
        }
        pending.push_back(
            publisher.publish(topic, payloads[static_cast<std::size_t>(i)], 1, false));
        while (static_cast<int>(pending.size()) >= window) {
            pending.front()->wait();
            pending.pop_front();
        }
    }
    for (auto& t : pending) t->wait();
    const auto published = Clock::now();
    {
        std::unique_lock lock(mutex);
        done.wait_for(lock, std::chrono::duration<double>(timeout_s),
                      [&] { return received.load() >= count; });
    }
    const auto end = Clock::now();
    const double seconds = std::chrono::duration<double>(end - start).count();
    std::lock_guard lock(mutex);
    std::printf(
        "{\"mode\":\"%s\",\"count\":%d,\"received\":%d,\"seconds\":%.3f,\"publish_seconds\":%.3f,"
        "\"per_second\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n",
        mode.c_str(), count, received.load(), seconds,
        std::chrono::duration<double>(published - start).count(), received.load() / seconds,
        Percentile(latencies_ms, 0.50), Percentile(latencies_ms, 0.99));
    publisher.disconnect()->wait();
    listener.disconnect()->wait();
    return received.load() == count ? 0 : 1;
}
