#pragma once
// The people's pages (DESIGN §8): sign-in, the clinician's report form, the coordinator's
// dashboard and alert record, server-rendered from templates/web/ with GOV.UK Frontend.
// No Beast here: requests and responses are plain values. Private to web/.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ldis/engine/messages.hpp"
#include "ldis/web/server.hpp"
#include "safety.hpp"

namespace ldis::web {

struct WebRequest {
    std::string method;  // GET, POST
    std::string path;
    std::map<std::string, std::string> query;
    std::string body;            // application/x-www-form-urlencoded or multipart/form-data
    std::string content_type;    // the Content-Type header, which says which
    std::string cookie;          // the Cookie header
    std::string sec_fetch_site;  // the Sec-Fetch-Site header: same-origin, cross-site, ...
    std::string origin;          // the Origin header, or ""
    std::string client;          // the peer's address, for per-address limits
};

struct WebResponse {
    int status = 200;
    std::string body;
    std::string content_type = "text/html; charset=utf-8";
    std::vector<std::pair<std::string, std::string>> headers;
};

// A kept photo's JPEG (issue 17 §3), as every page that shows one serves it: never cached,
// never run as anything else.
inline WebResponse JpegResponse(std::string jpeg) {
    WebResponse r;
    r.body = std::move(jpeg);
    r.content_type = "image/jpeg";
    r.headers = {{"Cache-Control", "private, no-store"},
                 {"Content-Security-Policy", "default-src 'none'"}};
    return r;
}

// Signed-in people: a random session id in an HttpOnly, SameSite=Strict cookie, and a
// CSRF token that every POST form carries. Kept in the database as the id's hash: a
// restart signs nobody out, and revoking an access key ends its sessions at once.
// Thread-safe.
class Sessions {
public:
    struct Session {
        std::string name;
        std::string role;
        std::string csrf;
    };
    explicit Sessions(engine::Store& store) : store_(store) {}
    std::string Create(const engine::ApiToken& who);  // the session id, or "" on failure
    std::optional<Session> Find(const std::string& id);
    void Remove(const std::string& id);

private:
    engine::Store& store_;
};

// Form fields as sent (application/x-www-form-urlencoded), decoded.
std::multimap<std::string, std::string> ParseForm(std::string_view body);

class Pages {
public:
    // `templates_dir` holds web/ and email/. Throws std::runtime_error naming a template
    // that is missing or does not parse.
    // `bad_keys` counts wrong access keys per address, shared with the API's bearer tokens.
    Pages(const Services& services, const std::string& templates_dir, std::string assets_dir,
          const ServerOptions& options, FailureLimit& bad_keys);
    // The paths the pages serve (the rest is the API, feeds and acknowledgements).
    static bool IsPage(std::string_view path);
    // The response for a page, an asset, or nullopt when `request.path` is none of them.
    // Blocks on the store: call on a worker thread.
    std::optional<WebResponse> Handle(const WebRequest& request);

private:
    struct Context;
    WebResponse Render(const std::string& name, const std::string& title, void* data,
                       const std::optional<Sessions::Session>& session, int status = 200);
    WebResponse Asset(const std::string& path);
    WebResponse Login(const WebRequest& request);
    WebResponse LoginPage(const WebRequest& request, const std::string& next,
                          const std::string& error, int status);
    WebResponse ReportForm(const WebRequest& request,
                           const std::optional<Sessions::Session>& session);
    WebResponse TooMany(int retry_after_s, const std::optional<Sessions::Session>& session);
    // The cookie names: __Host- prefixed when the public URL is https.
    std::string SessionCookie() const;
    std::string FormCookie() const;
    // A form token for someone not signed in (the sign-in and open report forms): the
    // same random value in a cookie and in the form (double submit), so a page on another
    // site cannot post the form in the visitor's browser.
    std::string FormToken(const WebRequest& request, WebResponse& response);
    bool FormTokenMatches(const WebRequest& request,
                          const std::multimap<std::string, std::string>& form) const;
    WebResponse Dashboard(const WebRequest& request, const Sessions::Session& session);
    // The dashboard's trends, map and time to alert (issue 17 §1), into `data` (mus::data).
    void Trends(const WebRequest& request, const std::map<std::string, std::string>& district_level,
                const std::map<std::string, int>& district_live, void* data);
    // /reports/quarterly?quarter=2026-Q4[&format=csv] (issue 17 §2).
    WebResponse Quarterly(const WebRequest& request, const Sessions::Session& session);
    WebResponse GradingPage(const WebRequest& request, const Sessions::Session& session);
    // `draft` is wording a coordinator sent that the scrubber questioned (`findings`):
    // shown again in the form, with what was found.
    WebResponse AlertPage(const std::string& reference, const Sessions::Session& session,
                          const std::string& problem,
                          const std::map<std::string, std::string>& draft = {},
                          const std::vector<std::pair<std::string, std::string>>& findings = {});
    WebResponse AlertAction(const WebRequest& request, const std::string& reference,
                            const std::string& action, const Sessions::Session& session);
    // After an exercise or a test: how long each partner took to acknowledge, and who did
    // not (issue 16 §2), to print. Any alert has one; a real alert's says it is real.
    WebResponse DrillReport(const std::string& reference, const Sessions::Session& session);
    // One photo of the alert's reports, the JPEG kept (issue 17 §3), for a coordinator.
    WebResponse AlertPhoto(const std::string& reference, const std::string& id);
    // /public/...: the alerts a coordinator made public, their Atom feed and "Is this alert
    // real?" (issue 17 §5), without sign-in (public_pages.cpp).
    WebResponse PublicPage(const WebRequest& request);
    std::vector<engine::Alert> PublicAlerts() const;
    // Who issues alerts: the coordinators' partner's name.
    std::string Issuer() const;

    const Services& services_;
    std::map<std::string, std::string> templates_;
    std::string assets_dir_;
    Sessions sessions_;
    // The form's lists: each the schema's enum by the form's field name ("source_type",
    // "setting", "form", ...), and the districts of areas.toml.
    std::map<std::string, std::vector<std::string>> lists_;
    std::vector<std::pair<std::string, std::string>> districts_;
    FailureLimit& bad_keys_;
    FailureLimit open_reports_;

    bool open_form_ = true;
    std::size_t max_photo_bytes_ = 0;  // ServerOptions::max_photo_body: one photo's, at most
};

}  // namespace ldis::web
