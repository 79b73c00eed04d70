#include "ldis/engine/feeds.hpp"

#include <boost/json.hpp>

#include "ldis/engine/text.hpp"

namespace ldis::engine {

FeedWatch::FeedWatch(std::vector<FeedSpec> feeds, std::int64_t now_ms,
                     const std::vector<std::optional<FeedState>>& restored)
    : feeds_(std::move(feeds)), states_(feeds_.size()) {
    for (std::size_t i = 0; i < states_.size(); ++i) {
        states_[i].last_seen_ms = now_ms;
        states_[i].since_ms = now_ms;
        if (i < restored.size() && restored[i] && restored[i]->silent) {
            states_[i].silent = true;
            states_[i].since_ms = restored[i]->since_ms;
        }
    }
}

std::optional<FeedChange> FeedWatch::Seen(std::string_view source_type,
                                          std::string_view organisation, std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < feeds_.size(); ++i) {
        if (feeds_[i].source_type != source_type || feeds_[i].organisation != organisation)
            continue;
        FeedState& s = states_[i];
        const std::int64_t before = s.last_seen_ms;
        s.last_seen_ms = std::max(s.last_seen_ms, now_ms);
        if (!s.silent) return std::nullopt;
        s.silent = false;
        s.since_ms = now_ms;
        return FeedChange{FeedChange::Kind::kBack, feeds_[i], before, now_ms};
    }
    return std::nullopt;
}

std::vector<FeedChange> FeedWatch::Check(std::int64_t now_ms) {
    std::lock_guard lock(mutex_);
    std::vector<FeedChange> out;
    for (std::size_t i = 0; i < feeds_.size(); ++i) {
        FeedState& s = states_[i];
        if (s.silent || now_ms - s.last_seen_ms <= feeds_[i].max_silence_ms) continue;
        s.silent = true;
        s.since_ms = now_ms;
        out.push_back({FeedChange::Kind::kSilent, feeds_[i], s.last_seen_ms, now_ms});
    }
    return out;
}

void FeedWatch::Revert(const FeedChange& change) {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < feeds_.size(); ++i) {
        if (feeds_[i] != change.feed) continue;
        // Silent again (or not yet told): the next check or report makes the change again.
        states_[i].silent = change.kind == FeedChange::Kind::kBack;
    }
}

std::vector<FeedStatus> FeedWatch::Status() const {
    std::lock_guard lock(mutex_);
    std::vector<FeedStatus> out;
    for (std::size_t i = 0; i < feeds_.size(); ++i) out.push_back({feeds_[i], states_[i]});
    return out;
}

std::string FeedKey(const FeedSpec& feed) {
    return "feed:" + feed.source_type + "/" + feed.organisation;
}

std::string FeedStateJson(const FeedState& state) {
    return boost::json::serialize(
        boost::json::object{{"silent", state.silent}, {"since_ms", state.since_ms}});
}

std::optional<FeedState> ParseFeedState(std::string_view json) {
    boost::json::error_code ec;
    const auto v = boost::json::parse(json, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& o = v.as_object();
    const auto* silent = o.if_contains("silent");
    const auto* since = o.if_contains("since_ms");
    if (!silent || !silent->is_bool() || !since || !since->is_int64()) return std::nullopt;
    FeedState s;
    s.silent = silent->as_bool();
    s.since_ms = since->as_int64();
    return s;
}

std::string FeedNoticeDetail(const FeedChange& change) {
    const auto minutes = [](std::int64_t ms) {
        const std::int64_t m = std::max<std::int64_t>(ms / 60000, 0);
        if (m >= 120) return std::to_string(m / 60) + " hours";
        if (m >= 1) return std::to_string(m) + (m == 1 ? " minute" : " minutes");
        return std::to_string(std::max<std::int64_t>(ms / 1000, 0)) + " seconds";
    };
    return boost::json::serialize(boost::json::object{
        {"source_type", change.feed.source_type},
        {"organisation", change.feed.organisation},
        {"last_seen", change.last_seen_ms > 0 ? IsoTimeMs(change.last_seen_ms) : std::string()},
        {"silent_for", minutes(change.now_ms - change.last_seen_ms)},
        {"limit", minutes(change.feed.max_silence_ms)}});
}

}  // namespace ldis::engine
