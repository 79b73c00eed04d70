#pragma once

#include <string>
#include <string_view>

namespace ldis::engine::wire {

// The wire vocabulary (DESIGN §4, docs/api.md), spelled once: the MQTT topics LDIS reads
// and writes, and the paths of the links it sends. The engine, the daemon and the web
// server use these; nothing else writes "ldis/v1/".

// Reports come in on ldis/v1/reports/{source type}.
inline constexpr std::string_view kReportTopicPrefix = "ldis/v1/reports/";
inline constexpr std::string_view kReportFilter = "ldis/v1/reports/+";
// A receipt goes to the submitter's response topic, else ldis/v1/receipts/{source type}.
inline constexpr std::string_view kReceiptTopicPrefix = "ldis/v1/receipts/";
// Alerts are published on ldis/v1/alerts/{level}/{authority, lower case}.
inline constexpr std::string_view kAlertTopicPrefix = "ldis/v1/alerts/";
// ldisd's retained "online" / last will "offline".
inline constexpr std::string_view kStatusTopic = "ldis/v1/status/ldisd";
// Each instance's heartbeat, retained, every mqtt.heartbeat_s: ldis/v1/status/ldisd/heartbeat/
// {client id}, {"client_id","at","interval_s"}. An outside monitor raises the alarm when
// "at" is older than twice the interval (a hung ldisd keeps its connection, and "online").
inline constexpr std::string_view kHeartbeatTopicPrefix = "ldis/v1/status/ldisd/heartbeat/";
// A feed's heartbeat (the silent-feed watch, issue 16 §3): ldis/v1/heartbeat/{source type}/
// {organisation}, any payload. The organisation is as its reports spell source.organisation.
inline constexpr std::string_view kFeedHeartbeatPrefix = "ldis/v1/heartbeat/";
inline constexpr std::string_view kFeedHeartbeatFilter = "ldis/v1/heartbeat/+/+";
// Federation (issue 16 §1): each instance offers its alert versions on
// ldis/v1/federation/{instance}/alerts, carried between the brokers by a bridge.
inline constexpr std::string_view kFederationPrefix = "ldis/v1/federation/";
inline constexpr std::string_view kFederationFilter = "ldis/v1/federation/+/alerts";
inline std::string FederationTopic(std::string_view instance) {
    return std::string(kFederationPrefix) + std::string(instance) + "/alerts";
}
// Acknowledgement counts sent back to the issuing instance: ldis/v1/federation/{sender}/acks.
inline constexpr std::string_view kFederationAcksFilter = "ldis/v1/federation/+/acks";
inline std::string FederationAcksTopic(std::string_view instance) {
    return std::string(kFederationPrefix) + std::string(instance) + "/acks";
}
// The instance a federation counts topic names, or "".
inline std::string_view FederationAcksInstance(std::string_view topic) {
    if (!topic.starts_with(kFederationPrefix) || !topic.ends_with("/acks")) return {};
    const std::string_view instance =
        topic.substr(kFederationPrefix.size(),
                     topic.size() - kFederationPrefix.size() - std::string_view("/acks").size());
    return instance.find('/') == std::string_view::npos ? instance : std::string_view();
}
// The instance a federation topic names, or "" when the topic is not one.
inline std::string_view FederationInstance(std::string_view topic) {
    if (!topic.starts_with(kFederationPrefix) || !topic.ends_with("/alerts")) return {};
    const std::string_view instance =
        topic.substr(kFederationPrefix.size(),
                     topic.size() - kFederationPrefix.size() - std::string_view("/alerts").size());
    return instance.find('/') == std::string_view::npos ? instance : std::string_view();
}
// Where a rejected report is noted (its topic, id and error paths; never its content).
inline constexpr std::string_view kRejectedTopic = "ldis/v1/rejected";

// The source type a report topic names, or "" when the topic is not a report topic.
inline std::string_view ReportSource(std::string_view topic) {
    return topic.starts_with(kReportTopicPrefix) ? topic.substr(kReportTopicPrefix.size())
                                                 : std::string_view();
}
// The source type and organisation a feed's heartbeat topic names; false when the topic is
// not one (or names an empty level).
inline bool FeedHeartbeat(std::string_view topic, std::string_view& source,
                          std::string_view& organisation) {
    if (!topic.starts_with(kFeedHeartbeatPrefix)) return false;
    const std::string_view rest = topic.substr(kFeedHeartbeatPrefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size() ||
        rest.find('/', slash + 1) != std::string_view::npos)
        return false;
    source = rest.substr(0, slash);
    organisation = rest.substr(slash + 1);
    return true;
}
inline std::string ReceiptTopic(std::string_view source) {
    return std::string(kReceiptTopicPrefix) + std::string(source.empty() ? "unknown" : source);
}
// `authority` as the topic writes it: lower case ("kent", "medway").
inline std::string AlertTopic(std::string_view level, std::string_view authority) {
    std::string topic = std::string(kAlertTopicPrefix) + std::string(level) + "/";
    for (const char c : authority)
        topic.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    return topic;
}

// The links in every alert message: /ack/{token} acknowledges, /unsubscribe/{token} asks
// the coordinators to stop sending to that contact.
inline constexpr std::string_view kAckPath = "/ack/";
inline constexpr std::string_view kUnsubscribePath = "/unsubscribe/";
// After an acknowledgement link: the photos of the delivery's version, behind a warning
// (issue 17 §3); "/photos/{id}" after it is one photo's JPEG.
inline constexpr std::string_view kPhotosSuffix = "/photos";

}  // namespace ldis::engine::wire
