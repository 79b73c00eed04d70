#pragma once

#include <string_view>

#include "ldis/engine/federated.hpp"
#include "ldis/engine/result.hpp"

namespace ldis::engine {

// Reads a peer's CAP 1.2 alert (issue 16 §1), hostile until proven otherwise: it must be
// well-formed XML, valid against the OASIS CAP 1.2 schema (compiled in from
// docs/standards/CAP-v1.2.xsd), with no DTD, entity or network access, at most 256 KiB,
// and carry the LDIS parameters a receiving LDIS routes by (LDIS-reference, -version,
// -level, -authority, -district). The version's identifier must be "{reference}-v{version}".
// An Error says what is wrong. Thread-safe.
Result<FederatedVersion> ReadCap(std::string_view xml);

}  // namespace ldis::engine
