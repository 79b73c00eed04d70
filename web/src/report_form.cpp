// The clinician's report form: the lists the schema and areas offer, checking and
// submitting what was typed.
#include "ldis/engine/photo.hpp"
#include "ldis/web/multipart.hpp"
#include "pages_common.hpp"

namespace ldis::web {
namespace {

constexpr std::size_t kMaxPhotos = 3;  // the report schema's maxItems for "photos"

// "1.2 MB", "640 KB": a photo's size as the form says it.
std::string SizeText(std::int64_t bytes) {
    if (bytes >= 1024 * 1024) {
        const auto tenths = bytes * 10 / (1024 * 1024);
        return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " MB";
    }
    return std::to_string(std::max<std::int64_t>(1, bytes / 1024)) + " KB";
}

bool PhotoId(std::string_view id) {
    return id.size() == 35 && id.starts_with("ph-") &&
           id.find_first_not_of("0123456789abcdef", 3) == std::string_view::npos;
}

}  // namespace

WebResponse Pages::ReportForm(const WebRequest& req,
                              const std::optional<Sessions::Session>& session) {
    // Open to anyone (a busy nurse has no access key), unless the configuration closes it;
    // a report sent without signing in is of unverified origin: its alert always waits.
    if (!session && !open_form_) return Redirect("/login?next=/report");
    std::map<std::string, std::string> values;
    std::vector<std::pair<std::string, std::string>> errors;  // field, message
    std::vector<std::string> signs;  // warning signs ticked, from the controlled list
    WebResponse cookie;              // the form token's cookie, for someone not signed in
    const std::string csrf = session ? session->csrf : FormToken(req, cookie);
    const auto with_cookie = [&](WebResponse r) {
        for (auto& h : cookie.headers) r.headers.push_back(std::move(h));
        return r;
    };
    std::vector<engine::PhotoRow> photos;  // attached, in order: kept, then new
    std::vector<std::pair<std::string, std::string>> photo_errors;
    bool counted = false;  // against an open form's hourly limit, once a request
    if (req.method == "POST") {
        // A form with photos comes as multipart/form-data; one without may come either way.
        std::multimap<std::string, std::string> form;
        std::vector<FormPart> files;
        if (IsMultipartForm(req.content_type)) {
            auto parts = ParseMultipart(req.content_type, req.body);
            if (!parts.ok()) {
                mus::data d;
                d.set("next", "/report");
                d.set("error", "Your browser sent the form in a way LDIS could not read (" +
                                   parts.error().message + "): open it again");
                return with_cookie(Render("login", "Report a concerning batch", &d, session, 400));
            }
            for (auto& part : parts.value()) {
                if (!part.filename)
                    form.emplace(std::move(part.name), std::move(part.data));
                else if (part.name == "photos" && !part.data.empty())
                    files.push_back(std::move(part));  // an empty file input sends no bytes
            }
        } else {
            form = ParseForm(req.body);
        }
        const auto field = form.find("csrf");
        if (field == form.end() || !SameSecret(field->second, csrf) ||
            (!session && !FormTokenMatches(req, form))) {
            mus::data d;
            d.set("next", "/report");
            d.set("error", "The form was out of date or came from another website: open it again");
            return with_cookie(Render("login", "Report a concerning batch", &d, session, 403));
        }
        if (!session) {
            if (const int wait = open_reports_.Refused(req.client); wait > 0)
                return TooMany(wait, session);
        }
        for (const auto& [k, v] : form) {
            if (k == "photo_id") continue;  // below
            if (k != "sign") {
                values[k] = v;
            } else if (const auto& known = engine::ControlledSymptoms();
                       std::find(known.begin(), known.end(), v) != known.end() &&
                       std::find(signs.begin(), signs.end(), v) == signs.end()) {
                signs.push_back(v);
            }
        }
        // Photos (issue 17 §3). Those attached on an earlier try come back as ticked
        // checkboxes of their ids (a file input cannot be filled again): each must still be
        // kept, and named by no other report. The id is random, so it is its own key.
        std::string report_id = values["id"];
        std::transform(report_id.begin(), report_id.end(), report_id.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        // (No structured binding here: clang 14 refuses a lambda that names one.)
        const auto kept_ids = form.equal_range("photo_id");
        for (auto it = kept_ids.first; it != kept_ids.second; ++it) {
            if (std::any_of(photos.begin(), photos.end(),
                            [&](const engine::PhotoRow& p) { return p.id == it->second; }))
                continue;
            const auto kept = PhotoId(it->second) && photos.size() < kMaxPhotos
                                  ? services_.store->FindPhoto(it->second, false)
                                  : std::nullopt;
            if (!kept || (!kept->first.report_id.empty() && kept->first.report_id != report_id))
                photo_errors.emplace_back("photos",
                                          "A photo attached before is no longer kept: attach "
                                          "it again");
            else
                photos.push_back(kept->first);
        }
        // New files: each written anew from its pixels (no EXIF, no GPS) and kept at once, so
        // that a form sent back with an error keeps them.
        engine::PhotoLimits limits;
        limits.max_bytes = max_photo_bytes_;
        for (const auto& file : files) {
            const std::string name = FileNameForMessage(*file.filename);
            if (photos.size() >= kMaxPhotos) {
                photo_errors.emplace_back("photos",
                                          "Attach at most 3 photos: " + name + " was not attached");
                continue;
            }
            const auto clean = engine::CleanUpload(file.data, limits);
            if (!clean.ok()) {
                photo_errors.emplace_back("photos", name + ": " + clean.error().message);
                continue;
            }
            const auto saved = services_.store->SavePhoto(clean.value().jpeg, clean.value().width,
                                                          clean.value().height,
                                                          session ? session->name : "web-open");
            if (!saved.ok()) {
                photo_errors.emplace_back(
                    "photos", "LDIS could not keep " + name + " just now: attach it again");
                continue;
            }
            spdlog::info("photo {} attached on the report form ({} x {}, {} bytes)",
                         saved.value().id, saved.value().width, saved.value().height,
                         saved.value().bytes);
            photos.push_back(saved.value());
        }
        // Photos kept count against an open form's hourly limit, as a report does.
        if (!session && !files.empty()) {
            open_reports_.Count(req.client);
            counted = true;
        }
    }
    const auto value = [&](const std::string& k) {
        auto it = values.find(k);
        return it == values.end() ? std::string() : it->second;
    };
    if (req.method == "POST") {
        // The form's own checks first, in the order of the page, in plain words.
        if (value("source_type").empty())
            errors.emplace_back("source_type", "Select where you work");
        if (value("organisation").empty())
            errors.emplace_back("organisation", "Enter the name of your organisation");
        if (value("authority").empty()) errors.emplace_back("authority", "Select the council area");
        if (value("district").empty()) errors.emplace_back("district", "Select the district");
        if (value("substance").empty())
            errors.emplace_back("substance", "Enter what the drug is, or is thought to be");
        for (const auto& n : kNumbers) {
            const std::string v = value(n);
            if (v.empty()) {
                if (n == "cases")
                    errors.emplace_back(n, "Enter how many people were affected (0 if none)");
                continue;
            }
            if (v.size() > 6 || v.find_first_not_of("0123456789") != std::string::npos)
                errors.emplace_back(n, Pretty(n) + " must be a whole number, like 3");
        }
        errors.insert(errors.end(), photo_errors.begin(), photo_errors.end());
        if (value("evidence").empty()) errors.emplace_back("evidence", "Select how sure you are");
        if (!value("observed_date").empty() && !ParseTime(value("observed_date")))
            errors.emplace_back("observed_date",
                                "Enter the date as year-month-day, like 2026-11-22");
        if (errors.empty()) {
            json::object report{{"schema", "ldis.report/1"},
                                {"id", value("id")},
                                {"submitted_at", IsoTime(NowMs())}};
            json::object source{{"type", value("source_type")},
                                {"organisation", value("organisation")}};
            if (!value("role").empty()) source["role"] = value("role");
            if (!value("contact").empty()) source["contact"] = value("contact");
            report["source"] = std::move(source);
            json::object area{{"authority", value("authority")}, {"district", value("district")}};
            if (!value("ward").empty()) area["ward"] = value("ward");
            if (!value("establishment").empty()) area["establishment"] = value("establishment");
            report["area"] = std::move(area);
            if (!value("setting").empty()) report["setting"] = value("setting");
            if (!value("observed_date").empty()) {
                report["observed_at"] = value("observed_date").substr(0, 10) + "T00:00:00Z";
                report["observed_approximate"] = true;
            }
            json::object substance{{"name", value("substance")}};
            for (const char* k : {"sold_as", "form", "appearance", "markings", "colour", "shape",
                                  "imprint", "confirmed_by", "strength"}) {
                if (!value(k).empty()) substance[k] = value(k);
            }
            report["substances"] = json::array{std::move(substance)};
            if (!value("route").empty()) report["route"] = value("route");
            json::object harms;
            for (const auto& n : kNumbers) {
                if (!value(n).empty()) harms[n] = std::stoll(value(n));
            }
            report["harms"] = std::move(harms);
            json::array symptoms;
            for (const auto& sign : signs) symptoms.emplace_back(sign);
            std::istringstream lines(value("symptoms"));
            for (std::string line; std::getline(lines, line);) {
                while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
                    line.pop_back();
                if (!line.empty()) symptoms.emplace_back(line);
            }
            if (!symptoms.empty()) report["symptoms"] = std::move(symptoms);
            if (!value("description").empty()) report["description"] = value("description");
            if (!photos.empty()) {
                json::array ids;
                for (const auto& p : photos) ids.emplace_back(p.id);
                report["photos"] = std::move(ids);
            }
            report["evidence"] = value("evidence");
            // Only a signed-in user is offered a drill; the schema refuses any other word.
            if (session && !value("drill").empty()) report["drill"] = value("drill");
            // The alert a partner has seen too (the schema checks its form).
            if (!value("related_alert").empty()) report["related_alert"] = value("related_alert");
            if (!session && !counted) open_reports_.Count(req.client);
            auto outcome = session ? services_.intake->Submit(json::serialize(report), "http")
                                   : services_.intake->Submit(json::serialize(report), "web-open",
                                                              {}, engine::Trust::kUnverified);
            if (!outcome.ok()) {
                errors.emplace_back("substance",
                                    "LDIS could not store your report just now: send it again");
            } else if (outcome.value().rejected()) {
                for (const auto& e : outcome.value().receipt.errors)
                    errors.emplace_back(FieldOf(e.path), e.message);
            } else {
                const auto& receipt = outcome.value().receipt;
                mus::data d;
                d.set("reference", receipt.reference);
                const std::string level = receipt.level.value_or("none");
                d.set("level_text", LevelLabel(level));
                if (receipt.alert_id) d.set("alert", *receipt.alert_id);
                if (receipt.status == engine::ReceiptStatus::kDuplicate) d.set("duplicate", true);
                d.set("next_steps",
                      !session && level != "none"
                          ? "An LDIS coordinator has been told and will read it before any "
                            "service is warned: reports sent without an access key always "
                            "wait for a person."
                      : level == "red"
                          ? "This is graded as a Drug Alert. It goes at once to the services "
                            "that must act, and an LDIS coordinator will confirm it."
                      : level == "none"
                          ? "It is logged, and counted with any similar reports in your area."
                          : "An LDIS coordinator will review it and decide whether to warn "
                            "services. You may be contacted if you left your details.");
                return with_cookie(Render("receipt", "Report received", &d, session));
            }
        }
    }
    if (req.method != "POST") {
        // From "We have seen this too" on an acknowledgement page (issue 17 §4): the link's
        // token names the delivery, so the form knows the alert; a reference alone would tell
        // anyone an alert's substance and district.
        const auto ack = req.query.find("ack");
        const auto claim =
            ack == req.query.end()
                ? engine::Result<engine::AckClaim>(engine::Error{"none"})
                : engine::VerifyAckToken(services_.store->AckKey(), ack->second, NowMs() / 1000);
        const auto delivery =
            claim.ok() ? services_.store->FindDelivery(claim.value().delivery_id) : std::nullopt;
        const auto alert =
            delivery ? services_.store->FindAlert(delivery->reference) : std::nullopt;
        if (alert) {
            values["related_alert"] = alert->reference;
            values["authority"] = alert->authority;
            values["district"] = alert->district;
            values["substance"] = Pretty(alert->family);
        }
    }
    mus::data d;
    if (!value("related_alert").empty()) d.set("related_alert", value("related_alert"));
    mus::data f;
    std::set<std::string> with_error;
    for (const auto& name : kTextFields) {
        mus::data field;
        field.set("value", value(name));
        f.set(name, field);
    }
    for (const auto& name : kNumbers) {
        mus::data field;
        field.set("value", value(name));
        f.set(name, field);
    }
    for (const char* name : {"source_type", "authority", "district", "setting", "form", "colour",
                             "shape", "confirmed_by", "strength", "route", "evidence"}) {
        f.set(name, mus::data{});
    }
    mus::data error_list{mus::data::type::list};
    for (const auto& [field, message] : errors) {
        mus::data e;
        e.set("field", field);
        e.set("message", message);
        error_list << e;
        if (with_error.insert(field).second) {
            mus::data fd;
            fd.set("value", value(field));
            fd.set("error", message);
            f.set(field, fd);
        }
    }
    d.set("f", f);
    {
        mus::data list{mus::data::type::list};
        std::size_t n = 0;
        for (const auto& p : photos) {
            mus::data o;
            o.set("id", p.id);
            o.set("n", std::to_string(++n));
            o.set("width", std::to_string(p.width));
            o.set("height", std::to_string(p.height));
            o.set("size", SizeText(p.bytes));
            list << o;
        }
        if (n > 0) d.set("has_photos", true);
        d.set("photos", list);
    }
    if (!errors.empty()) {
        d.set("has_errors", true);
        d.set("errors", error_list);
    }
    mus::data o;
    const auto offer = [&](const std::string& name, bool blank) {
        o.set(name, Options(Labelled(lists_.at(name)), value(name), name, blank));
    };
    offer("source_type", true);
    o.set("authority", Options({{"Medway", "Medway"}, {"Kent", "Kent"}}, value("authority"),
                               "authority", false));
    o.set("district", Options(districts_, value("district"), "district", true));
    for (const char* name : {"setting", "form", "confirmed_by", "strength", "colour", "shape"})
        offer(name, true);
    {
        mus::data list{mus::data::type::list};
        int n = 0;
        for (const auto& sign : engine::ControlledSymptoms()) {
            mus::data o_sign;
            o_sign.set("value", sign);
            o_sign.set("label", Pretty(sign));
            o_sign.set("id", n == 0 ? std::string("sign") : "sign-" + std::to_string(n + 1));
            if (std::find(signs.begin(), signs.end(), sign) != signs.end())
                o_sign.set("selected", true);
            list << o_sign;
            ++n;
        }
        o.set("signs", list);
    }
    offer("route", true);
    offer("evidence", false);
    o.set("drill", Options({{"", "A real report"},
                            {"exercise", "An exercise: a rehearsal of the alerting chain"},
                            {"test", "A test of the system"}},
                           value("drill"), "drill", false));
    d.set("o", o);
    // The id is the idempotency key: sending the same form twice stores one report.
    std::string id = value("id");
    if (id.empty()) {
        const std::string b = engine::RandomBytes(16);
        std::string hex = engine::Hex(b);
        hex[12] = '4';
        hex[16] = "89ab"[static_cast<unsigned char>(b[8]) & 3];
        id = hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
             hex.substr(16, 4) + "-" + hex.substr(20);
    }
    d.set("id", id);
    d.set("csrf", csrf);
    if (!session) d.set("anonymous", true);
    return with_cookie(
        Render("report", "Report a concerning batch", &d, session, errors.empty() ? 200 : 422));
}

}  // namespace ldis::web
