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

// The warning signs an automatic alert may name: a report's `symptoms` that are one of
// these (ignoring case) are shown; any other text waits for a coordinator to read it.
const std::vector<std::string>& ControlledSymptoms();

// What an automatic alert may say of a substance name or "sold as" a reporter typed: the
// spelling config/substances.toml knows, else the name itself when it is one token of
// letters, digits and hyphens (a new chemical: "bromazolam", "MDMB-4en-PINACA"), else ""
// ("an unidentified substance"). Pure.
std::string SubstanceNameForAlert(std::string_view name, const Substances& substances);

// The sections of an alert a coordinator may write in their own words: what the
// substance looks like ("what"), what has happened ("harms"), advice ("advice").
const std::vector<std::string>& WordingSections();

// An alert body (RenderedAlert::ToJson) with the sections a coordinator wrote
// (`wording_json`: {"what": "...", ...}, only WordingSections(), non-empty) put in place of
// the rendered ones: sent as written. Pure.
std::string WithWording(std::string_view body_json, std::string_view wording_json);

// A report document (validated JSON) past its retention time: the reporter's contact
// and role, the description, appearance and markings, symptoms other than the controlled
// ones, and substance names that are more than one token are replaced by `marker`; the
// structured facts (source type, organisation, area, dates, substances' family names,
// form, colour, shape, imprint, harms, evidence) stay. Returns the document unchanged
// when it does not parse. Pure.
std::string WithoutFreeText(std::string_view document, std::string_view marker);

// Renders an alert from its signal's reports (validated JSON documents), facts and grade,
// from controlled values only (DESIGN §12, docs/privacy.md): families and the names
// substances.toml knows, form, colour, shape, imprint, and warning signs from
// ControlledSymptoms(). No free text a reporter typed (appearance, markings, other
// symptoms, description) reaches a version that no coordinator wrote; the reporter's
// contact and organisation are never used; counts for a ward or establishment below 3
// read "fewer than 3". Pure; thread-safe.
RenderedAlert RenderAlert(const AlertTemplates& templates, const AlertMeta& meta,
                          const std::vector<std::string>& report_documents,
                          const SignalFacts& facts, const Grade& grade,
                          const Substances& substances);

}  // namespace ldis::engine
