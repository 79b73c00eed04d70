// Pages: routing a request to its page, sessions and sign-in, form tokens, rendering and
// the GOV.UK assets.
#include "pages_common.hpp"

namespace ldis::web {

std::multimap<std::string, std::string> ParseForm(std::string_view body) {
    std::multimap<std::string, std::string> out;
    std::size_t at = 0;
    while (at <= body.size()) {
        const auto end = body.find('&', at);
        const std::string_view pair =
            body.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
        if (!pair.empty()) {
            const auto eq = pair.find('=');
            out.emplace(Decode(pair.substr(0, eq)),
                        eq == std::string_view::npos ? std::string() : Decode(pair.substr(eq + 1)));
        }
        if (end == std::string_view::npos) break;
        at = end + 1;
    }
    return out;
}

std::string Sessions::Create(const engine::ApiToken& who) {
    const std::string id = engine::Base64Url(engine::RandomBytes(32));
    const std::int64_t now = NowMs();
    engine::WebSession s{
        engine::Sha256Hex(id), who, engine::Base64Url(engine::RandomBytes(24)), now,
        now + std::chrono::duration_cast<std::chrono::milliseconds>(kSessionLife).count()};
    auto stored = store_.CreateSession(s, kSessionsPerKey, kSessionsInAll);
    if (!stored.ok()) {
        spdlog::error("cannot store a web session: {}", stored.error().message);
        return {};
    }
    return id;
}

std::optional<Sessions::Session> Sessions::Find(const std::string& id) {
    // Only the hash is kept: a copy of the database does not sign anyone in.
    const auto s = store_.FindSession(engine::Sha256Hex(id), NowMs());
    if (!s) return std::nullopt;
    return Session{s->who.name, s->who.role, s->csrf};
}

void Sessions::Remove(const std::string& id) {
    if (auto ended = store_.EndSession(engine::Sha256Hex(id), NowMs()); !ended.ok())
        spdlog::error("cannot end a web session: {}", ended.error().message);
}

Pages::Pages(const Services& services, const std::string& templates_dir, std::string assets_dir,
             const ServerOptions& options, FailureLimit& bad_keys)
    : services_(services),
      assets_dir_(std::move(assets_dir)),
      sessions_(*services.store),
      bad_keys_(bad_keys),
      open_reports_(std::max(options.open_reports_per_hour, 1), std::chrono::hours(1)),
      open_form_(options.open_reports_per_hour > 0),
      max_photo_bytes_(options.max_photo_body) {
    json::error_code ec;
    const auto schema = json::parse(ReadAll(services.schema_path), ec);
    // Every list the form offers is the schema's own enum, and the districts are
    // areas.toml's: nothing here copies them.
    const auto words_at = [&](const std::string& pointer) {
        std::vector<std::string> out;
        if (ec) return out;
        const auto* node = schema.find_pointer(pointer + "/enum", ec);
        if (node && node->is_array())
            for (const auto& w : node->as_array())
                if (w.is_string()) out.emplace_back(w.as_string());
        ec.clear();
        return out;
    };
    const std::string substance = "/properties/substances/items/properties/";
    lists_["source_type"] = words_at("/properties/source/properties/type");
    lists_["setting"] = words_at("/properties/setting");
    lists_["route"] = words_at("/properties/route");
    lists_["evidence"] = words_at("/properties/evidence");
    for (const char* key : {"form", "confirmed_by", "strength", "colour", "shape"})
        lists_[key] = words_at(substance + key);
    for (const auto& [name, values] : lists_)
        if (values.empty())
            throw std::runtime_error(services.schema_path + ": no enum for \"" + name +
                                     "\", which the clinician's form offers");
    if (!services.areas_path.empty())
        for (const auto& [authority, district] :
             engine::Areas::LoadFile(services.areas_path).Districts())
            districts_.emplace_back(district, district);
    for (const char* name : {"layout", "login", "report", "receipt", "dashboard", "alert",
                             "grading", "drill", "public", "public_alert"}) {
        const std::string path = templates_dir + "/web/" + name + ".mustache";
        std::string text = ReadAll(path);
        if (text.empty())
            throw std::runtime_error(path + ": missing: every page needs its template");
        mus::mustache t{text};
        if (!t.is_valid()) throw std::runtime_error(path + ": " + t.error_message());
        templates_[name] = std::move(text);
    }
}

WebResponse Pages::Render(const std::string& name, const std::string& title, void* data_ptr,
                          const std::optional<Sessions::Session>& session, int status) {
    auto& data = *static_cast<mus::data*>(data_ptr);
    if (session) data.set("csrf", session->csrf);
    mus::mustache body{templates_.at(name)};
    mus::data page;
    page.set("title", title);
    page.set("body", body.render(data));
    if (data.get("has_errors") != nullptr) page.set("has_errors", true);
    if (data.get("public_page") != nullptr) page.set("public_page", true);
    if (session) {
        page.set("signed_in", true);
        page.set("user", session->name);
        page.set("csrf", session->csrf);
        if (session->role != "submitter") page.set("coordinator", true);
    }
    mus::mustache layout{templates_.at("layout")};
    WebResponse r;
    r.status = status;
    r.body = layout.render(page);
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
                           "data:; script-src 'self'; form-action 'self'; frame-ancestors 'none'");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
}

WebResponse Pages::Asset(const std::string& path) {
    const std::string relative = path.substr(std::string("/assets/").size());
    WebResponse r;
    // GDS Transport is for services on GOV.UK only: LDIS uses Arial (see layout.mustache).
    // The stylesheet sits in dist/govuk; the images it names, in dist/govuk/assets.
    std::optional<fs::path> file;
    if (!relative.starts_with("fonts/")) {
        file = AssetFile(assets_dir_, relative);
        if (!file) file = AssetFile(fs::path(assets_dir_) / "assets", relative);
    }
    if (file) r.body = ReadAll(file->string());
    if (!file || r.body.empty()) {
        r.status = 404;
        r.body = "not found";
        r.content_type = "text/plain; charset=utf-8";
        return r;
    }
    const std::string ext = file->extension().string();
    r.content_type = ext == ".css"     ? "text/css; charset=utf-8"
                     : ext == ".js"    ? "text/javascript; charset=utf-8"
                     : ext == ".woff2" ? "font/woff2"
                     : ext == ".woff"  ? "font/woff"
                     : ext == ".png"   ? "image/png"
                     : ext == ".svg"   ? "image/svg+xml"
                     : ext == ".ico"   ? "image/x-icon"
                     : ext == ".json"  ? "application/json"
                                       : "application/octet-stream";
    r.headers.emplace_back("Cache-Control", "public, max-age=86400");
    return r;
}

std::string Pages::SessionCookie() const {
    return services_.public_url.starts_with("https://") ? "__Host-ldis_session" : "ldis_session";
}

std::string Pages::FormCookie() const {
    return services_.public_url.starts_with("https://") ? "__Host-ldis_form" : "ldis_form";
}

std::string Pages::FormToken(const WebRequest& req, WebResponse& response) {
    std::string token = Cookie(req.cookie, FormCookie());
    if (token.size() != 32 ||
        token.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            std::string::npos) {
        token = engine::Base64Url(engine::RandomBytes(24));
        const bool secure = services_.public_url.starts_with("https://");
        response.headers.emplace_back("Set-Cookie", FormCookie() + "=" + token +
                                                        "; Path=/; HttpOnly; SameSite=Strict" +
                                                        (secure ? "; Secure" : ""));
    }
    return token;
}

bool Pages::FormTokenMatches(const WebRequest& req,
                             const std::multimap<std::string, std::string>& form) const {
    const std::string cookie = Cookie(req.cookie, FormCookie());
    const auto field = form.find("csrf");
    return !cookie.empty() && field != form.end() && SameSecret(cookie, field->second);
}

WebResponse Pages::TooMany(int retry_after_s, const std::optional<Sessions::Session>& session) {
    mus::data d;
    d.set("next", "/");
    d.set("error", "Too many attempts from your address: try again in " +
                       std::to_string((retry_after_s + 59) / 60) + " minute(s)");
    WebResponse r = Render("login", "Try again later", &d, session, 429);
    r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
    return r;
}

bool Pages::IsPage(std::string_view path) {
    return path == "/" || path == "/login" || path == "/logout" || path == "/report" ||
           path == "/grading" || path.starts_with("/alerts/") || path.starts_with("/assets/") ||
           path.starts_with("/federated/") || path.starts_with("/public/") ||
           path == "/reports/quarterly";
}

std::optional<WebResponse> Pages::Handle(const WebRequest& req) {
    if (req.path.starts_with("/assets/")) return Asset(req.path);
    if (!IsPage(req.path)) return std::nullopt;
    if (req.method == "POST" && req.sec_fetch_site == "cross-site") {
        // A browser says the form came from another site: never act on it.
        return LoginPage(req, "/",
                         "This form was sent from another website: open LDIS and try again", 403);
    }
    if (req.path == "/login") return Login(req);
    if (req.path.starts_with("/public/")) return PublicPage(req);
    const std::string id = Cookie(req.cookie, SessionCookie());
    const auto session = id.empty() ? std::nullopt : sessions_.Find(id);
    if (req.path == "/report") return ReportForm(req, session);
    if (req.method == "POST") {
        // Every form carries the session's CSRF token.
        const auto form = ParseForm(req.body);
        const auto csrf = form.find("csrf");
        if (!session || csrf == form.end() || !SameSecret(csrf->second, session->csrf)) {
            return LoginPage(req, LocalPath(req.path),
                             "Your session has ended or the form is out of date: sign in again",
                             403);
        }
    }
    if (req.path == "/logout") {
        sessions_.Remove(id);
        WebResponse r = Redirect("/login");
        r.headers.emplace_back(
            "Set-Cookie", SessionCookie() + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" +
                              (services_.public_url.starts_with("https://") ? "; Secure" : ""));
        return r;
    }
    if (!session) return Redirect("/login?next=" + LocalPath(req.path));
    if (session->role == "submitter") {
        return LoginPage(req, LocalPath(req.path),
                         "Your access key lets you report, not review alerts: ask a coordinator",
                         403);
    }
    if (req.path == "/") return Dashboard(req, *session);
    if (req.path == "/grading") return GradingPage(req, *session);
    if (req.path == "/reports/quarterly") return Quarterly(req, *session);
    if (req.path.starts_with("/federated/")) {
        // POST /federated/{id}/adopt|decline: a peer's version put before the coordinators.
        const std::string rest = req.path.substr(11);
        const auto slash = rest.find('/');
        const std::string number = rest.substr(0, slash);
        const std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
        if (req.method != "POST" || number.empty() || number.size() > 18 ||
            number.find_first_not_of("0123456789") != std::string::npos ||
            (action != "adopt" && action != "decline"))
            return Redirect("/");
        const auto done = services_.store->DecideFederated(std::stoll(number), action == "adopt",
                                                           session->name, NowMs());
        if (!done.ok()) return Redirect("/?done=federated-stale");
        spdlog::info("federation: {} {} by {}", done.value().identifier,
                     action == "adopt" ? "adopted" : "declined", session->name);
        return Redirect(action == "adopt" ? "/?done=adopted" : "/?done=declined");
    }
    // /alerts/{ref} and /alerts/{ref}/{action}
    const std::string rest = req.path.substr(8);
    const auto slash = rest.find('/');
    if (slash == std::string::npos) {
        if (req.method != "GET") return Redirect("/alerts/" + LocalPath("/" + rest).substr(1));
        return AlertPage(rest, *session, {});
    }
    const std::string reference = rest.substr(0, slash);
    if (req.method == "GET" && rest.substr(slash + 1).starts_with("photos/"))
        return AlertPhoto(reference, rest.substr(slash + 8));
    if (req.method == "GET" && rest.substr(slash + 1) == "drill")
        return DrillReport(reference, *session);
    if (req.method != "POST") return Redirect("/alerts/" + LocalPath("/" + reference).substr(1));
    return AlertAction(req, reference, rest.substr(slash + 1), *session);
}

WebResponse Pages::LoginPage(const WebRequest& req, const std::string& next,
                             const std::string& error, int status) {
    mus::data d;
    d.set("next", next);
    if (!error.empty()) {
        d.set("error", error);
        d.set("has_errors", true);
    }
    WebResponse cookie;
    d.set("csrf", FormToken(req, cookie));
    WebResponse r = Render("login", "Sign in", &d, std::nullopt, status);
    for (auto& h : cookie.headers) r.headers.push_back(std::move(h));
    return r;
}

WebResponse Pages::Login(const WebRequest& req) {
    std::string next = "/";
    if (auto it = req.query.find("next"); it != req.query.end()) next = it->second;
    if (req.method != "POST") return LoginPage(req, LocalPath(next), {}, 200);
    if (const int wait = bad_keys_.Refused(req.client); wait > 0)
        return TooMany(wait, std::nullopt);
    const auto form = ParseForm(req.body);
    if (auto n = form.find("next"); n != form.end()) next = n->second;
    // Only paths on this site: never an open redirect, never a header break.
    next = LocalPath(next);
    if (!FormTokenMatches(req, form)) {
        return LoginPage(req, next,
                         "The sign-in form was out of date or came from another website: enter "
                         "your access key again",
                         403);
    }
    const auto key = form.find("key");
    const auto who = key == form.end() || key->second.empty()
                         ? std::nullopt
                         : services_.store->FindToken(key->second);
    if (!who) {
        if (key != form.end() && !key->second.empty()) {
            bad_keys_.Count(req.client);
            spdlog::warn("sign-in refused from {}: unknown access key", req.client);
        }
        return LoginPage(req, next,
                         key == form.end() || key->second.empty()
                             ? "Enter your access key"
                             : "That access key is not known: check it, or ask a coordinator",
                         401);
    }
    const std::string id = sessions_.Create(*who);
    if (id.empty())
        return LoginPage(req, next, "LDIS could not sign you in just now: try again", 503);
    if (who->role == "submitter" && next == "/") next = "/report";
    WebResponse r = Redirect(next);
    const bool secure = services_.public_url.starts_with("https://");
    r.headers.emplace_back("Set-Cookie", SessionCookie() + "=" + id +
                                             "; Path=/; HttpOnly; SameSite=Strict" +
                                             (secure ? "; Secure" : ""));
    spdlog::info("signed in: {} ({})", who->name, who->role);
    return r;
}

}  // namespace ldis::web
