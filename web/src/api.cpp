// The JSON API (docs/api.md), CAP and the Atom feed: who may do what (Authorize), and each
// endpoint.
#include "ldis/engine/views.hpp"
#include "server_impl.hpp"

namespace ldis::web {

// The token's owner, or the 401/403/429 to send. Blocks on the store's reader.
std::variant<engine::ApiToken, Response> Server::Impl::Authorize(const std::string& bearer,
                                                                 int roles,
                                                                 const std::string& client) {
    if (const int wait = bad_keys_.Refused(client); wait > 0 && !bearer.empty()) {
        Response res = JsonError(http::status::too_many_requests, "too_many_requests",
                                 "too many unknown tokens from your address: try again in " +
                                     std::to_string(wait) + " s");
        res.set(http::field::retry_after, std::to_string(wait));
        return res;
    }
    if (bearer.empty()) {
        Response res = JsonError(http::status::unauthorized, "unauthorized",
                                 "send a bearer token: Authorization: Bearer <token>");
        res.set(http::field::www_authenticate, "Bearer realm=\"ldis\"");
        return res;
    }
    auto who = services_.store->FindToken(bearer);
    if (!who) {
        bad_keys_.Count(client);
        Response res = JsonError(http::status::unauthorized, "unauthorized",
                                 "the bearer token is not known or was revoked");
        res.set(http::field::www_authenticate, "Bearer realm=\"ldis\", error=\"invalid_token\"");
        return res;
    }
    const int role = who->role == "submitter"     ? kSubmitter
                     : who->role == "coordinator" ? kCoordinator
                     : who->role == "admin"       ? kAdmin
                                                  : 0;
    if ((role & roles) == 0)
        return JsonError(http::status::forbidden, "forbidden",
                         "the role " + who->role + " may not do this");
    return *who;
}

// Runs `work` for a caller holding one of `roles`, on the pool.
void Server::Impl::Authorized(const std::string& bearer, int roles, const std::string& client,
                              std::function<Response(const engine::ApiToken&)> work, Reply reply) {
    Blocking(
        [this, bearer, roles, client, work = std::move(work)]() -> Response {
            auto who = Authorize(bearer, roles, client);
            if (auto* refused = std::get_if<Response>(&who)) return std::move(*refused);
            return work(std::get<engine::ApiToken>(who));
        },
        std::move(reply));
}

Response Server::Impl::AlertList(const engine::AlertFilter& f) {
    const auto page = services_.store->FindAlerts(f);
    json::array items;
    for (const auto& a : page.alerts) items.push_back(AlertJson(a, services_.public_url));
    json::object o{{"total", page.total},
                   {"limit", f.limit},
                   {"offset", f.offset},
                   {"alerts", std::move(items)}};
    return Make(http::status::ok, json::serialize(o), "application/json");
}

// Partners without their webhook secrets.
Response Server::Impl::PartnersResponse() {
    const auto partners = services_.partners ? services_.partners() : nullptr;
    json::array list;
    if (partners) {
        for (const auto& p : partners->partners()) {
            json::array contacts, subscriptions;
            for (const auto& c : p.contacts) {
                contacts.push_back({{"name", c.name},
                                    {"channel", std::string(engine::ToString(c.channel))},
                                    {"address", c.address},
                                    {"format", c.format}});
            }
            for (const auto& sub : p.subscriptions) {
                const auto words = [](const auto& set) {
                    json::array out;
                    for (const auto& w : set) out.emplace_back(w);
                    return out;
                };
                json::array levels;
                for (const auto l : sub.levels)
                    levels.emplace_back(std::string(engine::ToString(l)));
                subscriptions.push_back({{"levels", levels},
                                         {"authorities", words(sub.authorities)},
                                         {"districts", words(sub.districts)},
                                         {"audiences", words(sub.audiences)},
                                         {"contacts", words(sub.contacts)}});
            }
            json::array fallback;
            for (const auto& f : p.fallback) fallback.emplace_back(f);
            list.push_back({{"id", p.id},
                            {"name", p.name},
                            {"sector", p.sector},
                            {"contacts", std::move(contacts)},
                            {"subscriptions", std::move(subscriptions)},
                            {"escalation", p.escalation},
                            {"fallback", std::move(fallback)}});
        }
    }
    const auto* coordinators = partners ? partners->coordinators() : nullptr;
    return Make(http::status::ok,
                json::serialize(
                    json::object{{"coordinators", coordinators ? coordinators->id : std::string()},
                                 {"partners", std::move(list)}}),
                "application/json");
}

Response Server::Impl::AtomResponse() {
    engine::AlertFilter f;
    f.limit = 100;
    auto page = services_.store->FindAlerts(f);
    std::vector<engine::Alert> issued;
    for (auto& a : page.alerts) {
        if (WasIssued(a.status)) issued.push_back(std::move(a));  // a feed is for everyone
    }
    return Make(http::status::ok, AtomFeed(issued, services_.public_url, NowMs()),
                "application/atom+xml; charset=utf-8");
}

Response Server::Impl::CapResponse(const std::string& ref, int version, const std::string& role) {
    auto stored = services_.store->FindAlertRecord(ref);
    const auto record = stored ? ReadableBy(role, std::move(*stored)) : std::nullopt;
    if (!record) return JsonError(http::status::not_found, "not_found", "no alert " + ref);
    std::string xml = CapXml(*record, version, services_.sender, services_.public_url);
    if (xml.empty())
        return JsonError(http::status::not_found, "not_found",
                         ref + " has no version " + std::to_string(version));
    return Make(http::status::ok, std::move(xml), "application/cap+xml; charset=utf-8");
}

// `body` may carry {"wording": {"what"|"harms"|"advice": text}, "send_as_written": bool}
// for an update: the coordinator's own words, checked by the scrubber first; and
// {"audience": "professionals"|"services"|"public"} with an approval or an update; and
// {"photos": ["ph-…"]}: the photos of the alert's reports to go out with this version.
Response Server::Impl::ActOn(const std::string& ref, engine::AlertAction action,
                             const engine::ApiToken& who, const std::string& body) {
    if (!services_.store->FindAlert(ref))
        return JsonError(http::status::not_found, "not_found", "no alert " + ref);
    engine::AlertWording wording;
    if (!body.empty() && body.find_first_not_of(" \t\r\n") != std::string::npos) {
        json::error_code ec;
        const auto doc = json::parse(body, ec);
        if (ec || !doc.is_object())
            return JsonError(http::status::bad_request, "bad_request",
                             "the body must be a JSON object, as {\"wording\": {\"what\": "
                             "\"...\"}}");
        if (const auto* w = doc.as_object().if_contains("wording")) {
            if (!w->is_object())
                return JsonError(http::status::bad_request, "bad_request",
                                 "wording must be an object of section names and texts");
            for (const auto& [k, v] : w->as_object()) {
                if (!v.is_string())
                    return JsonError(http::status::bad_request, "bad_request",
                                     "wording." + std::string(k) + " must be text");
                wording.sections[std::string(k)] = std::string(v.as_string());
            }
        }
        if (const auto* audience = doc.as_object().if_contains("audience")) {
            if (!audience->is_string())
                return JsonError(http::status::bad_request, "bad_request",
                                 "audience must be professionals, services or public");
            wording.audience = std::string(audience->as_string());
        }
        if (const auto* photos = doc.as_object().if_contains("photos")) {
            const auto* list = photos->if_array();
            if (!list)
                return JsonError(http::status::bad_request, "bad_request",
                                 "photos must be a list of the ids the alert's record shows, "
                                 "as [\"ph-…\"]");
            wording.photos.emplace();
            for (const auto& id : *list) {
                if (!id.is_string())
                    return JsonError(http::status::bad_request, "bad_request",
                                     "each photo is its id, as text");
                wording.photos->emplace_back(id.as_string());
            }
        }
        // Sections and audience that cannot be, or cannot go with this action: the request
        // is wrong, whatever state the alert is in.
        if (auto problem = engine::WordingProblem(ref, action, wording))
            return JsonError(http::status::bad_request, "bad_request", problem->message);
        if (wording.photos && !wording.photos->empty()) {
            const auto photos = services_.store->AlertPhotos(ref);
            for (const auto& id : *wording.photos) {
                if (std::none_of(photos.begin(), photos.end(),
                                 [&](const engine::PhotoRow& p) { return p.id == id; }))
                    return JsonError(http::status::bad_request, "bad_request",
                                     "the photo " + id + " is not from a report of " + ref +
                                         ": choose from the photos its record shows");
            }
        }
        const auto* send = doc.as_object().if_contains("send_as_written");
        const bool as_written = send && send->is_bool() && send->as_bool();
        const auto check = CheckWording(wording.sections);
        if (!check.findings.empty() && !as_written) {
            json::object found;
            for (const auto& [section, what] : check.findings) found[section] = what;
            Response res =
                Make(http::status::unprocessable_entity,
                     json::serialize(json::object{
                         {"error", "personal_data"},
                         {"detail",
                          "the wording may identify someone; edit it, or send it as written "
                          "with \"send_as_written\": true"},
                         {"findings", std::move(found)}}),
                     "application/json");
            return res;
        }
        wording.confirmed_findings = check.count;
    }
    auto done = services_.store->Act(ref, action, who.name, wording);
    if (!done.ok()) return JsonError(http::status::conflict, "conflict", done.error().message);
    spdlog::info("alert {} by {}: {} v{}", std::string(engine::ToString(action)), who.name, ref,
                 done.value().version);
    return Make(http::status::ok, json::serialize(AlertJson(done.value(), services_.public_url)),
                "application/json");
}

// {"level": "red", "reason": "..."} sets an override; {"lift": true, "reason": "..."}
// lifts it. The reason (10 to 500 characters) is audited.
Response Server::Impl::OverrideResponse(const std::string& kind, const std::string& id,
                                        const std::string& body, const engine::ApiToken& who) {
    std::int64_t signal = 0;
    if (kind == "alerts") {
        const auto alert = services_.store->FindAlert(id);
        if (!alert) return JsonError(http::status::not_found, "not_found", "no alert " + id);
        signal = alert->signal_id;
    } else {
        const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), signal);
        if (ec != std::errc() || end != id.data() + id.size() || signal <= 0)
            return JsonError(http::status::not_found, "not_found", "no signal " + id);
    }
    json::error_code ec;
    const auto doc = json::parse(body, ec);
    if (ec || !doc.is_object())
        return JsonError(http::status::bad_request, "bad_request",
                         "the body must be a JSON object: {\"level\": \"red\", \"reason\": "
                         "\"...\"}, or {\"lift\": true, \"reason\": \"...\"}");
    const auto& o = doc.as_object();
    const auto* reason = o.if_contains("reason");
    if (!reason || !reason->is_string() || !IsAuditReason(reason->as_string()))
        return JsonError(http::status::bad_request, "bad_request",
                         "say why, in a sentence: \"reason\", 10 to 500 characters; it is "
                         "kept in the audit log and shown on the alert");
    const auto* lift = o.if_contains("lift");
    const bool lifting = lift && lift->is_bool() && lift->as_bool();
    std::string level;
    if (!lifting) {
        const auto* l = o.if_contains("level");
        engine::Level parsed;
        if (!l || !l->is_string() || !engine::ParseLevel(l->as_string(), parsed))
            return JsonError(http::status::bad_request, "bad_request",
                             "level must be none, green, amber or red (or send \"lift\": "
                             "true to give the level back to the rules)");
        level = std::string(l->as_string());
    }
    auto done =
        services_.store->Override(signal, level, std::string(reason->as_string()), who.name);
    if (!done.ok()) {
        const bool missing = done.error().message.starts_with("there is no signal");
        return JsonError(missing ? http::status::not_found : http::status::conflict,
                         missing ? "not_found" : "conflict", done.error().message);
    }
    const auto& held = done.value();
    spdlog::info("signal {} override {} by {}", signal, lifting ? "lifted" : level, who.name);
    json::value alert = nullptr;
    if (!held.alert_reference.empty()) {
        if (const auto a = services_.store->FindAlert(held.alert_reference))
            alert = AlertJson(*a, services_.public_url);
    }
    return Make(
        http::status::ok,
        json::serialize(json::object{{"signal", signal},
                                     {"level", held.level.empty() ? held.rules_level : held.level},
                                     {"rules_level", held.rules_level},
                                     {"override", OverrideJson(held)},
                                     {"alert", alert}}),
        "application/json");
}

// {"rules": TOML text, "substances": TOML text (optional: the ones in use)}.
Response Server::Impl::ReplayResponse(const std::string& body) {
    json::error_code ec;
    const auto doc = json::parse(body, ec);
    const auto* rules = !ec && doc.is_object() ? doc.as_object().if_contains("rules") : nullptr;
    if (!rules || !rules->is_string())
        return JsonError(http::status::bad_request, "bad_request",
                         "send the proposed rules file as text: {\"rules\": \"[[rule]]...\", "
                         "\"substances\": \"...\" (optional)}");
    const auto current = services_.store->Grading();
    if (!current) return JsonError(http::status::conflict, "conflict", "grading is not set up");
    try {
        const auto* given = doc.as_object().if_contains("substances");
        std::optional<engine::Substances> substances;
        if (given && given->is_string())
            substances = engine::Substances::Parse(given->as_string(), "substances");
        const auto& use = substances ? *substances : current->substances;
        const auto proposed = engine::Rules::Parse(rules->as_string(), "rules", use);
        return Make(http::status::ok,
                    engine::ReplayToJson(engine::Replay(services_.store->Signals(), use, proposed)),
                    "application/json");
    } catch (const engine::StoreError&) {
        throw;
    } catch (const std::exception& e) {
        return JsonError(http::status::unprocessable_entity, "invalid_rules", e.what());
    }
}

// Reads ?since, ?until, ?limit, ?offset and the word filters; or the 400 to send.
std::variant<engine::AlertFilter, Response> Server::Impl::FilterOf(
    std::map<std::string, std::string> query) {
    engine::AlertFilter f;
    f.level = query["level"];
    f.status = query["status"];
    f.authority = query["authority"];
    f.district = query["district"];
    f.family = query["substance"];
    f.q = query["q"];
    // Real alerts unless asked: exercises and tests are history apart (issue 16 §2).
    if (query["drill"] != "all") {
        engine::Drill drill = engine::Drill::kNone;
        if (!engine::ParseDrill(query["drill"], drill))
            return JsonError(http::status::bad_request, "bad_request",
                             "drill must be exercise, test or all (or absent, for real alerts)");
        f.drill = drill;
    }
    for (const auto& [key, field] : {std::pair{"since", &f.since_ms}, {"until", &f.until_ms}}) {
        if (query[key].empty()) continue;
        const auto t = ParseTime(query[key]);
        if (!t)
            return JsonError(
                http::status::bad_request, "bad_request",
                std::string(key) + " must be a date (2026-11-23) or an RFC 3339 date-time");
        *field = *t;
    }
    for (const auto& [key, field, most] :
         {std::tuple{"limit", &f.limit, std::size_t{500}},
          std::tuple{"offset", &f.offset, std::size_t{1000000000}}}) {
        const std::string& text = query[key];
        if (text.empty()) continue;
        std::size_t n = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || end != text.data() + text.size() || n > most)
            return JsonError(
                http::status::bad_request, "bad_request",
                std::string(key) + " must be a whole number up to " + std::to_string(most));
        *field = n;
    }
    return f;
}

// The API's routes. Every one checks the bearer token's role before it touches the store.
void Server::Impl::AddApiRoutes() {
    routes_.Add({"POST"}, "/api/v1/reports", [this](Call& c) {
        auto body = std::make_shared<std::string>(std::move(c.req.body()));
        Authorized(
            Bearer(c.req), kAnyRole, c.client,
            [this, body](const engine::ApiToken&) {
                if (auto refused = PhotosProblem(*body)) return std::move(*refused);
                return SubmitReport(*body);
            },
            std::move(c.reply));
    });
    // Photos of a batch (issue 17 §3): anyone who may report uploads; only coordinators see.
    routes_.Add({"POST"}, "/api/v1/photos", [this](Call& c) {
        auto body = std::make_shared<std::string>(std::move(c.req.body()));
        Authorized(
            Bearer(c.req), kAnyRole, c.client,
            [this, body](const engine::ApiToken& who) { return UploadPhoto(*body, who); },
            std::move(c.reply));
    });
    routes_.Add({"GET"}, "/api/v1/photos/{id}", [this](Call& c) {
        Authorized(
            Bearer(c.req), kCoordinator | kAdmin, c.client,
            [this, id = c.params["id"]](const engine::ApiToken&) { return PhotoResponse(id); },
            std::move(c.reply));
    });
    routes_.Add({"GET"}, "/feeds/alerts.atom", [this](Call& c) {
        Authorized(
            Bearer(c.req), kAnyRole, c.client,
            [this](const engine::ApiToken&) { return AtomResponse(); }, std::move(c.reply));
    });
    routes_.Add({"GET"}, "/api/v1/partners", [this](Call& c) {
        Authorized(
            Bearer(c.req), kCoordinator | kAdmin, c.client,
            [this](const engine::ApiToken&) { return PartnersResponse(); }, std::move(c.reply));
    });
    // The original text of one report, for a coordinator who says why; audited.
    routes_.Add({"POST"}, "/api/v1/reports/{id}/reveal", [this](Call& c) {
        auto body = std::make_shared<std::string>(c.req.body());
        Authorized(
            Bearer(c.req), kCoordinator | kAdmin, c.client,
            [this, id = c.params["id"], body](const engine::ApiToken& who) {
                json::error_code ec;
                const auto doc = json::parse(*body, ec);
                const auto* reason =
                    !ec && doc.is_object() ? doc.as_object().if_contains("reason") : nullptr;
                if (!reason || !reason->is_string() || !IsAuditReason(reason->as_string()))
                    return JsonError(http::status::bad_request, "bad_request",
                                     "say why you need the original text: {\"reason\": "
                                     "\"...\"}, 10 to 500 characters; it is audited");
                auto row = services_.store->Reveal(id, who.name, std::string(reason->as_string()));
                if (!row.ok())
                    return JsonError(http::status::not_found, "not_found", row.error().message);
                spdlog::info("report revealed reference={} by {}", row.value().reference, who.name);
                json::error_code parse;
                return Make(http::status::ok,
                            json::serialize(
                                json::object{{"id", row.value().id},
                                             {"reference", row.value().reference},
                                             {"report", json::parse(row.value().document, parse)}}),
                            "application/json");
            },
            std::move(c.reply));
    });
    routes_.Add({"GET"}, "/api/v1/reports/{id}", [this](Call& c) {
        Authorized(
            Bearer(c.req), kCoordinator | kAdmin, c.client,
            [this, id = c.params["id"]](const engine::ApiToken&) {
                const auto row = services_.store->Find(id);
                if (!row) return JsonError(http::status::not_found, "not_found", "no report " + id);
                return Make(http::status::ok, json::serialize(engine::ReportForCoordinators(*row)),
                            "application/json");
            },
            std::move(c.reply));
    });
    routes_.Add({"GET"}, "/api/v1/alerts", [this](Call& c) {
        auto filter = FilterOf(c.Query());
        if (auto* bad = std::get_if<Response>(&filter)) return c.reply(std::move(*bad));
        Authorized(
            Bearer(c.req), kCoordinator | kAdmin, c.client,
            [this, f = std::get<engine::AlertFilter>(filter)](const engine::ApiToken&) {
                return AlertList(f);
            },
            std::move(c.reply));
    });
    routes_.Add({"GET"}, "/api/v1/alerts/{ref}", [this](Call& c) {
        Authorized(
            Bearer(c.req), kCoordinator | kAdmin, c.client,
            [this, ref = c.params["ref"]](const engine::ApiToken&) {
                const auto record = services_.store->FindAlertRecord(ref);
                if (!record)
                    return JsonError(http::status::not_found, "not_found", "no alert " + ref);
                auto out = AlertRecordJson(*record, services_.public_url);
                json::array photos;
                for (const auto& p : services_.store->AlertPhotos(ref))
                    photos.push_back(PhotoJson(p));
                out["photos"] = std::move(photos);
                return Make(http::status::ok, json::serialize(out), "application/json");
            },
            std::move(c.reply));
    });
    routes_.Add({"GET"}, "/api/v1/alerts/{ref}/cap", [this](Call& c) {
        const auto query = c.Query();
        const auto v = query.find("version");
        const int version =
            v == query.end() || v->second.empty() ? 0 : std::atoi(v->second.c_str());
        Authorized(
            Bearer(c.req), kAnyRole, c.client,
            [this, ref = c.params["ref"], version](const engine::ApiToken& who) {
                return CapResponse(ref, version, who.role);
            },
            std::move(c.reply));
    });
    // A coordinator sets a signal's level by hand, or lifts that: by the signal's id, or by
    // its alert's reference.
    for (const std::string kind : {"signals", "alerts"}) {
        routes_.Add({"POST"}, "/api/v1/" + kind + "/{id}/override", [this, kind](Call& c) {
            auto body = std::make_shared<std::string>(c.req.body());
            Authorized(
                Bearer(c.req), kCoordinator | kAdmin, c.client,
                [this, kind, id = c.params["id"], body](const engine::ApiToken& who) {
                    return OverrideResponse(kind, id, *body, who);
                },
                std::move(c.reply));
        });
    }
    // Admins: every stored signal graded again with proposed rules; nothing written.
    routes_.Add({"POST"}, "/api/v1/grading/replay", [this](Call& c) {
        auto body = std::make_shared<std::string>(c.req.body());
        Authorized(
            Bearer(c.req), kAdmin, c.client,
            [this, body](const engine::ApiToken&) { return ReplayResponse(*body); },
            std::move(c.reply));
    });
    // Coordinators' actions on an alert.
    // (Not a structured binding: clang 14, which builds the fuzzers, cannot capture one.)
    for (const auto& named : {std::pair{"approve", engine::AlertAction::kApprove},
                              std::pair{"update", engine::AlertAction::kRevise},
                              std::pair{"cancel", engine::AlertAction::kCancel}}) {
        const engine::AlertAction action = named.second;
        routes_.Add(
            {"POST"}, std::string("/api/v1/alerts/{ref}/") + named.first, [this, action](Call& c) {
                auto body = std::make_shared<std::string>(c.req.body());
                Authorized(
                    Bearer(c.req), kCoordinator | kAdmin, c.client,
                    [this, ref = c.params["ref"], action, body](const engine::ApiToken& who) {
                        return ActOn(ref, action, who, *body);
                    },
                    std::move(c.reply));
            });
    }
}

// GET shows what is being acknowledged and a button; POST records it. Link scanners
// that fetch every link in a message only ever GET.
Response Server::Impl::SubmitReport(const std::string& body) {
    auto outcome = services_.intake->Submit(body, "http");
    if (!outcome.ok()) {
        Response res =
            JsonError(http::status::service_unavailable, "unavailable",
                      "the report could not be stored; send it again: " + outcome.error().message);
        res.set(http::field::retry_after, "5");
        return res;
    }
    const auto& receipt = outcome.value().receipt;
    const auto status =
        receipt.status == engine::ReceiptStatus::kRejected    ? http::status::unprocessable_entity
        : receipt.status == engine::ReceiptStatus::kDuplicate ? http::status::ok
                                                              : http::status::accepted;
    return Make(status, receipt.ToJson(), "application/json");
}

}  // namespace ldis::web
