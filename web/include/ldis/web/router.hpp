#pragma once
// A route table: every path the HTTP server answers, with its methods, in one list
// (Server::Impl::Routes in web/src/server.cpp). Pure and header-only: no Beast, no sockets;
// tests/unit/router_test.cpp tests it alone.

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ldis::web {

// What a pattern's {name} segments matched: "/api/v1/alerts/{ref}/cap" on
// "/api/v1/alerts/KM-2026-0007/cap" gives ref = "KM-2026-0007".
class RouteParams {
public:
    // "" for a name the pattern does not have.
    const std::string& operator[](std::string_view name) const {
        static const std::string kNone;
        const auto it = values_.find(name);
        return it == values_.end() ? kNone : it->second;
    }
    void Set(std::string name, std::string value) {
        values_.insert_or_assign(std::move(name), std::move(value));
    }

private:
    std::map<std::string, std::string, std::less<>> values_;
};

// Routes to handlers of type `Handler`. A pattern is a path of segments, each literal or a
// {name} that matches one non-empty segment; a last segment {name*} matches the rest of the
// path, slashes and nothing included. Routes are tried in the order they were added: put a
// literal route before a pattern that would also match it.
template <class Handler>
class Router {
public:
    Router& Add(std::initializer_list<std::string_view> methods, std::string_view pattern,
                Handler handler) {
        Route r;
        for (const auto m : methods) r.methods.emplace_back(m);
        r.segments = Split(pattern);
        r.handler = std::move(handler);
        routes_.push_back(std::move(r));
        return *this;
    }

    struct Found {
        const Handler* handler = nullptr;  // null: no route for this method and path
        RouteParams params;
        // When the path has routes but none takes the method: the methods it takes
        // ("GET, POST"), for 405 and its Allow header. "" when no route has the path.
        std::string allow;
    };

    Found Find(std::string_view method, std::string_view path) const {
        Found found;
        const auto segments = Split(path);
        for (const auto& r : routes_) {
            RouteParams params;
            if (!Match(r.segments, segments, params)) continue;
            bool takes = false;
            for (const auto& m : r.methods) {
                takes = takes || m == method;
                if (found.allow.find(m) == std::string::npos)
                    found.allow += (found.allow.empty() ? "" : ", ") + m;
            }
            if (takes) {
                found.handler = &r.handler;
                found.params = std::move(params);
                found.allow.clear();
                return found;
            }
        }
        return found;
    }

private:
    struct Route {
        std::vector<std::string> methods;
        std::vector<std::string> segments;
        Handler handler;
    };

    // "/a/b/" -> {"a", "b", ""}: a trailing slash is a segment of its own, so "/alerts/"
    // is not "/alerts".
    static std::vector<std::string> Split(std::string_view path) {
        std::vector<std::string> out;
        if (path.starts_with('/')) path.remove_prefix(1);
        for (;;) {
            const auto slash = path.find('/');
            out.emplace_back(path.substr(0, slash));
            if (slash == std::string_view::npos) break;
            path.remove_prefix(slash + 1);
        }
        return out;
    }

    static bool Match(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
                      RouteParams& params) {
        for (std::size_t i = 0; i < pattern.size(); ++i) {
            const std::string& p = pattern[i];
            const bool named = p.size() > 2 && p.front() == '{' && p.back() == '}';
            if (i >= path.size()) return false;
            if (named && p[p.size() - 2] == '*' && i + 1 == pattern.size()) {
                std::string rest;
                for (std::size_t j = i; j < path.size(); ++j) rest += (j > i ? "/" : "") + path[j];
                params.Set(p.substr(1, p.size() - 3), std::move(rest));
                return true;
            }
            if (named) {
                if (path[i].empty()) return false;
                params.Set(p.substr(1, p.size() - 2), path[i]);
            } else if (p != path[i]) {
                return false;
            }
        }
        return pattern.size() == path.size();
    }

    std::vector<Route> routes_;
};

}  // namespace ldis::web
