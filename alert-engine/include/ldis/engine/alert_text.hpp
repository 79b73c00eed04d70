#pragma once

#include <string>
#include <utility>
#include <vector>

#include "ldis/engine/grading.hpp"
#include "ldis/engine/substances.hpp"

namespace ldis::engine {

// The Mustache parts of an alert, one per section of DESIGN §7, from templates/alert/.
class AlertTemplates {
public:
    // The sections, in the order an alert shows them.
    static const std::vector<std::string>& SectionNames();
    // Reads templates/alert/{section}.mustache for every section. Throws
    // std::runtime_error "FILE: problem" for a missing file or one that does not parse.
    static AlertTemplates LoadDir(const std::string& folder);
    const std::vector<std::pair<std::string, std::string>>& parts() const { return parts_; }

private:
    std::vector<std::pair<std::string, std::string>> parts_;
};

struct AlertVersionLine {
    int version;
    std::string status;
    std::string level;
};

// What the renderer needs besides the signal itself.
struct AlertMeta {
    std::string reference;
    int version = 1;
    std::string status;
    bool provisional = false;
    std::string authority;
    std::string district;
    std::string public_url;
    std::vector<AlertVersionLine> history;  // earlier versions, oldest first
};

// The rendered sections, and how many pieces of personal data the scrubber removed
// from the free text that went into them.
struct RenderedAlert {
    std::vector<std::pair<std::string, std::string>> sections;
    int scrubbed = 0;
    std::string ToJson() const;  // {"summary": "...", ...}
};

// Renders an alert from its signal's reports (validated JSON documents), facts and grade.
// Free text is scrubbed first; the reporter's contact and organisation are never used;
// counts for a ward or establishment below 3 read "fewer than 3". Pure; thread-safe.
RenderedAlert RenderAlert(const AlertTemplates& templates, const AlertMeta& meta,
                          const std::vector<std::string>& report_documents,
                          const SignalFacts& facts, const Grade& grade,
                          const Substances& substances);

}  // namespace ldis::engine
