#pragma once
// The pages reached from a link in a message (DESIGN §8): /ack/{token} acknowledges a
// delivery, /unsubscribe/{token} asks the coordinators to stop a contact's messages. Plain
// pages from templates/web/link.mustache: no script, no session, at most one form, the
// token their only authority. No Beast here. Private to web/.

#include <string>
#include <vector>

#include "pages.hpp"

namespace ldis::web {

class LinkPages {
public:
    // Throws std::runtime_error when templates/web/link.mustache is missing or does not parse.
    LinkPages(const Services& services, const std::string& templates_dir);

    // GET shows what the link is for and a button; POST (`record`) does it.
    WebResponse Acknowledge(const std::string& token, bool record) const;
    WebResponse Unsubscribe(const std::string& token, bool record) const;

private:
    WebResponse Render(int status, const std::string& title,
                       const std::vector<std::string>& paragraphs, const std::string& action = {},
                       const std::string& button = {}) const;

    const Services& services_;
    std::string template_;
};

}  // namespace ldis::web
