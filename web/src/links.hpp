#pragma once
// The pages reached from a link in a message (DESIGN §8): /ack/{token} acknowledges a
// delivery, /unsubscribe/{token} asks the coordinators to stop a contact's messages. Plain
// pages from templates/web/link.mustache: no script, no session, at most one form, the
// token their only authority. No Beast here. Private to web/.

#include <string>
#include <vector>

#include "pages.hpp"

namespace ldis::web {

// A link page's form, when it has one: where it posts, its button, and for the
// acknowledgement the answers offered (the one given so far chosen) and the note.
struct LinkForm {
    std::string action;
    std::string button;
    bool answers = false;
    std::string chosen = "received";
    std::string note;
};

class LinkPages {
public:
    // Throws std::runtime_error when templates/web/link.mustache is missing or does not parse.
    LinkPages(const Services& services, const std::string& templates_dir);

    // GET shows what the link is for and a button; POST (`record`) does it. The
    // acknowledgement's POST carries the form (`body`): what the partner did (issue 17 §4).
    WebResponse Acknowledge(const std::string& token, bool record,
                            const std::string& body = {}) const;
    WebResponse Unsubscribe(const std::string& token, bool record,
                            const std::string& body = {}) const;

private:
    // /ack/{token}/photos: the photos of the delivery's version after a content warning;
    // /ack/{token}/photos/{id}: one of them, the JPEG kept (issue 17 §3). The token is the
    // only authority, as for the acknowledgement; only GET.
    WebResponse Photos(const std::string& token, const std::string& photo) const;
    // `images`: src and alt of each image the page shows (only the photos page has any).
    WebResponse Render(int status, const std::string& title,
                       const std::vector<std::string>& paragraphs, const LinkForm& form = {},
                       const std::vector<std::pair<std::string, std::string>>& links = {},
                       const std::vector<std::pair<std::string, std::string>>& images = {}) const;

    const Services& services_;
    std::string template_;
};

}  // namespace ldis::web
