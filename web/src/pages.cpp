#include "pages.hpp"

#include "ldis/engine/areas.hpp"
#include "ldis/engine/wire.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <kainjow/mustache.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "documents.hpp"
#include "ldis/engine/alert_text.hpp"
#include "ldis/engine/codec.hpp"
#include "ldis/engine/messages.hpp"
#include "ldis/engine/scrubber.hpp"
#include "ldis/engine/text.hpp"

namespace json = boost::json;
namespace mus = kainjow::mustache;
namespace fs = std::filesystem;

namespace ldis::web {
namespace {

constexpr auto kSessionLife = std::chrono::hours(12);
constexpr std::size_t kSessionsPerKey = 20;
constexpr std::size_t kSessionsInAll = 5000;

std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string Decode(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out.push_back(' ');
        } else if (text[i] == '%' && i + 2 < text.size() && Hex(text[i + 1]) >= 0 &&
                   Hex(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(Hex(text[i + 1]) * 16 + Hex(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

std::string Cookie(const std::string& header, const std::string& name) {
    std::size_t at = 0;
    while (at < header.size()) {
        const auto end = header.find(';', at);
        std::string part =
            header.substr(at, end == std::string::npos ? std::string::npos : end - at);
        part.erase(0, part.find_first_not_of(' '));
        if (part.starts_with(name + "=")) return part.substr(name.size() + 1);
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return {};
}

std::string Tag(std::string_view level) {
    if (level == "red") return "govuk-tag--red";
    if (level == "amber") return "govuk-tag--orange";
    if (level == "green") return "govuk-tag--green";
    return "govuk-tag--grey";
}

// "Drug Alert (red)": the label and the colour, as the pages show a level.
std::string LevelLabel(std::string_view level) {
    if (level != "red" && level != "amber" && level != "green") return "Logged, no alert";
    return engine::LevelLabel(level) + " (" + std::string(level) + ")";
}

WebResponse Redirect(const std::string& to) {
    WebResponse r;
    r.status = 303;
    r.body = "";
    r.headers.emplace_back("Location", to);
    return r;
}

// How the form names the schema's values; a value without a label here is shown as it is
// written, tidied (Pretty). The values themselves come from the schema (Pages::Pages).
const std::map<std::string, std::string, std::less<>> kLabels = {
    {"hospital", "Hospital or emergency department"},
    {"custody", "Police custody"},
    {"police", "Police"},
    {"prison", "Prison"},
    {"ambulance", "Ambulance service"},
    {"treatment", "Drug and alcohol treatment service"},
    {"outreach", "Outreach or harm reduction"},
    {"drug_checking", "Drug checking service"},
    {"pharmacy", "Pharmacy"},
    {"gp", "GP practice"},
    {"housing", "Housing or hostel"},
    {"youth", "Youth service"},
    {"panel", "Drug-related deaths panel"},
    {"coroner", "Coroner"},
    {"national_alert", "National alert"},
    {"public", "Member of the public"},
    {"other", "Other"},
    {"anecdotal", "Heard about it (anecdotal)"},
    {"professional", "I or a colleague saw it (professional)"},
    {"corroborated", "More than one service has seen it (corroborated)"},
    {"confirmed", "Confirmed by a test or laboratory"},
    {"usual", "As usual for the product"},
    {"high", "Stronger than usual"},
    {"very_high", "Much stronger than usual"}};
const std::vector<std::string> kNumbers = {
    "cases",         "deaths",         "hospitalisations",
    "critical_care", "naloxone_doses", "naloxone_poor_response",
    "under_18"};
const std::vector<std::string> kTextFields = {
    "organisation",  "role",        "contact", "ward",       "establishment",
    "observed_date", "substance",   "sold_as", "appearance", "markings",
    "symptoms",      "description", "imprint"};

std::string Pretty(std::string_view word) {
    std::string out(word);
    for (char& c : out) {
        if (c == '_') c = ' ';
    }
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

mus::data Options(const std::vector<std::pair<std::string, std::string>>& choices,
                  const std::string& chosen, const std::string& name, bool blank) {
    mus::data list{mus::data::type::list};
    if (blank) {
        mus::data o;
        o.set("value", "");
        o.set("label", "Choose");
        if (chosen.empty()) o.set("selected", true);
        list << o;
    }
    int n = 0;
    for (const auto& [value, label] : choices) {
        mus::data o;
        o.set("value", value);
        o.set("label", label);
        o.set("id", n == 0 ? name : name + "-" + std::to_string(n + 1));
        if (value == chosen) o.set("selected", true);
        list << o;
        ++n;
    }
    return list;
}

// The schema's values with the form's labels for them.
std::vector<std::pair<std::string, std::string>> Labelled(const std::vector<std::string>& words) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& w : words) {
        const auto label = kLabels.find(w);
        out.emplace_back(w, label != kLabels.end() ? label->second : Pretty(w));
    }
    return out;
}

// The form field a JSON pointer of the report names.
std::string FieldOf(const std::string& pointer) {
    static const std::vector<std::pair<std::string, std::string>> kMap = {
        {"/source/type", "source_type"},
        {"/source/organisation", "organisation"},
        {"/source/role", "role"},
        {"/source/contact", "contact"},
        {"/area/authority", "authority"},
        {"/area/district", "district"},
        {"/area/ward", "ward"},
        {"/area/establishment", "establishment"},
        {"/setting", "setting"},
        {"/observed_at", "observed_date"},
        {"/substances/0/name", "substance"},
        {"/substances/0/sold_as", "sold_as"},
        {"/substances/0/form", "form"},
        {"/substances/0/appearance", "appearance"},
        {"/substances/0/markings", "markings"},
        {"/substances/0/colour", "colour"},
        {"/substances/0/shape", "shape"},
        {"/substances/0/imprint", "imprint"},
        {"/substances/0/confirmed_by", "confirmed_by"},
        {"/substances/0/strength", "strength"},
        {"/route", "route"},
        {"/symptoms", "symptoms"},
        {"/description", "description"},
        {"/evidence", "evidence"}};
    for (const auto& [path, field] : kMap) {
        if (pointer == path || pointer.starts_with(path + "/")) return field;
    }
    if (pointer.starts_with("/harms/")) return pointer.substr(7);
    return "substance";
}

}  // namespace

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
      open_form_(options.open_reports_per_hour > 0) {
    templates_email_ = engine::MessageTemplates::LoadDir(templates_dir + "/email");
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
    for (const char* name :
         {"layout", "login", "report", "receipt", "dashboard", "alert", "grading"}) {
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
           path == "/grading" || path.starts_with("/alerts/") || path.starts_with("/assets/");
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
    // /alerts/{ref} and /alerts/{ref}/{action}
    const std::string rest = req.path.substr(8);
    const auto slash = rest.find('/');
    if (slash == std::string::npos) {
        if (req.method != "GET") return Redirect("/alerts/" + LocalPath("/" + rest).substr(1));
        return AlertPage(rest, *session, {});
    }
    const std::string reference = rest.substr(0, slash);
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
    if (req.method == "POST") {
        const auto form = ParseForm(req.body);
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
            if (k != "sign") {
                values[k] = v;
            } else if (const auto& known = engine::ControlledSymptoms();
                       std::find(known.begin(), known.end(), v) != known.end() &&
                       std::find(signs.begin(), signs.end(), v) == signs.end()) {
                signs.push_back(v);
            }
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
            report["evidence"] = value("evidence");
            if (!session) open_reports_.Count(req.client);
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
    mus::data d;
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

namespace {

// Partners reached by an alert's deliveries, and those who acknowledged.
std::pair<int, int> AckProgress(const std::vector<engine::DeliveryRow>& deliveries) {
    std::set<std::string> reached, acked;
    for (const auto& d : deliveries) {
        if (d.kind != "alert" || d.partner.empty()) continue;
        reached.insert(d.partner);
        if (d.acknowledged_at_ms > 0) acked.insert(d.partner);
    }
    return {static_cast<int>(acked.size()), static_cast<int>(reached.size())};
}

mus::data AlertRow(const engine::StoredAlert& a) {
    mus::data row;
    row.set("reference", a.reference);
    row.set("level", a.level);
    row.set("tag", Tag(a.level));
    row.set("status", a.status);
    row.set("family", Pretty(a.family));
    row.set("district", a.district);
    row.set("version", std::to_string(a.version));
    row.set("reports", std::to_string(a.reports));
    row.set("updated", engine::HumanTimeMs(a.updated_at_ms));
    if (a.provisional) row.set("provisional", true);
    return row;
}

}  // namespace

WebResponse Pages::Dashboard(const WebRequest& req, const Sessions::Session& session) {
    mus::data d;
    const auto q = [&](const char* k) {
        auto it = req.query.find(k);
        return it == req.query.end() ? std::string() : it->second;
    };
    engine::AlertFilter live_filter;
    live_filter.limit = 500;
    const auto everything = services_.store->FindAlerts(live_filter);
    std::map<std::string, int> live_by_level;
    mus::data drafts{mus::data::type::list}, live{mus::data::type::list};
    bool has_drafts = false, has_live = false;
    for (const auto& a : everything.alerts) {
        if (a.status == "draft") {
            auto row = AlertRow(a);
            row.set("csrf", session.csrf);
            drafts << row;
            has_drafts = true;
        } else if (a.status == "issued" || a.status == "updated") {
            ++live_by_level[a.level];
            auto row = AlertRow(a);
            const auto [acked, partners] = AckProgress(services_.store->Deliveries(a.reference));
            row.set("acked", std::to_string(acked));
            row.set("partners", std::to_string(partners));
            live << row;
            has_live = true;
        }
    }
    mus::data levels{mus::data::type::list};
    for (const char* level : {"red", "amber", "green"}) {
        mus::data l;
        l.set("level", level);
        l.set("label", LevelLabel(level));
        l.set("tag", Tag(level));
        l.set("count", std::to_string(live_by_level[level]));
        levels << l;
    }
    d.set("levels", levels);
    d.set("drafts", drafts);
    if (has_drafts) d.set("has_drafts", true);
    d.set("live", live);
    if (has_live) d.set("has_live", true);
    mus::data failed{mus::data::type::list};
    bool has_failed = false;
    for (const auto& del : services_.store->Deliveries("")) {
        if (del.status != "failed") continue;
        mus::data f;
        f.set("reference", del.reference);
        f.set("version", std::to_string(del.version));
        f.set("recipient", del.partner.empty() ? del.address : del.partner + " / " + del.contact);
        f.set("channel", del.channel);
        f.set("attempts", std::to_string(del.attempts));
        f.set("error", del.last_error);
        failed << f;
        has_failed = true;
    }
    d.set("failed", failed);
    if (has_failed) d.set("has_failed", true);

    engine::AlertFilter filter;
    filter.level = q("level");
    filter.status = q("status");
    filter.district = q("district");
    filter.authority = q("authority");
    filter.family = q("substance");
    filter.q = q("q");
    if (auto t = ParseTime(q("since"))) filter.since_ms = *t;
    if (auto t = ParseTime(q("until"))) filter.until_ms = *t;
    filter.limit = 20;
    std::size_t page = 1;
    if (!q("page").empty() && q("page").find_first_not_of("0123456789") == std::string::npos &&
        q("page").size() < 6)
        page = std::max<std::size_t>(1, std::stoul(q("page")));
    filter.offset = (page - 1) * filter.limit;
    const auto history = services_.store->FindAlerts(filter);
    mus::data rows{mus::data::type::list};
    for (const auto& a : history.alerts) rows << AlertRow(a);
    d.set("history", rows);
    d.set("total", std::to_string(history.total));
    mus::data fv;
    for (const char* k : {"district", "q", "substance", "authority", "since", "until"})
        fv.set(k, q(k));
    d.set("filter", fv);
    d.set("filter_levels",
          Options({{"", "Any"}, {"red", "Red"}, {"amber", "Amber"}, {"green", "Green"}},
                  filter.level, "level", false));
    d.set("filter_statuses", Options({{"", "Any"},
                                      {"draft", "Draft"},
                                      {"issued", "Issued"},
                                      {"updated", "Updated"},
                                      {"cancelled", "Cancelled"},
                                      {"expired", "Expired"}},
                                     filter.status, "status", false));
    const auto link = [&](std::size_t p) {
        std::string url = "/?page=" + std::to_string(p);
        for (const char* k :
             {"level", "status", "district", "authority", "substance", "q", "since", "until"}) {
            if (!q(k).empty()) url += std::string("&") + k + "=" + UrlEncode(q(k));
        }
        return url;
    };
    if (history.total > static_cast<std::int64_t>(filter.limit)) {
        d.set("has_paging", true);
        d.set("page", std::to_string(page));
        if (page > 1) d.set("previous", link(page - 1));
        if (static_cast<std::int64_t>(page * filter.limit) < history.total)
            d.set("next", link(page + 1));
    }
    // Only messages the server chose: a link cannot put words in LDIS's mouth.
    static const std::map<std::string, std::string> kDone = {
        {"approved", "The alert was approved and issued"},
        {"updated", "An update of the alert was issued"},
        {"cancelled", "The alert was cancelled"}};
    if (auto it = kDone.find(q("done")); it != kDone.end()) d.set("flash", it->second);
    if (session.role == "admin") d.set("admin", true);
    return Render("dashboard", "Dashboard", &d, session);
}

namespace {

// A scrubbed text cut into what stayed and what the scrubber put in place of something.
mus::data MarkedParts(const std::string& scrubbed) {
    mus::data parts{mus::data::type::list};
    std::size_t at = 0;
    while (at < scrubbed.size()) {
        const auto open = scrubbed.find('[', at);
        const auto close = open == std::string::npos ? std::string::npos : scrubbed.find(']', open);
        const bool marker =
            close != std::string::npos && scrubbed.substr(open, close - open).ends_with(" removed");
        if (!marker) {
            mus::data p;
            p.set("text", scrubbed.substr(
                              at, open == std::string::npos ? std::string::npos : open + 1 - at));
            parts << p;
            if (open == std::string::npos) break;
            at = open + 1;
            continue;
        }
        if (open > at) {
            mus::data p;
            p.set("text", scrubbed.substr(at, open - at));
            parts << p;
        }
        mus::data m;
        m.set("text", scrubbed.substr(open, close + 1 - open));
        m.set("removed", true);
        parts << m;
        at = close + 1;
    }
    return parts;
}

std::string WordingLabel(const std::string& section) {
    if (section == "what") return "What it is and what it looks like";
    if (section == "harms") return "What has happened";
    return "Advice for people who use drugs";
}

}  // namespace

WebResponse Pages::AlertPage(const std::string& reference, const Sessions::Session& session,
                             const std::string& problem,
                             const std::map<std::string, std::string>& draft,
                             const std::vector<std::pair<std::string, std::string>>& findings) {
    const auto record = services_.store->FindAlertRecord(reference);
    mus::data d;
    if (!problem.empty()) d.set("problem", problem);
    if (!record) {
        d.set("error", "There is no alert " + reference);
        d.set("next", "/");
        WebResponse r = Render("login", "Alert not found", &d, session, 404);
        return r;
    }
    const auto& a = record->alert;
    d.set("reference", a.reference);
    d.set("level", a.level);
    d.set("level_label", LevelLabel(a.level));
    d.set("tag", Tag(a.level));
    d.set("status", a.status);
    d.set("family", Pretty(a.family));
    d.set("district", a.district);
    d.set("authority", a.authority);
    d.set("version", std::to_string(a.version));
    d.set("confidence", a.confidence);
    d.set("audience", a.audience);
    d.set("reports", std::to_string(a.reports));
    if (a.provisional) d.set("provisional", true);
    if (!a.override.level.empty()) {
        d.set("overridden", true);
        d.set("override_by", a.override.by);
        d.set("override_reason", a.override.reason);
        d.set("override_at", engine::HumanTimeMs(a.override.at_ms));
        d.set("rules_level", a.override.rules_level);
        if (a.override.rules_level != a.override.level) d.set("rules_differ", true);
    }
    const bool live = a.status == "draft" || a.status == "issued" || a.status == "updated";
    if (live) d.set("live", true);
    if (a.status == "draft" || a.provisional) {
        d.set("can_approve", true);
        d.set("approve_label", a.status == "draft" ? "Approve and issue" : "Confirm this alert");
    }
    const auto [acked, partners] = AckProgress(record->deliveries);
    d.set("acked", std::to_string(acked));
    d.set("partners", std::to_string(partners));
    json::error_code ec;
    const auto body = json::parse(a.body, ec);
    const auto& kHeadings = engine::SectionHeadings();
    mus::data sections{mus::data::type::list};
    for (const auto& [key, heading] : kHeadings) {
        if (ec || !body.is_object()) break;
        const auto* v = body.as_object().if_contains(key);
        if (!v || !v->is_string() || v->as_string().empty()) continue;
        mus::data s;
        s.set("heading", heading);
        s.set("text", std::string(v->as_string()));
        sections << s;
    }
    d.set("sections", sections);
    {
        mus::data wording{mus::data::type::list};
        for (const auto& name : engine::WordingSections()) {
            mus::data w;
            w.set("name", name);
            w.set("label", WordingLabel(name));
            std::string text;
            if (auto it = draft.find(name); it != draft.end()) {
                text = it->second;
            } else if (!ec && body.is_object()) {
                if (const auto* v = body.as_object().if_contains(name); v && v->is_string())
                    text = std::string(v->as_string());
            }
            w.set("text", text);
            wording << w;
        }
        d.set("wording", wording);
        mus::data found{mus::data::type::list};
        for (const auto& [section, what] : findings) {
            mus::data f;
            f.set("section", WordingLabel(section));
            f.set("what", what);
            found << f;
        }
        d.set("findings", found);
        if (!findings.empty()) d.set("findings_found", true);
    }
    {
        // Each linked report's own words, through the scrubber, with what it took out marked.
        mus::data reports{mus::data::type::list};
        bool any = false;
        for (const auto& r : record->reports) {
            json::error_code rec;
            const auto doc = json::parse(r.document, rec);
            if (rec || !doc.is_object()) continue;
            const auto& o = doc.as_object();
            std::vector<std::pair<std::string, std::string>> texts;
            const auto text_of = [](const json::object& obj, const char* key) {
                const auto* v = obj.if_contains(key);
                return v && v->is_string() ? std::string(v->as_string()) : std::string();
            };
            if (const auto* list = o.if_contains("substances"); list && list->is_array()) {
                for (const auto& s : list->as_array()) {
                    if (!s.is_object()) continue;
                    for (const auto& [key, label] : {std::pair{"name", "Substance"},
                                                     {"sold_as", "Sold as"},
                                                     {"appearance", "Appearance"},
                                                     {"markings", "Markings"}})
                        if (!text_of(s.as_object(), key).empty())
                            texts.emplace_back(label, text_of(s.as_object(), key));
                }
            }
            if (const auto* list = o.if_contains("symptoms"); list && list->is_array())
                for (const auto& s : list->as_array())
                    if (s.is_string()) texts.emplace_back("Symptom", std::string(s.as_string()));
            if (!text_of(o, "description").empty())
                texts.emplace_back("What happened", text_of(o, "description"));
            if (texts.empty()) continue;
            mus::data entry;
            entry.set("reference", r.reference);
            mus::data lines{mus::data::type::list};
            for (const auto& [field, text] : texts) {
                mus::data line;
                line.set("field", field);
                line.set("parts", MarkedParts(engine::Scrub(text).text));
                lines << line;
            }
            entry.set("lines", lines);
            reports << entry;
            any = true;
        }
        d.set("report_text", reports);
        if (any) d.set("has_report_text", true);
    }
    mus::data versions{mus::data::type::list};
    const engine::AlertVersionRow* previous = nullptr;
    for (const auto& v : record->versions) {
        mus::data row;
        row.set("version", std::to_string(v.version));
        row.set("status", v.status);
        row.set("level", v.level);
        row.set("when", engine::HumanTimeMs(v.created_at_ms));
        std::string changes;
        if (previous == nullptr) {
            changes = "First version";
        } else {
            const auto add = [&](const std::string& what) {
                changes += (changes.empty() ? "" : "; ") + what;
            };
            if (v.status != previous->status) add("status " + previous->status + " to " + v.status);
            if (v.level != previous->level) add("level " + previous->level + " to " + v.level);
            if (v.confidence != previous->confidence)
                add("confidence " + previous->confidence + " to " + v.confidence);
            json::error_code e1, e2;
            const auto before = json::parse(previous->body, e1), after = json::parse(v.body, e2);
            if (!e1 && !e2 && before.is_object() && after.is_object()) {
                for (const auto& [key, heading] : kHeadings) {
                    const auto* x = before.as_object().if_contains(key);
                    const auto* y = after.as_object().if_contains(key);
                    if (x && y && *x != *y && key != "history") add(heading + " changed");
                }
            }
            if (changes.empty()) changes = "No change to the text";
        }
        row.set("changes", changes);
        versions << row;
        previous = &v;
    }
    d.set("versions", versions);
    mus::data deliveries{mus::data::type::list};
    for (const auto& del : record->deliveries) {
        mus::data row;
        row.set("version", std::to_string(del.version));
        row.set("kind", del.kind);
        row.set("recipient", del.partner.empty() ? del.address : del.partner + " / " + del.contact);
        row.set("channel", del.channel);
        row.set("status", del.status);
        row.set("attempts", std::to_string(del.attempts));
        row.set("acknowledged",
                del.acknowledged_at_ms > 0 ? engine::HumanTimeMs(del.acknowledged_at_ms) : "");
        row.set("error", del.last_error);
        deliveries << row;
    }
    d.set("deliveries", deliveries);
    mus::data audit{mus::data::type::list};
    for (const auto& e : record->audit) {
        mus::data row;
        row.set("when", engine::HumanTimeMs(e.at_ms));
        row.set("actor", e.actor);
        row.set("action", e.action);
        row.set("detail", e.detail);
        audit << row;
    }
    d.set("audit", audit);
    // The messages exactly as each channel renders them.
    engine::OutboxItem item;
    item.id = 0;
    item.kind = "alert";
    item.reference = a.reference;
    item.version = a.version;
    item.status = a.status;
    item.level = a.level;
    item.confidence = a.confidence;
    item.audience = a.audience;
    item.provisional = a.provisional;
    item.authority = a.authority;
    item.district = a.district;
    item.family = a.family;
    item.family_label = Pretty(a.family);
    item.issued_at_ms = a.issued_at_ms;
    item.created_at_ms = a.updated_at_ms;
    item.valid_until_ms = a.valid_until_ms;
    item.body = a.body;
    engine::MessageContext context;
    context.public_url = services_.public_url;
    context.from = "LDIS <" + services_.sender + ">";
    context.ack_url =
        services_.public_url + std::string(engine::wire::kAckPath) + "(a link for each recipient)";
    if (templates_email_) {
        const auto email = engine::RenderEmail(*templates_email_, item, context);
        d.set("preview_subject", email.subject);
        d.set("preview_email", email.text);
    }
    d.set("preview_teams", engine::WebhookBody("teams", item, context));
    d.set("preview_slack", engine::WebhookBody("slack", item, context));
    const auto [headline, summary] = engine::Headline(item);
    d.set("preview_sms", headline + "\n" + summary + "\nAcknowledge: " + context.ack_url);
    return Render("alert", a.reference, &d, session);
}

// Admins: paste a proposed rules file and see what it would change over every stored
// signal (engine::Replay); nothing is written.
WebResponse Pages::GradingPage(const WebRequest& req, const Sessions::Session& session) {
    mus::data d;
    if (session.role != "admin") {
        d.set("forbidden", true);
        return Render("grading", "Replay grading rules", &d, session, 403);
    }
    if (req.method != "POST") return Render("grading", "Replay grading rules", &d, session);
    const auto form = ParseForm(req.body);
    const auto it = form.find("rules");
    std::string rules_text = it == form.end() ? std::string() : it->second;
    std::erase(rules_text, '\r');
    d.set("rules", rules_text);
    const auto current = services_.store->Grading();
    try {
        if (!current) throw std::runtime_error("grading is not set up");
        const auto proposed =
            engine::Rules::Parse(rules_text, "the proposed rules", current->substances);
        const auto result =
            engine::Replay(services_.store->Signals(), current->substances, proposed);
        d.set("done", true);
        d.set("signals", std::to_string(result.signals));
        d.set("changed", std::to_string(result.changes.size()));
        mus::data changes{mus::data::type::list}, lowered{mus::data::type::list};
        for (const auto& c : result.changes) {
            mus::data row;
            row.set("signal", std::to_string(c.signal));
            row.set("district", c.district);
            row.set("family", Pretty(c.family));
            row.set("now", c.now);
            row.set("then", c.then);
            std::string fired;
            for (const auto& f : c.fired) fired += (fired.empty() ? "" : ", ") + f;
            row.set("rules_fired", fired.empty() ? std::string("none") : fired);
            row.set("alert", c.alert_reference);
            if (c.lowers_live_red) lowered << row;
            changes << row;
        }
        d.set("changes", changes);
        if (result.changes.empty()) d.set("no_changes", true);
        if (result.lowered_live_reds > 0) {
            d.set("lowered", lowered);
            d.set("lowers_red", true);
        }
        mus::data levels{mus::data::type::list};
        for (const char* level : {"red", "amber", "green", "none"}) {
            mus::data row;
            row.set("level", level);
            row.set("now", std::to_string(result.now_by_level.at(level)));
            row.set("then", std::to_string(result.then_by_level.at(level)));
            levels << row;
        }
        d.set("levels", levels);
    } catch (const engine::StoreError&) {
        throw;
    } catch (const std::exception& e) {
        d.set("problem", std::string(e.what()));
        return Render("grading", "Replay grading rules", &d, session, 422);
    }
    return Render("grading", "Replay grading rules", &d, session);
}

WebResponse Pages::AlertAction(const WebRequest& req, const std::string& reference,
                               const std::string& action, const Sessions::Session& session) {
    engine::AlertAction what;
    if (action == "override") {
        const auto form = ParseForm(req.body);
        const auto field = [&](const char* name) {
            const auto it = form.find(name);
            return it == form.end() ? std::string() : it->second;
        };
        const bool lift = !field("lift").empty();
        const std::string reason = field("reason");
        const std::string level = lift ? std::string() : field("level");
        engine::Level parsed;
        std::string problem;
        if (!IsAuditReason(reason))
            problem = "Say why you set the level by hand, in 10 to 500 characters.";
        else if (!lift && !engine::ParseLevel(level, parsed))
            problem = "Choose red, amber or green.";
        const auto alert = services_.store->FindAlert(reference);
        if (!alert) return Redirect("/alerts/" + reference);
        if (problem.empty()) {
            auto done = services_.store->Override(alert->signal_id, level, reason, session.name);
            if (!done.ok()) problem = done.error().message;
        }
        if (!problem.empty()) {
            WebResponse r = AlertPage(reference, session, problem);
            r.status = 422;
            return r;
        }
        spdlog::info("signal {} override {} by {}", alert->signal_id, lift ? "lifted" : level,
                     session.name);
        return Redirect("/alerts/" + reference);
    }
    if (action == "approve") {
        what = engine::AlertAction::kApprove;
    } else if (action == "update") {
        what = engine::AlertAction::kRevise;
    } else if (action == "cancel") {
        what = engine::AlertAction::kCancel;
    } else {
        return Redirect("/alerts/" + reference);
    }
    engine::AlertWording wording;
    if (what == engine::AlertAction::kRevise) {
        // The sections the coordinator changed from what the alert says now.
        const auto form = ParseForm(req.body);
        const auto current = services_.store->FindAlert(reference);
        json::error_code ec;
        const auto body = current ? json::parse(current->body, ec) : json::value();
        for (const auto& name : engine::WordingSections()) {
            const auto it = form.find(name);
            if (it == form.end()) continue;
            std::string text = it->second;
            std::erase(text, '\r');
            while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
            std::string now;
            if (!ec && body.is_object())
                if (const auto* v = body.as_object().if_contains(name); v && v->is_string())
                    now = std::string(v->as_string());
            if (!text.empty() && text != now) wording.sections[name] = text;
        }
        const auto check = CheckWording(wording.sections);
        if (!check.findings.empty() && form.find("send_as_written") == form.end()) {
            WebResponse r = AlertPage(reference, session, {}, wording.sections, check.findings);
            r.status = 422;
            return r;
        }
        wording.confirmed_findings = check.count;
    }
    auto done = services_.store->Act(reference, what, session.name, wording);
    if (!done.ok()) {
        spdlog::warn("alert {} by {} refused: {}", action, session.name, done.error().message);
        WebResponse r = AlertPage(reference, session, done.error().message);
        r.status = 409;
        return r;
    }
    spdlog::info("alert {} by {}: {} v{}", action, session.name, reference, done.value().version);
    return Redirect("/alerts/" + reference);
}

}  // namespace ldis::web
