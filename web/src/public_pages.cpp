// The public's pages (issue 17 §5): alerts a coordinator made public, without sign-in, at
// /public/alerts, their Atom feed, and "Is this alert real?". Only what PublicView keeps
// of an alert leaves here: never a report, a count, a draft or an exercise.
#include "pages_common.hpp"

namespace ldis::web {
namespace {

constexpr std::size_t kPublicListed = 100;

// A reference as a person may type it (" km-2026-0007 "), as the store keeps it
// ("KM-2026-0007"), or "" when it cannot be one: letters, a year, a number.
std::string NormalReference(std::string_view typed) {
    while (!typed.empty() && typed.front() == ' ') typed.remove_prefix(1);
    while (!typed.empty() && typed.back() == ' ') typed.remove_suffix(1);
    if (typed.size() < 8 || typed.size() > 24) return {};
    std::string out;
    for (const char c : typed)
        out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    const auto first = out.find('-');
    const auto second = first == std::string::npos ? std::string::npos : out.find('-', first + 1);
    if (first == 0 || first == std::string::npos || second != first + 5 || second + 1 >= out.size())
        return {};
    for (std::size_t i = 0; i < out.size(); ++i) {
        const char c = out[i];
        const bool ok = i < first                   ? (c >= 'A' && c <= 'Z')
                        : i == first || i == second ? c == '-'
                                                    : (c >= '0' && c <= '9');
        if (!ok) return {};
    }
    return out;
}

mus::data PublicData(const PublicAlert& p) {
    mus::data d;
    d.set("reference", p.reference);
    d.set("version", std::to_string(p.version));
    d.set("level", p.level);
    d.set("level_label", p.level_label);
    d.set("tag", Tag(p.level));
    d.set("title", p.title);
    d.set("status", p.status);
    if (p.cancelled) d.set("cancelled", true);
    if (p.in_force) d.set("in_force", true);
    d.set("advice", p.advice);
    d.set("overdose", p.overdose);
    d.set("issued", p.issued);
    d.set("updated", p.updated);
    return d;
}

}  // namespace

std::string Pages::Issuer() const {
    const auto g = services_.store->Grading();
    const engine::Partner* c = g && g->partners ? g->partners->coordinators() : nullptr;
    return c ? c->name : std::string("LDIS Kent and Medway");
}

std::vector<engine::Alert> Pages::PublicAlerts() const {
    engine::AlertFilter f;
    f.audience = "public";
    f.published = true;
    f.drill = engine::Drill::kNone;
    f.limit = kPublicListed;
    return services_.store->FindAlerts(f).alerts;
}

WebResponse Pages::PublicPage(const WebRequest& req) {
    if (req.method != "GET") {
        WebResponse r;
        r.status = 405;
        r.body = "These pages are read only.";
        r.content_type = "text/plain; charset=utf-8";
        r.headers.emplace_back("Allow", "GET");
        return r;
    }
    const std::string issuer = Issuer();
    if (req.path == "/public/alerts.atom") {
        WebResponse r;
        r.body = PublicAtomFeed(PublicAlerts(), services_.public_url, issuer, NowMs());
        r.content_type = "application/atom+xml; charset=utf-8";
        r.headers.emplace_back("Cache-Control", "public, max-age=60");
        return r;
    }
    mus::data d;
    d.set("public_page", true);
    d.set("issuer", issuer);
    if (req.path == "/public/alerts" || req.path == "/public/alerts/" ||
        req.path == "/public/check") {
        mus::data list{mus::data::type::list};
        bool any = false;
        for (const auto& a : PublicAlerts()) {
            list << PublicData(PublicView(a));
            any = true;
        }
        d.set("alerts", list);
        if (any) d.set("has_alerts", true);
        int status = 200;
        if (req.path == "/public/check") {
            // "Is this alert real?": whether an alert of that reference was issued by LDIS,
            // and its current version. A draft was never sent to anyone: it is not found,
            // as a reference that does not exist. A professionals' alert is confirmed, with
            // none of its content.
            const auto typed = req.query.find("reference");
            const std::string asked = typed == req.query.end() ? std::string() : typed->second;
            const std::string reference = NormalReference(asked);
            d.set("checked", true);
            d.set("asked", asked.substr(0, 40));
            if (reference.empty()) {
                d.set("check_error",
                      "Enter a reference as it is written on the alert, like KM-2026-0007");
                d.set("has_errors", true);
                status = 400;
            } else {
                d.set("reference", reference);
                const auto a = services_.store->FindAlert(reference);
                if (!a || a->issued_at_ms == 0) {
                    d.set("not_found", true);
                } else {
                    d.set("found", true);
                    d.set("version", std::to_string(a->version));
                    d.set("updated", engine::HumanTimeMs(a->updated_at_ms));
                    d.set("found_status", a->status == engine::AlertStatus::kCancelled ? "cancelled"
                                          : engine::IsLive(a->status)                  ? "in force"
                                                                                       : "expired");
                    if (a->drill != engine::Drill::kNone)
                        d.set("drill", std::string(engine::DrillMarking(a->drill)));
                    if (a->audience == "public" && a->drill == engine::Drill::kNone)
                        d.set("public_link", "/public/alerts/" + a->reference);
                }
            }
        }
        WebResponse r = Render("public", "Drug alerts for the public", &d, std::nullopt, status);
        return r;
    }
    const std::string reference =
        NormalReference(req.path.substr(std::string("/public/alerts/").size()));
    const auto a = reference.empty() ? std::nullopt : services_.store->FindAlert(reference);
    if (!a || a->audience != "public" || a->issued_at_ms == 0 || a->drill != engine::Drill::kNone) {
        d.set("missing", true);
        return Render("public_alert", "Alert not found", &d, std::nullopt, 404);
    }
    const PublicAlert p = PublicView(*a);
    d.set("alert", PublicData(p));
    return Render("public_alert", p.title, &d, std::nullopt);
}

}  // namespace ldis::web
