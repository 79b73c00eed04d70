// Dispatch end to end, the fixture: the real ldisd, mosquitto, an aiosmtpd SMTP server and
// HTTP receivers (webhooks, a Notify-compatible API), all on loopback, SQLite on disk. The
// tests: dispatch_test.cpp (routing, each channel's message, drafts and exercises) and
// dispatch_failures_test.cpp (outages, retries, fallback, escalation, kills, TLS).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <map>
#include <set>

#include "ldis/engine/report_store.hpp"
#include "support/daemon.hpp"
#include "support/http_client.hpp"
#include "support/mqtt_peer.hpp"
#include "support/processes.hpp"
#include "support/reports.hpp"
#include "support/servers.hpp"

namespace ldis::test::dispatch {

namespace json = boost::json;
using ldis::test::Eventually;
using ldis::test::HttpReceiver;
using ldis::test::Ldisd;
using ldis::test::MakeCa;
using ldis::test::MakeSignedCertificate;
using ldis::test::Mosquitto;
using ldis::test::MqttPeer;
using ldis::test::NewUuid;
using ldis::test::ParseObject;
using ldis::test::Seen;
using ldis::test::SmtpSink;
using ldis::test::TempDir;

inline constexpr auto kWait = std::chrono::seconds(20);
inline const std::string kSecret = "test-webhook-secret";
inline const std::string kNotifyKey = "ldis_test-" +
                                      std::string("26785a09-ab16-4eb0-8407-a37497a57506") + "-" +
                                      "3d844edf-8d35-48ac-975b-e847b4f122b0";

inline std::string Header(const json::object& message, const std::string& name) {
    const auto& headers = message.at("headers").as_object();
    const auto* v = headers.if_contains(name);
    return v ? StringOf(*v) : std::string();
}

inline std::string Recipient(const json::object& message) {
    return StringOf(message.at("rcpt_tos").as_array().at(0));
}

// The red report: a death in Medway, with personal data in the free text that must
// never leave the system.
inline json::object RedReport() {
    auto r = ldis::test::ValidReport(NewUuid());
    r["harms"].as_object()["deaths"] = 1;
    r["description"] =
        "Patient John Smith, NHS number 943 476 5919, born 01/02/1990, of ME7 1AA, phone 07700 "
        "900123, jo.smith@example.com, died after using brown bought in Gillingham.";
    return r;
}

class DispatchTest : public ::testing::Test {
protected:
    void TearDown() override {
        peer_.reset();
        if (daemon_) {
            if (HasFailure()) std::cerr << "ldisd log:\n" << daemon_->log();
            daemon_->Stop(SIGTERM);
        }
        unsetenv("LDIS_NOTIFY_API_KEY");
        unsetenv("LDIS_SMTP_PASSWORD");
    }

    // Writes partners.toml (the coordinators come first) and starts ldisd with it.
    void StartDaemon(const std::string& partners, const std::string& smtp_url,
                     std::vector<std::string> sets = {}) {
        const std::string path = dir_ / "partners.toml";
        std::ofstream(dir_ / "hook.key") << kSecret << "\n";
        std::ofstream(path) << "[coordinators]\npartner = \"coord\"\n\n"
                            << "[[partner]]\nid = \"coord\"\nname = \"LDIS coordinators\"\n"
                            << "  [[partner.contact]]\n  name = \"team\"\n  channel = \"email\"\n"
                            << "  address = \"coordinators@example.org\"\n\n"
                            << partners;
        // Defaults first: a test's own settings come later and win.
        sets.insert(sets.begin(), {"dispatch.channels=email,webhook,notify,mqtt",
                                   "paths.partners=" + path, "email.smtp_url=" + smtp_url,
                                   "dispatch.retry_base_ms=200", "dispatch.retry_max_ms=1000",
                                   "escalation.check_s=1", "dispatch.timeout_ms=3000"});
        daemon_ = std::make_unique<Ldisd>(broker_, dir_, sets);
        daemon_->Start();
        peer_ = std::make_unique<MqttPeer>(broker_.uri(), "partner-" + NewUuid().substr(0, 8));
        peer_->Subscribe("test/receipts/#");
        peer_->Subscribe("ldis/v1/alerts/#");
    }

    json::object Submit(const json::object& report) {
        const std::string correlation = NewUuid();
        EXPECT_TRUE(peer_->Publish("ldis/v1/reports/hospital", json::serialize(report),
                                   "test/receipts/x", correlation));
        const auto seen =
            peer_->WaitFor([&](const Seen& s) { return s.correlation_data == correlation; }, kWait);
        if (!seen) {
            ADD_FAILURE() << "no receipt";
            return {};
        }
        return ParseObject(seen->payload);
    }

    std::vector<ldis::engine::DeliveryRow> Deliveries() {
        ldis::engine::StoreOptions o;
        o.path = daemon_->db_path();
        return ldis::engine::ReportStore(o).Deliveries("");
    }

    bool AllSettled() {
        const auto rows = Deliveries();
        for (const auto& d : rows) {
            if (d.status != "delivered" && d.status != "failed") return false;
        }
        return !rows.empty();
    }

    Mosquitto broker_;
    TempDir dir_;
    std::unique_ptr<Ldisd> daemon_;
    std::unique_ptr<MqttPeer> peer_;
};

inline std::string EmailPartner(const std::string& id, const std::string& address,
                                const std::string& subscription) {
    return "[[partner]]\nid = \"" + id + "\"\nname = \"" + id + "\"\n  [[partner.contact]]\n" +
           "  name = \"mail\"\n  channel = \"email\"\n  address = \"" + address + "\"\n" +
           "  [[partner.subscription]]\n" + subscription + "\n\n";
}

}  // namespace ldis::test::dispatch
