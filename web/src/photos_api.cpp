// The photo endpoints: an upload cleaned to a JPEG of its pixels, the JPEG served to
// coordinators, and the check that a report names only photos uploaded for it.
#include "ldis/engine/photo.hpp"
#include "server_impl.hpp"

namespace ldis::web {

json::object Server::Impl::PhotoJson(const engine::PhotoRow& p) {
    return {{"id", p.id},
            {"report", p.report_id.empty() ? json::value(nullptr) : json::value(p.report_id)},
            {"width", p.width},
            {"height", p.height},
            {"bytes", p.bytes},
            {"sha256", p.sha256},
            {"url", "/api/v1/photos/" + p.id}};
}

// The body is the image itself, whatever its Content-Type says: its bytes say what it is.
// Only a JPEG of its pixels is kept (no EXIF, GPS or comments); the id goes in a report's
// "photos" within a day.
Response Server::Impl::UploadPhoto(const std::string& body, const engine::ApiToken& who) {
    engine::PhotoLimits limits;
    limits.max_bytes = options_.max_photo_body;
    auto clean = engine::CleanUpload(body, limits);
    if (!clean.ok())
        return JsonError(http::status::unprocessable_entity, "invalid_photo",
                         clean.error().message);
    auto saved = services_.store->SavePhoto(clean.value().jpeg, clean.value().width,
                                            clean.value().height, who.name);
    if (!saved.ok()) {
        Response res =
            JsonError(http::status::service_unavailable, "unavailable",
                      "the photo could not be stored; send it again: " + saved.error().message);
        res.set(http::field::retry_after, "5");
        return res;
    }
    spdlog::info("photo {} uploaded by {} ({} x {}, {} bytes)", saved.value().id, who.name,
                 saved.value().width, saved.value().height, saved.value().bytes);
    return Make(http::status::created, json::serialize(PhotoJson(saved.value())),
                "application/json");
}

// The JPEG kept, never the upload; for coordinators, never cached.
Response Server::Impl::PhotoResponse(const std::string& id) {
    auto found = services_.store->FindPhoto(id, true);
    if (!found) return JsonError(http::status::not_found, "not_found", "no photo " + id);
    Response res = Make(http::status::ok, std::move(found->second), "image/jpeg");
    res.set(http::field::cache_control, "private, no-store");
    res.set(http::field::content_disposition, "inline; filename=\"" + found->first.id + ".jpg\"");
    res.set("Content-Security-Policy", "default-src 'none'");
    return res;
}

// A report naming a photo that was never uploaded (or was purged unnamed after a day), or
// that another report has named, is refused before anything is stored, saying which.
std::optional<Response> Server::Impl::PhotosProblem(const std::string& body) {
    if (body.find("\"photos\"") == std::string::npos) return std::nullopt;
    json::error_code ec;
    const auto doc = json::parse(body, ec);
    const auto* obj = !ec ? doc.if_object() : nullptr;
    const auto* photos = obj ? obj->if_contains("photos") : nullptr;
    if (!photos || !photos->is_array()) return std::nullopt;  // the validator says why
    const auto* id = obj->if_contains("id");
    std::string report = id && id->is_string() ? std::string(id->as_string()) : "";
    std::transform(report.begin(), report.end(), report.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    std::size_t i = 0;
    for (const auto& photo : photos->as_array()) {
        const auto* name = photo.if_string();
        if (name && name->size() <= 64) {
            const auto found = services_.store->FindPhoto(*name, false);
            const std::string where = "photos/" + std::to_string(i) + ": ";
            if (!found)
                return JsonError(http::status::unprocessable_entity, "unknown_photo",
                                 where + "no photo " + std::string(*name) +
                                     " was uploaded, or it was not named by a report within a "
                                     "day and was removed: upload it again (POST "
                                     "/api/v1/photos)");
            if (!found->first.report_id.empty() && found->first.report_id != report)
                return JsonError(http::status::unprocessable_entity, "unknown_photo",
                                 where + "the photo " + std::string(*name) +
                                     " belongs to another report: upload it again for this one");
        }
        ++i;
    }
    return std::nullopt;
}

}  // namespace ldis::web
