#pragma once
#include <string>

namespace ldis::app::ctl {

// ldisctl migrate --from sqlite:PATH --to postgresql://…: makes the schema on the target,
// copies the whole history, verifies the audit chain there, and says so table by table.
// Returns ldisctl's exit code (0, or 6 with the reason on stderr).
int Migrate(const std::string& from, const std::string& to);

}  // namespace ldis::app::ctl
