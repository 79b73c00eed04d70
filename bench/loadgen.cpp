// ldis_loadgen: publishes reports at QoS 1 and measures how fast they come back.
//   --mode intake        distinct reports to ldis/v1/reports/hospital; counts receipts
//                        (ldisd sends one only after the report is committed)
//   --mode broker-alone  messages of the same size to a topic this process subscribes to,
//                        QoS 1 both ways: what the broker carries with no ldisd
//   --mode alerts        red reports (a death) each in a signal of its own, so each opens a
//                        new red alert; with --red-every N only every Nth report is one and
//                        the rest are the realistic mix without red; --map FILE gets one
//                        JSON line per red report: {"report","sent_at","alert","level",
//                        "receipt_at"} (Unix seconds)
//   --mix worst          every report in one signal (heroin, Medway): grading's worst case
//   --mix realistic      13 districts, 7 substances; ~45% none (rumours), ~35% green (one
//                        harm), ~15% amber (nitazene on a test strip), ~5% red (a death)
//   --rate R             publishes R reports/s (0: flat out, at most --window unacknowledged)
//   --warmup N           N more reports first, at the same rate and of the same kind, whose
//                        receipts are awaited but not measured; in --map with "warmup":true.
//                        What they warm: ldisd's first use of its validator, grading and SQL
//                        statements, its first SMTP connections, and Paho C's receive thread,
//                        which after a second without traffic sleeps 100 ms between waits
//                        (MQTTAsync_cycle), so a report arriving then waits up to 100 ms
// Each report's submitted_at is its send time (milliseconds). Prints one JSON object:
// {"mode","count","received","seconds","per_second","p50_ms","p95_ms","p99_ms","levels"}.
#include <mqtt/async_client.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
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

double UnixNow() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// RFC 3339 with milliseconds, UTC.
std::string Rfc3339(double unix_seconds) {
    const auto whole = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&whole, &tm);
    char out[96];
    std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>((unix_seconds - static_cast<double>(whole)) * 1000));
    return out;
}

constexpr const char* kTime = "__SENT_AT__";

// A report body with kTime where the send time goes.
std::string WorstReport(const std::string& id) {
    return R"({"schema":"ldis.report/1","id":")" + id + R"(","submitted_at":")" + kTime +
           R"(","source":{"type":"hospital","organisation":"Medway NHS Foundation Trust","role":"ED nurse"},"area":{"authority":"Medway","district":"Medway","ward":"Gillingham North","establishment":"Medway Maritime Hospital"},"setting":"community","substances":[{"name":"heroin","sold_as":"brown","form":"powder"}],"route":"injected","harms":{"cases":2,"hospitalisations":2,"naloxone_doses":3},"symptoms":["pinpoint pupils","slow breathing"],"description":"Two people in the ED after using brown bought in Gillingham.","evidence":"professional"})";
}

std::string RedReport(const std::string& id, const std::string& compound) {
    return R"({"schema":"ldis.report/1","id":")" + id + R"(","submitted_at":")" + kTime +
           R"(","source":{"type":"panel","organisation":"Kent and Medway DRD panel","role":"panel chair"},"area":{"authority":"Medway","district":"Medway"},"setting":"home","substances":[{"name":")" +
           compound +
           R"(","form":"powder"}],"harms":{"cases":1,"deaths":1},"description":"A death linked to a powder sold locally.","evidence":"professional"})";
}

std::string RealisticReport(const std::string& id, std::mt19937_64& rng, bool allow_red = true) {
    static const std::vector<std::pair<std::string, std::string>> kAreas = {
        {"Medway", "Medway"},       {"Kent", "Ashford"},   {"Kent", "Canterbury"},
        {"Kent", "Dartford"},       {"Kent", "Dover"},     {"Kent", "Folkestone & Hythe"},
        {"Kent", "Gravesham"},      {"Kent", "Maidstone"}, {"Kent", "Sevenoaks"},
        {"Kent", "Swale"},          {"Kent", "Thanet"},    {"Kent", "Tonbridge & Malling"},
        {"Kent", "Tunbridge Wells"}};
    static const std::vector<std::string> kSubstances = {
        "cocaine", "ketamine", "MDMA", "heroin", "diazepam", "spice", "cannabis"};
    const auto& [authority, district] = kAreas[rng() % kAreas.size()];
    const std::string area =
        R"("area":{"authority":")" + authority + R"(","district":")" + district + R"("})";
    const auto roll = rng() % 100;
    std::string substance = kSubstances[rng() % kSubstances.size()];
    std::string source = R"({"type":"outreach","organisation":"Outreach team )" +
                         std::to_string(rng() % 5) + R"(","role":"outreach worker"})";
    std::string harms = R"({"cases":0})";
    std::string evidence = "anecdotal";
    std::string confirmed;
    if (roll >= 45 && roll < 80) {  // green: one harm seen by a professional
        harms = R"({"cases":1})";
        evidence = "professional";
    } else if (roll >= 80 && roll < 95) {  // amber: a nitazene on a test strip
        substance = "isotonitazene";
        confirmed = R"(,"confirmed_by":"test_strip")";
        evidence = "professional";
    } else if (roll >= 95 && allow_red) {  // red: a death
        source = R"({"type":"panel","organisation":"Kent and Medway DRD panel","role":"chair"})";
        harms = R"({"cases":1,"deaths":1})";
        evidence = "professional";
    }
    return R"({"schema":"ldis.report/1","id":")" + id + R"(","submitted_at":")" + kTime +
           R"(","source":)" + source + "," + area +
           R"(,"setting":"community","substances":[{"name":")" + substance +
           R"(","form":"powder")" + confirmed + R"(}],"harms":)" + harms +
           R"(,"description":"Seen in the area this week.","evidence":")" + evidence + R"("})";
}

double Percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string Field(const std::string& body, const std::string& name) {
    const std::string key = "\"" + name + "\":\"";
    const auto at = body.find(key);
    if (at == std::string::npos) return {};
    const auto end = body.find('"', at + key.size());
    return body.substr(at + key.size(), end - at - key.size());
}

struct Sent {
    Clock::time_point at;
    double unix_at = 0;
    bool warmup = false;
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"ldis_loadgen"};
    std::string uri = "tcp://127.0.0.1:1883";
    std::string mode = "intake";
    std::string mix = "worst";
    std::string map_path;
    int count = 10000;
    int warmup = 0;
    int red_every = 1;
    int window = 100;
    double rate = 0;
    double timeout_s = 120;
    cli.add_option("--uri", uri);
    cli.add_option("--mode", mode)->check(CLI::IsMember({"intake", "broker-alone", "alerts"}));
    cli.add_option("--mix", mix)->check(CLI::IsMember({"worst", "realistic"}));
    cli.add_option("--count", count);
    cli.add_option("--warmup", warmup, "reports sent first, not measured");
    cli.add_option("--rate", rate, "reports per second (0: flat out)");
    cli.add_option("--window", window, "publishes awaiting PUBACK at most");
    cli.add_option("--timeout", timeout_s, "seconds to wait for the last receipt");
    cli.add_option("--red-every", red_every, "alerts mode: every Nth report is red");
    cli.add_option("--map", map_path, "alerts mode: where to write report -> alert lines");
    CLI11_PARSE(cli, argc, argv);
    const int measured = count;
    count += warmup;  // the warm-up reports come first, then the measured ones

    std::mt19937_64 rng{std::random_device{}()};
    const std::string tag = Uuid(rng).substr(0, 8);
    std::vector<std::string> ids;
    std::vector<std::string> payloads;
    ids.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        ids.push_back(Uuid(rng));
        if (mode == "alerts" && i % red_every != 0)
            payloads.push_back(RealisticReport(ids.back(), rng, false));
        else if (mode == "alerts")
            payloads.push_back(
                RedReport(ids.back(), "benchcompound " + tag + " " + std::to_string(100000 + i)));
        else if (mix == "realistic")
            payloads.push_back(RealisticReport(ids.back(), rng));
        else
            payloads.push_back(WorstReport(ids.back()));
    }
    const bool to_ldisd = mode != "broker-alone";
    std::vector<std::string> topics;  // a report goes to its own source type's topic
    for (const auto& payload : payloads)
        topics.push_back(to_ldisd ? "ldis/v1/reports/" + Field(payload, "type")
                                  : "bench/alone/" + tag);
    const std::string listen = to_ldisd ? "ldis/v1/receipts/+" : topics.front();
    std::set<std::string> red_ids;
    for (std::size_t i = 0; i < payloads.size(); ++i)
        if (mode == "alerts" && payloads[i].find("benchcompound") != std::string::npos)
            red_ids.insert(ids[i]);

    std::unordered_map<std::string, Sent> sent_at;
    sent_at.reserve(static_cast<std::size_t>(count));
    std::mutex mutex;
    std::condition_variable done;
    std::vector<double> latencies_ms;
    std::map<std::string, int> levels;
    std::vector<std::string> map_lines;
    std::atomic<int> received{0};
    std::atomic<int> measured_received{0};

    mqtt::async_client listener(uri, "loadgen-listen-" + tag,
                                mqtt::create_options(MQTTVERSION_5, 1000000), nullptr);
    listener.set_message_callback([&](mqtt::const_message_ptr msg) {
        const auto now = Clock::now();
        const double unix_now = UnixNow();
        const std::string& body = msg->get_payload_str();
        const std::string id = Field(body, to_ldisd ? "report_id" : "id");
        std::lock_guard lock(mutex);
        auto it = sent_at.find(id);
        if (it == sent_at.end()) return;
        if (!it->second.warmup)
            latencies_ms.push_back(
                std::chrono::duration<double, std::milli>(now - it->second.at).count());
        if (to_ldisd) {
            const std::string level = Field(body, "level");
            if (!it->second.warmup) ++levels[level.empty() ? "rejected" : level];
            if (red_ids.count(id) != 0) {
                char line[256];
                std::snprintf(
                    line, sizeof line,
                    "{\"report\":\"%s\",\"sent_at\":%.6f,\"alert\":\"%s\",\"level\":\"%s\","
                    "\"receipt_at\":%.6f%s}",
                    id.c_str(), it->second.unix_at, Field(body, "alert_id").c_str(), level.c_str(),
                    unix_now, it->second.warmup ? ",\"warmup\":true" : "");
                map_lines.emplace_back(line);
            }
        }
        if (!it->second.warmup) ++measured_received;
        sent_at.erase(it);
        if (++received == count) done.notify_all();
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
    auto measured_start = start;
    std::deque<mqtt::delivery_token_ptr> pending;
    for (int i = 0; i < count; ++i) {
        if (rate > 0)
            std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                      std::chrono::duration<double>(i / rate)));
        if (i == warmup) measured_start = Clock::now();
        auto& payload = payloads[static_cast<std::size_t>(i)];
        const double unix_at = UnixNow();
        payload.replace(payload.find(kTime), std::string_view(kTime).size(), Rfc3339(unix_at));
        {
            std::lock_guard lock(mutex);
            sent_at.emplace(ids[static_cast<std::size_t>(i)],
                            Sent{Clock::now(), unix_at, i < warmup});
        }
        pending.push_back(
            publisher.publish(topics[static_cast<std::size_t>(i)], payload, 1, false));
        while (static_cast<int>(pending.size()) >= window ||
               (rate > 0 && !pending.empty() && pending.front()->is_complete())) {
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
    const double seconds = std::chrono::duration<double>(end - measured_start).count();
    std::lock_guard lock(mutex);
    std::string level_json;
    for (const auto& [level, n] : levels)
        level_json += (level_json.empty() ? "\"" : ",\"") + level + "\":" + std::to_string(n);
    std::printf(
        "{\"mode\":\"%s\",\"mix\":\"%s\",\"count\":%d,\"warmup\":%d,\"received\":%d,"
        "\"seconds\":%.3f,"
        "\"publish_seconds\":%.3f,\"rate\":%.0f,\"per_second\":%.0f,\"p50_ms\":%.2f,"
        "\"p95_ms\":%.2f,\"p99_ms\":%.2f,\"levels\":{%s}}\n",
        mode.c_str(), mix.c_str(), measured, warmup, measured_received.load(), seconds,
        std::chrono::duration<double>(published - measured_start).count(), rate,
        measured_received.load() / seconds, Percentile(latencies_ms, 0.50),
        Percentile(latencies_ms, 0.95), Percentile(latencies_ms, 0.99), level_json.c_str());
    if (!map_path.empty()) {
        std::ofstream out(map_path);
        for (const auto& line : map_lines) out << line << '\n';
    }
    publisher.disconnect()->wait();
    listener.disconnect()->wait();
    return received.load() == count ? 0 : 1;
}
