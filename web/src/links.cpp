#include "links.hpp"

#include <spdlog/spdlog.h>
#include <kainjow/mustache.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "ldis/engine/delivery.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"

namespace ldis::web {
namespace {

namespace mus = kainjow::mustache;

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "RED - Drug Alert": how a link page names a level.
std::string LevelName(std::string_view level) {
    if (level != "red" && level != "amber" && level != "green") return std::string(level);
    std::string upper(level);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return upper + " - " + engine::LevelLabel(level);
}

}  // namespace

LinkPages::LinkPages(const Services& services, const std::string& templates_dir)
    : services_(services) {
    const std::string path = templates_dir + "/web/link.mustache";
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    template_ = text.str();
    if (template_.empty())
        throw std::runtime_error(path + ": missing: every page needs its template");
    mus::mustache t{template_};
    if (!t.is_valid()) throw std::runtime_error(path + ": " + t.error_message());
}

WebResponse LinkPages::Render(int status, const std::string& title,
                              const std::vector<std::string>& paragraphs, const std::string& action,
                              const std::string& button) const {
    mus::data d;
    d.set("title", title);
    mus::data list{mus::data::type::list};
    for (const auto& p : paragraphs) list << mus::data(p);
    d.set("paragraphs", list);
    if (!action.empty()) {
        d.set("action", action);
        d.set("button", button);
    }
    mus::mustache t{template_};  // escapes every value as HTML
    WebResponse r;
    r.status = status;
    r.body = t.render(d);
    r.headers = {{"Cache-Control", "no-store"},
                 {"Content-Security-Policy",
                  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"},
                 {"X-Frame-Options", "DENY"}};
    return r;
}

WebResponse LinkPages::Acknowledge(const std::string& token, bool record) const {
    auto claim = engine::VerifyAckToken(services_.store->AckKey(), token, NowMs() / 1000);
    if (!claim.ok()) {
        const bool expired = claim.error().message.find("expired") != std::string::npos;
        return Render(expired ? 410 : 400,
                      expired ? "This link has expired" : "This link does not work",
                      {claim.error().message + ".",
                       "If you need to confirm that you received an alert, reply to the message "
                       "or contact the LDIS coordinators."});
    }
    const std::int64_t id = claim.value().delivery_id;
    const auto row = services_.store->FindDelivery(id);
    if (!row)
        return Render(404, "Delivery not found",
                      {"This link names a delivery LDIS does not hold."});
    const auto& d = *row;
    const std::string what =
        d.reference + " version " + std::to_string(d.version) + " (" + LevelName(d.level) + ")";
    if (record) {
        auto done =
            services_.store->Acknowledge(id, "ack-link " + d.partner + "/" + d.contact, NowMs());
        if (!done.ok())
            return Render(503, "Please try again",
                          {"Your acknowledgement could not be recorded just now. Please press "
                           "the button again in a minute."});
        spdlog::info("delivery acknowledged id={} alert={} partner={}", id, d.reference, d.partner);
        return Render(
            200, "Thank you: acknowledged",
            {"Your receipt of " + what + " is recorded. The LDIS coordinators can see it."});
    }
    if (d.acknowledged_at_ms > 0)
        return Render(200, "Already acknowledged",
                      {"Receipt of " + what + " was already recorded. Thank you."});
    return Render(200, "Acknowledge this alert",
                  {"Confirm that " + d.partner + " received " + what + "."},
                  std::string(engine::wire::kAckPath) + token, "Acknowledge");
}

WebResponse LinkPages::Unsubscribe(const std::string& token, bool record) const {
    auto claim =
        engine::VerifyAckToken(services_.store->AckKey() + ":unsubscribe", token, NowMs() / 1000);
    if (!claim.ok())
        return Render(
            400, "This link does not work",
            {claim.error().message + ".", "To stop LDIS messages, contact the LDIS coordinators."});
    const auto delivery = services_.store->FindDelivery(claim.value().delivery_id);
    if (!delivery)
        return Render(404, "Delivery not found",
                      {"This link names a delivery LDIS does not hold."});
    if (!record)
        return Render(200, "Stop LDIS messages?",
                      {"Drug alerts warn services of batches that kill. Ask the LDIS "
                       "coordinators to stop sending them to " +
                       delivery->address + "?"},
                      std::string(engine::wire::kUnsubscribePath) + token,
                      "Ask to stop these messages");
    auto done = services_.store->RequestUnsubscribe(delivery->id, NowMs());
    if (!done.ok())
        return Render(503, "Please try again", {"Your request could not be recorded just now."});
    if (done.value().unsubscribe_already_requested)
        return Render(200, "Request already sent",
                      {"The LDIS coordinators were already asked to stop these messages to " +
                       delivery->address + ". They will act once your organisation agrees."});
    spdlog::info("unsubscribe requested delivery={} partner={} contact={}", delivery->id,
                 delivery->partner, delivery->contact);
    return Render(200, "Request sent to the LDIS coordinators",
                  {"The coordinators will stop these messages to " + delivery->address +
                   " once your organisation agrees. Until then, alerts keep coming."});
}

}  // namespace ldis::web
