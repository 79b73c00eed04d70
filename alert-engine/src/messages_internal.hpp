// What messages.cpp (the email, and what every message shares) and messages_chat.cpp (the
// webhooks' cards, Notify) both use. Private to the engine's sources.
#pragma once

#include <boost/json.hpp>
#include <kainjow/mustache.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ldis/engine/messages.hpp"

namespace ldis::engine::messages_detail {

// The alert text's sections, in the order every message lays them out, with their headings.
extern const std::vector<std::pair<std::string, std::string>> kHeadings;

std::string Upper(std::string s);
// The version's sections (its stored body), and one of them ("" when absent).
boost::json::object Sections(const OutboxItem& item);
std::string Section(const boost::json::object& sections, std::string_view name);
// A template rendered with `data`; HTML-escaped when `html`. Parsed templates are kept.
std::string Render(const std::string& text, const kainjow::mustache::data& data, bool html);
std::string AlertUrl(const OutboxItem& item, const std::string& public_url);
std::string Trimmed(std::string text);
bool ForPartners(const OutboxItem& item);
std::string ActionOf(const OutboxItem& item);
std::string_view MarkingOf(const OutboxItem& item);
// Renders a chat template for every shape of message; throws when one is not JSON.
void CheckChatTemplate(const std::string& path, const std::string& text, bool teams);

}  // namespace ldis::engine::messages_detail
