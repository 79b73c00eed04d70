#include "links.hpp"

#include <spdlog/spdlog.h>
#include <kainjow/mustache.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "ldis/engine/delivery.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/scrubber.hpp"
#include "ldis/engine/text.hpp"
#include "ldis/engine/wire.hpp"

namespace ldis::web {
namespace {

namespace mus = kainjow::mustache;
using engine::NowMs;

// "RED - Drug Alert": how a link page names a level.
std::string LevelName(std::string_view level) {
    if (level != "red" && level != "amber" && level != "green") return std::string(level);
    std::string upper(level);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return upper + " - " + engine::LevelLabel(level);
}

LinkForm UnsubscribeForm(const std::string& token) {
    LinkForm form;
    form.action = std::string(engine::wire::kUnsubscribePath) + token;
    form.button = "Ask to stop these messages";
    return form;
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

WebResponse LinkPages::Render(
    int status, const std::string& title, const std::vector<std::string>& paragraphs,
    const LinkForm& form, const std::vector<std::pair<std::string, std::string>>& links,
    const std::vector<std::pair<std::string, std::string>>& images) const {
    mus::data d;
    d.set("title", title);
    mus::data list{mus::data::type::list};
    for (const auto& p : paragraphs) list << mus::data(p);
    d.set("paragraphs", list);
    if (!form.action.empty()) {
        d.set("action", form.action);
        d.set("button", form.button);
    }
    if (form.answers) {
        mus::data choices{mus::data::type::list};
        for (const auto a :
             {engine::Answer::kReceived, engine::Answer::kShared, engine::Answer::kActions,
              engine::Answer::kNotRelevant, engine::Answer::kSeenToo}) {
            mus::data c;
            c.set("value", std::string(engine::ToString(a)));
            c.set("label", std::string(engine::AnswerLabel(a)));
            if (engine::ToString(a) == form.chosen) c.set("checked", true);
            if (a == engine::Answer::kActions) c.set("with_note", true);
            choices << c;
        }
        d.set("choices", choices);
        d.set("note", form.note);
        d.set("note_max", std::to_string(engine::kAnswerNoteMax));
    }
    mus::data link_list{mus::data::type::list};
    for (const auto& [href, text] : links) {
        mus::data l;
        l.set("href", href);
        l.set("text", text);
        link_list << l;
    }
    d.set("links", link_list);
    mus::data image_list{mus::data::type::list};
    for (const auto& [src, alt] : images) {
        mus::data i;
        i.set("src", src);
        i.set("alt", alt);
        image_list << i;
    }
    d.set("images", image_list);
    mus::mustache t{template_};  // escapes every value as HTML
    WebResponse r;
    r.status = status;
    r.body = t.render(d);
    r.headers = {{"Cache-Control", "no-store"},
                 {"Content-Security-Policy",
                  std::string("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'") +
                      (images.empty() ? "" : "; img-src 'self'")},
                 {"X-Frame-Options", "DENY"}};
    return r;
}

WebResponse LinkPages::Photos(const std::string& token, const std::string& photo) const {
    auto claim = engine::VerifyAckToken(services_.store->AckKey(), token, NowMs() / 1000);
    if (!claim.ok())
        return Render(claim.error().message.find("expired") != std::string::npos ? 410 : 400,
                      "This link does not work", {claim.error().message + "."});
    const auto row = services_.store->FindDelivery(claim.value().delivery_id);
    const auto photos =
        row ? engine::VersionPhotos(row->photos) : std::vector<engine::VersionPhoto>{};
    if (photos.empty())
        return Render(404, "No photos", {"This alert's version came with no photos."});
    const std::string base =
        std::string(engine::wire::kAckPath) + token + std::string(engine::wire::kPhotosSuffix);
    if (!photo.empty()) {
        // Only a photo of this version: the token opens nothing else.
        const bool ours = std::any_of(photos.begin(), photos.end(),
                                      [&](const engine::VersionPhoto& p) { return p.id == photo; });
        auto found = ours ? services_.store->FindPhoto(photo, true) : std::nullopt;
        if (!found) return Render(404, "No such photo", {"This link names no photo of the alert."});
        return JpegResponse(std::move(found->second));
    }
    std::vector<std::pair<std::string, std::string>> images;
    for (std::size_t i = 0; i < photos.size(); ++i)
        images.emplace_back(base + "/" + photos[i].id, "Photo " + std::to_string(i + 1) + " of " +
                                                           std::to_string(photos.size()) +
                                                           " of the batch reported in " +
                                                           row->reference + ".");
    return Render(200, "Photos of the batch: " + row->reference,
                  {"Content warning: the photos below show the drugs reported in " +
                       row->reference + " version " + std::to_string(row->version) +
                       ", to help you recognise them. They are of the drugs, not of anyone.",
                   "Share them only as the alert says."},
                  {}, {{std::string(engine::wire::kAckPath) + token, "Acknowledge the alert"}},
                  images);
}

WebResponse LinkPages::Acknowledge(const std::string& token, bool record,
                                   const std::string& body) const {
    if (const auto slash = token.find('/'); slash != std::string::npos) {
        const std::string rest = token.substr(slash);
        const std::string_view photos = engine::wire::kPhotosSuffix;
        if (!record && (rest == photos || rest.starts_with(std::string(photos) + "/")))
            return Photos(token.substr(0, slash),
                          rest.size() > photos.size() ? rest.substr(photos.size() + 1) : "");
        return Render(404, "This link does not work", {"LDIS has no page at this address."});
    }
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
    LinkForm form;
    form.action = std::string(engine::wire::kAckPath) + token;
    form.button = "Acknowledge";
    form.answers = true;
    if (!d.answer.empty()) form.chosen = d.answer;
    form.note = d.answer_note;
    // "We have seen this too": a report form that knows the alert (the token is the key).
    const std::vector<std::pair<std::string, std::string>> report_link = {
        {"/report?ack=" + token, "Report what you have seen"}};
    if (record) {
        // What the partner did, from the form; a POST without one (an older page, a
        // script) says it was received.
        engine::PartnerAnswer answer;
        std::string note;
        for (const auto& [key, value] : ParseForm(body)) {
            if (key == "answer" && !engine::ParseAnswer(value, answer.answer))
                answer.answer = engine::Answer::kNone;
            if (key == "note") note = value;
        }
        if (answer.answer == engine::Answer::kNone)
            return Render(400, "Choose an answer",
                          {"Say what you have done with " + what + ", then send the form again."},
                          form);
        std::erase(note, '\r');
        while (!note.empty() && (note.back() == '\n' || note.back() == ' ')) note.pop_back();
        if (note.size() > engine::kAnswerNoteMax) {
            form.chosen = std::string(engine::ToString(answer.answer));
            return Render(400, "Your note is too long",
                          {"Keep what you did to " + std::to_string(engine::kAnswerNoteMax) +
                               " characters: the coordinators need the gist, not the detail.",
                           "Nothing was recorded yet."},
                          form);
        }
        // A note is a person's words: what could identify someone is taken out before it
        // is kept, as for every other free text.
        if (answer.answer == engine::Answer::kActions) answer.note = engine::Scrub(note).text;
        auto done = services_.store->Acknowledge(id, "ack-link " + d.partner + "/" + d.contact,
                                                 NowMs(), answer);
        if (!done.ok())
            return Render(503, "Please try again",
                          {"Your acknowledgement could not be recorded just now. Please press "
                           "the button again in a minute."});
        // The answer kept (a later bare "received" never hides what the partner did).
        engine::Answer kept = engine::Answer::kNone;
        engine::ParseAnswer(done.value().answer, kept);
        spdlog::info("delivery acknowledged id={} alert={} partner={} answer={}", id, d.reference,
                     d.partner, engine::ToString(kept));
        const std::string said(engine::AnswerLabel(kept));
        std::vector<std::string> paragraphs = {
            "Your receipt of " + what + " is recorded. The LDIS coordinators can see it.",
            "What you told us: " + said + ". You can come back to this link to tell us more."};
        if (answer.answer == engine::Answer::kSeenToo)
            return Render(200, "Thank you: acknowledged", paragraphs, {}, report_link);
        return Render(200, "Thank you: acknowledged", paragraphs);
    }
    if (d.acknowledged_at_ms > 0) {
        engine::Answer said = engine::Answer::kNone;
        engine::ParseAnswer(d.answer, said);
        form.button = "Update what we did";
        return Render(200, "Already acknowledged",
                      {"Receipt of " + what + " was already recorded. Thank you.",
                       "What you told us: " + std::string(engine::AnswerLabel(said)) +
                           ". If you have done more since, tell the coordinators here."},
                      form);
    }
    return Render(200, "Acknowledge this alert",
                  {"Confirm that " + d.partner + " received " + what +
                   ", and tell the LDIS coordinators what you have done with it."},
                  form);
}

WebResponse LinkPages::Unsubscribe(const std::string& token, bool record,
                                   const std::string& /*body*/) const {
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
                      UnsubscribeForm(token));
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
