// An alert's record for coordinators, and their actions on it (approve, update, cancel,
// override).
#include "ldis/engine/drill.hpp"
#include "ldis/engine/messages.hpp"
#include "pages_common.hpp"

namespace ldis::web {

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
    d.set("level", Word(a.level));
    d.set("level_label", LevelLabel(a.level));
    d.set("tag", Tag(a.level));
    d.set("status", Word(a.status));
    d.set("family", Pretty(a.family));
    d.set("district", a.district);
    d.set("authority", a.authority);
    d.set("place", engine::Place(a.district, a.authority));
    d.set("version", std::to_string(a.version));
    d.set("confidence", a.confidence);
    d.set("audience", a.audience);
    {
        // Who it is for, as the wording form offers it: only a coordinator makes an alert
        // public, and only a public one is published at /public/alerts.
        static const std::map<std::string, std::string, std::less<>> kSaid = {
            {"professionals", "Professionals: partners who work with people who use drugs"},
            {"services", "Services: also shared with people who use drugs through services"},
            {"public", "The public: also published at /public/alerts, advice only"}};
        mus::data audiences{mus::data::type::list};
        for (const auto& word : engine::Audiences()) {
            mus::data o;
            o.set("value", word);
            o.set("label", kSaid.at(word));
            if (word == a.audience) o.set("checked", true);
            audiences << o;
        }
        d.set("audiences", audiences);
        if (a.audience == "public" && a.issued_at_ms > 0 && a.drill == engine::Drill::kNone)
            d.set("public_link", "/public/alerts/" + a.reference);
    }
    d.set("reports", std::to_string(a.reports));
    {
        // Photos of the batch (issue 17 §3): every photo of the alert's reports; those the
        // latest version carries are ticked in the wording form.
        const auto photos = services_.store->AlertPhotos(a.reference);
        std::vector<engine::VersionPhoto> sent;
        int sent_version = 0;
        if (!record->versions.empty()) {
            sent = engine::VersionPhotos(record->versions.back().photos);
            sent_version = record->versions.back().version;
        }
        mus::data list{mus::data::type::list};
        int number = 0;
        for (const auto& p : photos) {
            mus::data o;
            o.set("id", p.id);
            o.set("reference", a.reference);
            o.set("number", std::to_string(++number));
            o.set("width", std::to_string(p.width));
            o.set("height", std::to_string(p.height));
            o.set("shown_width", std::to_string(std::min(p.width, 480)));
            std::string report = p.report_id;
            for (const auto& r : record->reports)
                if (r.id == p.report_id) report = r.reference;
            o.set("report", report);
            if (std::any_of(sent.begin(), sent.end(),
                            [&](const engine::VersionPhoto& v) { return v.id == p.id; })) {
                o.set("sent", true);
                o.set("sent_version", std::to_string(sent_version));
            }
            list << o;
        }
        if (number > 0) d.set("has_photos", true);
        d.set("photos", list);
    }
    if (a.provisional) d.set("provisional", true);
    if (a.drill != engine::Drill::kNone) d.set("drill", std::string(engine::DrillMarking(a.drill)));
    if (!a.override.level.empty()) {
        d.set("overridden", true);
        d.set("override_by", a.override.by);
        d.set("override_reason", a.override.reason);
        d.set("override_at", engine::HumanTimeMs(a.override.at_ms));
        d.set("rules_level", a.override.rules_level);
        if (a.override.rules_level != a.override.level) d.set("rules_differ", true);
    }
    {
        // Every reason for the level, strongest first: messages carry only the strongest
        // (issue 17 §6), the record keeps the rest.
        mus::data reasons{mus::data::type::list};
        bool any = false;
        if (!record->versions.empty()) {
            json::error_code bad;
            const auto rules = json::parse(record->versions.back().rules, bad);
            std::vector<std::pair<engine::Level, std::string>> fired;
            if (!bad && rules.is_array()) {
                for (const auto& r : rules.as_array()) {
                    if (!r.is_object()) continue;
                    const auto* reason = r.as_object().if_contains("reason");
                    const auto* level = r.as_object().if_contains("level");
                    if (reason == nullptr || !reason->is_string()) continue;
                    engine::Level l = engine::Level::kNone;
                    if (level != nullptr && level->is_string())
                        engine::ParseLevel(level->as_string(), l);
                    fired.emplace_back(l, std::string(reason->as_string()));
                }
            }
            std::stable_sort(fired.begin(), fired.end(),
                             [](const auto& x, const auto& y) { return x.first > y.first; });
            for (const auto& [level, reason] : fired) {
                reasons << mus::data(reason);
                any = true;
            }
        }
        if (any) {
            d.set("reasons", reasons);
            d.set("has_reasons", true);
        }
    }
    using engine::AlertStatus;
    const bool live = a.status == AlertStatus::kDraft || a.status == AlertStatus::kIssued ||
                      a.status == AlertStatus::kUpdated;
    if (live) d.set("live", true);
    if (a.status == AlertStatus::kDraft || a.provisional) {
        d.set("can_approve", true);
        d.set("approve_label",
              a.status == AlertStatus::kDraft ? "Approve and issue" : "Confirm this alert");
    }
    const auto [acked, partners] = AckProgress(record->deliveries);
    d.set("acked", std::to_string(acked));
    d.set("partners", std::to_string(partners));
    {
        // The peers' partners' acknowledgements of this alert, sent back as counts (issue 16
        // §1): "Kent LDIS partners: 7 of 9 acknowledged".
        json::error_code bad;
        const auto rolled =
            json::parse(services_.store->Setting("federation:acks:" + reference), bad);
        mus::data peers{mus::data::type::list};
        bool any = false;
        if (!bad && rolled.is_object()) {
            for (const auto& [peer, counts] : rolled.as_object()) {
                if (!counts.is_object()) continue;
                const auto& c = counts.as_object();
                const auto number = [&](const char* key) {
                    const auto* v = c.if_contains(key);
                    return v && v->is_int64() ? v->as_int64() : 0;
                };
                const auto* name = c.if_contains("name");
                mus::data row;
                row.set("peer", name && name->is_string() && !name->as_string().empty()
                                    ? std::string(name->as_string())
                                    : std::string(peer));
                row.set("acked", std::to_string(number("acknowledged")));
                row.set("partners", std::to_string(number("partners")));
                row.set("at", engine::HumanTimeMs(number("at_ms")));
                peers << row;
                any = true;
            }
        }
        d.set("peer_acks", peers);
        if (any) d.set("has_peer_acks", true);
    }
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
    const engine::AlertVersion* previous = nullptr;
    for (const auto& v : record->versions) {
        mus::data row;
        row.set("version", std::to_string(v.version));
        row.set("status", Word(v.status));
        row.set("level", Word(v.level));
        row.set("when", engine::HumanTimeMs(v.created_at_ms));
        std::string changes;
        if (previous == nullptr) {
            changes = "First version";
        } else {
            const auto add = [&](const std::string& what) {
                changes += (changes.empty() ? "" : "; ") + what;
            };
            if (v.status != previous->status)
                add("status " + Word(previous->status) + " to " + Word(v.status));
            if (v.level != previous->level)
                add("level " + Word(previous->level) + " to " + Word(v.level));
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
    {
        // What each partner said it did (issue 17 §4), and whether its deadline passed
        // without it saying so.
        const auto summary = engine::SummariseDrill(record->deliveries);
        const std::int64_t now = NowMs();
        mus::data answers{mus::data::type::list};
        for (const auto& r : summary.responses) {
            mus::data row;
            row.set("partner", r.partner);
            row.set("answer", std::string(engine::AnswerLabel(r.answer)));
            row.set("note", r.answer_note);
            row.set("when", r.answered_at_ms > 0 ? engine::HumanTimeMs(r.answered_at_ms) : "");
            row.set("due", r.due_ms > 0 ? engine::HumanTimeMs(r.due_ms) : "none asked");
            if (r.due_ms > 0 && r.due_ms <= now && !engine::ConfirmsAction(r.answer))
                row.set("overdue", true);
            answers << row;
        }
        d.set("answers", answers);
        if (!summary.responses.empty()) d.set("has_answers", true);
    }
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
    item.status = Word(a.status);
    item.level = Word(a.level);
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
    if (const auto templates =
            services_.message_templates ? services_.message_templates() : nullptr) {
        const auto email = engine::RenderEmail(*templates, item, context);
        d.set("preview_subject", email.subject);
        d.set("preview_email", email.text);
        d.set("preview_teams", engine::WebhookBody(*templates, "teams", item, context));
        d.set("preview_slack", engine::WebhookBody(*templates, "slack", item, context));
    }
    const auto [headline, summary] = engine::Headline(item);
    d.set("preview_sms", headline + "\n" + summary + "\nAcknowledge: " + context.ack_url);
    return Render("alert", a.reference, &d, session);
}

// Admins: paste a proposed rules file and see what it would change over every stored
// signal (engine::Replay); nothing is written.

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
    if (what != engine::AlertAction::kCancel) {
        // Who the alert is for, when the coordinator changed it (a public alert is published
        // at /public/alerts): the store refuses a word that is not an audience.
        const auto form = ParseForm(req.body);
        const auto current = services_.store->FindAlert(reference);
        if (const auto it = form.find("audience");
            it != form.end() && current && it->second != current->audience)
            wording.audience = it->second;
        // The photos ticked go with this version; a form that offered photos and had none
        // ticked sends none (only the wording form offers them).
        if (what == engine::AlertAction::kRevise &&
            !services_.store->AlertPhotos(reference).empty()) {
            wording.photos.emplace();
            for (auto [it, end] = form.equal_range("photo"); it != end; ++it)
                wording.photos->push_back(it->second);
        }
    }
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

WebResponse Pages::DrillReport(const std::string& reference, const Sessions::Session& session) {
    const auto record = services_.store->FindAlertRecord(reference);
    mus::data d;
    if (!record) {
        d.set("error", "There is no alert " + reference);
        d.set("next", "/");
        return Render("login", "Alert not found", &d, session, 404);
    }
    const auto& a = record->alert;
    d.set("reference", a.reference);
    d.set("level", Word(a.level));
    d.set("tag", Tag(a.level));
    d.set("status", Word(a.status));
    d.set("family", Pretty(a.family));
    d.set("district", a.district);
    if (a.drill != engine::Drill::kNone) d.set("drill", std::string(engine::DrillMarking(a.drill)));
    d.set("issued", a.issued_at_ms > 0 ? engine::HumanTimeMs(a.issued_at_ms) : "not issued");
    const auto summary = engine::SummariseDrill(record->deliveries);
    mus::data rows{mus::data::type::list};
    mus::data silent{mus::data::type::list};
    for (const auto& r : summary.responses) {
        mus::data row;
        row.set("partner", r.partner);
        row.set("contact", r.contact + " (" + r.channel + ")");
        row.set("sent", engine::HumanTimeMs(r.sent_at_ms));
        row.set("delivered",
                r.delivered_at_ms > 0 ? engine::HumanTimeMs(r.delivered_at_ms) : "not delivered");
        if (r.to_acknowledge_ms >= 0) {
            row.set("acknowledged", engine::HumanTimeMs(r.acknowledged_at_ms));
            row.set("took", engine::HumanDuration(r.to_acknowledge_ms));
        } else {
            row.set("acknowledged", "not acknowledged");
            row.set("took", "-");
            mus::data s;
            s.set("partner", r.partner);
            if (r.escalated) s.set("escalated", true);
            silent << s;
        }
        if (r.escalated) row.set("escalated", true);
        rows << row;
    }
    d.set("responses", rows);
    if (!summary.responses.empty()) d.set("has_responses", true);
    d.set("silent", silent);
    if (summary.acknowledged < static_cast<int>(summary.responses.size()))
        d.set("has_silent", true);
    d.set("acknowledged", std::to_string(summary.acknowledged));
    d.set("partners", std::to_string(summary.responses.size()));
    d.set("median", engine::HumanDuration(summary.median_ms));
    d.set("slowest", engine::HumanDuration(summary.slowest_ms));
    d.set("printed", engine::HumanTimeMs(NowMs()));
    return Render("drill", "Drill report " + a.reference, &d, session);
}

WebResponse Pages::AlertPhoto(const std::string& reference, const std::string& id) {
    const auto photos = services_.store->AlertPhotos(reference);
    const bool ours = std::any_of(photos.begin(), photos.end(),
                                  [&](const engine::PhotoRow& p) { return p.id == id; });
    auto found = ours ? services_.store->FindPhoto(id, true) : std::nullopt;
    if (found) return JpegResponse(std::move(found->second));
    WebResponse r;
    r.status = 404;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "No such photo of " + reference;
    return r;
}

}  // namespace ldis::web
