// /healthz and /metrics (Prometheus text, built at most every 2 s).
#include "server_impl.hpp"

#include "ldis/engine/stages.hpp"

namespace ldis::web {

Response Server::Impl::Health() {
    const bool broker = !services_.broker_connected || services_.broker_connected();
    const std::int64_t reports = services_.store->CountReports();
    const auto counts = services_.store->DeliveryCounts();
    std::int64_t backlog = 0;
    for (const char* s : {"queued", "retrying", "sending"}) {
        if (auto it = counts.find(s); it != counts.end()) backlog += it->second;
    }
    const bool ok = broker && reports >= 0;
    json::object o{{"status", ok ? "ok" : "degraded"},
                   {"broker", broker ? "connected" : "disconnected"},
                   {"database", reports >= 0 ? "ok" : "unreadable"},
                   {"outbox_backlog", backlog}};
    return Make(ok ? http::status::ok : http::status::service_unavailable, json::serialize(o),
                "application/json");
}

// Built at most every 2 s, whoever asks how often: the counts scan whole tables.
Response Server::Impl::Metrics() {
    std::lock_guard lock(metrics_mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (metrics_text_.empty() || now - metrics_at_ >= std::chrono::seconds(2)) {
        metrics_text_ = MetricsText();
        metrics_at_ = now;
    }
    return Make(http::status::ok, metrics_text_, "text/plain; version=0.0.4; charset=utf-8");
}

std::string Server::Impl::MetricsText() {
    std::ostringstream out;
    out << "# HELP ldis_reports_total Reports taken in since start, by outcome.\n"
           "# TYPE ldis_reports_total counter\n";
    const auto& c = services_.intake->counters();
    out << "ldis_reports_total{status=\"accepted\"} " << c.accepted.load() << "\n"
        << "ldis_reports_total{status=\"duplicate\"} " << c.duplicate.load() << "\n"
        << "ldis_reports_total{status=\"rejected\"} " << c.rejected.load() << "\n"
        << "ldis_reports_total{status=\"store_failure\"} " << c.store_failures.load() << "\n";
    const auto counts = services_.store->CountAll();
    out << "# HELP ldis_reports_stored Reports in the database.\n"
           "# TYPE ldis_reports_stored gauge\n"
        << "ldis_reports_stored " << counts.reports << "\n"
        << "# HELP ldis_last_report_received_timestamp_seconds When the newest report was "
           "received (0: none yet).\n"
           "# TYPE ldis_last_report_received_timestamp_seconds gauge\n"
        << "ldis_last_report_received_timestamp_seconds " << counts.last_report_ms / 1000 << "\n"
        << "# HELP ldis_red_alerts_unacknowledged_overdue Live red alerts that a partner "
           "has not acknowledged by its deadline.\n"
           "# TYPE ldis_red_alerts_unacknowledged_overdue gauge\n"
        << "ldis_red_alerts_unacknowledged_overdue " << counts.red_unacknowledged_overdue << "\n";
    if (counts.disk_size_bytes > 0) {
        out << "# HELP ldis_store_disk_free_bytes Free space on the database's file system.\n"
               "# TYPE ldis_store_disk_free_bytes gauge\n"
            << "ldis_store_disk_free_bytes " << counts.disk_free_bytes << "\n"
            << "# HELP ldis_store_disk_size_bytes Size of the database's file system.\n"
               "# TYPE ldis_store_disk_size_bytes gauge\n"
            << "ldis_store_disk_size_bytes " << counts.disk_size_bytes << "\n";
    }
    if (services_.feeds) {
        // Silent feeds (issue 16 §3): an outside monitor can alert on the age as well.
        const auto label = [](const std::string& v) {  // Prometheus' escapes: \\ \" \n
            std::string escaped;
            for (const char ch : v) {
                if (ch == '\\' || ch == '"') escaped += '\\';
                if (ch == '\n') {
                    escaped += "\\n";
                    continue;
                }
                escaped += ch;
            }
            return escaped;
        };
        const std::int64_t now_ms = NowMs();
        std::ostringstream age, silent;
        for (const auto& f : services_.feeds()) {
            const std::string labels = "{source_type=\"" + label(f.feed.source_type) +
                                       "\",organisation=\"" + label(f.feed.organisation) + "\"}";
            age << "ldis_feed_last_seen_age_seconds" << labels << " "
                << std::max<std::int64_t>(0, now_ms - f.state.last_seen_ms) / 1000 << "\n";
            silent << "ldis_feed_silent" << labels << " " << (f.state.silent ? 1 : 0) << "\n";
        }
        out << "# HELP ldis_feed_last_seen_age_seconds Seconds since each expected feed sent a "
               "report or a heartbeat (since ldisd started, if it has not).\n"
               "# TYPE ldis_feed_last_seen_age_seconds gauge\n"
            << age.str()
            << "# HELP ldis_feed_silent 1 while an expected feed is silent past its limit.\n"
               "# TYPE ldis_feed_silent gauge\n"
            << silent.str();
    }
    out << "# HELP ldis_alerts Alerts in the database, by level and status.\n"
           "# TYPE ldis_alerts gauge\n";
    for (const auto& [key, n] : counts.alerts) {
        const auto slash = key.find('/');
        out << "ldis_alerts{level=\"" << key.substr(0, slash) << "\",status=\""
            << key.substr(slash + 1) << "\"} " << n << "\n";
    }
    out << "# HELP ldis_deliveries Deliveries in the outbox, by channel and status.\n"
           "# TYPE ldis_deliveries gauge\n";
    std::map<std::string, std::int64_t> by_status;
    for (const auto& [key, n] : counts.deliveries) {
        const auto slash = key.find('/');
        by_status[key.substr(slash + 1)] += n;
        out << "ldis_deliveries{channel=\"" << key.substr(0, slash) << "\",status=\""
            << key.substr(slash + 1) << "\"} " << n << "\n";
    }
    out << "# HELP ldis_deliveries_by_status Deliveries in the outbox, by status.\n"
           "# TYPE ldis_deliveries_by_status gauge\n";
    for (const char* st : {"queued", "sending", "delivered", "retrying", "failed"}) {
        out << "ldis_deliveries_by_status{status=\"" << st << "\"} " << by_status[st] << "\n";
    }
    if (services_.dispatch) {
        out << "# HELP ldis_dispatch_attempts_total Delivery attempts since start, by "
               "outcome.\n"
               "# TYPE ldis_dispatch_attempts_total counter\n"
            << "ldis_dispatch_attempts_total{outcome=\"delivered\"} "
            << services_.dispatch->delivered.load() << "\n"
            << "ldis_dispatch_attempts_total{outcome=\"retry\"} "
            << services_.dispatch->retried.load() << "\n"
            << "ldis_dispatch_attempts_total{outcome=\"failed\"} "
            << services_.dispatch->failed.load() << "\n";
        const auto& d = *services_.dispatch;
        out << "# HELP ldis_dispatch_latency_seconds From an alert version's creation to "
               "each delivery of it being accepted.\n"
               "# TYPE ldis_dispatch_latency_seconds histogram\n";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < std::size(engine::DispatchCounters::kLatencyBounds); ++i) {
            cumulative += d.latency_buckets[i].load();
            out << "ldis_dispatch_latency_seconds_bucket{le=\""
                << engine::DispatchCounters::kLatencyBounds[i] << "\"} " << cumulative << "\n";
        }
        cumulative += d.latency_buckets[std::size(engine::DispatchCounters::kLatencyBounds)].load();
        out << "ldis_dispatch_latency_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
            << "ldis_dispatch_latency_seconds_sum "
            << static_cast<double>(d.latency_sum_ms.load()) / 1000.0 << "\n"
            << "ldis_dispatch_latency_seconds_count " << d.latency_count.load() << "\n";
    }
    const bool broker = !services_.broker_connected || services_.broker_connected();
    out << "# HELP ldis_mqtt_connected 1 while the MQTT connection is up.\n"
           "# TYPE ldis_mqtt_connected gauge\n"
        << "ldis_mqtt_connected " << (broker ? 1 : 0) << "\n";
    out << "# HELP ldis_http_connections HTTP connections open now.\n"
           "# TYPE ldis_http_connections gauge\n"
        << "ldis_http_connections " << open_connections_.load() << "\n"
        << "# HELP ldis_http_refused_total Connections refused since start: over "
           "http.max_connections, or no descriptor left.\n"
           "# TYPE ldis_http_refused_total counter\n"
        << "ldis_http_refused_total " << refused_total_.load() << "\n";
    out << engine::StagesPrometheus();
    return out.str();
}

}  // namespace ldis::web
