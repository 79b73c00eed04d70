#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ldis::engine {

// Silent feeds (issue 16 §3). A custody suite's system or a hospital's integration that
// stops sending is itself a signal, and a broken pipe during a cluster is the worst case.
// Each expected feed (ldisd.toml [[feeds]]) is a source type and an organisation with the
// longest silence that is normal for it; a report from it, or a heartbeat on
// ldis/v1/heartbeat/{source}/{organisation}, shows it is alive. A feed silent past its
// limit tells the coordinators once, and once more when it comes back.

struct FeedSpec {
    std::string source_type;   // the report's source.type, e.g. "custody"
    std::string organisation;  // its source.organisation, as the feed sends it
    std::int64_t max_silence_ms = 0;
    bool operator==(const FeedSpec&) const = default;
};

// A feed's state as the watch holds it, and as the store keeps it between starts (only
// `silent` and `since_ms`, written with the notice that changed them: FeedStateJson).
struct FeedState {
    std::int64_t last_seen_ms = 0;  // the latest report or heartbeat; at start, the start
    bool silent = false;            // the coordinators were told it fell silent
    std::int64_t since_ms = 0;      // when it last changed (fell silent, or came back)
};

// A change the coordinators hear of.
struct FeedChange {
    enum class Kind { kSilent, kBack } kind = Kind::kSilent;
    FeedSpec feed;
    std::int64_t last_seen_ms = 0;  // before the change
    std::int64_t now_ms = 0;
};

// One feed as the dashboard and /metrics show it.
struct FeedStatus {
    FeedSpec feed;
    FeedState state;
};

// The watch over every configured feed. Thread-safe: reports arrive on the broker's and
// the web's threads, the check runs on the io thread.
class FeedWatch {
public:
    // Every feed starts as seen at `now_ms` (LDIS cannot say what happened while it was not
    // running), unless `restored` says the coordinators were told it is silent: that holds
    // until the feed is seen again, without telling them twice.
    FeedWatch(std::vector<FeedSpec> feeds, std::int64_t now_ms,
              const std::vector<std::optional<FeedState>>& restored = {});

    // A report or heartbeat from (source_type, organisation) at `now_ms`: the change when
    // the feed was silent (it is back), else none. Unknown feeds are ignored.
    std::optional<FeedChange> Seen(std::string_view source_type, std::string_view organisation,
                                   std::int64_t now_ms);
    // The feeds newly silent at `now_ms`: silent for longer than their limit, not yet told.
    std::vector<FeedChange> Check(std::int64_t now_ms);
    // Undoes a change whose notice could not be stored, so that the next check tries again.
    void Revert(const FeedChange& change);

    std::vector<FeedStatus> Status() const;
    bool empty() const { return feeds_.empty(); }

private:
    mutable std::mutex mutex_;
    std::vector<FeedSpec> feeds_;
    std::vector<FeedState> states_;
};

// The settings key a feed's state is kept under: "feed:{source_type}/{organisation}".
std::string FeedKey(const FeedSpec& feed);
// {"silent": true, "since_ms": N}, and back. A value that does not parse is no state.
std::string FeedStateJson(const FeedState& state);
std::optional<FeedState> ParseFeedState(std::string_view json);
// The notice's detail (JSON): the feed, when it was last seen, how long it has been
// silent, its limit, as the coordinators' message shows them.
std::string FeedNoticeDetail(const FeedChange& change);

}  // namespace ldis::engine
