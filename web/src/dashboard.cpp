// The coordinators' dashboard and the grading replay page.
#include "ldis/engine/charts.hpp"
#include "ldis/engine/drill.hpp"
#include "ldis/engine/insight.hpp"
#include "pages_common.hpp"

namespace ldis::web {

void Pages::Trends(const WebRequest& req, const std::map<std::string, std::string>& district_level,
                   const std::map<std::string, int>& district_live, void* data_ptr) {
    auto& d = *static_cast<mus::data*>(data_ptr);
    const auto q = [&](const char* k) {
        auto it = req.query.find(k);
        return it == req.query.end() ? std::string() : it->second;
    };
    // The last 12 months, narrowed as the history is by district and substance.
    const std::int64_t now = NowMs();
    // Without the settings and evidence, which only the quarterly report needs: the dashboard
    // reads a year of reports on every view.
    auto insight = services_.store->ReadInsight(now - 52 * engine::kWeekMs, now, false);
    const std::string district = q("district"), family = q("substance");
    std::erase_if(insight.reports, [&](const engine::ReportTally& r) {
        return (!district.empty() && r.district != district) ||
               (!family.empty() && r.family != family);
    });
    std::erase_if(insight.versions, [&](const engine::VersionTally& v) {
        return (!district.empty() && v.district != district) ||
               (!family.empty() && v.family != family);
    });
    if (!district.empty())
        std::erase_if(insight.timings,
                      [&](const engine::AlertTiming& t) { return t.district != district; });
    // Each bar leads to the history of that week, filtered by what the bar counts.
    const auto week = [](std::int64_t w) {
        return "since=" + IsoTime(w).substr(0, 10) +
               "&until=" + IsoTime(w + engine::kWeekMs).substr(0, 10);
    };
    const auto with_filters = [&](std::string url) {
        if (!district.empty() && url.find("district=") == std::string::npos)
            url += "&district=" + UrlEncode(district);
        if (!family.empty() && url.find("substance=") == std::string::npos)
            url += "&substance=" + UrlEncode(family);
        return url + "#history";
    };
    struct Chart {
        const char* id;
        const char* title;
        engine::Series series;
        std::function<std::string(const std::string&, std::int64_t)> link;
    };
    std::vector<Chart> charts;
    charts.push_back({"chart-family", "Reports per week by substance family",
                      engine::ReportSeries(insight, engine::ReportBy::kFamily),
                      [&](const std::string& c, std::int64_t w) {
                          return with_filters("/?" + week(w) +
                                              (c == "Other" || c == "not known"
                                                   ? std::string()
                                                   : "&substance=" + UrlEncode(c)));
                      }});
    charts.push_back({"chart-district", "Reports per week by district",
                      engine::ReportSeries(insight, engine::ReportBy::kDistrict),
                      [&](const std::string& c, std::int64_t w) {
                          return with_filters(
                              "/?" + week(w) +
                              (c == "Other" ? std::string() : "&district=" + UrlEncode(c)));
                      }});
    charts.push_back(
        {"chart-source", "Reports per week by source",
         engine::ReportSeries(insight, engine::ReportBy::kSourceType),
         [&](const std::string&, std::int64_t w) { return with_filters("/?" + week(w)); }});
    charts.push_back({"chart-alerts", "Alerts issued per week by level",
                      engine::AlertSeries(insight), [&](const std::string& c, std::int64_t w) {
                          return with_filters("/?" + week(w) + "&level=" + UrlEncode(c));
                      }});
    mus::data list{mus::data::type::list};
    for (const auto& c : charts) {
        mus::data one;
        one.set("id", c.id);
        one.set("title", c.title);
        one.set("svg", engine::WeeklyChartSvg(c.series, c.id, c.title, c.link));
        one.set("table", engine::WeeklyTableHtml(c.series, std::string(c.title) + ": the numbers"));
        list << one;
    }
    d.set("charts", list);
    d.set("map", engine::DistrictMapSvg(district_level, district_live, [](const std::string& name) {
              return "/?district=" + UrlEncode(name) + "#history";
          }));
    mus::data tiles{mus::data::type::list};
    for (const auto& t : engine::DistrictTiles()) {
        mus::data row;
        row.set("district", t.district);
        row.set("href", "/?district=" + UrlEncode(t.district) + "#history");
        const auto lv = district_level.find(t.district);
        row.set("level", lv == district_level.end() ? std::string("none") : lv->second);
        const auto n = district_live.find(t.district);
        row.set("count", std::to_string(n == district_live.end() ? 0 : n->second));
        tiles << row;
    }
    d.set("map_rows", tiles);
    const auto timing = engine::SummariseTimings(insight.timings);
    const auto said = [](std::int64_t ms) {
        return ms < 0 ? std::string("none yet") : engine::HumanDuration(ms);
    };
    d.set("timing_alerts", std::to_string(timing.alerts));
    d.set("timing_inbox_median", said(timing.to_inbox_median_ms));
    d.set("timing_inbox_slowest", said(timing.to_inbox_slowest_ms));
    if (!timing.slowest_to_inbox.empty()) d.set("timing_slowest_ref", timing.slowest_to_inbox);
    d.set("timing_ack_median", said(timing.to_ack_median_ms));
    d.set("timing_ack_slowest", said(timing.to_ack_slowest_ms));
    if (!district.empty() || !family.empty())
        d.set("trends_narrowed", (district.empty() ? std::string() : district) +
                                     (district.empty() || family.empty() ? "" : ", ") +
                                     Pretty(family));
    d.set("quarter", engine::QuarterOf(now).name);
}

WebResponse Pages::Quarterly(const WebRequest& req, const Sessions::Session& session) {
    const auto q = [&](const char* k) {
        auto it = req.query.find(k);
        return it == req.query.end() ? std::string() : it->second;
    };
    const auto quarter = q("quarter").empty()
                             ? engine::Result<engine::Quarter>(engine::QuarterOf(NowMs()))
                             : engine::ParseQuarter(q("quarter"));
    if (!quarter.ok() || (q("format") != "" && q("format") != "csv" && q("format") != "html")) {
        mus::data d;
        d.set("next", "/");
        d.set("error", !quarter.ok() ? "The quarter is wrong: " + quarter.error().message
                                     : std::string("The format is csv or html"));
        return Render("login", "Quarterly report", &d, session, 400);
    }
    const auto& period = quarter.value();
    const auto data = services_.store->ReadInsight(period.from_ms, period.to_ms);
    const auto tables = engine::QuarterlyTables(data);
    WebResponse r;
    r.headers.emplace_back("Cache-Control", "no-store");
    if (q("format") == "csv") {
        r.body = engine::QuarterlyCsv(period, tables);
        r.content_type = "text/csv; charset=utf-8";
        r.headers.emplace_back("Content-Disposition",
                               "attachment; filename=\"ldis-" + period.name + ".csv\"");
        return r;
    }
    r.body = engine::QuarterlyHtml(period, tables, data, Issuer(), NowMs());
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'");
    r.headers.emplace_back("X-Frame-Options", "DENY");
    return r;
}

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
    mus::data drafts{mus::data::type::list}, live{mus::data::type::list},
        drills{mus::data::type::list};
    bool has_drafts = false, has_live = false, has_drills = false, has_unconfirmed = false;
    std::map<std::string, std::string> district_level;  // the highest live level
    std::map<std::string, int> district_live;
    mus::data unconfirmed{mus::data::type::list};
    for (const auto& a : everything.alerts) {
        if (a.drill != engine::Drill::kNone && a.status != engine::AlertStatus::kDraft) {
            // Exercises and tests are shown apart and never count in the live figures; only
            // the live ones, and those that ended today, are listed here.
            const bool live_drill = engine::IsLive(a.status);
            if (!live_drill && a.updated_at_ms < NowMs() - 24LL * 3600 * 1000) continue;
            auto row = AlertRow(a);
            const auto [acked, partners] = AckProgress(services_.store->Deliveries(a.reference));
            row.set("acked", std::to_string(acked));
            row.set("partners", std::to_string(partners));
            drills << row;
            has_drills = true;
        } else if (a.status == engine::AlertStatus::kDraft) {
            auto row = AlertRow(a);
            row.set("csrf", session.csrf);
            drafts << row;
            has_drafts = true;
        } else if (a.status == engine::AlertStatus::kIssued ||
                   a.status == engine::AlertStatus::kUpdated) {
            ++live_by_level[Word(a.level)];
            ++district_live[a.district];
            auto& highest = district_level[a.district];
            if (engine::ToString(a.level) == "red" || highest.empty() ||
                (highest == "green" && engine::ToString(a.level) == "amber"))
                highest = std::string(engine::ToString(a.level));
            auto row = AlertRow(a);
            const auto rows = services_.store->Deliveries(a.reference);
            const auto [acked, partners] = AckProgress(rows);
            row.set("acked", std::to_string(acked));
            row.set("partners", std::to_string(partners));
            live << row;
            has_live = true;
            // Partners who have not said what they did by their deadline (issue 17 §4).
            for (const auto& r :
                 engine::UnconfirmedByDeadline(engine::SummariseDrill(rows), NowMs())) {
                mus::data u;
                u.set("reference", a.reference);
                u.set("tag", Tag(a.level));
                u.set("level", Word(a.level));
                u.set("partner", r.partner);
                u.set("due", engine::HumanTimeMs(r.due_ms));
                u.set("answer", std::string(engine::AnswerLabel(r.answer)));
                unconfirmed << u;
                has_unconfirmed = true;
            }
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
    d.set("unconfirmed", unconfirmed);
    if (has_unconfirmed) d.set("has_unconfirmed", true);
    d.set("drills", drills);
    if (has_drills) d.set("has_drills", true);
    {
        // Alerts from the peer instances (issue 16 §1): those waiting for a decision, and
        // the latest others with what became of them.
        mus::data waiting{mus::data::type::list}, received{mus::data::type::list};
        bool has_waiting = false, has_received = false;
        for (const auto& f : services_.store->Federated(50)) {
            mus::data row;
            row.set("id", std::to_string(f.id));
            row.set("peer", f.peer);
            row.set("reference", f.reference);
            row.set("version", std::to_string(f.version));
            row.set("msg_type", f.msg_type);
            row.set("headline", f.headline);
            row.set("level", f.level);
            row.set("tag", Tag(f.level));
            row.set("district", f.district);
            row.set("received", engine::HumanTimeMs(f.received_at_ms));
            row.set("decision", f.decision);
            if (f.cap_status != "Actual") row.set("drill", f.cap_status);
            row.set("csrf", session.csrf);
            if (f.decision == "review") {
                waiting << row;
                has_waiting = true;
            } else {
                received << row;
                has_received = true;
            }
        }
        d.set("federated_waiting", waiting);
        d.set("federated", received);
        if (has_waiting) d.set("has_federated_waiting", true);
        if (has_received) d.set("has_federated", true);
    }
    if (services_.feeds) {
        // The expected feeds (issue 16 §3): a silent one first, in red.
        mus::data feeds{mus::data::type::list};
        auto statuses = services_.feeds();
        std::stable_sort(statuses.begin(), statuses.end(), [](const auto& a, const auto& b) {
            return a.state.silent > b.state.silent;
        });
        for (const auto& f : statuses) {
            mus::data row;
            row.set("source_type", Pretty(f.feed.source_type));
            row.set("organisation", f.feed.organisation);
            row.set("last_seen", engine::HumanTimeMs(f.state.last_seen_ms));
            row.set("age", engine::HumanDuration(NowMs() - f.state.last_seen_ms));
            row.set("limit", engine::HumanDuration(f.feed.max_silence_ms));
            if (f.state.silent) row.set("silent", true);
            feeds << row;
        }
        d.set("feeds", feeds);
        d.set("has_feeds", true);
    }
    mus::data failed{mus::data::type::list};
    bool has_failed = false;
    for (const auto& del : services_.store->FailedDeliveries(50)) {
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

    Trends(req, district_level, district_live, &d);

    engine::AlertFilter filter;
    filter.level = q("level");
    filter.status = q("status");
    filter.district = q("district");
    filter.authority = q("authority");
    filter.family = q("substance");
    filter.q = q("q");
    // The history shows real alerts unless asked for exercises and tests, or all.
    engine::Drill drill = engine::Drill::kNone;
    if (q("drill") != "all") {
        engine::ParseDrill(q("drill"), drill);
        filter.drill = drill;
    }
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
    d.set("filter_drills",
          Options(
              {{"", "Real alerts"}, {"exercise", "Exercises"}, {"test", "Tests"}, {"all", "All"}},
              q("drill") == "all" ? "all" : std::string(engine::ToString(drill)), "drill", false));
    const auto link = [&](std::size_t p) {
        std::string url = "/?page=" + std::to_string(p);
        for (const char* k : {"level", "status", "district", "authority", "substance", "q", "since",
                              "until", "drill"}) {
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
        {"adopted", "The other LDIS's alert was adopted and sent to your partners"},
        {"declined", "The other LDIS's alert was declined: your partners were not sent it"},
        {"federated-stale", "That alert from another LDIS was decided already"},
        {"approved", "The alert was approved and issued"},
        {"updated", "An update of the alert was issued"},
        {"cancelled", "The alert was cancelled"}};
    if (auto it = kDone.find(q("done")); it != kDone.end()) d.set("flash", it->second);
    if (session.role == "admin") d.set("admin", true);
    return Render("dashboard", "Dashboard", &d, session);
}

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

}  // namespace ldis::web
