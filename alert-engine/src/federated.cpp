#include "ldis/engine/federated.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "ldis/engine/text.hpp"

namespace ldis::engine {

namespace json = boost::json;

std::string ForwardedDetail(const FederatedVersion& v, std::string_view peer_name) {
    json::object sections;
    sections["summary"] = v.description;
    if (!v.instruction.empty()) sections["actions"] = v.instruction;
    return json::serialize(json::object{{"source", v.peer + "/" + v.reference},
                                        {"peer", v.peer},
                                        {"peer_name", peer_name},
                                        {"reference", v.reference},
                                        {"version", v.version},
                                        {"status", v.msg_type == "Cancel" ? "cancelled"
                                                   : v.version > 1        ? "updated"
                                                                          : "issued"},
                                        {"drill", v.cap_status == "Exercise" ? "exercise"
                                                  : v.cap_status == "Test"   ? "test"
                                                                             : ""},
                                        {"level", ToString(v.level)},
                                        {"authority", v.authority},
                                        {"district", v.district},
                                        {"family", v.family},
                                        {"audience", v.audience},
                                        {"sent", v.sent},
                                        {"body", json::serialize(sections)}});
}

void ExpandForwarded(OutboxItem& item) {
    if (item.kind != kKindFederated) return;
    json::error_code ec;
    const auto v = json::parse(item.detail, ec);
    if (ec || !v.is_object()) return;
    const auto& o = v.as_object();
    const auto text = [&](const char* key) {
        const auto* x = o.if_contains(key);
        return x && x->is_string() ? std::string(x->as_string()) : std::string();
    };
    item.reference = text("reference");
    if (const auto* n = o.if_contains("version"); n && n->is_int64())
        item.version = static_cast<int>(n->as_int64());
    item.status = text("status");
    item.drill = text("drill");
    item.level = text("level");
    item.confidence = "";
    item.audience = text("audience");
    item.authority = text("authority");
    item.district = text("district");
    item.family = text("family");
    item.family_label = text("family");
    item.issued_at_ms = std::max<std::int64_t>(0, ParseTimeMs(text("sent")));
    item.created_at_ms = item.issued_at_ms;
    item.body = text("body");
}

std::string AcksJson(const ForwardedAcks& acks) {
    return json::serialize(json::object{{"for", acks.peer},
                                        {"reference", acks.reference},
                                        {"partners", acks.partners},
                                        {"acknowledged", acks.acknowledged}});
}

Result<ForwardedAcks> ParseAcks(std::string_view text) {
    if (text.size() > 4096)
        return Error{"an acknowledgement count of " + std::to_string(text.size()) + " bytes"};
    json::error_code ec;
    const auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return Error{"acknowledgement counts that are not a JSON object"};
    const auto& o = v.as_object();
    const auto* who = o.if_contains("for");
    const auto* reference = o.if_contains("reference");
    const auto* partners = o.if_contains("partners");
    const auto* acknowledged = o.if_contains("acknowledged");
    if (!who || !who->is_string() || !reference || !reference->is_string() || !partners ||
        !partners->is_int64() || !acknowledged || !acknowledged->is_int64() || o.size() != 4)
        return Error{
            "acknowledgement counts need exactly for, reference, partners and "
            "acknowledged"};
    ForwardedAcks a;
    a.peer = std::string(who->as_string());
    a.reference = std::string(reference->as_string());
    const std::int64_t p = partners->as_int64(), k = acknowledged->as_int64();
    if (a.reference.empty() || a.reference.size() > 40 ||
        a.reference.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != std::string::npos)
        return Error{"\"" + a.reference.substr(0, 40) + "\" is not an alert reference"};
    if (p < 0 || p > 100000 || k < 0 || k > p) return Error{"acknowledgement counts out of range"};
    a.partners = static_cast<int>(p);
    a.acknowledged = static_cast<int>(k);
    return a;
}

}  // namespace ldis::engine
